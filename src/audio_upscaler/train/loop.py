"""The one training loop for every model family.

``Trainer(config, run_dir).fit()`` trains ``config.model`` on pairs drawn from
``config.data.source``, validates on a fixed set every ``validate_every`` steps, keeps
``checkpoints/latest.pt`` and ``checkpoints/best.pt`` (plus ``best_model/``, a loadable model
folder) and logs to ``log.jsonl`` and TensorBoard. ``Trainer(..., resume=True)`` continues a
killed run exactly: the data stream is indexed by step (``PairDataset.keyed``) and every state
(model, optimizers, scheduler, scaler, EMA, RNGs, counters) is in the checkpoint.

Launched by ``torchrun`` (``WORLD_SIZE > 1``) it runs DistributedDataParallel: ranks draw
disjoint examples, rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import yaml
from torch import nn

from ..degrade.spec import chain_from_spec
from ..errors import UpscalerError
from ..losses import GeneratorLoss, GeneratorLossConfig, outside_band_from_target
from ..models import registry
from ..models.base import TASKS
from ..textio import write_text_atomic
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, from_dict
from .data import DataConfig, PairDataset, loader_settings
from .logger import RunLogger
from .validation import ValidationSet

LATEST, BEST = "latest.pt", "best.pt"


class KeyedStream(torch.utils.data.Dataset):
    """Map index ``i`` to example ``i * world + rank`` of ``pairs.keyed`` (disjoint per rank)."""

    def __init__(self, pairs: PairDataset, rank: int = 0, world: int = 1):
        self.pairs, self.rank, self.world = pairs, rank, world

    def __len__(self) -> int:  # nominal; the sampler is endless
        return 2**62

    def __getitem__(self, index: int):
        return self.pairs.keyed(index * self.world + self.rank)


class CountFrom(torch.utils.data.Sampler):
    """Indices ``start, start + 1, ...`` forever."""

    def __init__(self, start: int):
        self.start = int(start)

    def __iter__(self):
        i = self.start
        while True:
            yield i
            i += 1


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``None`` (full precision), ``torch.bfloat16`` or ``torch.float16``."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision in ("auto", "bf16") and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if precision in ("auto", "fp16", "bf16") and device.type == "cuda":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    raise UpscalerError(f"precision {precision!r} needs a GPU (use auto or fp32 on a CPU)")


class Trainer:
    """One training run in ``run_dir`` (see the module docstring)."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, resume: bool = False,
                 echo: Callable[[str], None] | None = print, progress: bool = True):
        self.config, self.run_dir = config, Path(run_dir)
        self.echo = echo or (lambda _msg: None)
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.distributed = self.world > 1
        t = config.train
        if t.threads:
            torch.set_num_threads(int(t.threads))
        self.device = pick_device(t.device)
        if self.distributed and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(t.seed)

        self.model = registry.build(config.model["family"], **{k: v for k, v in config.model.items() if k != "family"})
        if t.task is not None:
            if t.task not in TASKS:
                raise UpscalerError(f"train.task {t.task!r}: choose one of {', '.join(TASKS)}")
            self.model.task = t.task
        if t.vocoder_from and not resume:
            self._load_vocoder(t.vocoder_from)
        self.model.to(self.device)
        self.sample_rate = self.model.sample_rate or 48_000
        self.net = self._wrap(torch.compile(self.model) if t.compile else self.model)
        lc = config.loss
        self.loss = GeneratorLoss(GeneratorLossConfig(lc.stft_weight, lc.l1_weight, lc.mel_weight, lc.high_band_weight,
                                                      self.sample_rate, lc.complex_weight, lc.complex_band,
                                                      lc.overfill_weight, lc.phase_weight)).to(self.device)
        self.optimizer = self._optimizer(self.model.parameters(), config.optim.lr)
        self.scheduler = self._scheduler()
        self.amp_dtype = autocast_dtype(t.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = self._ema()
        self.adversarial = None
        if lc.discriminators:
            from .adversarial import AdversarialPhase

            self.adversarial = AdversarialPhase(lc, self.sample_rate, self.device, self._wrap,
                                                lambda params: self._optimizer(params, lc.discriminator_lr or config.optim.lr))
        self.step, self.best_lsd, self.bad_validations = 0, math.inf, 0
        self.progress = progress and self.rank == 0
        if resume:
            self._restore(load_checkpoint(self.run_dir / "checkpoints" / LATEST))
        else:
            if t.init_from:
                self._init_weights(Path(t.init_from))
        self.train_pairs = self._pairs()  # data errors come before the run folder exists
        self.validation = self._validation_set() if self.rank == 0 else None
        if not resume and self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(config.to_yaml())
        self.logger = RunLogger(self.run_dir) if self.rank == 0 else None

    # ------------------------------------------------------------------ setup

    def _init_weights(self, folder: Path) -> None:
        """Start from the weights of model folder ``folder`` (a run folder means its best model).

        The weights must have this run's family and parameter shapes; settings that change no
        parameter (such as apnet's ``fill_holes_db``) may differ: the run's config wins."""
        from ..models.base import UpscalerModel

        if (folder / "best_model").is_dir():
            folder = folder / "best_model"
        source = UpscalerModel.load(folder)
        shapes = {k: v.shape for k, v in source.state_dict().items()}
        if source.family != self.model.family or shapes != {k: v.shape for k, v in self.model.state_dict().items()}:
            raise UpscalerError(f"train.init_from {folder}: a '{source.family}' model with other parameter shapes "
                                f"cannot start this '{self.model.family}' run")
        self.model.load_state_dict(source.state_dict())
        if self.ema is not None:
            self.ema.module.load_state_dict(source.state_dict())

    def _load_vocoder(self, source: str) -> None:
        """Put a trained vocoder into the model; the run's config records its sizes so that a
        resumed run rebuilds the same model."""
        if not hasattr(self.model, "load_vocoder"):
            raise UpscalerError(f"train.vocoder_from: a '{self.model.family}' model has no vocoder to load")
        folder = Path(source)
        if not folder.is_dir():
            folder = registry.model_path(source)
            registry.verify_shipped(folder)
        elif (folder / "best_model").is_dir():
            folder = folder / "best_model"
        self.model.load_vocoder(folder)
        self.config.model["vocos"] = dict(self.model.config.vocos)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def _optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        o = self.config.optim
        kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if o.optimizer not in kinds:
            raise UpscalerError(f"unknown optimizer {o.optimizer!r}; choose adam or adamw")
        return kinds[o.optimizer](params, lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

    def _scheduler(self):
        o = self.config.optim
        if o.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, "min", factor=o.plateau_factor,
                                                              patience=o.plateau_patience, min_lr=o.min_lr)
        if o.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(1, self.config.train.max_steps),
                                                              eta_min=o.min_lr)
        if o.scheduler == "none":
            return None
        raise UpscalerError(f"unknown scheduler {o.scheduler!r}; choose plateau, cosine or none")

    def _ema(self):
        decay = self.config.optim.ema_decay
        if not decay:
            return None
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def _data_config(self, segment_seconds: float) -> DataConfig:
        d = self.config.data
        return DataConfig(sample_rate=self.sample_rate, segment_seconds=segment_seconds, channels=d.channels,
                          speech_ratio=d.speech_ratio, min_bandwidth_hz=d.min_bandwidth_hz,
                          measured_cutoff=d.measured_cutoff, seed=d.seed)

    def _pairs(self) -> PairDataset:
        if not self.config.data.source:
            raise UpscalerError("no training data: set data.source in the config or pass --data")
        d = self.config.data
        config = self._data_config(d.segment_seconds)
        if d.level_db is not None:
            if len(d.level_db) != 2 or float(d.level_db[0]) > float(d.level_db[1]):
                raise UpscalerError(f"data.level_db must be [low, high] in dB, got {d.level_db}")
            config.level_db = (float(d.level_db[0]), float(d.level_db[1]))
        return PairDataset(d.source, config, degradation=chain_from_spec(d.degradation))

    def _validation_set(self) -> ValidationSet:
        d = self.config.data
        return ValidationSet.build(d.validation_source or d.source, self._data_config(d.validation_seconds),
                                   list(d.validation_tasks), d.validation_examples, d.source_band_only)

    def _loader(self) -> torch.utils.data.DataLoader:
        settings = loader_settings(self.device, self.config.data.num_workers)
        generator = torch.Generator().manual_seed(self.config.train.seed)  # keeps the global RNG untouched
        start = self.step * self.config.optim.batch_size
        return torch.utils.data.DataLoader(KeyedStream(self.train_pairs, self.rank, self.world),
                                           batch_size=self.config.optim.batch_size, sampler=CountFrom(start),
                                           generator=generator, **settings)

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        return {
            "step": self.step, "best_lsd": self.best_lsd, "bad_validations": self.bad_validations,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "adversarial": self.adversarial.state_dict() if self.adversarial else None,
            "rng": rng_state(),
        }

    def _restore(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:  # missing keys or other shapes: the model settings changed
            raise UpscalerError(f"the checkpoint in {self.run_dir} does not fit this model: a model.* override "
                                "changed it since the run started (resume with the run's own model settings)") from exc
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        if self.adversarial and state["adversarial"]:
            self.adversarial.load_state_dict(state["adversarial"])
        self.step, self.best_lsd, self.bad_validations = state["step"], state["best_lsd"], state["bad_validations"]
        set_rng_state(state["rng"])

    def save(self, name: str = LATEST) -> None:
        if self.rank == 0:
            save_checkpoint(self.run_dir / "checkpoints" / name, self.state())

    def eval_model(self) -> nn.Module:
        """The weights validation and export use: the EMA copy when enabled."""
        return self.ema.module if self.ema else self.model

    # ------------------------------------------------------------------ training

    def train_step(self, batch) -> dict:
        degraded, clean, cutoff, band = (t.to(self.device, non_blocking=True) for t in batch)
        cutoff = cutoff.float()
        self.net.train()
        warmup = self.config.optim.warmup_steps
        if warmup and self.step < warmup:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.optim.lr * (self.step + 1) / warmup
        amp = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype
               else contextlib.nullcontext())
        with amp:
            pred = self.net(degraded, cutoff).float()
            if self.config.data.source_band_only:
                pred = outside_band_from_target(pred, clean, band, self.sample_rate)
            loss, parts = self.loss(pred, clean, cutoff, degraded)
        if self.adversarial and self.step >= self.config.loss.adversarial_start:
            with amp:
                adv_loss, adv_parts = self.adversarial.step(pred, clean, self.scaler, self.config.optim.grad_clip)
            loss = loss + adv_loss
            parts.update(adv_parts)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            parts["grad_norm"] = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema:
            self.ema.update_parameters(self.model)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
            self.scheduler.step()
        parts["loss"] = float(loss.detach())
        return parts

    def validate(self) -> dict:
        metrics, outputs = self.validation.run(self.eval_model(), self.device, self.config.train.speech_metrics)
        self.logger.scalars(self.step, "validation", metrics)
        keep = self.config.train.audio_samples
        if keep:
            for task, (degraded, clean, cutoff, _) in self.validation.tasks.items():
                self.logger.examples(self.step, task, outputs[task][:keep].numpy(), degraded[:keep].numpy(),
                                     clean[:keep].numpy(), self.sample_rate, cutoff[:keep].tolist())
        return metrics

    def _after_validation(self, metrics: dict) -> bool:
        """Track the best checkpoint, step the plateau scheduler; True when training should stop."""
        value = metrics["lsd"]
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and math.isfinite(value):
            self.scheduler.step(value)
        if value < self.best_lsd:
            self.best_lsd, self.bad_validations = value, 0
            self.eval_model().save(self.run_dir / "best_model")
            write_text_atomic(self.run_dir / "best.json", json.dumps({"step": self.step, **metrics}, indent=2) + "\n")
            self.save(BEST)
        else:
            self.bad_validations += 1
        patience = self.config.train.early_stop_patience
        return bool(patience and self.bad_validations >= patience)

    def _agree(self, flag: bool) -> bool:
        """Rank 0's decision, shared with every rank."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        torch.distributed.broadcast(t, 0)
        return bool(t.item())

    def fit(self, stop_at: int | None = None, on_validation: Callable[[int, dict], None] | None = None) -> dict:
        """Train until ``max_steps`` (or ``stop_at``, which simulates a kill after that step's
        checkpoint) or early stopping; returns the last validation metrics. ``on_validation(step,
        metrics)`` is called after each validation (it may raise to abandon the run, e.g. pruning)."""
        t = self.config.train
        end = min(t.max_steps, stop_at) if stop_at is not None else t.max_steps
        metrics: dict = {}
        bar = _progress_bar(self.step, t.max_steps) if self.progress else None
        started, first_step = time.monotonic(), self.step
        if self.step == 0 and self.rank == 0 and t.validate_every:
            metrics = self.validate()  # step-0 baseline
        loader = iter(self._loader())
        try:
            while self.step < end:
                parts = self.train_step(next(loader))
                self.step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{parts['loss']:.4f}", refresh=False)
                if self.rank == 0 and (self.step % t.log_every == 0 or self.step == end):
                    rate = (self.step - first_step) / max(time.monotonic() - started, 1e-9)
                    self.logger.scalars(self.step, "train", {**parts, "lr": self.optimizer.param_groups[0]["lr"],
                                                             "steps_per_second": rate})
                stop = False
                if t.validate_every and self.step % t.validate_every == 0 and self.rank == 0:
                    metrics = self.validate()
                    stop = self._after_validation(metrics)
                    if on_validation is not None:
                        on_validation(self.step, metrics)
                    ratio = metrics.get("lsd_ratio")
                    versus = f" ({ratio:.2f}x the input)" if ratio is not None and math.isfinite(ratio) else ""
                    self.echo(f"step {self.step}: validation LSD {metrics['lsd']:.3f}{versus}, best {self.best_lsd:.3f}")
                out_of_time = bool(t.max_minutes) and time.monotonic() - started >= 60 * t.max_minutes
                if self._agree(out_of_time and not stop):
                    if t.validate_every and self.step % t.validate_every and self.rank == 0:
                        metrics = self.validate()  # the last steps count for the best model too
                        self._after_validation(metrics)
                    self.echo(f"time limit at step {self.step}: {t.max_minutes:g} minutes")
                    self.save(LATEST)
                    break
                if self.step % t.checkpoint_every == 0 or self.step == end:
                    self.save(LATEST)
                if self._agree(stop):
                    self.echo(f"early stop at step {self.step}: no improvement in {t.early_stop_patience} validations")
                    self.save(LATEST)
                    break
        finally:
            if bar is not None:
                bar.close()
        if self.logger is not None and (stop_at is None or self.step >= t.max_steps):
            self.logger.close()
        return metrics

    def close(self) -> None:
        """End a distributed run cleanly; nothing to do for a single process. Every rank waits
        for the others, drops its DDP wrappers (they hold the process group) and destroys the
        group. A group left to the interpreter's exit can be torn down after gloo's threads have
        lost their Python state, and the process then aborts (SIGABRT) after a finished run."""
        if not (self.distributed and torch.distributed.is_initialized()):
            return
        torch.distributed.barrier()
        self.net = self.model
        if self.adversarial is not None:
            self.adversarial.net = self.adversarial.discriminator
        gc.collect()
        torch.distributed.destroy_process_group()


def _progress_bar(step: int, total: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=step, unit="step", dynamic_ncols=True, smoothing=0.05)


def resume_config(run_dir: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """The config a run was started with (``run_dir/config.yaml``), with ``overrides`` applied."""
    from ..textio import load_yaml
    from .config import apply_overrides

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UpscalerError(f"{run_dir} is not a training run (no config.yaml)")
    try:
        data = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UpscalerError(f"cannot read the run's config {path}: {str(exc).splitlines()[0]}") from exc
    return from_dict(apply_overrides(data, list(overrides)))
