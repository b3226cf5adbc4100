"""Spectrogram comparison PNGs: reference / input / each method, input cutoff marked.

Drawn with matplotlib (Agg backend, an optional dependency: ``pip install
'audio-upscaler[bench]'``) from the audio the runner kept under ``OUT/audio/TASK/CLIP/``.
Without matplotlib the plots are skipped with a printed reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

WINDOW_SECONDS = 0.02  # the same time and frequency resolution at every rate
DYNAMIC_RANGE_DB = 100.0


def write_plots(results: dict, out: Path) -> dict[tuple[str, str], Path]:
    """``{(task, clip): png path}`` for every kept (task, clip) pair with all its audio."""
    pairs = _kept_pairs(results, out)
    if not pairs:
        return {}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("skipping spectrogram plots: matplotlib is not installed "
              "(pip install 'audio-upscaler[bench]')", file=sys.stderr)
        return {}
    written = {}
    for (task, clip), (folder, cutoff) in pairs.items():
        png = plot_path(out, task, clip)
        png.parent.mkdir(exist_ok=True)
        rows = [("reference", folder / "reference.wav"), ("input", folder / "input.wav")]
        ran = {i["method"] for i in results["items"] if (i["task"], i["clip"]) == (task, clip)}
        rows += [(m, folder / f"{m}.wav") for m in results["config"]["methods"] if m in ran]
        title = f"{task}: {clip}".encode("utf-8", "backslashreplace").decode("utf-8")  # a non-UTF-8 name: \udcXX
        fig = plot_spectrograms(plt, rows, cutoff, title)
        fig.savefig(png, dpi=80)
        plt.close(fig)
        written[(task, clip)] = png
    return written


def plot_path(out: Path, task: str, clip: str) -> Path:
    """Where :func:`write_plots` puts the PNG of ``(task, clip)``."""
    return out / "plots" / f"{task}__{clip.replace('/', '__')}.png"


def _kept_pairs(results: dict, out: Path) -> dict[tuple[str, str], tuple[Path, float]]:
    """Pairs whose methods all succeeded and whose audio the runner kept: (folder, cutoff Hz)."""
    pairs: dict[tuple[str, str], tuple[Path, float]] = {}
    failed = {(i["task"], i["clip"]) for i in results["items"] if i["status"] != "ok"}
    limit = results["config"]["plot_clips"]
    for item in results["items"]:
        key = (item["task"], item["clip"])
        folder = out / "audio" / item["task"] / item["clip"]
        if key in pairs or key in failed or not (folder / "reference.wav").is_file():
            continue
        if sum(t == item["task"] for t, _ in pairs) < limit:
            pairs[key] = (folder, item["cutoff_hz"])
    return pairs


def plot_spectrograms(plt, rows: list[tuple[str, Path]], cutoff_hz: float, title: str):
    """A figure with one log-power spectrogram per ``(label, file)`` row, sharing the axes
    and the colour scale of the first row; a dashed line at ``cutoff_hz``."""
    from ..io import read_audio

    specs = []
    for label, path in rows:
        audio = read_audio(path)
        specs.append((label, audio.sample_rate, *spectrogram_db(audio.samples.mean(axis=0), audio.sample_rate)))
    top = specs[0][1] / 2000  # the first row (the reference) sets the scales
    vmax = float(specs[0][4].max())
    fig, axes = plt.subplots(len(specs), 1, figsize=(8, 1.6 * len(specs) + 0.6), sharex=True, squeeze=False)
    for ax, (label, _, times, freqs, db) in zip(axes[:, 0], specs):
        ax.pcolormesh(times, freqs / 1000, db, shading="auto", cmap="magma",
                      vmin=vmax - DYNAMIC_RANGE_DB, vmax=vmax, rasterized=True)
        ax.set_facecolor("black")  # above a low-rate input's Nyquist
        ax.axhline(cutoff_hz / 1000, color="cyan", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, top)
        ax.set_ylabel(f"{label}\nkHz")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    return fig


def spectrogram_db(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times [frames] s, freqs [bins] Hz, power dB [bins, frames])`` of mono ``x [T]``."""
    from scipy.signal import stft

    n = max(16, round(WINDOW_SECONDS * rate))
    if x.shape[-1] < n:  # a clip shorter than one window (a 1-sample file): one frame, not scipy's ValueError
        x = np.pad(x, (0, n - x.shape[-1]))
    freqs, times, spec = stft(x, fs=rate, window="hann", nperseg=n, noverlap=3 * n // 4)
    return times, freqs, 10 * np.log10(np.abs(spec) ** 2 + 1e-12)
