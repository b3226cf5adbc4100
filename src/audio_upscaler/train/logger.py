"""Run logs: ``log.jsonl`` (always) and TensorBoard event files (when ``tensorboard`` is installed).

Each JSON line is ``{"step": n, "kind": "train" | "validation", ...numbers}``; TensorBoard gets
the same scalars under ``<kind>/<name>``, plus validation audio clips and spectrogram images.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


class RunLogger:
    """Writes one run's logs under ``run_dir`` (only the rank-0 process creates one)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is in the [train] extra
                self.writer = None
            else:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def scalars(self, step: int, kind: str, values: dict) -> None:
        row = {"step": int(step), "kind": kind,
               **{k: (float(v) if math.isfinite(float(v)) else None) for k, v in values.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for name, value in values.items():
                if math.isfinite(float(value)):
                    self.writer.add_scalar(f"{kind}/{name}", float(value), step)

    def examples(self, step: int, task: str, outputs: np.ndarray, degraded: np.ndarray, clean: np.ndarray,
                 sample_rate: int, cutoffs: list[float]) -> None:
        """Audio clips and spectrograms of validation examples ``[N, C, T]`` (first channel)."""
        if self.writer is None:
            return
        for i in range(len(outputs)):
            self.writer.add_audio(f"{task}/{i}/output", outputs[i][0], step, sample_rate=sample_rate)
            if step == 0 or not hasattr(self, f"_ref_{task}_{i}"):
                self.writer.add_audio(f"{task}/{i}/input", degraded[i][0], step, sample_rate=sample_rate)
                self.writer.add_audio(f"{task}/{i}/reference", clean[i][0], step, sample_rate=sample_rate)
                setattr(self, f"_ref_{task}_{i}", True)
            figure = _spectrogram_figure(degraded[i], outputs[i], clean[i], sample_rate, cutoffs[i])
            if figure is not None:
                self.writer.add_figure(f"{task}/{i}/spectrogram", figure, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(run_dir: Path, kind: str | None = None) -> list[dict]:
    """The rows of a run's ``log.jsonl`` (optionally of one kind)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if kind is None or r.get("kind") == kind]


def _spectrogram_figure(degraded, output, clean, sample_rate, cutoff_hz):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from ..bench.plots import spectrogram_db

    fig, axes = plt.subplots(1, 3, figsize=(12, 3), sharey=True)
    for ax, (title, x) in zip(axes, (("input", degraded), ("output", output), ("reference", clean))):
        t, f, db = spectrogram_db(np.asarray(x)[0], sample_rate)
        ax.pcolormesh(t, f / 1000, db, shading="auto", vmin=-100, vmax=0, cmap="magma")
        ax.axhline(cutoff_hz / 1000, color="cyan", lw=0.8, ls="--")
        ax.set_title(title)
        ax.set_xlabel("s")
    axes[0].set_ylabel("kHz")
    fig.tight_layout()
    return fig
