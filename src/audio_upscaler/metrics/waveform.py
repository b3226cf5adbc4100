"""Waveform metrics: SNR, SI-SDR and SDR (dB), averaged over channels."""

from __future__ import annotations

import numpy as np
from scipy import linalg, signal

from .common import as_pair

SDR_FILTER_TAPS = 512


def _ratio_db(signal_energy: np.ndarray, error_energy: np.ndarray) -> float:
    """Mean over channels of ``10 log10(signal / error)``; ``inf`` where the error is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(10 * np.log10(signal_energy / error_energy)))


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``20 log10(|y| / |y - y_hat|)`` per channel, averaged; ``inf`` for identical signals."""
    ref, est = as_pair(reference, estimate)
    return _ratio_db((ref**2).sum(1), ((ref - est) ** 2).sum(1))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR (Le Roux et al. 2019) on zero-mean signals, averaged over channels."""
    ref, est = as_pair(reference, estimate)
    ref = ref - ref.mean(1, keepdims=True)
    est = est - est.mean(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (ref * est).sum(1, keepdims=True) / (ref**2).sum(1, keepdims=True)
    target = scale * ref
    return _ratio_db((target**2).sum(1), ((est - target) ** 2).sum(1))


def sdr(reference: np.ndarray, estimate: np.ndarray, taps: int = SDR_FILTER_TAPS) -> float:
    """SDR allowing a linear distortion: the reference may pass a ``taps``-tap FIR filter.

    As in BSS-eval (``bss_eval_sources``, one source) the estimate is projected by least
    squares onto shifted copies of the reference and
    ``SDR = 10 log10(|projection|^2 / |estimate - projection|^2)``. Unlike BSS-eval the shifts
    are centred (``-taps/2 .. taps/2 - 1``) rather than causal, so zero-phase filtering (a
    different low-pass, say) is forgiven as well. About 200 dB for identical signals.
    """
    ref, est = as_pair(reference, estimate)
    taps = min(taps, ref.shape[1])
    half = taps // 2
    projections = np.empty_like(ref)
    for c, (r, e) in enumerate(zip(ref, est)):
        zero = r.size - 1  # index of lag 0 in a 'full' correlation
        auto = signal.correlate(r, r, mode="full", method="fft")[zero:zero + taps]
        cross = signal.correlate(e, r, mode="full", method="fft")[zero - half:zero - half + taps]
        if auto[0] == 0:
            projections[c] = 0.0
            continue
        auto[0] *= 1 + 1e-10  # diagonal loading: band-limited references are ill-conditioned
        coeffs = linalg.solve_toeplitz(auto, cross)  # coeffs[j] weighs r[t + half - j]
        projections[c] = signal.fftconvolve(r, coeffs)[half:half + r.size]
    return _ratio_db((projections**2).sum(1), ((est - projections) ** 2).sum(1))
