"""PNG images the web UI shows: before/after spectrograms with the cutoff marked, training curves.

Figures are built with matplotlib's object API (``Figure`` + Agg canvas, no ``pyplot``), so
several sessions can draw at once from Gradio's worker threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DYNAMIC_RANGE_DB = 100.0
#: Spectrograms show at most this much of the beginning of a file (seconds).
SPECTROGRAM_SECONDS = 30.0


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def read_start(path: str | Path, seconds: float) -> tuple[np.ndarray, int]:
    """Mono mix ``[T]`` of the first ``seconds`` of ``path`` and its sample rate (Hz)."""
    from .. import io

    with io.open_reader(path) as reader:
        rate = reader.info.sample_rate
        x = reader.read(int(seconds * rate))
    return x.mean(axis=0), rate


def spectrogram_png(rows: list[tuple[str, str | Path]], cutoff_hz: float, png: str | Path,
                    seconds: float = SPECTROGRAM_SECONDS, model_cutoff_hz: float | None = None) -> Path:
    """Write one log-power spectrogram per ``(label, audio file)`` row (shared frequency axis up to
    the highest Nyquist frequency, shared colour scale) with a dashed line at ``cutoff_hz`` (where
    the input's content ends) and, when given, a dotted one at ``model_cutoff_hz`` (where the model
    was told it ends, when that differs)."""
    from ..bench.plots import spectrogram_db

    specs = []
    for label, path in rows:
        x, rate = read_start(path, seconds)
        specs.append((label, rate, *spectrogram_db(x, rate)))
    top_khz = max(rate for _, rate, *_ in specs) / 2000
    vmax = max(float(db.max()) for *_, db in specs)
    fig = _figure(9, 1.9 * len(specs) + 0.5)
    axes = fig.subplots(len(specs), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, rate, times, freqs, db) in zip(axes, specs):
        ax.set_facecolor("black")  # above a low-rate input's Nyquist frequency
        ax.pcolormesh(times, freqs / 1000, db, shading="auto", cmap="magma",
                      vmin=vmax - DYNAMIC_RANGE_DB, vmax=vmax, rasterized=True)
        marks = [(cutoff_hz, "--", "cyan", "content ends"), (model_cutoff_hz, ":", "lime", "model cutoff")]
        for hz, style, colour, name in (m for m in marks if m[0] is not None):
            ax.axhline(hz / 1000, color=colour, linestyle=style, linewidth=1.0)
            ax.text(0.995, hz / 1000, f" {name} {hz / 1000:.1f} kHz", color=colour, fontsize=8,
                    ha="right", va="bottom", transform=ax.get_yaxis_transform())
        ax.set_ylim(0, top_khz)
        ax.set_ylabel(f"{label}\n{rate / 1000:g} kHz rate\nkHz")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(png)
    return Path(png)


def curves_png(rows: list[dict], png: str | Path) -> Path | None:
    """Training loss and validation LSD against the step, from a run's ``log.jsonl`` rows;
    ``None`` when there is nothing to plot yet."""
    train = [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and r.get("loss") is not None]
    valid = [(r["step"], r["lsd"]) for r in rows if r.get("kind") == "validation" and r.get("lsd") is not None]
    if not train and not valid:
        return None
    fig = _figure(9, 3)
    loss_ax, lsd_ax = fig.subplots(1, 2)
    for ax, points, title in ((loss_ax, train, "training loss"), (lsd_ax, valid, "validation LSD")):
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="." if len(points) < 50 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    return Path(png)
