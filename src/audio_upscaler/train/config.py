"""Training configuration: one YAML file per run, with ``key.sub=value`` overrides.

A config has five sections (every key optional except ``model.family``)::

    model:  {family: apnet, dim: 192, ...}          # the family's config dataclass fields
    data:   {source: /data/corpus, segment_seconds: 1.0, degradation: [...], ...}
    loss:   {stft_weight: 0.7, l1_weight: 0.3, adversarial: null, ...}
    optim:  {optimizer: adamw, lr: 1e-4, betas: [0.5, 0.9], batch_size: 8, ...}
    train:  {max_steps: 100000, validate_every: 1000, ...}

``load_config(path, overrides)`` returns a :class:`TrainConfig` whose sections are dataclasses
(unknown keys are a clear error); ``model`` stays a plain dict that the registry checks.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UpscalerError
from ..textio import load_yaml
from ..typecheck import checked_fields


@dataclass
class DataSection:
    """Where examples come from (see ``train.data.PairDataset``).

    ``source``: a folder of audio, a corpus folder or a manifest. ``validation_source``: the same
    kinds of path for validation (default: ``source``; a corpus's validation split is used
    automatically). ``degradation``: ``robust``, ``none`` or a step list (``degrade.spec``).
    ``validation_tasks``: benchmark tasks (``degrade.TASKS``) at the model's rate; each gives
    ``validation_examples`` fixed examples of ``validation_seconds``. ``level_db``: ``[low, high]``
    random gain (dB) of each training crop, applied before degradation (validation is not scaled).
    ``source_band_only``: the loss sees only the band each crop's source file has (its measured
    ``bandwidth_hz`` in a corpus manifest, else its Nyquist frequency): above it the prediction is
    given the target's content (``losses.outside_band_from_target``), so recordings that stop at
    20 or 22 kHz do not teach the model to leave the top of a 48 kHz output empty.
    ``measured_cutoff``: condition the model on the cutoff the pipeline's analysis measures on each
    degraded crop (``bandwidth.estimate_cutoff``) instead of the degradation's nominal one: what it
    is given at inference (a codec's nominal band edge, measured on white noise, is often 2 kHz
    above what the analysis finds in quiet or tonal music).
    """

    source: str | None = None
    validation_source: str | None = None
    segment_seconds: float = 1.0
    channels: int = 1
    speech_ratio: float | None = 0.5
    min_bandwidth_hz: float | None = None
    level_db: list | None = None
    source_band_only: bool = False
    measured_cutoff: bool = False
    degradation: Any = "robust"
    validation_tasks: list = field(default_factory=lambda: ["bwe_8k_48k", "bwe_16k_48k"])
    validation_examples: int = 8
    validation_seconds: float = 2.0
    num_workers: int | None = None
    seed: int = 0


@dataclass
class LossSection:
    """Generator loss weights (``losses.GeneratorLoss``) and the optional adversarial phase.

    ``discriminators``: names for ``models.discriminators`` (``mrd``, ``mpd``, ``patchgan``);
    empty means no adversarial training. The adversarial terms start at ``adversarial_start``.
    """

    stft_weight: float = 0.7
    l1_weight: float = 0.3
    mel_weight: float = 0.0
    high_band_weight: float = 1.0
    complex_weight: float = 0.0
    complex_band: str = "high"  # high | low | kept | all (see losses.ComplexSTFTLoss)
    overfill_weight: float = 0.0  # extra weight on predictions louder than the target (losses.OverfillLoss)
    phase_weight: float = 0.0  # AP-BWE's phase losses on the band above the cutoff (losses.PhaseLoss)
    discriminators: list = field(default_factory=list)
    adversarial_loss: str = "lsgan"
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 2.0
    adversarial_start: int = 0
    discriminator_lr: float | None = None


@dataclass
class OptimSection:
    """Optimizer, batch, clipping, EMA and learning-rate schedule."""

    optimizer: str = "adamw"
    lr: float = 1e-4
    betas: list = field(default_factory=lambda: [0.5, 0.9])
    weight_decay: float = 0.0
    batch_size: int = 8
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 1e-6
    warmup_steps: int = 0


@dataclass
class TrainSection:
    """Run length, validation/checkpoint cadence, device and precision. ``init_from``: a model
    folder (or a run folder's ``best_model``) whose weights start a new run (same family and size),
    e.g. the restoration model starting from the band-extension model. ``vocoder_from`` (melgan
    runs): a trained ``vocos`` (installed model name such as ``vocos``, model folder or run
    folder) put into the model before training starts."""

    max_steps: int = 100_000
    #: stop after this much wall-clock time (minutes) as after the last step: validate, save
    #: (a lent GPU for a fixed time, a night on a laptop); ``None``: no limit
    max_minutes: float | None = None
    validate_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 50
    early_stop_patience: int | None = 20
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    threads: int | None = None
    audio_samples: int = 2
    speech_metrics: bool = False
    init_from: str | None = None
    vocoder_from: str | None = None
    #: what the trained weights are for (models.base.TASKS): ``extend`` keeps the input's band
    #: below the cutoff in the pipeline, ``restore`` (codec restoration) replaces it too;
    #: ``None``: the family's own (``vocoder`` for vocos, else ``extend``)
    task: str | None = None


SECTIONS = {"data": DataSection, "loss": LossSection, "optim": OptimSection, "train": TrainSection}
#: Settings that must be above zero (the loop divides by them or builds empty batches otherwise);
#: ``optim.lr`` may be 0, ``train.validate_every`` 0 means no validation.
POSITIVE = ("data.segment_seconds", "data.validation_seconds", "data.validation_examples", "optim.batch_size",
            "train.log_every", "train.checkpoint_every")


@dataclass
class TrainConfig:
    model: dict
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    def to_dict(self) -> dict:
        return {"model": copy.deepcopy(self.model),
                **{name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def from_dict(data: dict) -> TrainConfig:
    """Build and check a config from nested plain data."""
    if not isinstance(data, dict):
        raise UpscalerError("a training config must be a mapping with a 'model' section")
    unknown = sorted(set(data) - {"model", *SECTIONS})
    if unknown:
        raise UpscalerError(f"unknown config section(s): {', '.join(unknown)}")
    model = data.get("model")
    if not isinstance(model, dict) or "family" not in model:
        raise UpscalerError("the config needs a 'model' section naming a 'family'")
    sections = {}
    for name, cls in SECTIONS.items():
        values = data.get(name) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(values) - known)
        if bad:
            raise UpscalerError(f"unknown setting(s) in '{name}': {', '.join(bad)}")
        sections[name] = cls(**checked_fields(cls, values, name))
    for key in POSITIVE:
        section, field_name = key.split(".")
        if not getattr(sections[section], field_name) > 0:
            raise UpscalerError(f"{key} must be above 0, got {getattr(sections[section], field_name)}")
    minutes = sections["train"].max_minutes
    if minutes is not None and not minutes > 0:
        raise UpscalerError(f"train.max_minutes must be above 0 (or null for no limit), got {minutes}")
    if sections["optim"].lr < 0:
        raise UpscalerError(f"optim.lr must be 0 or more, got {sections['optim'].lr}")
    return TrainConfig(model=dict(model), **sections)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> ``(["optim", "lr"], 0.0003)`` (the value is parsed as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UpscalerError(f"override {text!r} must look like section.key=value")
    try:
        parsed = load_yaml(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise UpscalerError(f"cannot parse the value of override {text!r}: {exc}") from exc
    return key.strip().split("."), parsed


def set_path(data: dict, path: list[str], value) -> None:
    """Set ``data[path[0]][path[1]]... = value`` in place, creating missing mappings."""
    node = data
    for part in path[:-1]:
        if node.get(part) is None:  # missing, or an empty YAML section ("loss:" alone reads as null)
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise UpscalerError(f"setting {'.'.join(path)} goes through a non-mapping value")
    node[path[-1]] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A copy of ``data`` with ``section.key=value`` overrides set (sections are created)."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        if len(path) < 2:
            raise UpscalerError(f"override {text!r} must name a section and a key (e.g. model.dim=128)")
        set_path(data, path, value)
    return data


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML training config and apply ``overrides``."""
    try:
        data = load_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UpscalerError(f"cannot read training config {path}: {exc}") from exc
    return from_dict(apply_overrides(data or {}, list(overrides)))
