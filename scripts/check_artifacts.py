"""Artifact checks the metrics miss, for installed models next to the ``sbr`` baseline.

Prints, per model: the level left in digital silence, the generated band on a quiet noise floor
against the clean noise's, the largest seam between 1-second chunks and one-piece processing,
dual-mono and panned-source stereo checks, level changes, and tonal peaks ("birdies") above the
cutoff that the clean reference lacks, per clip (see ``audio_upscaler/bench/artifacts.py``).
Writes each model's output and spectrogram PNGs (input, each model, reference) to ``--out`` so
that the results can be looked at and listened to.

    python scripts/check_artifacts.py [--models default,sbr] [--clips tests/data/validation] [--out artifacts]
    python scripts/check_artifacts.py --models restore,sbr --task mp3_64k   # codec input
    python scripts/check_artifacts.py --models restore,restore+check --task mp3_128k   # with the codec check
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_upscaler.bench import artifacts
from audio_upscaler.dsp.resample import resample
from audio_upscaler.ui.plots import spectrogram_png

ROOT = Path(__file__).resolve().parents[1]


def load_clips(folder: Path) -> dict[str, np.ndarray]:
    """Every audio file under ``folder`` as mono ``[1, T]`` float32 at 48 kHz, by file stem."""
    clips = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".flac", ".wav")):
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        x = x.mean(axis=1, keepdims=True).T
        clips[path.stem] = x if rate == artifacts.RATE else resample(x, rate, artifacts.RATE)
    return clips


def write_spectrograms(name: str, clean: np.ndarray, models: list[str], out: Path, task: str) -> Path:
    """Input, every model's output and the reference of one clip, as WAVs and one PNG."""
    check = artifacts.band_limited(clean, task)
    rows = [("input", out / f"{name}_input.wav"), *((m, out / f"{name}_{m}.wav") for m in models),
            ("reference", out / f"{name}_reference.wav")]
    sf.write(rows[0][1], check.low.T, check.input_rate)
    for model, path in rows[1:-1]:
        sf.write(path, artifacts.run(artifacts.make_upscaler(model, task), check).T, artifacts.RATE)
    sf.write(rows[-1][1], clean.T, artifacts.RATE)
    return spectrogram_png(rows, check.cutoff_hz, out / f"{name}.png", seconds=clean.shape[1] / artifacts.RATE)


def fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,sbr", help="comma-separated model names")
    parser.add_argument("--clips", default=str(ROOT / "tests" / "data" / "validation"))
    parser.add_argument("--out", default="artifacts", help="folder for WAVs and spectrogram PNGs")
    parser.add_argument("--task", default=artifacts.DEFAULT_TASK,
                        help="benchmark task that degrades the clips (a resampling or codec task)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = parser.parse_args()
    models = args.models.split(",")
    clips = load_clips(Path(args.clips))
    reports = [artifacts.check_model(m, clips, args.task) for m in models]
    if args.json:
        print(json.dumps(reports, indent=2, default=float))
    else:
        keys = [k for k in reports[0] if k not in ("model", "birdies")]
        print("| check | " + " | ".join(models) + " |")
        print("|---|" + "---|" * len(models))
        for key in keys:
            print(f"| {key} | " + " | ".join(fmt(r[key]) for r in reports) + " |")
        for clip in clips:
            cells = [r["birdies"][clip] for r in reports]
            print(f"| extra tonal peaks, {clip} (reference has {cells[0]['reference_peaks']}) | "
                  + " | ".join(str(c["extra_peaks"]) for c in cells) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first_name, first = next(iter(clips.items()))
    pngs = [write_spectrograms(f"silence_{first_name}", artifacts.silence_test_signal(first), models, out, args.task)]
    pngs += [write_spectrograms(name, clean, models, out, args.task) for name, clean in clips.items()]
    print("spectrograms: " + ", ".join(str(p) for p in pngs))


if __name__ == "__main__":
    main()
