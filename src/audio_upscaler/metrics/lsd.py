"""Log-spectral distance in the two conventions of the bandwidth-extension literature."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .common import as_pair, stft_magnitude

N_FFT = 2048
HOP = 512
POWER_FLOOR = 1e-8
SSR_EPS = 1e-12


class LSDResult(NamedTuple):
    lsd: float     #: over all bins
    lsd_hf: float  #: bins above the cutoff (NaN without a cutoff)
    lsd_lf: float  #: bins at or below the cutoff (NaN without a cutoff)


def _frame_mean(sq_diff: np.ndarray) -> float:
    """``[channels, bins, frames]`` squared log differences -> mean over frames (and channels)
    of the per-frame root mean over bins."""
    if sq_diff.shape[1] == 0:
        return math.nan
    return float(np.sqrt(sq_diff.mean(axis=1)).mean())


def lsd(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
        cutoff_hz: float | None = None) -> LSDResult:
    """LSD, NU-Wave 2 / AP-BWE convention, with the LSD-HF / LSD-LF split at ``cutoff_hz``.

    STFT 2048 points, hop 512, Hann 2048, centred; power ``|X|^2`` clamped at 1e-8; ``log10``;
    per frame ``sqrt(mean over bins of diff^2)``; mean over frames (and channels).
    Inputs ``[channels, time]`` (same shape); bin ``k`` lies at ``k * sample_rate / 2048`` Hz.
    """
    ref, est = as_pair(reference, estimate)
    log_ref = np.log10(np.maximum(stft_magnitude(ref, N_FFT, HOP) ** 2, POWER_FLOOR))
    log_est = np.log10(np.maximum(stft_magnitude(est, N_FFT, HOP) ** 2, POWER_FLOOR))
    sq = (log_ref - log_est) ** 2
    if cutoff_hz is None:
        return LSDResult(_frame_mean(sq), math.nan, math.nan)
    high = np.arange(sq.shape[1]) * sample_rate / N_FFT > cutoff_hz
    return LSDResult(_frame_mean(sq), _frame_mean(sq[:, high]), _frame_mean(sq[:, ~high]))


def lsd_ssr(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """LSD in the ssr_eval convention (NVSR / VoiceFixer papers).

    Magnitude STFT with ``n_fft = int(2048 / (44100 / sr))``, ``hop = int(sr / 100)``;
    ``log10(T^2 / (E + 1e-12)^2 + 1e-12)^2``, mean over bins, square root, mean over frames.
    As published, bins that are exactly zero in both signals (digital silence) score
    ``log10(1e-12)^2 = 144``, so this LSD is not 0 for identical signals with silent frames.
    """
    ref, est = as_pair(reference, estimate)
    n_fft = int(2048 / (44100 / sample_rate))
    hop = int(sample_rate / 100)
    target = stft_magnitude(ref, n_fft, hop)
    estimated = stft_magnitude(est, n_fft, hop)
    sq = np.log10(target**2 / (estimated + SSR_EPS) ** 2 + SSR_EPS) ** 2
    return _frame_mean(sq)
