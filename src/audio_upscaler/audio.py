"""The ``Audio`` value type shared by I/O, analysis, DSP and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise ValueError(f"samples must be [channels, time], got shape {samples.shape}")
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
