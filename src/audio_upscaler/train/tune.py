"""``audio-upscaler tune``: an Optuna study over a training config.

Search space: the seeds' generic knobs (learning rate 1e-4..1e-3 log-uniform, batch size
4/8/16) plus the model family's ``tune_space``. Each trial trains for ``budget_steps`` with
validation every ``budget_steps // reports`` steps; the validation LSD values are reported to a
median pruner, and the last one is the objective. The study lives in ``storage`` (e.g.
``sqlite:///tune.db``), so a killed tune resumes: finished trials are kept, trials whose process
died are retried once (heartbeat), and only the missing number of trials is run.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

from ..errors import UpscalerError
from ..models import registry
from .config import TrainConfig, from_dict, set_path

GENERIC_SPACE = {"optim.lr": {"low": 1e-4, "high": 1e-3, "log": True}, "optim.batch_size": [4, 8, 16]}


def search_space(config: TrainConfig) -> dict:
    """``{"section.key": spec}`` for this config's family (see ``UpscalerModel.tune_space``)."""
    family_space = registry.get_class(config.model["family"]).tune_space
    return {**GENERIC_SPACE, **{f"model.{k}": v for k, v in family_space.items()}}


def suggest(trial, name: str, spec):
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    if isinstance(low, int) and isinstance(high, int):
        return trial.suggest_int(name, low, high, log=log)
    return trial.suggest_float(name, float(low), float(high), log=log)


def with_params(config: TrainConfig, params: dict) -> TrainConfig:
    """``config`` with ``{"section.key": value}`` set."""
    data = config.to_dict()
    for key, value in params.items():  # nested model settings too, such as model.spec.channels
        set_path(data, key.split("."), value)
    return from_dict(data)


def parallel_trials(requested: int | None) -> int:
    """The seeds' rule when not given: two trials at once on a GPU with more than 8 GB, else one."""
    if requested:
        return max(1, int(requested))
    import torch

    if torch.cuda.is_available() and torch.cuda.get_device_properties(0).total_memory > 8 * 1024**3:
        return 2
    return 1


def _no_user_error_traceback(record: logging.LogRecord) -> bool:
    """Drop optuna's "trial failed" record that carries an :class:`UpscalerError` and its
    traceback (``--data`` naming no folder...): the error ends the study and is reported in one line."""
    return not (record.exc_info and isinstance(record.exc_info[1], UpscalerError))


def tune(config: TrainConfig, trials: int, storage: str, out: str | Path, study_name: str = "audio-upscaler",
         budget_steps: int = 300, reports: int = 3, parallel: int | None = None, seed: int = 0, echo=print):
    """Run (or resume) the study until it holds ``trials`` finished trials; writes
    ``out/best.yaml`` (the config with the best parameters) and returns the study."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    from .loop import Trainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = search_space(config)
    base = copy.deepcopy(config)
    base.train.max_steps = budget_steps
    base.train.validate_every = max(1, budget_steps // max(1, reports))
    base.train.checkpoint_every = budget_steps
    base.train.early_stop_patience = None
    base.train.audio_samples = 0

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        rdb = RDBStorage(storage, heartbeat_interval=30, grace_period=90,
                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # noqa: BLE001 - bad URL, unwritable folder
        raise UpscalerError(f"cannot open the study storage {storage}: {str(exc).splitlines()[0]}") from exc
    study = optuna.create_study(study_name=study_name, storage=rdb, load_if_exists=True, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))

    def objective(trial) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in space.items()}
        trainer = Trainer(with_params(base, params), out / f"trial_{trial.number:04d}", echo=None, progress=False)

        def report(step: int, metrics: dict) -> None:
            trial.report(metrics["lsd"], step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        metrics = trainer.fit(on_validation=report)
        value = metrics.get("lsd", math.nan)
        echo(f"trial {trial.number}: LSD {value:.4f} with {params}")
        return value

    done = lambda: sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # noqa: E731
                       for t in study.trials)
    remaining = trials - done()
    if remaining > 0:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        trial_log = logging.getLogger("optuna.study._optimize")
        trial_log.addFilter(_no_user_error_traceback)
        try:
            study.optimize(objective, n_trials=remaining, n_jobs=parallel_trials(parallel))
        finally:
            trial_log.removeFilter(_no_user_error_traceback)
    else:
        echo(f"the study already holds {done()} finished trials")
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise UpscalerError("no trial completed (all were pruned or failed)")
    best = with_params(config, study.best_params)
    (out / "best.yaml").write_text(best.to_yaml())
    echo(f"best LSD {study.best_value:.4f} (trial {study.best_trial.number}) with {study.best_params}")
    echo(f"best config: {out / 'best.yaml'}")
    return study
