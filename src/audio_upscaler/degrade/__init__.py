"""Degradations shared by training and evaluation: sample parameters, then apply them.

Every degradation (``LowPass``, ``Resample``, ``Codec``, ``Quantize``, ``AddNoise``, ``Gain``,
``Clip``) has ``sample(rng, sample_rate) -> params`` (a frozen dataclass), ``apply(samples,
sample_rate, params) -> samples`` (float32 ``[channels, time]`` in and out, same length, no
delay), ``cutoff_hz(params, sample_rate, channels)`` (the band limit it imposes) and
``fixed(params)``. ``DegradationChain`` combines them in random order with per-step
probabilities and returns the degraded audio with its effective cutoff; ``apply_task`` holds the
fixed benchmark presets.
"""

from .amplitude import (AddNoise, Clip, ClipParams, Gain, GainParams, NoiseParams, Quantize,
                        QuantizeParams, add_noise, colored_noise, quantize)
from .base import Degradation, Fixed
from .chain import ChainParams, DegradationChain, Degraded, robust_training_chain
from .codec import Codec, CodecParams, band_edge_hz, codec_cutoff_hz
from .filters import (LOW_RATES, SHAPES, LowPass, LowPassParams, Resample, ResampleParams,
                      lowpass, resample, zero_phase_lowpass)
from .tasks import TASKS, TaskOutput, TaskSpec, apply_task

__all__ = [
    "AddNoise", "ChainParams", "Clip", "ClipParams", "Codec", "CodecParams", "Degradation",
    "DegradationChain", "Degraded", "Fixed", "Gain", "GainParams", "LOW_RATES", "LowPass",
    "LowPassParams", "NoiseParams", "Quantize", "QuantizeParams", "Resample", "ResampleParams",
    "SHAPES", "TASKS", "TaskOutput", "TaskSpec", "add_noise", "apply_task", "band_edge_hz",
    "codec_cutoff_hz", "colored_noise", "lowpass", "quantize", "resample", "robust_training_chain",
    "zero_phase_lowpass",
]
