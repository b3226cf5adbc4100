"""Effective bandwidth ("cutoff"): the frequency above which audio carries no real content.

The detector works on the long-term average power spectrum of each channel (Welch: Hann
frames of ``spectrum_fft_size`` samples, 50 % overlap, so bins are 10-20 Hz wide at any
rate).  Averaging *power* weights every frame by its energy, so silent or quiet passages
cannot hide the content of the loud ones, and a noise floor or dither stays at its own
(low) level instead of being mistaken for content.

Definition used here.  ``S`` is the average spectrum in dB, smoothed over ``SMOOTH_HZ``; the
*pass-band trend* is a straight line in dB over log-frequency, fitted (least squares on
1/6-octave band means of ``S``) to the ``TREND_OCTAVES`` octaves below half the cutoff:

* the **deep point** is the highest frequency where ``S`` is within ``TREND_DROP_DB`` (20 dB)
  of the trend.  The first fit covers 200 Hz - 2 kHz; it is redone below each new estimate
  until it settles, so a noise floor above the cutoff never enters the fit;
* the **knee** is the highest frequency (up to the deep point) within ``KNEE_DB`` (6 dB) of
  the trend;
* if the fall from knee to deep point is a *steep wall* (at most ``WALL_OCTAVES``, a quarter
  octave: brick-wall, codec, resampler, elliptic or Butterworth order >= ~12) the cutoff is the
  knee, the top of the wall, where a filter's nominal cutoff lies;
* otherwise (a *gentle* roll-off such as Butterworth order 4) the cutoff is the deep point:
  only there has the content lost 20 dB and stops being usable.

Nothing more than ``DYNAMIC_RANGE_DB`` (100 dB) below the spectrum's highest point counts as
content either: under a steeply falling spectrum (a quiet, tonal piece whose top octaves lie
70-80 dB under its fundamentals) the fitted trend can sink so low that a decoder's debris
110 dB down would otherwise read as content and put the cutoff of an MP3 at 21 kHz.

Noise floors and dither more than 20 dB below the trend (a -60 dBFS white floor under
-20 dBFS programme, 16-bit dither) do not count as content; a floor closer than that does.
A channel counts as full band when its cutoff is within 5 % of Nyquist; a digitally silent
channel has cutoff 0.

**Codec wall above the music's own edge** (:func:`codec_wall`): a naturally dark recording
whose spectrum fades early reads as band-limited there, yet a lossy encoder may have cut it with
its own steep wall much higher up (a 128 kbps MP3 of a soft ensemble: cutoff 7 kHz, LAME's wall at
20 kHz). The wall is the highest frequency above a given one whose level stands ``WALL_DROP_DB``
(20 dB) above everything from ``WALL_GAP_HZ`` (500 Hz) higher up to the Nyquist frequency; one
within ``FULL_BAND_FRACTION`` of Nyquist, or more than ``DYNAMIC_RANGE_DB`` below the spectrum's
highest point (a decoder's debris, whose small steps would otherwise hide the real wall under
them), does not count.

Limitations: an isolated tone above the band (a pilot tone, a whine) counts as content if it
is within 20 dB of the trend; a natural roll-off falling 20 dB below the trend of the octaves
below it reads as a gentle low-pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import rfft
from scipy.ndimage import uniform_filter1d

TREND_DROP_DB = 20.0
DYNAMIC_RANGE_DB = 100.0
KNEE_DB = 6.0
WALL_OCTAVES = 0.25
SEED_HZ = 4000.0
FULL_BAND_FRACTION = 0.93  # soxr keeps 95 %, scipy resample_poly about 93 % of Nyquist
SMOOTH_HZ = 100.0
TREND_MIN_HZ = 200.0
TREND_BANDS_PER_OCTAVE = 6
TREND_OCTAVES = 4
WALL_DROP_DB = 20.0
WALL_GAP_HZ = 500.0
SILENCE_POWER = 1e-14  # mean power per bin below this (about -140 dBFS) counts as silence


@dataclass
class CutoffEstimate:
    """Effective bandwidth of a signal.

    Attributes:
        hz: overall cutoff in Hz (maximum over channels; Nyquist when all are silent).
        per_channel_hz: cutoff of each channel in Hz (0.0 for a silent channel).
        full_band: content reaches within 7 % of Nyquist (or there is no content at all).
        steep: the overall cutoff is a steep wall (codec, resampler, brick-wall filter)
            rather than a gentle roll-off; False when full band.
        top_hz: the highest frequency, over channels, where the content is still within
            ``TREND_DROP_DB`` of its trend (the deep point; at or above ``hz``). Above a steep
            cutoff it is where the wall ends: for speech resampled to 8 kHz, whose own top quarter
            octave falls more than ``KNEE_DB`` under the trend, the cutoff (the knee) may read
            3.4 kHz while the content reaches the 4 kHz band edge.
    """

    hz: float
    per_channel_hz: list[float]
    full_band: bool
    steep: bool = False
    top_hz: float = 0.0

    def __post_init__(self) -> None:
        self.top_hz = max(self.top_hz, self.hz)


def spectrum_fft_size(sample_rate: int) -> int:
    """FFT size giving 10-20 Hz bins at ``sample_rate``: a power of two."""
    return int(2 ** np.ceil(np.log2(sample_rate / 20.0)))


class SpectrumAccumulator:
    """Long-term average power spectrum of a stream fed as blocks ``[channels, n]``.

    Frames sit at fixed positions (multiples of the hop), so any split into blocks gives the
    same result.  Memory is one frame per channel plus ``[channels, n_fft // 2 + 1]`` sums.
    """

    def __init__(self, sample_rate: int, channels: int):
        self.sample_rate = int(sample_rate)
        self.n_fft = spectrum_fft_size(self.sample_rate)
        self.hop = self.n_fft // 2
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self._pending = np.zeros((channels, 0), np.float32)
        self._sum = np.zeros((channels, self.n_fft // 2 + 1))
        self.frames = 0

    def update(self, block: np.ndarray) -> None:
        """Add samples ``[channels, n]``."""
        buf = np.concatenate([self._pending, np.asarray(block, np.float32)], axis=1)
        count = (buf.shape[1] - self.n_fft) // self.hop + 1 if buf.shape[1] >= self.n_fft else 0
        if count:
            frames = sliding_window_view(buf, self.n_fft, axis=1)[:, : count * self.hop : self.hop]
            spec = rfft(frames * self._window, axis=-1)
            self._sum += (spec.real**2 + spec.imag**2).sum(axis=1)
            self.frames += count
        self._pending = buf[:, count * self.hop :]

    def power(self) -> np.ndarray:
        """Average power per bin ``[channels, n_fft // 2 + 1]`` (window-normalised).

        A stream shorter than one frame is measured as one frame with a shorter window.
        """
        if self.frames:
            return self._sum / (self.frames * np.sum(self._window**2))
        n = self._pending.shape[1]
        if n < 2:
            return np.zeros_like(self._sum)
        window = np.hanning(n + 1)[:-1]
        spec = rfft(self._pending * window, n=self.n_fft, axis=-1)
        return np.abs(spec) ** 2 / np.sum(window**2)


def estimate_cutoff(samples: np.ndarray, sample_rate: int) -> CutoffEstimate:
    """Effective bandwidth of ``samples`` ``[channels, time]`` at ``sample_rate`` Hz."""
    samples = np.atleast_2d(samples)
    acc = SpectrumAccumulator(sample_rate, samples.shape[0])
    acc.update(samples)
    return cutoff_from_power(acc.power(), sample_rate)


def cutoff_from_power(power: np.ndarray, sample_rate: int) -> CutoffEstimate:
    """Effective bandwidth from average power spectra ``[channels, n_bins]`` (bins 0..Nyquist)."""
    nyquist = sample_rate / 2
    freqs = np.linspace(0.0, nyquist, power.shape[1])
    edges = [_channel_edge(p, freqs) for p in power]
    per_channel = [hz for hz, _, _ in edges]
    if max(per_channel) <= 0:
        return CutoffEstimate(nyquist, per_channel, True, False)
    best = int(np.argmax(per_channel))
    hz = per_channel[best]
    full_band = hz >= FULL_BAND_FRACTION * nyquist
    return CutoffEstimate(float(hz), per_channel, bool(full_band), bool(edges[best][1] and not full_band),
                          top_hz=max(top for _, _, top in edges))


def codec_wall(power: np.ndarray, sample_rate: int, above_hz: float) -> float | None:
    """The top (Hz) of a codec's steep wall above ``above_hz`` in average power spectra
    ``[channels, n_bins]`` (highest over channels; see the module docstring), or ``None``."""
    nyquist = sample_rate / 2
    freqs = np.linspace(0.0, nyquist, power.shape[1])
    gap = int(np.ceil(WALL_GAP_HZ / freqs[1]))
    walls = []
    for p in power:
        if p.mean() < SILENCE_POWER:
            continue
        s = _smoothed_db(p, freqs)
        above = np.maximum.accumulate(s[::-1])[::-1]  # the loudest level from each bin up
        rest = np.append(above[gap:], np.full(gap, -np.inf))  # ... from WALL_GAP_HZ higher up
        content = s >= s.max() - DYNAMIC_RANGE_DB  # not a decoder's debris 100 dB down
        inside = (freqs > above_hz) & (freqs < FULL_BAND_FRACTION * nyquist)
        hits = np.flatnonzero((s - rest >= WALL_DROP_DB) & content & inside & np.isfinite(rest))
        if hits.size:
            walls.append(float(freqs[hits[-1]]))
    return max(walls, default=None)


def _channel_edge(p: np.ndarray, freqs: np.ndarray) -> tuple[float, bool, float]:
    """(cutoff in Hz, whether it is a steep wall, deep point in Hz) of one channel's spectrum ``p``."""
    if p.mean() < SILENCE_POWER:
        return 0.0, False, 0.0
    s = _smoothed_db(p, freqs)
    floor = s.max() - DYNAMIC_RANGE_DB
    deep = min(SEED_HZ, freqs[-1])
    for _ in range(8):  # refit the trend below the current estimate until it settles
        trend = _trend(s, freqs, deep / 2)
        new = _last_at_or_above(s, np.maximum(trend - TREND_DROP_DB, floor), freqs)
        if new == deep:
            break
        deep = new
    knee = _last_at_or_above(np.where(freqs <= deep, s, -np.inf), trend - KNEE_DB, freqs)
    if knee > 0 and np.log2(deep / knee) <= WALL_OCTAVES:
        return knee, True, deep
    return deep, False, deep


def _smoothed_db(p: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """The spectrum in dB ``[n_bins]``, smoothed over ``SMOOTH_HZ`` (floored 200 dB below its peak)."""
    smooth = uniform_filter1d(p, max(1, int(round(SMOOTH_HZ / freqs[1])) | 1), mode="nearest")
    return 10 * np.log10(np.maximum(smooth, p.max() * 1e-20))


def _trend(s: np.ndarray, freqs: np.ndarray, top: float) -> np.ndarray:
    """Pass-band trend ``[n_bins]`` in dB: a line over log-frequency fitted (least squares on
    1/6-octave band means of ``s``) to the ``TREND_OCTAVES`` octaves below ``top`` (not below
    ``TREND_MIN_HZ``); a rising fit is held level so it cannot inflate the trend above."""
    bottom = max(top / 2**TREND_OCTAVES, TREND_MIN_HZ)
    n_bands = max(1, int(np.log2(max(top / bottom, 1.0)) * TREND_BANDS_PER_OCTAVE))
    idx = np.searchsorted(freqs, bottom * 2 ** (np.arange(n_bands + 1) / TREND_BANDS_PER_OCTAVE))
    x = [np.log2(freqs[lo:hi].mean()) for lo, hi in zip(idx[:-1], idx[1:]) if hi > lo]
    y = [s[lo:hi].mean() for lo, hi in zip(idx[:-1], idx[1:]) if hi > lo]
    if len(x) < 3:
        return np.full_like(freqs, s[1:].mean())
    slope, intercept = np.polyfit(x, y, 1)
    if slope > 0:
        slope, intercept = 0.0, float(np.mean(y))
    return intercept + slope * np.log2(np.maximum(freqs, freqs[1]))


def _last_at_or_above(s: np.ndarray, threshold: np.ndarray, freqs: np.ndarray) -> float:
    hits = np.flatnonzero(s >= threshold)
    return float(freqs[hits[-1]]) if hits.size else 0.0
