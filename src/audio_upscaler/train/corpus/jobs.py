"""What every build job shares: the context it runs in, its seed, and how it reports files.

A job is a small picklable object with a unique ``key`` and ``run(context) -> list[Entry]``;
it writes its FLAC files under ``context.out`` and returns their manifest entries. Jobs run
in worker processes and draw all randomness from ``job_rng(context.seed, key)``, so a job
gives the same files whichever worker runs it and in whatever order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .clips import Written
from .manifest import Entry


@dataclass(frozen=True)
class JobContext:
    """Paths and settings a job needs: ``out`` (corpus folder), ``music_rate`` (Hz), ``seed``,
    ``max_piece_seconds``, ``fluidsynth`` (program path), ``soundfont`` (.sf2 path)."""

    out: Path
    music_rate: int = 48000
    seed: int = 0
    max_piece_seconds: float = 150.0
    fluidsynth: str = "fluidsynth"
    soundfont: Path | None = None


class Job(Protocol):
    key: str

    def run(self, context: JobContext) -> list[Entry]: ...


def job_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of job ``key`` under the build ``seed``."""
    digest = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16)
    return np.random.default_rng([seed, digest])


def safe_name(text: str) -> str:
    """A file-system friendly version of ``text`` (keeps ``/`` as folder separators)."""
    return "/".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("_") or "_" for part in text.split("/"))


def make_entry(written: Written, job: str, source: str, item: str, kind: str, split: str,
               licence: str, subset: str = "main", components: list[str] | None = None,
               params: dict | None = None) -> Entry:
    return Entry(path=written.path, source=source, item=item, kind=kind, duration=written.duration,
                 sample_rate=written.sample_rate, channels=written.channels,
                 bandwidth_hz=written.bandwidth_hz, licence=licence, split=split, subset=subset,
                 components=list(components or []), job=job, params=dict(params or {}))
