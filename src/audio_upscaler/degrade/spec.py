"""Degradation chains described by plain data (YAML training configs).

A spec is a list of steps; each step is a mapping with ``type``, an optional probability ``p``
(default 1) and the constructor arguments of that degradation::

    - {type: one_of, p: 0.9, choices: [{type: resample, rates: [8000, 16000]},
                                        {type: lowpass, cutoff_hz: [2000, 20000]}]}
    - {type: quantize, p: 0.2, bits: [8, 12]}

Types: ``lowpass``, ``resample``, ``codec``, ``quantize``, ``noise``, ``gain``, ``clip`` and
``one_of`` (exactly one of ``choices``, optionally weighted by ``weights``). The string
``"robust"`` names the seeds' robust training chain and ``"none"`` the identity (clean -> clean
pairs, e.g. for a vocoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import UpscalerError
from .amplitude import AddNoise, Clip, Gain, Quantize
from .base import Degradation
from .chain import DegradationChain, robust_training_chain
from .codec import Codec
from .filters import LowPass, Resample

_RANGES = ("cutoff_hz", "bitrate_kbps", "bits", "snr_db", "gain_db", "fraction")
_TUPLES = ("rates", "methods", "shapes", "codec_names", "colors", "coding_rates")
_TYPES = {"lowpass": LowPass, "resample": Resample, "codec": Codec, "quantize": Quantize,
          "noise": AddNoise, "gain": Gain, "clip": Clip}


@dataclass(frozen=True)
class OneOfParams:
    choice: int
    params: Any


class OneOf(Degradation):
    """Exactly one of ``choices`` per example, drawn with ``weights`` (uniform by default)."""

    def __init__(self, choices: Sequence[Degradation], weights: Sequence[float] | None = None):
        if not choices:
            raise UpscalerError("one_of needs at least one choice")
        w = np.ones(len(choices)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(choices),) or (w < 0).any() or w.sum() <= 0:
            raise UpscalerError("one_of weights must be non-negative, one per choice, not all zero")
        self.choices = tuple(choices)
        self.weights = w / w.sum()

    def sample(self, rng: np.random.Generator, sample_rate: int) -> OneOfParams:
        i = int(rng.choice(len(self.choices), p=self.weights))
        return OneOfParams(i, self.choices[i].sample(rng, sample_rate))

    def apply(self, samples: np.ndarray, sample_rate: int, params: OneOfParams) -> np.ndarray:
        return self.choices[params.choice].apply(samples, sample_rate, params.params)

    def cutoff_hz(self, params: OneOfParams, sample_rate: int, channels: int = 1) -> float:
        return self.choices[params.choice].cutoff_hz(params.params, sample_rate, channels)

    def __repr__(self) -> str:
        return f"OneOf({list(self.choices)!r}, weights={self.weights.round(3).tolist()})"


def _step(spec: dict) -> Degradation:
    if not isinstance(spec, dict) or "type" not in spec:
        raise UpscalerError(f"a degradation step must be a mapping with a 'type', got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "p")}
    kind = spec["type"]
    if kind == "one_of":
        choices = kwargs.pop("choices", None)
        if not isinstance(choices, list):
            raise UpscalerError("one_of needs a list of 'choices'")
        return OneOf([_step(c) for c in choices], kwargs.pop("weights", None))
    if kind not in _TYPES:
        raise UpscalerError(f"unknown degradation type {kind!r}; choose one of: one_of, {', '.join(_TYPES)}")
    for key in _RANGES:
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    for key in _TUPLES:
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    try:
        return _TYPES[kind](**kwargs)
    except TypeError as exc:
        raise UpscalerError(f"bad settings for degradation {kind!r}: {exc}") from exc


def _identity(samples: np.ndarray, sample_rate: int, rng: np.random.Generator):
    return np.asarray(samples, dtype=np.float32), sample_rate / 2


def chain_from_spec(spec: str | list | None):
    """A degrader ``(x [C, T], rate, rng) -> (y [C, T], cutoff_hz)`` from a spec (see the module
    docstring); ``None`` or ``"robust"``: the robust chain; ``"none"``: the identity."""
    if spec is None or spec == "robust":
        return robust_training_chain()
    if spec == "none":
        return _identity
    if not isinstance(spec, list) or not spec:
        raise UpscalerError(f"a degradation spec is 'robust', 'none' or a list of steps, got {spec!r}")
    steps = []
    for item in spec:
        p = float(item.get("p", 1.0)) if isinstance(item, dict) else 1.0
        steps.append((_step(item), p))
    return DegradationChain(steps, shuffle=False)
