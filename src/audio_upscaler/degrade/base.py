"""The sample-then-apply contract shared by every degradation.

A degradation draws its parameters from a seeded ``numpy.random.Generator`` (``sample``), then
applies them deterministically (``apply``). Parameters are small frozen dataclasses, so a drawn
setting can be logged, compared and replayed; ``fixed(params)`` turns a degradation into one that
always uses the given parameters (fixed evaluation sets). Each degradation also reports the
band limit its parameters impose (``cutoff_hz``), which the chain turns into the effective cutoff
a model is conditioned on.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from ..errors import UpscalerError


def as_audio(samples: np.ndarray) -> np.ndarray:
    """Check and convert audio to float32 ``[channels, time]``; raises ``UpscalerError``."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 2:
        raise UpscalerError(f"audio must be [channels, time], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UpscalerError("audio contains NaN or Inf samples")
    return x


def fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad ``[channels, n]`` to ``[channels, length]`` (float32, contiguous)."""
    y = y[:, :length]
    if y.shape[1] < length:
        y = np.pad(y, ((0, 0), (0, length - y.shape[1])))
    return np.ascontiguousarray(y, dtype=np.float32)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw from ``U(low, high)`` as a Python float."""
    low, high = bounds
    return float(rng.uniform(low, high))


def new_seed(rng: np.random.Generator) -> int:
    """A seed for the noise a degradation adds, so that ``apply`` stays deterministic."""
    return int(rng.integers(0, 2**31 - 1))


class Degradation(abc.ABC):
    """Base class: ``sample`` parameters from an RNG, then ``apply`` them.

    ``apply`` keeps the shape ``[channels, time]`` and sample alignment (no delay).
    """

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, sample_rate: int) -> Any:
        """Draw parameters (a frozen dataclass) for audio at ``sample_rate`` Hz."""

    @abc.abstractmethod
    def apply(self, samples: np.ndarray, sample_rate: int, params: Any) -> np.ndarray:
        """Degrade float32 ``[channels, time]`` audio; returns the same shape, aligned."""

    def cutoff_hz(self, params: Any, sample_rate: int, channels: int = 1) -> float:
        """Frequency (Hz) above which these parameters leave no content; Nyquist if none.

        ``channels`` matters only where the band limit depends on it (codecs: LAME's mono
        low-pass at a given bitrate lies higher than its stereo one).
        """
        return sample_rate / 2

    def __call__(self, samples: np.ndarray, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
        return self.apply(samples, sample_rate, self.sample(rng, sample_rate))

    def fixed(self, params: Any) -> Fixed:
        """This degradation with its parameters pinned (reproducible evaluation)."""
        return Fixed(self, params)


class Fixed(Degradation):
    """A degradation whose ``sample`` always returns the same parameters."""

    def __init__(self, inner: Degradation, params: Any):
        self.inner = inner
        self.params = params

    def sample(self, rng: np.random.Generator, sample_rate: int) -> Any:
        return self.params

    def apply(self, samples: np.ndarray, sample_rate: int, params: Any) -> np.ndarray:
        return self.inner.apply(samples, sample_rate, params)

    def cutoff_hz(self, params: Any, sample_rate: int, channels: int = 1) -> float:
        return self.inner.cutoff_hz(params, sample_rate, channels)

    def __repr__(self) -> str:
        return f"Fixed({self.inner!r}, {self.params!r})"
