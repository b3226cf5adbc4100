"""Find and remove a constant delay between a reference and an estimate."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import UpscalerError
from .common import as_signal


class Alignment(NamedTuple):
    reference: np.ndarray  #: float64 ``[channels, n]``
    estimate: np.ndarray   #: float64 ``[channels, n]``, ``estimate[:, t]`` matches ``reference[:, t]``
    lag: int               #: samples by which the estimate lagged the reference (negative: led)


def find_lag(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> int:
    """Lag in ``[-max_lag, max_lag]`` maximizing ``|sum_t ref[t] * est[t + lag]|`` (all channels:
    a polarity-inverted estimate is found at its true lag); 0 when no lag gives a correlation
    above round-off (silence in either signal)."""
    ref, est = as_signal(reference, "reference"), as_signal(estimate, "estimate")
    if ref.shape[0] != est.shape[0]:
        raise UpscalerError(f"reference has {ref.shape[0]} channels, estimate {est.shape[0]}")
    n = ref.shape[1] + est.shape[1]
    spectrum = (np.conj(np.fft.rfft(ref, n)) * np.fft.rfft(est, n)).sum(0)
    xcorr = np.fft.irfft(spectrum, n)  # circular: index -k holds lag -k
    lags = np.arange(-min(max_lag, ref.shape[1] - 1), min(max_lag, est.shape[1] - 1) + 1)
    scale = np.sqrt(np.sum(ref**2) * np.sum(est**2))
    strength = np.abs(xcorr[lags])
    if not strength.max() > 1e-9 * scale:
        return 0
    return int(lags[np.argmax(strength)])


def align(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> Alignment:
    """Remove the constant delay found by cross-correlation and trim both to a common length.

    Args:
        reference, estimate: ``[channels, time]`` (lengths may differ).
        max_lag: largest delay searched, in samples, either way.
    """
    ref, est = as_signal(reference, "reference"), as_signal(estimate, "estimate")
    lag = find_lag(ref, est, max_lag)
    ref, est = ref[:, max(0, -lag):], est[:, max(0, lag):]
    n = min(ref.shape[1], est.shape[1])
    return Alignment(ref[:, :n], est[:, :n], lag)
