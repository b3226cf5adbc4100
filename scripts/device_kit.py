"""Pack what a training run on a lent GPU machine needs, and print the command that runs it there.

A lent machine (the `device` tool) gets a copy of the working tree, at most 64 MiB with whatever
a call carries, and reaches nothing outside: it has PyTorch, NumPy, SciPy and PyYAML but neither
soundfile nor soxr, and no corpus. ``pack`` writes, into ``--out`` (default ``.kit``, ignored by
git):

* ``corpus/``: a corpus in the manifest format (``audio-upscaler train --data`` reads it):
  clips of ``--seconds`` from the training split of ``--corpus``, one per source item before any
  item gets a second (hash order, as ``build_validation_set.py`` picks), a window at a
  hash-chosen offset of each file, down-mixed to mono 48 kHz 16-bit FLAC, speech and music by
  ``--speech-share`` of ``--mib`` MiB; plus ``--validation-clips`` clips per kind from the
  validation split for the run's validation;
* ``whl/``: wheels of soundfile, soxr, cffi and pycparser for the machine's Python 3.12 (x86-64,
  manylinux), the versions installed here;

then prints the command for ``device.run`` (carry ``.kit``): install the wheels, train from the
shipped weights for ``--minutes`` with the overrides given, export the best weights to ``$OUT``
(with ``log.jsonl``, ``best.json``, ``config.yaml`` and the console's ``train.log``). The tree
itself is about 18 MB, so the default 32 MiB of audio (about 14 minutes: 5 of speech, 9 of music,
from the corpus as built on 2026-12-07) and the wheels (under 2 MB) stay under the limit.

Checked here (2026-12-07, no GPU lent): the command's training and export ran on the CPU with the
lent machine's missing packages blocked from import (soundfile and soxr as installed here, the
wheels' versions; no PyAV, LAME, PyWavelets, Optuna, pesq, pystoi or music21), `train.device=cpu`,
37 steps in 1.5 minutes with `loss.phase_weight=1.0` and `loss.discriminators=[mrd,mpd]`,
validated and exported.

    python scripts/device_kit.py pack --corpus data/corpus [--mib 32] [--seconds 20]
    python scripts/device_kit.py command [--minutes 8] [--model default] [OVERRIDE ...]

Nothing here runs on the lent machine by itself: the command is what a session passes to
``device.run``; bring back ``$OUT/model`` and benchmark it here before shipping anything.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from build_validation_set import KINDS, pick, write_clip

from audio_upscaler.train.corpus.manifest import MANIFEST_NAME, read_manifest, write_manifest
from audio_upscaler.train.corpus.split import unit_hash

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ("soundfile", "soxr", "cffi", "pycparser")
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
#: What the run starts from, per shipped model: its recipe and its weights.
RECIPES = {"default": "configs/train/default.yaml", "restore": "configs/train/restore.yaml"}


def window(frames: int, length: int, key: str) -> int:
    """Start (samples) of a ``length``-sample window in ``frames`` at an offset fixed by ``key``."""
    return 0 if frames <= length else int(unit_hash(key) * (frames - length))


def pack_corpus(corpus: Path, out: Path, mib: float, seconds: float, speech_share: float,
                validation_clips: int) -> dict[str, float]:
    """Write ``out/manifest.jsonl`` and its clips (module docstring); returns MiB written per kind."""
    entries = [e for e in read_manifest(corpus) if e.subset == "main"]
    written, sizes = [], {}
    for kind in KINDS:
        budget = mib * 2**20 * (speech_share if kind == "speech" else 1 - speech_share)
        for split, limit in (("validation", validation_clips), ("train", None)):
            pool = [e for e in entries if e.kind == kind and e.split == split]
            used, count = 0, 0
            for entry in pick(pool, len(pool)):
                if (limit is not None and count == limit) or (limit is None and used >= budget):
                    break
                info = sf.info(corpus / entry.path)
                length = int(seconds * info.samplerate)
                start = window(info.frames, length, entry.path)
                x, rate = sf.read(corpus / entry.path, start=start, frames=length, dtype="float32", always_2d=True)
                relative = f"{kind}/{split}_{Path(entry.path).with_suffix('').as_posix().replace('/', '_')}.flac"
                written.append(write_clip(out, relative, x.T, rate, 16, True, split=split, job="device-kit",
                                          source=entry.source, item=entry.item, kind=kind, licence=entry.licence,
                                          components=entry.components,
                                          params={"from": entry.path, "start_s": round(start / rate, 3)}))
                size = (out / relative).stat().st_size
                used, count = used + size, count + 1
                sizes[kind] = sizes.get(kind, 0.0) + size / 2**20
    write_manifest(out / MANIFEST_NAME, written)
    return sizes


def download_wheels(out: Path) -> list[Path]:
    """Wheels of :data:`WHEELS` (the versions installed here) for the lent machine's Python."""
    out.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", DEVICE_PYTHON, "--implementation", "cp", *platforms, "-d", str(out), *pins],
                   check=True)
    return sorted(out.glob("*.whl"))


def device_command(kit: str, model: str, minutes: float, overrides: list[str]) -> str:
    """The shell command for ``device.run`` (run in the tree's root there, ``kit`` carried)."""
    train = ["python3", "-m", "audio_upscaler", "train", "--config", RECIPES[model], "--data", f"{kit}/corpus",
             "--run-dir", "/tmp/run", "--quiet", f"train.init_from=src/audio_upscaler/models/weights/{model}",
             "train.device=cuda", f"train.max_minutes={minutes:g}", *overrides]
    return " && ".join([
        "set -o pipefail",
        f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site {kit}/whl/*.whl",
        "export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1",
        "nvidia-smi --query-gpu=name,memory.used --format=csv",
        " ".join(shlex.quote(a) for a in train) + " 2>&1 | tee $OUT/train.log",
        "python3 -m audio_upscaler train --export /tmp/run -o $OUT/model",
        "cp /tmp/run/log.jsonl /tmp/run/best.json /tmp/run/config.yaml $OUT/",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    pack = actions.add_parser("pack", help="write the corpus clips and the wheels into --out")
    pack.add_argument("--corpus", type=Path, required=True, help="a corpus folder (with manifest.jsonl)")
    pack.add_argument("--out", type=Path, default=ROOT / ".kit", help="kit folder (default .kit; replaced)")
    pack.add_argument("--mib", type=float, default=32.0, help="MiB of training audio (default 32)")
    pack.add_argument("--seconds", type=float, default=20.0, help="seconds per clip (default 20)")
    pack.add_argument("--speech-share", type=float, default=0.4, help="share of the MiB for speech (default 0.4)")
    pack.add_argument("--validation-clips", type=int, default=4, help="validation clips per kind (default 4)")
    pack.add_argument("--no-wheels", action="store_true", help="skip the wheel download")
    command = actions.add_parser("command", help="print the device.run command")
    command.add_argument("--kit", default=".kit", help="the carried kit folder, relative to the tree (default .kit)")
    command.add_argument("--model", choices=sorted(RECIPES), default="default")
    command.add_argument("--minutes", type=float, default=8.0, help="training minutes (default 8)")
    command.add_argument("overrides", nargs="*", help="section.key=value settings for the run")
    args = parser.parse_args()
    if args.action == "command":
        text = device_command(args.kit, args.model, args.minutes, args.overrides)
        print(text)
        if len(text) > 2000:
            sys.exit(f"the command is {len(text)} characters; device.run takes at most 2000")
        return
    if args.out.exists():
        shutil.rmtree(args.out)
    sizes = pack_corpus(args.corpus, args.out / "corpus", args.mib, args.seconds, args.speech_share,
                        args.validation_clips)
    wheels = [] if args.no_wheels else download_wheels(args.out / "whl")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    print(f"{args.out}: " + ", ".join(f"{kind} {mib:.1f} MiB" for kind, mib in sizes.items())
          + f", {len(wheels)} wheels; {total:.1f} MiB in all (with the tree, at most 64 MiB may travel)")


if __name__ == "__main__":
    main()
