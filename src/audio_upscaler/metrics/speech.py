"""Speech metrics from outside packages: wide-band PESQ (``pesq``) and STOI (``pystoi``).

Both are optional dependencies (``pip install audio-upscaler[metrics]``); a missing package or a
clip they cannot score raises ``UpscalerError``. Multi-channel input is scored per channel and
averaged.
"""

from __future__ import annotations

import importlib

import numpy as np
import soxr

from ..errors import UpscalerError
from .common import as_pair

PESQ_RATE = 16000


class UnscorableClip(UpscalerError):
    """The metric's package rejected this clip (no speech found, too short, ...)."""


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UpscalerError(f"this metric needs the '{module}' package: "
                            "pip install 'audio-upscaler[metrics]'") from exc


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.0-4.64) on copies resampled to 16 kHz (soxr VHQ)."""
    pesq = _require("pesq")
    ref, est = as_pair(reference, estimate)
    if sample_rate != PESQ_RATE:
        ref = soxr.resample(ref.T, sample_rate, PESQ_RATE, quality="VHQ").T
        est = soxr.resample(est.T, sample_rate, PESQ_RATE, quality="VHQ").T
    scores = []
    for r, e in zip(ref, est):
        if not np.any(r) or not np.any(e):
            raise UnscorableClip("PESQ cannot score a silent clip")
        try:
            scores.append(pesq.pesq(PESQ_RATE, r, e, "wb"))
        except Exception as exc:  # pesq raises its own types (no utterance, too short, ...)
            raise UnscorableClip(f"PESQ cannot score this clip: {exc}") from exc
    return float(np.mean(scores))


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """STOI (or extended STOI) from ``pystoi``, 0-1; pystoi resamples to 10 kHz itself."""
    pystoi = _require("pystoi")
    ref, est = as_pair(reference, estimate)
    return float(np.mean([pystoi.stoi(r, e, sample_rate, extended=extended) for r, e in zip(ref, est)]))
