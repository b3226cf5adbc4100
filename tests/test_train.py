"""The training loop: exact resume for every family, logs, TensorBoard, DDP, config, CLI, export."""

from __future__ import annotations

import json
import os
import shutil
import socket

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_upscaler.cli import main
from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.base import UpscalerModel
from audio_upscaler.train.checkpoint import load_checkpoint
from audio_upscaler.train.config import apply_overrides, from_dict, load_config, set_path
from audio_upscaler.train.logger import read_log
from audio_upscaler.train.loop import Trainer

from .signals import harmonic_tone

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """Three full-band 48 kHz files (harmonics + noise) in speech/ and music/ folders."""
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for i, name in enumerate(["speech/a.wav", "music/b.flac", "music/c.wav"]):
        x = harmonic_tone(48_000, 1.5, f0=150 + 70 * i, seed=i) + 0.02 * rng.standard_normal((1, 72_000))
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, x.T.astype(np.float32), 48_000)
    return root


def tiny_config(source, family: str = "apnet", **sections) -> dict:
    rate = registry.build(family, **registry.get_class(family).tiny_config).sample_rate
    task = "music_11k_44k" if rate == 44_100 else "bwe_8k_48k"  # validation tasks at the model's rate
    config = {
        "model": {"family": family, **registry.get_class(family).tiny_config},
        "data": {"source": str(source), "segment_seconds": 0.2, "validation_tasks": [task],
                 "validation_examples": 2, "validation_seconds": 0.3, "num_workers": 0,
                 "degradation": [{"type": "resample", "rates": [8000, 16000]}]},
        "optim": {"batch_size": 2, "lr": 1e-3, "ema_decay": 0.9},
        "train": {"max_steps": 6, "validate_every": 3, "checkpoint_every": 3, "log_every": 1, "threads": 1,
                  "audio_samples": 0},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def train_losses(run_dir) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in read_log(run_dir, "train")}


@pytest.mark.parametrize("family", registry.families())
def test_killed_run_resumes_with_identical_losses(audio_folder, tmp_path, family):
    config = from_dict(tiny_config(audio_folder, family))
    whole = Trainer(config, tmp_path / "whole", echo=None, progress=False)
    whole.fit()
    killed = Trainer(config, tmp_path / "killed", echo=None, progress=False)
    killed.fit(stop_at=3)  # as if killed right after the step-3 checkpoint
    del killed
    resumed = Trainer(config, tmp_path / "killed", resume=True, echo=None, progress=False)
    assert resumed.step == 3
    resumed.fit()

    a, b = train_losses(tmp_path / "whole"), train_losses(tmp_path / "killed")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    assert all(a[s] == b[s] for s in a), (a, b)
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert (tmp_path / "whole" / "best_model" / "model.safetensors").is_file()
    validations = read_log(tmp_path / "whole", "validation")
    assert [r["step"] for r in validations] == [0, 3, 6]
    task = config.data.validation_tasks[0]
    assert all(np.isfinite(r["lsd"]) and r[f"{task}/input_lsd"] > 0 for r in validations)


def test_training_lowers_the_loss_and_validation_lsd(audio_folder, tmp_path):
    config = from_dict(tiny_config(audio_folder, optim={"lr": 3e-3, "ema_decay": None},
                                   train={"max_steps": 40, "validate_every": 40, "checkpoint_every": 40}))
    trainer = Trainer(config, tmp_path, echo=None, progress=False)
    trainer.fit()
    losses = train_losses(tmp_path)
    assert np.mean([losses[s] for s in range(36, 41)]) < 0.7 * np.mean([losses[s] for s in range(1, 6)])
    first, last = read_log(tmp_path, "validation")
    assert last["lsd"] < first["lsd"]


def test_checkpoint_holds_every_state_and_loads_without_pickle(audio_folder, tmp_path):
    Trainer(from_dict(tiny_config(audio_folder, train={"max_steps": 3})), tmp_path, echo=None, progress=False).fit()
    state = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert state["step"] == 3 and state["ema"] is not None
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config"} <= set(state)
    evil = tmp_path / "evil.pt"
    torch.save({"x": object()}, evil)  # any non-tensor object needs unpickling: refused
    with pytest.raises(UpscalerError, match="cannot load checkpoint"):
        load_checkpoint(evil)


def test_tensorboard_events_are_written_and_readable(audio_folder, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the [train] extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = from_dict(tiny_config(audio_folder, train={"max_steps": 3, "audio_samples": 1}))
    Trainer(config, tmp_path, echo=None, progress=False).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"audio": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert "train/loss" in tags["scalars"] and "validation/lsd" in tags["scalars"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert any(t.endswith("/output") for t in tags["audio"])
    assert any(t.endswith("/spectrogram") for t in tags["images"])


def test_early_stopping_and_best_checkpoint(audio_folder, tmp_path):
    config = from_dict(tiny_config(audio_folder, optim={"lr": 0.0, "ema_decay": None, "scheduler": "none"},
                                   train={"max_steps": 30, "validate_every": 2, "early_stop_patience": 2}))
    trainer = Trainer(config, tmp_path, echo=None, progress=False)
    trainer.fit()
    assert trainer.step == 6  # lr 0: validations 2 (best), 4 and 6 do not improve -> stop
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 2


def test_a_time_limit_ends_the_run_validated_and_saved(audio_folder, tmp_path, monkeypatch):
    """``train.max_minutes`` (a lent GPU for a fixed time): the run stops at the first step past
    the limit, validates that step (so the best model can come from it) and saves a checkpoint
    the run can resume from."""
    import audio_upscaler.train.loop as loop

    clock = iter(range(0, 10_000, 30))  # every call of the clock: 30 s later
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(clock)))
    config = from_dict(tiny_config(audio_folder, train={"max_steps": 50, "validate_every": 4, "max_minutes": 2.0}))
    echoed = []
    trainer = Trainer(config, tmp_path, echo=echoed.append, progress=False)
    trainer.fit()
    assert 2 <= trainer.step < 10 and any(line.startswith(f"time limit at step {trainer.step}") for line in echoed)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == trainer.step
    assert trainer.step in {row["step"] for row in read_log(tmp_path, "validation")}  # validated at the stop
    with pytest.raises(UpscalerError, match="train.max_minutes must be above 0"):
        from_dict(tiny_config(audio_folder, train={"max_minutes": 0}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, config: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(from_dict(config), out, echo=None, progress=False)
    trainer.fit()
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, f"{out}/rank{rank}.pt")
    trainer.close()
    assert not torch.distributed.is_initialized()


def test_ddp_two_processes_end_with_identical_weights(audio_folder, tmp_path):
    config = tiny_config(audio_folder, train={"max_steps": 3, "validate_every": 0})
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), config, str(tmp_path)), nprocs=2)
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    fresh = registry.build("apnet", **registry.get_class("apnet").tiny_config)
    torch.manual_seed(0)
    assert any(not torch.equal(w0[k], v) for k, v in fresh.state_dict().items())  # it did train
    assert train_losses(tmp_path).keys() == {1, 2, 3}  # rank 0 logs


def test_config_overrides_and_errors(tmp_path):
    data = apply_overrides({"model": {"family": "apnet"}}, ["model.dim=64", "optim.lr=3e-4", "data.source=/x"])
    config = from_dict(data)
    assert config.model["dim"] == 64 and config.optim.lr == 3e-4 and config.data.source == "/x"
    with pytest.raises(UpscalerError, match="unknown setting"):
        from_dict({"model": {"family": "apnet"}, "optim": {"learning_rate": 1}})
    with pytest.raises(UpscalerError, match="section.key=value"):
        apply_overrides({}, ["lr"])
    with pytest.raises(UpscalerError, match="family"):
        from_dict({"optim": {}})
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path).to_dict() == config.to_dict()


@pytest.mark.parametrize("override, message", [
    ("optim.lr=abc", "optim.lr must be a number, got 'abc'"),
    ("model.dim=big", "model.dim must be a whole number, got 'big'"),
    ("train.compile=maybe", "train.compile must be true or false"),
    ("optim.betas=0.5", "optim.betas must be a list"),
    ("optim.batch_size=0", "optim.batch_size must be above 0"),
    ("data.segment_seconds=0", "data.segment_seconds must be above 0"),
    ("data.validation_examples=0", "data.validation_examples must be above 0"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be above 0"),
    ("optim.lr=-1", "optim.lr must be 0 or more"),
])
def test_config_values_of_the_wrong_type_or_range_are_one_line_errors(tmp_path, capsys, override, message):
    """Each was an internal error once training started (TypeError, DataLoader's ValueError,
    ZeroDivisionError, torch's RuntimeError on an empty validation set...)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(from_dict(tiny_config(tmp_path)).to_yaml())
    assert main(["train", "--config", str(cfg), "--run-dir", str(tmp_path / "run"), "--quiet", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("data", ["empty", "missing"])
def test_a_data_error_leaves_no_run_folder(tmp_path, capsys, data):
    """A missing or empty data folder is a one-line error, and no half-made run is left behind (the
    run folder and its config.yaml were written first; Model Lab then listed the failed run)."""
    (tmp_path / "empty").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(from_dict(tiny_config(tmp_path / data)).to_yaml())
    assert main(["train", "--config", str(cfg), "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "run").exists()


def test_an_override_fills_an_empty_yaml_section(tmp_path):
    """``loss:`` with nothing under it reads as null; ``loss.l1_weight=1`` said it "goes through a
    non-mapping value"."""
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  family: apnet\nloss:\n")
    assert load_config(path, ["loss.l1_weight=1"]).loss.l1_weight == 1
    with pytest.raises(UpscalerError, match="non-mapping"):
        load_config(path, ["model.family.x=1"])


def test_whole_floats_fill_integer_settings():
    config = from_dict(apply_overrides(tiny_config("/x"), ["train.max_steps=1e3", "model.dim=32.0"]))
    assert config.train.max_steps == 1000 and isinstance(config.train.max_steps, int)
    assert registry.build("apnet", **{k: v for k, v in config.model.items() if k != "family"}).config.dim == 32


def test_shipped_training_configs_load():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs" / "train"
    paths = sorted(folder.glob("*.yaml"))
    assert paths
    for path in paths:
        config = load_config(path)
        registry.build(config.model["family"], **{k: v for k, v in config.model.items() if k != "family"})


def test_cli_train_resume_and_export(audio_folder, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(from_dict(tiny_config(audio_folder, train={"max_steps": 2, "validate_every": 2})).to_yaml())
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--run-dir", str(run), "--quiet"]) == 0
    assert main(["train", "--config", str(cfg), "--run-dir", str(run), "--quiet"]) == 2  # would clobber
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--quiet"]) == 0
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 4
    out = tmp_path / "exported"
    assert main(["train", "--export", str(run), "-o", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "bwe_8k_48k" in card and "SHA-256" in card
    model = UpscalerModel.load(out)
    assert model.family == "apnet"
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    assert main(["train", "--export", str(run), "-o", str(out)]) == 2  # exists
    latest = tmp_path / "latest"  # the last checkpoint's EMA weights, not best_model/
    shutil.rmtree(run / "best_model")
    assert main(["train", "--export", str(run), "--latest", "--fp32", "-o", str(latest)]) == 0
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    exported = UpscalerModel.load(latest).state_dict()
    for key, value in exported.items():
        assert torch.equal(value, state["ema"][f"module.{key}"]), key
    assert "## Validation (step 4)" in (latest / "MODEL_CARD.md").read_text()


def test_cli_resume_and_export_mistakes_are_one_line_errors(audio_folder, tmp_path, capsys):
    """A resume that changes the model's shape, a run whose config.yaml is broken and an export
    under a file were internal errors (RuntimeError size mismatch, yaml ParserError, NotADirectoryError);
    resuming a finished run without more steps only printed "stopped at step 2" and exited 0."""
    run = tmp_path / "run"
    Trainer(from_dict(tiny_config(audio_folder, train={"max_steps": 2, "validate_every": 2})), run, echo=None,
            progress=False).fit()
    (tmp_path / "taken").write_text("mine")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [1,\n")
    cases = [(["train", "--resume", str(run), "--quiet", "model.dim=64"], "does not fit this model"),
             (["train", "--resume", str(broken), "--quiet"], "cannot read the run's config"),
             (["train", "--resume", str(run), "--quiet"], "already ran to step 2 (train.max_steps 2); give --max-steps above 2"),
             (["train", "--export", str(run), "-o", str(tmp_path / "taken" / "model")], "cannot write the model folder")]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert (tmp_path / "taken").read_text() == "mine"
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 2  # the refused resume changed nothing


def test_adversarial_phase_trains_and_resumes_exactly(audio_folder, tmp_path):
    """Discriminators join at step 2 with their own optimizer; their state is checkpointed too."""
    config = from_dict(tiny_config(audio_folder, loss={"discriminators": ["mrd", {"name": "mpd", "periods": [2, 3]}],
                                                       "adversarial_start": 2},
                                   train={"max_steps": 4, "validate_every": 2, "checkpoint_every": 2}))
    Trainer(config, tmp_path / "whole", echo=None, progress=False).fit()
    Trainer(config, tmp_path / "killed", echo=None, progress=False).fit(stop_at=2)
    Trainer(config, tmp_path / "killed", resume=True, echo=None, progress=False).fit()
    rows = {r["step"]: r for r in read_log(tmp_path / "whole", "train")}
    assert "d_loss" not in rows[1] and rows[3]["d_loss"] > 0 and rows[3]["feature_matching"] > 0
    resumed = {r["step"]: r for r in read_log(tmp_path / "killed", "train")}
    assert all(rows[s]["loss"] == resumed[s]["loss"] and rows[s].get("d_loss") == resumed[s].get("d_loss")
               for s in rows)
    state = load_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.pt")
    assert state["adversarial"]["optimizer"]["state"]  # the discriminators' Adam moments are saved


def test_tune_runs_prunes_and_resumes_from_its_database(audio_folder, tmp_path, capsys):
    import optuna

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(from_dict(tiny_config(audio_folder, optim={"ema_decay": None})).to_yaml())
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    common = ["tune", "--config", str(cfg), "--storage", storage, "--steps", "4", "--reports", "2",
              "-o", str(tmp_path / "tune"), "model.dim=16", "optim.batch_size=2"]
    assert main(common + ["--trials", "2"]) == 0
    assert main(common + ["--trials", "3"]) == 0  # resumes: one more trial, not three
    study = optuna.load_study(study_name="audio-upscaler", storage=storage)
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(study.trials) == len(finished) == 3
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)
    assert all(sorted(t.intermediate_values) == [2, 4] for t in study.trials if t.state.name == "COMPLETE")
    assert {"optim.lr", "model.dim", "model.n_blocks"} <= set(study.trials[0].params)
    best = load_config(tmp_path / "tune" / "best.yaml")
    assert best.optim.lr == study.best_params["optim.lr"] and best.model["dim"] == study.best_params["model.dim"]
    assert best.train.max_steps == 6  # the budget applies to trials only
    assert "best config" in capsys.readouterr().out


def test_tune_with_missing_data_prints_no_traceback(tmp_path):
    """optuna logged the first trial's UpscalerError with its whole traceback before the CLI's one-line error."""
    import subprocess
    import sys

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(from_dict(tiny_config(tmp_path / "missing")).to_yaml())
    done = subprocess.run([sys.executable, "-m", "audio_upscaler", "tune", "--config", str(cfg), "--trials", "1",
                           "--steps", "1", "--storage", f"sqlite:///{tmp_path / 'tune.db'}", "-o", str(tmp_path / "tune")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "File \"" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: no such folder or manifest: {tmp_path / 'missing'}"


@pytest.mark.parametrize("option", ["--trials", "--steps", "--reports", "--parallel"])
def test_tune_counts_below_one_are_refused(tmp_path, capsys, option):
    """--reports 0 and --parallel 0 were silently clamped to 1."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(from_dict(tiny_config(tmp_path)).to_yaml())
    assert main(["tune", "--config", str(cfg), option, "0", "-o", str(tmp_path / "tune")]) == 2
    assert capsys.readouterr().err == "error: --trials, --steps, --reports and --parallel must be at least 1\n"
    assert not (tmp_path / "tune").exists()


@pytest.mark.parametrize("family", registry.families())
def test_every_family_search_space_builds_valid_models(family):
    """Each family exposes knobs to tune; the extreme choices build a valid model."""
    from audio_upscaler.train.tune import GENERIC_SPACE, search_space

    config = from_dict({"model": {"family": family}})
    space = search_space(config)
    assert set(GENERIC_SPACE) < set(space), f"{family} exposes no tune_space"
    for pick in (0, -1):
        model_params = {}
        for key, spec in space.items():
            if key.startswith("model."):
                value = spec[pick] if isinstance(spec, list) else (spec["low"] if pick == 0 else spec["high"])
                set_path(model_params, key.split(".")[1:], value)
        registry.build(family, **{k: v for k, v in config.model.items() if k != "family"}, **model_params)


def test_clean_validation_task_for_resynthesis_models(audio_folder, tmp_path):
    """A vocoder trains on clean -> clean pairs and validates on the 'clean' task."""
    config = from_dict(tiny_config(audio_folder, "vocos", data={"degradation": "none", "validation_tasks": ["clean"]},
                                   train={"max_steps": 2, "validate_every": 2}))
    Trainer(config, tmp_path, echo=None, progress=False).fit()
    first, last = read_log(tmp_path, "validation")
    assert first["clean/input_lsd"] == 0 and first["clean/lsd"] > 0
    assert first["clean/lsd_ratio"] is None  # no ratio against a perfect input


def test_init_from_starts_a_run_from_another_runs_weights(audio_folder, tmp_path):
    first = Trainer(from_dict(tiny_config(audio_folder, train={"max_steps": 2, "validate_every": 2})),
                    tmp_path / "first", echo=None, progress=False)
    first.fit()
    best = UpscalerModel.load(tmp_path / "first" / "best_model")
    second = Trainer(from_dict(tiny_config(audio_folder, train={"init_from": str(tmp_path / "first")})),
                     tmp_path / "second", echo=None, progress=False)
    assert all(torch.equal(v, second.model.state_dict()[k]) for k, v in best.state_dict().items())
    other = tiny_config(audio_folder, train={"init_from": str(tmp_path / "first")})
    other["model"]["dim"] = 48
    with pytest.raises(UpscalerError, match="other parameter shapes"):
        Trainer(from_dict(other), tmp_path / "third", echo=None, progress=False)
    behaviour = tiny_config(audio_folder, train={"init_from": str(tmp_path / "first")})
    behaviour["model"]["fill_holes_db"] = 3.0  # no parameter changes: allowed, the run's setting wins
    fourth = Trainer(from_dict(behaviour), tmp_path / "fourth", echo=None, progress=False)
    assert fourth.model.config.fill_holes_db == 3.0
    assert all(torch.equal(v, fourth.model.state_dict()[k]) for k, v in best.state_dict().items())


def test_task_restore_is_saved_with_the_weights_and_exported(audio_folder, tmp_path):
    from audio_upscaler.train.export import export_run

    config = from_dict(tiny_config(audio_folder, train={"task": "restore", "max_steps": 2, "validate_every": 2}))
    Trainer(config, tmp_path / "run", echo=None, progress=False).fit()
    assert UpscalerModel.load(tmp_path / "run" / "best_model").task == "restore"
    out = export_run(tmp_path / "run", tmp_path / "exported")
    assert UpscalerModel.load(out).task == "restore" and "task: restore" in (out / "MODEL_CARD.md").read_text()
    with pytest.raises(UpscalerError, match="train.task 'denoise'"):
        Trainer(from_dict(tiny_config(audio_folder, train={"task": "denoise"})), tmp_path / "bad",
                echo=None, progress=False)
    with pytest.raises(UpscalerError, match=r"data.level_db must be \[low, high\]"):
        Trainer(from_dict(tiny_config(audio_folder, data={"level_db": [0, -20]})), tmp_path / "bad_level",
                echo=None, progress=False)


def test_vocoder_from_puts_a_trained_vocoder_into_a_melgan_run(audio_folder, tmp_path):
    tiny = registry.get_class("melgan").tiny_config
    mel = {k: tiny[k] for k in ("n_fft", "hop", "n_mels")}
    vocoder = registry.build("vocos", **mel, dim=24, n_blocks=2, cond_dim=8)
    folder = vocoder.save(tmp_path / "vocos")
    config = from_dict(tiny_config(audio_folder, "melgan", train={"vocoder_from": str(folder), "max_steps": 3}))
    run = Trainer(config, tmp_path / "run", echo=None, progress=False)
    loaded = run.model.vocoder.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in vocoder.state_dict().items())
    run.fit()
    resumed = Trainer(load_config(tmp_path / "run" / "config.yaml"), tmp_path / "run", resume=True,
                      echo=None, progress=False)  # the saved config rebuilds the loaded vocoder's size
    assert resumed.model.config.vocos["dim"] == 24 and resumed.step == 3
    with pytest.raises(UpscalerError, match="no vocoder"):
        Trainer(from_dict(tiny_config(audio_folder, train={"vocoder_from": str(folder)})), tmp_path / "apnet",
                echo=None, progress=False)
    with pytest.raises(UpscalerError, match="no model weights named"):
        Trainer(from_dict(tiny_config(audio_folder, "melgan", train={"vocoder_from": "no-such-vocoder"})),
                tmp_path / "missing", echo=None, progress=False)


def test_source_band_only_ignores_what_the_prediction_misses_above_the_source_band(audio_folder, tmp_path):
    """Same weights, same batch whose targets have noise above 16 kHz that the model cannot
    predict: with ``data.source_band_only`` and a 16 kHz source band that noise costs nothing."""
    rng = np.random.default_rng(0)
    spec = np.fft.rfft(rng.standard_normal((2, 1, 9600)) * 0.05)
    spec[..., np.fft.rfftfreq(9600, 1 / 48_000) < 17_000] = 0
    top = torch.from_numpy(np.fft.irfft(spec, 9600).astype(np.float32))
    clean = torch.from_numpy(harmonic_tone(48_000, 0.2, f0=200)[None].repeat(2, axis=0).astype(np.float32))
    batch = (clean, clean + top, torch.tensor([24_000.0, 24_000.0]), torch.tensor([16_000.0, 16_000.0]))
    losses = {}
    for flag in (False, True):
        config = from_dict(tiny_config(audio_folder, data={"source_band_only": flag}))
        trainer = Trainer(config, tmp_path / str(flag), echo=None, progress=False)
        losses[flag] = trainer.train_step(batch)["loss"]
    assert losses[True] < 0.5 * losses[False]


def one_tone_validation_corpus(folder, band_hz: float) -> None:
    """A corpus in ``folder``: one 1 s 48 kHz music file in the validation split, whose manifest
    gives its band as ``band_hz``."""
    from audio_upscaler.train.corpus.manifest import Entry, write_manifest

    x = harmonic_tone(48_000, 1.0, f0=220)
    sf.write(folder / "a.flac", x.T.astype(np.float32), 48_000, subtype="PCM_24")
    write_manifest(folder / "manifest.jsonl",
                   [Entry("a.flac", "synthetic", "a", "music", 1.0, 48_000, 1, band_hz, "CC0", "validation")])


class AddsNoiseAbove(torch.nn.Module):
    """A 48 kHz "model" that adds fixed white noise above ``hz`` to its input."""

    def __init__(self, hz: float):
        super().__init__()
        self.hz = hz

    def forward(self, x, cutoff):
        spec = torch.fft.rfft(torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * 0.01)
        spec[..., torch.fft.rfftfreq(x.shape[-1], 1 / 48_000) < self.hz] = 0
        return x + torch.fft.irfft(spec, x.shape[-1])


def test_validation_with_source_band_only_scores_only_the_source_band(tmp_path):
    """A model that adds noise above 17 kHz to sources whose band is 16 kHz: counted against it
    by default, not counted with ``source_band_only`` (as in the loss)."""
    from audio_upscaler.train.data import DataConfig
    from audio_upscaler.train.validation import ValidationSet

    one_tone_validation_corpus(tmp_path, 16_000.0)
    data = DataConfig(segment_seconds=0.5, kinds=("music",))
    scores = {flag: ValidationSet.build(tmp_path, data, ["clean"], 2, flag).run(AddsNoiseAbove(17_000),
                                                                              torch.device("cpu"))[0]
              for flag in (False, True)}
    assert scores[False]["clean/lsd"] > 0.5 and scores[True]["clean/lsd"] < 0.05


def test_validation_scores_a_codec_task_at_its_reference_rate(tmp_path):
    """A 48 kHz model's ``mp3_128k`` validation scores up to 22.05 kHz, as the benchmark does (its
    references are 44.1 kHz): noise added above 22.5 kHz changes nothing there, while the 48 kHz
    ``clean`` task counts it."""
    from audio_upscaler.train.data import DataConfig
    from audio_upscaler.train.validation import ValidationSet

    class Identity(torch.nn.Module):
        def forward(self, x, cutoff):
            return x

    one_tone_validation_corpus(tmp_path, 24_000.0)
    data = DataConfig(segment_seconds=0.5, kinds=("music",))
    validation = ValidationSet.build(tmp_path, data, ["mp3_128k", "clean"], 2)
    plain, noisy = (validation.run(model, torch.device("cpu"))[0]
                    for model in (Identity(), AddsNoiseAbove(22_500)))
    assert noisy["mp3_128k/lsd"] == pytest.approx(plain["mp3_128k/lsd"], abs=1e-3)
    assert plain["mp3_128k/lsd"] == pytest.approx(plain["mp3_128k/input_lsd"], abs=1e-6)
    assert noisy["clean/lsd"] > plain["clean/lsd"] + 0.3
