"""Turn a training run's best checkpoint into a shipped-style model folder with a model card."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import UpscalerError
from ..models.base import WEIGHTS_FILE, UpscalerModel
from ..models.registry import sha256
from ..textio import load_yaml

CARD_FILE = "MODEL_CARD.md"


def export_run(run_dir: str | Path, out: str | Path, half: bool = True, overwrite: bool = False,
               latest: bool = False) -> Path:
    """Write ``out/`` = ``model.safetensors`` (fp16 by default) + ``config.json`` + ``MODEL_CARD.md``
    from ``run_dir/best_model`` and the validation figures in ``run_dir/best.json``; with ``latest``
    from the last checkpoint (``checkpoints/latest.pt``, its EMA weights when the run keeps them)
    and the last validation logged up to its step (for runs whose validation metric does not
    rank checkpoints the way the final benchmark does)."""
    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and not overwrite:
        raise UpscalerError(f"{out} exists; pass overwrite to replace it")
    if latest:
        model, figures = latest_model(run_dir)
    else:
        best = run_dir / "best_model"
        if not best.is_dir():
            raise UpscalerError(f"{run_dir} has no best_model/ yet (no validation has run)")
        model = UpscalerModel.load(best)
        figures = json.loads((run_dir / "best.json").read_text()) if (run_dir / "best.json").is_file() else {}
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    if config:  # the run's recipe says what the weights are for (runs saved before `task` existed)
        model.task = (load_yaml(config).get("train") or {}).get("task") or model.task
    try:
        with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
            staged = model.save(Path(tmp) / "model", half=half)
            digest = sha256(staged / WEIGHTS_FILE)
            (staged / CARD_FILE).write_text(model_card(model, figures, config, digest))
            if out.exists():
                shutil.rmtree(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged), out)
    except OSError as exc:  # a file where a folder should be, no permission, full disk
        raise UpscalerError(f"cannot write the model folder {out}: {exc.strerror or exc}") from None
    out.chmod(0o755)
    for path in out.iterdir():  # readable by everyone, like any installed package file
        path.chmod(0o644)
    return out


def latest_model(run_dir: Path) -> tuple[UpscalerModel, dict]:
    """The model in ``run_dir/checkpoints/latest.pt`` (EMA weights when present) and the last
    validation row of the log at or before its step (with ``step`` set to the checkpoint's)."""
    from ..models import registry
    from .checkpoint import load_checkpoint
    from .logger import read_log

    state = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    settings = dict(state["config"]["model"])
    model = registry.build(settings.pop("family"), **settings)
    model.task = (state["config"].get("train") or {}).get("task") or model.task
    ema = state.get("ema")
    weights = {k[len("module."):]: v for k, v in ema.items() if k.startswith("module.")} if ema else state["model"]
    model.load_state_dict(weights)
    rows = [r for r in read_log(run_dir, "validation") if r["step"] <= state["step"]]
    return model.eval(), {**(rows[-1] if rows else {}), "step": state["step"]}


TASK_NOTES = {"extend": "the pipeline keeps the input below its cutoff and adds the predicted band",
              "restore": "codec restoration: the model's whole output is used, below the cutoff too",
              "vocoder": "log-mel -> audio for the mel GAN family; not a band extender on its own"}


def model_card(model: UpscalerModel, figures: dict, config_yaml: str, digest: str) -> str:
    """Markdown: what the model is, its size, validation figures and the training config."""
    lines = [f"# {model.family} model", "", model.description, "",
             f"- parameters: {model.num_parameters():,}", f"- sample rate: {model.sample_rate} Hz",
             f"- task: {model.task} ({TASK_NOTES[model.task]})",
             f"- weights SHA-256: `{digest}`", ""]
    if figures:
        lines += [f"## Validation (step {figures.get('step')})", "",
                  "| task | LSD | LSD-HF | LSD-LF | SNR dB | input LSD | ratio |", "|---|---|---|---|---|---|---|"]
        tasks = sorted({k.split("/")[0] for k in figures if "/" in k})
        for task in tasks:
            get = lambda name: figures.get(f"{task}/{name}")  # noqa: E731
            lines.append(f"| {task} | {_fmt(get('lsd'))} | {_fmt(get('lsd_hf'))} | {_fmt(get('lsd_lf'))} | "
                         f"{_fmt(get('snr'))} | {_fmt(get('input_lsd'))} | {_fmt(get('lsd_ratio'))} |")
        lines.append("")
    if config_yaml:
        lines += ["## Training config", "", "```yaml", config_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
