"""Synthesized test signals (no audio from other packages)."""

from __future__ import annotations

import numpy as np
import soxr

from audio_upscaler.audio import Audio


def harmonic_tone(sample_rate: int, seconds: float, f0: float = 220.0, top_hz: float | None = None,
                  channels: int = 1, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes (a new attack every 0.5 s), ``[channels, T]`` float32, peak about 0.5.

    Partials stop at ``top_hz`` (default: Nyquist), so the content is band-limited there.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    top = top_hz or sample_rate / 2
    out = np.zeros((channels, t.size))
    for c in range(channels):
        f = f0 * (1 + 0.25 * c)
        env = np.exp(-1.5 * (t % 0.5))
        k = np.arange(1, int(top // f))
        amp = 1.0 / k[:, None]
        phases = rng.uniform(0, 2 * np.pi, (k.size, 1))
        out[c] = (amp * np.sin(2 * np.pi * f * k[:, None] * t + phases)).sum(0) * env
    out /= np.abs(out).max() * 2
    return out.astype(np.float32)


def band_limited(sample_rate: int, seconds: float, low_rate: int, channels: int = 1, seed: int = 0) -> Audio:
    """Music-like audio whose content stops at ``low_rate / 2``, delivered at ``low_rate``."""
    x = harmonic_tone(sample_rate, seconds, channels=channels, seed=seed)
    low = soxr.resample(x.T, sample_rate, low_rate, quality="VHQ").T
    return Audio(np.ascontiguousarray(low, dtype=np.float32), low_rate)


def xcorr_peak_lag(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> int:
    """Lag (samples) of the cross-correlation peak of ``y`` against ``x``, summed over channels."""
    n = 2 * x.shape[1]
    spec = (np.conj(np.fft.rfft(x, n)) * np.fft.rfft(y, n)).sum(0)
    xc = np.fft.irfft(spec, n)
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(xc[lags])])
