"""A random chain of degradations, and the "robust training" chain of the seeds.

Each step has a probability; per example the chain draws an order (shuffled unless
``shuffle=False``), which steps take part, and their parameters, then applies them. It returns
the degraded audio and its effective cutoff: the lowest band limit any applied step imposes,
which is what the model is conditioned on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from ..errors import UpscalerError
from .amplitude import Quantize
from .base import Degradation, as_audio
from .codec import Codec
from .filters import SHAPES, LowPass


@dataclass(frozen=True)
class ChainParams:
    """The drawn steps in application order: ``(index into the chain's steps, params)``."""

    steps: tuple[tuple[int, Any], ...]


class Degraded(NamedTuple):
    samples: np.ndarray  #: float32 ``[channels, time]``, same shape as the input
    cutoff_hz: float     #: effective band limit (Hz); Nyquist when no step limits the band


class DegradationChain:
    """Degradations applied in random order, each with its own probability.

    Args:
        steps: ``(degradation, probability)`` pairs.
        shuffle: draw a new order per example; otherwise keep the given order.
    """

    def __init__(self, steps: Sequence[tuple[Degradation, float]], shuffle: bool = True):
        for _, p in steps:
            if not 0.0 <= p <= 1.0:
                raise UpscalerError(f"step probabilities must be within [0, 1], got {p}")
        self.steps = tuple((d, float(p)) for d, p in steps)
        self.shuffle = shuffle

    def sample(self, rng: np.random.Generator, sample_rate: int) -> ChainParams:
        order = rng.permutation(len(self.steps)) if self.shuffle else range(len(self.steps))
        drawn = []
        for i in order:
            degradation, probability = self.steps[int(i)]
            if rng.random() < probability:
                drawn.append((int(i), degradation.sample(rng, sample_rate)))
        return ChainParams(tuple(drawn))

    def apply(self, samples: np.ndarray, sample_rate: int, params: ChainParams) -> Degraded:
        x = as_audio(samples)
        cutoff = sample_rate / 2
        for i, step_params in params.steps:
            degradation = self.steps[i][0]
            x = degradation.apply(x, sample_rate, step_params)
            cutoff = min(cutoff, degradation.cutoff_hz(step_params, sample_rate, x.shape[0]))
        return Degraded(x, float(cutoff))

    def __call__(self, samples: np.ndarray, sample_rate: int,
                 rng: np.random.Generator) -> Degraded:
        return self.apply(samples, sample_rate, self.sample(rng, sample_rate))

    def __repr__(self) -> str:
        return f"DegradationChain({list(self.steps)!r}, shuffle={self.shuffle})"


def robust_training_chain(cutoff_hz: tuple[float, float] = (4000.0, 12000.0),
                          bits: tuple[int, int] = (8, 12), mp3_kbps: tuple[int, int] = (64, 128),
                          p_quantize: float = 0.3, p_mp3: float = 0.3,
                          shapes: tuple[str, ...] = SHAPES) -> DegradationChain:
    """The seeds' "robust training" mix: a band limit (always; random filter shape), plus
    bit-depth reduction and an MP3 round trip, each with its own probability."""
    return DegradationChain([
        (LowPass(cutoff_hz, shapes), 1.0),
        (Quantize(bits, dither_probability=0.5), p_quantize),
        (Codec(("mp3",), mp3_kbps), p_mp3),
    ])
