"""The ``Audio`` value type shared by I/O, analysis, DSP and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import UpscalerError


@dataclass
class Audio:
    """Decoded audio.

    Attributes:
        samples: float32 array ``[channels, time]``, nominal full scale is +-1.0.
        sample_rate: samples per second (Hz).
        tags: metadata such as ``title``, ``artist``, ``album`` (lower-case keys).
        bit_depth: bits per sample of the source if it was integer PCM, else ``None``.
        codec: short name of the source encoding (``"pcm_16"``, ``"flac"``, ``"mp3"``,
            ``"aac"``, ``"vorbis"``, ``"opus"``, ``"float"`` ...), or ``None`` if unknown.
    """

    samples: np.ndarray
    sample_rate: int
    tags: dict[str, str] = field(default_factory=dict)
    bit_depth: int | None = None
    codec: str | None = None

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.dtype.kind != "f":  # int16 PCM would be taken as +-32767.0, 90 dB over full scale
            raise UpscalerError(f"samples must be floating point in +-1.0, not {samples.dtype} "
                                "(divide integer PCM by its full scale, e.g. int16 by 32768)")
        samples = samples.astype(np.float32, copy=False)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise UpscalerError(f"samples must be [channels, time], got shape {samples.shape}")
        self.samples = samples
        self.sample_rate = int(self.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate
