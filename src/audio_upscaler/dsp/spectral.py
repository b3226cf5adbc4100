"""Short-time Fourier transform helpers (numpy) on a grid anchored at the array start.

Frame ``m`` covers samples ``[m * hop - (n_fft - hop), m * hop + hop)`` of the input (zeros
outside it), so every sample is covered by the same ``n_fft / hop`` frames, the periodic-Hann
overlap-add is constant over the whole signal, and two arrays whose starts differ by a multiple
of ``hop`` see frames at the same absolute positions (what chunked processing relies on).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@lru_cache(maxsize=16)
def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window ``[n_fft]`` float32 (read-only)."""
    w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    w.flags.writeable = False
    return w


def _check(n_fft: int, hop: int) -> int:
    if n_fft % hop or n_fft // hop < 2:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop}), at least twice")
    return n_fft // hop


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``x`` float ``[C, T]`` -> complex64 ``[C, frames, n_fft // 2 + 1]`` (periodic Hann window)."""
    _check(n_fft, hop)
    c, t = x.shape
    frames = (t - 1 + n_fft - hop) // hop + 1 if t else 0
    padded = np.zeros((c, (frames - 1) * hop + n_fft if frames else 0), np.float32)
    padded[:, n_fft - hop : n_fft - hop + t] = x
    if not frames:
        return np.zeros((c, 0, n_fft // 2 + 1), np.complex64)
    windows = sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    return np.fft.rfft(windows * hann(n_fft), axis=-1).astype(np.complex64)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft` (windowed overlap-add): ``[C, frames, bins]`` -> float32 ``[C, length]``."""
    ratio = _check(n_fft, hop)
    c, frames, _ = spec.shape
    y = np.fft.irfft(spec, n=n_fft, axis=-1).astype(np.float32) * hann(n_fft)
    y = y.reshape(c, frames, ratio, hop)
    out = np.zeros((c, frames + ratio - 1, hop), np.float32)
    for r in range(ratio):
        out[:, r : r + frames] += y[:, :, r]
    norm = float(np.sum(hann(n_fft) ** 2) / hop)  # constant overlap-add of the squared window
    start = n_fft - hop
    return out.reshape(c, -1)[:, start : start + length] / norm
