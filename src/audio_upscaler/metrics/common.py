"""Input checks and the STFT shared by the metrics."""

from __future__ import annotations

import numpy as np

from ..errors import UpscalerError


def as_signal(x: np.ndarray, name: str = "audio") -> np.ndarray:
    """float64 ``[channels, time]`` (a 1-D array is taken as mono); raises ``UpscalerError``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise UpscalerError(f"{name} must be non-empty [channels, time], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UpscalerError(f"{name} contains NaN or Inf samples")
    return x


def as_pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 ``[channels, time]`` of the same shape (see :func:`metrics.align`)."""
    ref, est = as_signal(reference, "reference"), as_signal(estimate, "estimate")
    if ref.shape != est.shape:
        raise UpscalerError(f"reference {ref.shape} and estimate {est.shape} differ in shape; "
                            "align or trim them first")
    return ref, est


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``|STFT|`` as ``[channels, n_fft // 2 + 1, frames]``.

    ``torch.stft`` with a periodic Hann window of ``n_fft`` samples, ``center=True`` and reflect
    padding, the convention of NU-Wave 2 / AP-BWE (and of librosa 0.9 used by ssr_eval).
    """
    import torch  # heavy; only needed here

    if x.shape[-1] <= n_fft // 2:
        raise UpscalerError(f"audio too short for an STFT of {n_fft} points: "
                            f"needs more than {n_fft // 2} samples, got {x.shape[-1]}")
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), n_fft,
                      hop_length=hop, win_length=n_fft,
                      window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=True, pad_mode="reflect", return_complex=True)
    return spec.abs().numpy()
