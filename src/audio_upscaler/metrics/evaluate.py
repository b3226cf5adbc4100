"""All metrics for one reference/estimate pair, aligned first."""

from __future__ import annotations

import math

import numpy as np

from ..errors import UpscalerError
from .align import align as align_pair
from .common import as_signal
from .lsd import lsd, lsd_ssr
from .spectral import (mfcc_distance, rolloff_distance, spectral_centroid_distance,
                       spectral_convergence, spectrogram_ssim)
from .speech import UnscorableClip, pesq_wb, stoi
from .waveform import sdr, si_sdr, snr

METRIC_KEYS = ("delay_samples", "delay_ms", "length_difference", "lsd", "lsd_hf", "lsd_lf",
               "lsd_ssr", "snr", "si_sdr", "sdr", "spectral_convergence", "spectrogram_ssim",
               "centroid_distance_hz", "rolloff_distance_hz", "mfcc_distance", "pesq_wb", "stoi")


def evaluate_pair(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                  input_cutoff_hz: float | None = None, align: bool = True, speech: bool = False,
                  max_delay_s: float = 0.1) -> dict[str, float]:
    """Every metric for ``estimate`` against ``reference`` (``[channels, time]``, same rate).

    With ``align`` a constant delay of up to ``max_delay_s`` is found by cross-correlation,
    reported (``delay_samples``, ``delay_ms``; positive = the estimate lags) and removed;
    without it both are only trimmed to the shorter length. ``length_difference`` is the
    estimate's length minus the reference's, before any trimming. ``lsd_hf``/``lsd_lf`` need
    ``input_cutoff_hz``; ``pesq_wb``/``stoi`` are computed only with ``speech=True`` (NaN if a
    clip cannot be scored, e.g. no speech found). Keys are :data:`METRIC_KEYS`; NaN marks a
    metric that does not apply.
    """
    ref, est = as_signal(reference, "reference"), as_signal(estimate, "estimate")
    if ref.shape[0] != est.shape[0]:
        raise UpscalerError(f"reference has {ref.shape[0]} channels, estimate {est.shape[0]}")
    if align and not (math.isfinite(max_delay_s) and max_delay_s >= 0):
        raise UpscalerError(f"the largest delay searched must be a non-negative number of seconds, not {max_delay_s:g}")
    result = {key: math.nan for key in METRIC_KEYS}
    result["length_difference"] = float(est.shape[1] - ref.shape[1])
    lag = 0
    if align:
        ref, est, lag = align_pair(ref, est, int(max_delay_s * sample_rate))
    else:
        n = min(ref.shape[1], est.shape[1])
        ref, est = ref[:, :n], est[:, :n]
    result["delay_samples"] = float(lag)
    result["delay_ms"] = 1000.0 * lag / sample_rate
    result["lsd"], result["lsd_hf"], result["lsd_lf"] = lsd(ref, est, sample_rate, input_cutoff_hz)
    result["lsd_ssr"] = lsd_ssr(ref, est, sample_rate)
    result["snr"] = snr(ref, est)
    result["si_sdr"] = si_sdr(ref, est)
    result["sdr"] = sdr(ref, est)
    result["spectral_convergence"] = spectral_convergence(ref, est)
    result["spectrogram_ssim"] = spectrogram_ssim(ref, est)
    result["centroid_distance_hz"] = spectral_centroid_distance(ref, est, sample_rate)
    result["rolloff_distance_hz"] = rolloff_distance(ref, est, sample_rate)
    result["mfcc_distance"] = mfcc_distance(ref, est, sample_rate)
    if speech:
        result["pesq_wb"] = _or_nan(pesq_wb, ref, est, sample_rate)
        result["stoi"] = _or_nan(stoi, ref, est, sample_rate)
    return result


def _or_nan(metric, ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """A speech metric, or NaN when the clip cannot be scored (a missing package still raises)."""
    try:
        return metric(ref, est, sample_rate)
    except UnscorableClip:
        return math.nan
