"""Quality metrics for band extension (formulas: DESIGN.md section 5).

Inputs are ``[channels, time]`` arrays (a 1-D array counts as mono), outputs plain floats;
multi-channel results are averaged over channels. ``evaluate_pair`` aligns the pair first and
computes everything.
"""

from .align import Alignment, align, find_lag
from .evaluate import METRIC_KEYS, evaluate_pair
from .lsd import LSDResult, lsd, lsd_ssr
from .spectral import (mel_filterbank, mfcc, mfcc_distance, rolloff_distance,
                       spectral_centroid_distance, spectral_convergence, spectrogram_ssim)
from .speech import pesq_wb, stoi
from .waveform import sdr, si_sdr, snr

__all__ = [
    "Alignment", "LSDResult", "METRIC_KEYS", "align", "evaluate_pair", "find_lag", "lsd",
    "lsd_ssr", "mel_filterbank", "mfcc", "mfcc_distance", "pesq_wb", "rolloff_distance", "sdr",
    "si_sdr", "snr", "spectral_centroid_distance", "spectral_convergence", "spectrogram_ssim",
    "stoi",
]
