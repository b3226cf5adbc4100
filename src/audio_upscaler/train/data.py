"""Datasets that feed training: clean crops degraded on the fly, and DataLoader settings.

``PairDataset`` reads random crops from any folder of audio files or from a corpus manifest,
brings them to the model's rate and channel count, and degrades them with the degradation
chain shared with evaluation (``audio_upscaler.degrade``). An example is
``(degraded [C, T], clean [C, T], cutoff_hz, band_hz)``: two float32 tensors at the model's
rate, sample-aligned, the effective cutoff of the degraded input in Hz, and the band the clean
crop's source really has in Hz (its measured bandwidth in a corpus manifest, else the file's
Nyquist frequency; at most the model's Nyquist frequency).

Training mode draws a new example on every access from a per-worker generator (seeded by
``seed_worker``); validation mode derives everything from ``(seed, index)``, so it yields the
same pairs every epoch, whatever the number of workers.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf
import torch

from ..bandwidth import estimate_cutoff
from ..errors import UpscalerError
from ..io_formats import sf_name
from .corpus.manifest import KINDS, MANIFEST_NAME, Entry, read_manifest

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
_MARGIN_SECONDS = 0.05  # extra input read on both sides of a crop so resampling has context
_MAX_TRIES = 10


@dataclass
class DataConfig:
    """Dataset settings.

    Attributes:
        sample_rate: the model's rate (Hz); every file is resampled to it.
        segment_seconds: crop length.
        channels: 1 (stereo files are averaged) or 2 (mono files are duplicated).
        speech_ratio: share of speech crops when both kinds are present; ``None``: in
            proportion to the hours of each kind.
        split: manifest split to use: ``train``, ``validation``, ``None`` for all, or
            ``auto`` (``validation`` for a validation dataset, else ``train``).
        subset: manifest subset (``main``; ``speech_22k`` only for 22.05 kHz models).
        kinds: kinds to use (``speech``, ``music``; folders may also give ``other``).
        min_bandwidth_hz: skip manifest files measured below this bandwidth.
        min_rms_dbfs: crops quieter than this are drawn again (up to 10 times).
        level_db: ``(low, high)``: each training crop is scaled by a gain drawn uniformly in this
            range (dB), capped so its peak stays below full scale, before it is degraded (the
            model learns to treat quiet and loud input alike); ``None``: crops as recorded.
        measured_cutoff: report the cutoff ``bandwidth.estimate_cutoff`` measures on the degraded
            crop (what the pipeline gives a model) instead of the degradation's nominal cutoff.
        length: examples per epoch (training) or the fixed number of examples (validation).
        seed: base seed.
    """

    sample_rate: int = 48000
    segment_seconds: float = 2.0
    channels: int = 1
    speech_ratio: float | None = 0.5
    split: str | None = "auto"
    subset: str = "main"
    kinds: tuple[str, ...] = ("speech", "music", "other")
    min_bandwidth_hz: float | None = None
    min_rms_dbfs: float = -50.0
    level_db: tuple[float, float] | None = None
    measured_cutoff: bool = False
    length: int = 10_000
    seed: int = 0

    @property
    def segment_frames(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))


@dataclass(frozen=True)
class AudioFile:
    """A usable file: absolute ``path``, ``kind``, ``frames`` and ``sample_rate`` of the file, and
    ``band_hz``: the top of its content (measured bandwidth; ``None``: unknown, its Nyquist)."""

    path: str
    kind: str
    frames: int
    sample_rate: int
    band_hz: float | None = None


Degrader = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, float]]


def folder_kind(relative: Path) -> str:
    """``speech`` or ``music`` if a folder on the path is named so, else ``other``."""
    names = [p.lower() for p in relative.parts[:-1]]
    return next((k for k in KINDS if k in names), "other")


def scan_folder(folder: Path) -> list[AudioFile]:
    """Audio files under ``folder`` that soundfile can read (others are skipped)."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        try:
            info = sf.info(sf_name(path))
        except (RuntimeError, sf.LibsndfileError):
            continue
        if info.frames > 0:
            files.append(AudioFile(str(path), folder_kind(path.relative_to(folder)), info.frames, info.samplerate))
    return files


def manifest_files(entries: Sequence[Entry], root: Path, config: DataConfig) -> list[AudioFile]:
    """Manifest entries that pass the split/subset/kind/bandwidth filters, as ``AudioFile``."""
    keep = []
    for e in entries:
        if config.split is not None and e.split != config.split:
            continue
        if e.subset != config.subset or e.kind not in config.kinds:
            continue
        if config.min_bandwidth_hz is not None and e.bandwidth_hz < config.min_bandwidth_hz:
            continue
        keep.append(AudioFile(str(root / e.path), e.kind, int(round(e.duration * e.sample_rate)), e.sample_rate,
                              e.bandwidth_hz or None))
    return keep


def resolve_files(source: str | Path, config: DataConfig) -> list[AudioFile]:
    """Files of a folder of audio, a corpus folder (with ``manifest.jsonl``) or a manifest file.

    Manifest files are filtered by ``config`` (split, subset, kinds, bandwidth); plain folders
    only by kind (a folder named ``speech`` or ``music`` on the path gives the kind).
    """
    path = Path(source)
    if path.is_file():
        files = manifest_files(read_manifest(path), path.parent, config)
    elif (path / MANIFEST_NAME).is_file():
        files = manifest_files(read_manifest(path), path, config)
    elif path.is_dir():
        files = [f for f in scan_folder(path) if f.kind in config.kinds]
    else:
        raise UpscalerError(f"no such folder or manifest: {path}")
    if not files:
        raise UpscalerError(f"no usable audio in {path} (split={config.split}, subset={config.subset}, "
                            f"kinds={','.join(config.kinds)})")
    return files


def task_degrader(task: str, sample_rate: int) -> Degrader:
    """The fixed benchmark degradation ``task`` (``audio_upscaler.degrade.TASKS``) as a degrader."""
    from ..degrade import TASKS, apply_task

    spec = TASKS.get(task)
    if spec is None:
        raise UpscalerError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if spec.reference_rate != sample_rate and spec.input_rate is not None:  # codec tasks work at any rate
        raise UpscalerError(f"task {task} works at {spec.reference_rate} Hz, not {sample_rate} Hz")

    def degrade(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        out = apply_task(task, x, rate, seed=int(rng.integers(2**31)))
        return out.degraded, out.cutoff_hz

    return degrade


def as_degrader(degradation) -> Degrader:
    """Accept a task name, a ``DegradationChain``-like callable or ``None`` (the robust chain)."""
    if degradation is None:
        from ..degrade import robust_training_chain

        degradation = robust_training_chain()

    def degrade(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        out = degradation(x, rate, rng)
        return out[0], float(out[1])

    return degrade


class PairDataset(torch.utils.data.Dataset):
    """``(degraded, clean, cutoff_hz, band_hz)`` examples from clean audio (see the module docstring).

    Args:
        source: a folder of audio files, a corpus folder, or a manifest file.
        config: ``DataConfig``.
        degradation: a ``DegradationChain`` (or any ``(x, rate, rng) -> (y, cutoff)``), a task
            name such as ``"bwe_8k_48k"``, or ``None`` for the robust training chain.
        validation: fixed examples: ``config.length`` of them, the same every epoch.
    """

    def __init__(self, source: str | Path, config: DataConfig | None = None,
                 degradation=None, validation: bool = False):
        self.config = replace(config or DataConfig())
        if self.config.split == "auto":
            self.config.split = "validation" if validation else "train"
        if self.config.channels not in (1, 2):
            raise UpscalerError(f"channels must be 1 or 2, got {self.config.channels}")
        self.files = resolve_files(source, self.config)
        self.degrade = (task_degrader(degradation, self.config.sample_rate) if isinstance(degradation, str)
                        else as_degrader(degradation))
        self.validation = validation
        self._rng: np.random.Generator | None = None
        self._groups = self._weighted_groups()

    def _weighted_groups(self) -> list[tuple[float, list[AudioFile], np.ndarray]]:
        """``(probability, files, per-file probabilities)`` per kind; files weighted by length."""
        kinds = sorted({f.kind for f in self.files})
        groups = []
        for kind in kinds:
            files = [f for f in self.files if f.kind == kind]
            seconds = np.array([f.frames / f.sample_rate for f in files])
            groups.append([float(seconds.sum()), files, seconds / seconds.sum()])
        ratio = self.config.speech_ratio
        if ratio is not None and "speech" in kinds and len(kinds) > 1:
            others = sum(g[0] for g in groups if g[1][0].kind != "speech")
            for g in groups:
                g[0] = ratio if g[1][0].kind == "speech" else (1 - ratio) * g[0] / others
        total = sum(g[0] for g in groups)
        return [(g[0] / total, g[1], g[2]) for g in groups]

    def reseed(self, seed: int) -> None:
        """Restart the training-mode generator from ``seed`` (called in each worker)."""
        self._rng = np.random.default_rng([self.config.seed, seed])

    def __len__(self) -> int:
        return self.config.length

    def _generator(self, index: int) -> np.random.Generator:
        if self.validation:
            return np.random.default_rng([self.config.seed, 1, index])
        if self._rng is None:
            self.reseed(torch.initial_seed())
        return self._rng

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._example(self._generator(index))

    def keyed(self, key: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        """Example number ``key >= 0`` of an endless stream fixed by ``config.seed`` (the trainer
        draws example ``step * batch + i``, so a resumed run sees exactly the same data)."""
        return self._example(np.random.default_rng([self.config.seed, 2, int(key)]))

    def _example(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, float, float]:
        clean, band = self.clean_crop(rng)
        if self.config.level_db is not None:
            clean = random_level(clean, self.config.level_db, rng)
        degraded, cutoff = self.degrade(clean, self.config.sample_rate, rng)
        if self.config.measured_cutoff:
            cutoff = estimate_cutoff(degraded, self.config.sample_rate).hz
        return (torch.from_numpy(np.ascontiguousarray(degraded, np.float32)), torch.from_numpy(clean),
                float(cutoff), band)

    def source_band(self, file: AudioFile) -> float:
        """The band (Hz) a crop of ``file`` carries at the model's rate."""
        nyquist = min(file.sample_rate, self.config.sample_rate) / 2
        return float(min(file.band_hz or nyquist, nyquist))

    def pick_file(self, rng: np.random.Generator) -> AudioFile:
        """A file: first a kind (by ``speech_ratio``), then a file of it in proportion to its length."""
        probabilities = [g[0] for g in self._groups]
        _, files, weights = self._groups[int(rng.choice(len(self._groups), p=probabilities))]
        return files[int(rng.choice(len(files), p=weights))]

    def clean_crop(self, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """A clean crop float32 ``[channels, segment_frames]`` at the model's rate and its source
        band in Hz (``source_band``); crops quieter than ``min_rms_dbfs`` are redrawn (the last
        try is kept)."""
        threshold = 10 ** (self.config.min_rms_dbfs / 20)
        for _ in range(_MAX_TRIES):
            file = self.pick_file(rng)
            crop = self.read_crop(file, rng)
            if np.sqrt(np.mean(crop.astype(np.float64) ** 2)) >= threshold:
                break
        return crop, self.source_band(file)

    def read_crop(self, file: AudioFile, rng: np.random.Generator) -> np.ndarray:
        """A random crop of ``file``, resampled, with the configured channels (zero-padded
        when the file is shorter than the crop)."""
        from ..dsp.resample import resample

        rate, out_frames = file.sample_rate, self.config.segment_frames
        need = math.ceil(self.config.segment_seconds * rate)
        margin = math.ceil(_MARGIN_SECONDS * rate)
        start = int(rng.integers(0, max(1, file.frames - need + 1)))
        first = max(0, start - margin)
        with sf.SoundFile(sf_name(file.path)) as f:
            f.seek(first)
            x = f.read(need + (start - first) + margin, dtype="float32", always_2d=True).T
        x = self._channels(x)
        if rate != self.config.sample_rate:
            x = resample(x, rate, self.config.sample_rate)
        offset = round((start - first) * self.config.sample_rate / rate)
        y = x[:, offset:offset + out_frames]
        if y.shape[1] < out_frames:
            y = np.pad(y, ((0, 0), (0, out_frames - y.shape[1])))
        return np.ascontiguousarray(y, dtype=np.float32)

    def _channels(self, x: np.ndarray) -> np.ndarray:
        if self.config.channels == 1:
            return x.mean(axis=0, keepdims=True)
        return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2]


#: Largest peak a level-scaled crop may reach (linear full scale).
LEVEL_PEAK_CAP = 0.99


def random_level(x: np.ndarray, level_db: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """``x [channels, T]`` scaled by a gain drawn uniformly in ``level_db`` (dB), lowered where
    needed so the peak stays at most ``LEVEL_PEAK_CAP``."""
    low, high = level_db
    gain_db = rng.uniform(low, high)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        gain_db = min(gain_db, 20 * np.log10(LEVEL_PEAK_CAP / peak))
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy, ``random`` and the worker's dataset copy from torch's
    per-worker seed (different per worker and, without persistent workers, per epoch)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)


def loader_settings(device: str | torch.device = "cpu", num_workers: int | None = None) -> dict:
    """``DataLoader`` keyword arguments that work on Linux, macOS and Windows.

    Workers: ``num_workers`` or ``min(4, cpus - 1)`` (the CPUs this process may use), but 0 on Windows (spawned workers would
    re-import the training script). ``pin_memory`` only for CUDA; ``persistent_workers`` and
    ``prefetch_factor`` only with workers; ``worker_init_fn`` seeds each worker.
    """
    if os.name == "nt":
        workers = 0
    elif num_workers is None:
        from ..hardware import usable_cpus

        workers = max(0, min(4, usable_cpus() - 1))
    else:
        workers = max(0, int(num_workers))
    settings = {"num_workers": workers, "pin_memory": torch.device(device).type == "cuda",
                "worker_init_fn": seed_worker}
    if workers > 0:
        settings.update(persistent_workers=True, prefetch_factor=2)
    return settings


def make_loader(dataset: PairDataset, batch_size: int, device: str | torch.device = "cpu",
                num_workers: int | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` with ``loader_settings`` (no shuffling is needed: training
    examples are random, validation examples come in index order)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=not dataset.validation,
                                       **loader_settings(device, num_workers))
