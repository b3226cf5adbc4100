"""Model Lab tab: start/stop a training run with a live log and loss/LSD curves, start/stop an
Optuna tune and watch its trials, list local runs and export a run's best checkpoint as a model
that Studio and Batch offer at once.

Training and tuning run as ``audio-upscaler train|tune`` child processes (:mod:`.jobs`); the page
follows their log files and ``log.jsonl``. Data folders must lie under an allowed root; configs
come from the configured config folders only.
"""

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import UpscalerError
from .context import Context, error_text, session_id
from .files import contained_path
from .plots import curves_png

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: ``section.key`` of an override: no leading ``-``, which the train/tune command would read as an option
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
#: Overrides that would bypass the folder picker (and its root containment).
PROTECTED_KEYS = ("data.source", "data.validation_source")
#: Overrides naming a model folder to read: allowed only inside the runs folder.
MODEL_FOLDER_KEYS = ("train.init_from", "train.vocoder_from")
POLL_S = 2.0
#: The curves image is redrawn at most this often while training runs (seconds).
CURVES_EVERY_S = 10.0
LOG_LINES = 40
STUDY_NAME = "audio-upscaler"
RUN_HEADERS = ["run", "family", "last step", "best LSD", "best at step", "exportable"]
TRIAL_HEADERS = ["trial", "state", "LSD", "parameters"]


def config_files(ctx: Context) -> list[str]:
    """Training configs (``*.yaml`` in the configured folders) that may be started."""
    found = []
    for folder in ctx.settings.config_dirs:
        if folder.is_dir():
            found += [str(p) for p in sorted(folder.glob("*.yaml"))]
    return found


def check_name(name: str | None, what: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name) or name in ("auto", "sbr", "none"):
        raise UpscalerError(f"{what} must be 1-64 letters, digits, '.', '_' or '-' (not auto/sbr/none)")
    return name


def parse_overrides(text: str | None, runs_dir: Path) -> list[str]:
    """``section.key=value`` items separated by spaces or new lines; data folders are refused
    (choose them with the folder picker), and a model folder to start from must lie in ``runs_dir``."""
    items = (text or "").split()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not KEY_RE.match(key):  # "-o/elsewhere.x=1" would move tune's output out of the runs folder
            raise UpscalerError(f"override {item!r} must look like section.key=value")
        if key in PROTECTED_KEYS:
            raise UpscalerError(f"{key} is set by the data folder picker, not by an override")
        if key in MODEL_FOLDER_KEYS and not Path(value).resolve().is_relative_to(Path(runs_dir).resolve()):
            raise UpscalerError(f"{key} must name a run folder in {runs_dir}")
    return items


def checked_config(ctx: Context, config: str | None) -> str:
    if config not in config_files(ctx):
        raise UpscalerError("choose a training config from the list")
    return config


def train_args(config: str, data: Path, run_dir: Path, max_steps: float | None, overrides: list[str]) -> list[str]:
    """Arguments of ``audio-upscaler train`` for a new run."""
    args = ["train", "--config", config, "--data", str(data), "--run-dir", str(run_dir), "--quiet"]
    if max_steps:
        args += ["--max-steps", str(int(max_steps))]
    return args + overrides


def tune_args(config: str, data: Path, out: Path, trials: float, steps: float, overrides: list[str]) -> list[str]:
    """Arguments of ``audio-upscaler tune`` with its study in ``out/tune.db``."""
    return ["tune", "--config", config, "--data", str(data), "--trials", str(int(trials)), "--steps",
            str(int(steps)), "--storage", storage_url(out), "--study-name", STUDY_NAME, "-o", str(out), *overrides]


def storage_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'tune.db'}"


def log_tail(path: Path, lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a log (progress-bar carriage returns folded)."""
    if not path.is_file():
        return ""
    text = path.read_text(errors="replace").replace("\r", "\n")
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def list_runs(runs_dir: Path) -> list[list]:
    """One row per training run folder (one holding ``config.yaml``) under ``runs_dir``."""
    from ..textio import load_yaml
    from ..train.logger import read_log

    rows = []
    for run in sorted(p for p in Path(runs_dir).glob("*") if (p / "config.yaml").is_file()):
        try:
            family = (load_yaml((run / "config.yaml").read_text()) or {}).get("model", {}).get("family", "?")
        except Exception:  # noqa: BLE001 - a broken config still lists the run
            family = "?"
        log = read_log(run)
        try:
            best = json.loads((run / "best.json").read_text()) if (run / "best.json").is_file() else {}
        except (OSError, ValueError):  # a torn or unreadable best.json still lists the run (and the others)
            best = {}
        lsd = best.get("lsd")
        rows.append([run.name, family, log[-1]["step"] if log else 0, "–" if lsd is None else f"{lsd:.3f}",
                     best.get("step", "–"), "yes" if (run / "best_model").is_dir() else "no"])
    return rows


def trial_rows(out: Path) -> list[list]:
    """The trials of the study in ``out/tune.db`` (empty until it exists)."""
    if not (Path(out) / "tune.db").is_file():
        return []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(out))
    except KeyError:  # the study is not created yet
        return []
    return [[t.number, t.state.name, "–" if t.value is None else f"{t.value:.4f}",
             json.dumps(t.params)] for t in study.trials]


def export(ctx: Context, run: str | None, model: str | None) -> str:
    """Export run ``run``'s best checkpoint as installed model ``model``; a status line."""
    from ..models.registry import user_dir
    from ..train.export import export_run

    run_dir = ctx.settings.runs_dir / check_name(run, "the run")
    out = export_run(run_dir, user_dir() / check_name(model, "the model name"))
    return f"**Exported** `{run}` as model `{out.name}`: choose it in Studio or Batch."


def run_curves_png(ctx: Context, run: str, png: Path) -> str | None:
    """The curves of run ``run`` (a name under the runs folder) as a PNG, if it logged anything."""
    from ..train.logger import read_log

    curves = curves_png(read_log(ctx.settings.runs_dir / check_name(run, "the run")), png)
    return str(curves) if curves else None


def finish_line(what: str, returncode: int | None) -> str:
    if returncode is None:
        return f"**{what} running…**"
    if returncode == 0:
        return f"**{what} finished.**"
    if returncode < 0:
        return f"**{what} stopped.** The run folder keeps its last checkpoint."
    return f"**{what} failed** (exit code {returncode}); see the log."


def follow(proc, render) -> Iterator:
    """Yield ``render(returncode or None)`` every :data:`POLL_S` seconds until ``proc`` ends, then once more."""
    while proc.poll() is None:
        yield render(None)
        time.sleep(POLL_S)
    yield render(proc.returncode)


def start_training(ctx: Context, session: str, config, root, folder, name, max_steps, overrides) -> Iterator:
    """Start ``audio-upscaler train`` and yield ``(status, log, curves png)`` while it runs."""
    from ..train.logger import read_log

    config = checked_config(ctx, config)
    data = contained_path(root or "", folder or ".", ctx.settings)
    run_dir = ctx.settings.runs_dir / check_name(name, "the run name")
    if (run_dir / "config.yaml").exists():
        raise UpscalerError(f"a run named '{run_dir.name}' exists; choose another name")
    log = run_dir / "ui.log"
    args = train_args(config, data, run_dir, max_steps, parse_overrides(overrides, ctx.settings.runs_dir))
    proc = ctx.jobs.start(session, "train", args, log)
    folder = ctx.sessions.job_folder(session, "train")
    drawn = {"rows": 0, "at": 0.0, "png": None}

    def render(code):
        rows = read_log(run_dir)
        due = code is not None or time.monotonic() - drawn["at"] >= CURVES_EVERY_S
        if len(rows) != drawn["rows"] and due:  # each new image is a new file for the browser
            png = curves_png(rows, folder / f"curves-{len(rows)}.png")
            drawn.update(rows=len(rows), at=time.monotonic(), png=str(png) if png else None)
        return finish_line(f"Training '{run_dir.name}'", code), log_tail(log), drawn["png"]

    yield from follow(proc, render)


def start_tuning(ctx: Context, session: str, config, root, folder, name, trials, steps, overrides) -> Iterator:
    """Start ``audio-upscaler tune`` and yield ``(status, log, trial rows)`` while it runs."""
    config = checked_config(ctx, config)
    data = contained_path(root or "", folder or ".", ctx.settings)
    out = ctx.settings.runs_dir / check_name(name, "the study name")
    if not trials or trials < 1 or not steps or steps < 1:
        raise UpscalerError("trials and steps per trial must be at least 1")
    log = out / "ui.log"
    args = tune_args(config, data, out, trials, steps, parse_overrides(overrides, ctx.settings.runs_dir))
    proc = ctx.jobs.start(session, "tune", args, log)

    def render(code):
        return finish_line(f"Tuning '{out.name}'", code), log_tail(log), trial_rows(out)

    yield from follow(proc, render)


def build(ctx: Context, model_dropdowns: list) -> None:
    """The Model Lab tab; an export refreshes the choices of ``model_dropdowns``."""
    import gradio as gr

    from .controls import model_choices

    roots = ctx.settings.root_labels()
    configs = config_files(ctx)
    with gr.Tab("Model Lab", id="model_lab", elem_id="tab_model_lab"):
        with gr.Row():
            config = gr.Dropdown(configs, value=configs[0] if configs else None, label="Training config",
                                 elem_id="lab_config")
            root = gr.Dropdown(roots, value=roots[0] if roots else None, label="Allowed root", elem_id="lab_root")
            folder = gr.Textbox(".", label="Training data folder under the root (audio, corpus or manifest)",
                                elem_id="lab_folder")
        overrides = gr.Textbox(label="Overrides (section.key=value, space separated)", elem_id="lab_overrides",
                               placeholder="optim.lr=3e-4 train.validate_every=200")
        with gr.Tab("Train"):
            with gr.Row():
                run_name = gr.Textbox("my-run", label="Run name", elem_id="lab_run_name")
                max_steps = gr.Number(2000, label="Max steps", precision=0, minimum=1, elem_id="lab_max_steps")
                start = gr.Button("Start training", variant="primary", elem_id="lab_train_start")
                stop = gr.Button("Stop", variant="stop", elem_id="lab_train_stop")
            train_status = gr.Markdown(elem_id="lab_train_status")
            train_log = gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, elem_id="lab_train_log")
            curves = gr.Image(label="Training loss and validation LSD", type="filepath", interactive=False,
                              elem_id="lab_curves")
        with gr.Tab("Tune"):
            with gr.Row():
                study = gr.Textbox("my-tune", label="Study name", elem_id="lab_study")
                trials = gr.Number(10, label="Trials", precision=0, minimum=1, elem_id="lab_trials")
                steps = gr.Number(300, label="Steps per trial", precision=0, minimum=1, elem_id="lab_steps")
                tune_start = gr.Button("Start tuning", variant="primary", elem_id="lab_tune_start")
                tune_stop = gr.Button("Stop", variant="stop", elem_id="lab_tune_stop")
            tune_status = gr.Markdown(elem_id="lab_tune_status")
            tune_log = gr.Textbox(label="Log", lines=6, max_lines=6, autoscroll=True, elem_id="lab_tune_log")
            trial_table = gr.Dataframe(headers=TRIAL_HEADERS, value=[], label="Trials", interactive=False,
                                       elem_id="lab_trials_table")
        with gr.Tab("Runs and export"):
            refresh = gr.Button("Refresh", elem_id="lab_refresh")
            runs = gr.Dataframe(headers=RUN_HEADERS, value=[], label=f"Runs in {ctx.settings.runs_dir}",
                                interactive=False, elem_id="lab_runs")
            with gr.Row():
                run_choice = gr.Dropdown([], label="Run", elem_id="lab_export_run")
                model_name = gr.Textbox(label="Model name", placeholder="my-model", elem_id="lab_model_name")
                export_button = gr.Button("Export best checkpoint", elem_id="lab_export")
            export_status = gr.Markdown(elem_id="lab_export_status")
            run_curves = gr.Image(label="Curves of the chosen run", type="filepath", interactive=False,
                                  elem_id="lab_run_curves")

        def on_train(cfg, root_label, folder_text, name, steps_, extra, request: gr.Request):
            try:
                yield from start_training(ctx, session_id(request), cfg, root_label, folder_text, name, steps_, extra)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                yield error_text(exc), "", None

        def on_tune(cfg, root_label, folder_text, name, n_trials, n_steps, extra, request: gr.Request):
            try:
                yield from start_tuning(ctx, session_id(request), cfg, root_label, folder_text, name, n_trials,
                                        n_steps, extra)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                yield error_text(exc), "", []

        def stopper(kind: str):
            def on_stop(request: gr.Request):
                stopped = ctx.jobs.stop(session_id(request), kind)
                return "Stopping…" if stopped else f"No {kind} job of this page is running."
            return on_stop

        def on_refresh():
            rows = list_runs(ctx.settings.runs_dir)
            names = [row[0] for row in rows]
            return rows, gr.update(choices=names, value=names[0] if names else None)

        def on_pick(run, request: gr.Request):
            if not run:
                return None
            try:
                png = ctx.sessions.job_folder(session_id(request), "curves") / "curves.png"
                return run_curves_png(ctx, run, png)
            except UpscalerError:
                return None

        def on_export(run, name):
            try:
                status = export(ctx, run, name)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                status = error_text(exc)
            return [status] + [gr.update(choices=model_choices()) for _ in model_dropdowns]

        start.click(on_train, [config, root, folder, run_name, max_steps, overrides],
                    [train_status, train_log, curves], concurrency_limit=None)
        stop.click(stopper("train"), None, train_status, queue=False)
        tune_start.click(on_tune, [config, root, folder, study, trials, steps, overrides],
                         [tune_status, tune_log, trial_table], concurrency_limit=None)
        tune_stop.click(stopper("tune"), None, tune_status, queue=False)
        refresh.click(on_refresh, None, [runs, run_choice])
        run_choice.change(on_pick, run_choice, run_curves)
        export_button.click(on_export, [run_choice, model_name], [export_status, *model_dropdowns])
