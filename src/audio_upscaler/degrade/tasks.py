"""Fixed degradations for the benchmark tasks (same code as training, parameters pinned).

``bwe_*``/``music_*``/``speech_*`` tasks simulate a recording made at a low rate: the clean
reference is down-sampled with soxr (VHQ) and up-sampled back, so the degraded signal has the
reference's rate and length and the content of a low-rate recording. ``mp3_*`` tasks are a
LAME round trip at the reference rate (44.1 kHz): at another rate, such as a 48 kHz model's
validation, the signal is resampled to 44.1 kHz, coded and resampled back, as a 44.1 kHz MP3
reaches a 48 kHz model through the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..errors import UpscalerError
from .base import as_audio
from .codec import Codec, CodecParams
from .filters import Resample, ResampleParams


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: references at ``reference_rate`` Hz, degraded by ``input_rate`` (a
    resampling task) or by ``codec`` (a codec task)."""

    name: str
    reference_rate: int
    input_rate: int | None = None
    codec: CodecParams | None = None


class TaskOutput(NamedTuple):
    degraded: np.ndarray              #: float32 ``[channels, T]`` at the reference's rate
    cutoff_hz: float                  #: band limit of the input (Hz)
    low_rate_input: np.ndarray | None  #: the low-rate signal for resampling tasks, else None


TASKS = {spec.name: spec for spec in (
    TaskSpec("bwe_8k_48k", 48000, input_rate=8000),
    TaskSpec("bwe_12k_48k", 48000, input_rate=12000),
    TaskSpec("bwe_16k_48k", 48000, input_rate=16000),
    TaskSpec("music_11k_44k", 44100, input_rate=11025),
    TaskSpec("speech_8k_22k", 22050, input_rate=8000),
    TaskSpec("mp3_64k", 44100, codec=CodecParams("mp3", bitrate_kbps=64)),
    TaskSpec("mp3_128k", 44100, codec=CodecParams("mp3", bitrate_kbps=128)),
)}


def apply_task(name: str, samples: np.ndarray, sample_rate: int, seed: int = 0) -> TaskOutput:
    """Degrade a clean reference ``[channels, T]`` for benchmark task ``name``.

    ``sample_rate`` is normally ``TASKS[name].reference_rate``; any rate above the task's input
    rate works. ``seed`` is accepted for tasks with random parts; every current preset is fully
    fixed (soxr resampling, LAME CBR), so the output does not depend on it.
    """
    spec = TASKS.get(name)
    if spec is None:
        raise UpscalerError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    x = as_audio(samples)
    if spec.input_rate is not None:
        resampler, params = Resample(), ResampleParams(float(spec.input_rate), "soxr")
        low = resampler.downsample(x, sample_rate, params)
        return TaskOutput(resampler.upsample(low, sample_rate, params, x.shape[1]),
                          resampler.cutoff_hz(params, sample_rate), low)
    codec, params = Codec((spec.codec.codec,)), replace(spec.codec, coding_rate=spec.reference_rate)
    return TaskOutput(codec.apply(x, sample_rate, params), codec.cutoff_hz(params, sample_rate, x.shape[0]), None)
