"""Write degraded/clean pairs to disk with a fixed benchmark task (``audio-upscaler data make-pairs``).

For every input file (a folder of audio, a corpus folder or a manifest) this writes, as
24-bit FLAC under ``OUT``::

    clean/<name>.flac      the reference at the task's rate
    degraded/<name>.flac   the degraded input at the same rate and length (sample-aligned)
    low_rate/<name>.flac   the low-rate signal itself (resampling tasks only)

and ``pairs.jsonl`` (one line per pair: paths relative to ``OUT``, task, cutoff, duration).
Each file's degradation seed comes from its name, so pairs are reproducible; files whose
outputs exist are skipped (resumable).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...errors import UpscalerError
from .manifest import MANIFEST_NAME, read_manifest
from .split import unit_hash
from ...textio import write_text_atomic

PAIRS_NAME = "pairs.jsonl"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac", ".wma")


@dataclass(frozen=True)
class Source:
    """An input file and the name (relative, without extension) its pair is stored under."""

    path: Path
    name: str


def list_sources(source: str | Path, split: str | None = None, kind: str | None = None,
                 subsets: tuple[str, ...] = ("main",)) -> list[Source]:
    """Input files of a folder, a corpus folder or a manifest (manifest entries filtered by
    ``split``, ``kind`` and ``subsets``)."""
    path = Path(source)
    manifest = path if path.is_file() else path / MANIFEST_NAME
    if manifest.is_file():
        return [Source(manifest.parent / e.path, e.path.rsplit(".", 1)[0]) for e in read_manifest(manifest)
                if (split is None or e.split == split) and (kind is None or e.kind == kind)
                and e.subset in subsets]
    if not path.is_dir():
        raise UpscalerError(f"no such folder or manifest: {path}")
    return [Source(p, p.relative_to(path).with_suffix("").as_posix()) for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]


def make_pairs(source: str | Path, out: str | Path, task: str, seed: int = 0, split: str | None = None,
               kind: str | None = None, max_seconds: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Write the pairs of ``task`` for every input (see the module docstring); returns the
    ``pairs.jsonl`` records. ``max_seconds`` keeps only the start of long files."""
    from ...degrade import TASKS

    spec = TASKS.get(task)
    if spec is None:
        raise UpscalerError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    speech_task = task.startswith("speech_")
    sources = list_sources(source, split, kind or ("speech" if speech_task else None),
                           ("main", "speech_22k") if speech_task else ("main",))
    if not sources:
        raise UpscalerError(f"no audio files in {source}")
    out = Path(out)
    records = {r["name"]: r for r in _read_records(out / PAIRS_NAME)}
    flushed = time.monotonic()
    for done, item in enumerate(sources, 1):
        record = records.get(item.name)
        if not (record and record.get("task") == task
                and all((out / record[k]).exists() for k in ("clean", "degraded"))):
            records[item.name] = _write_pair(item, out, task, seed, max_seconds)
        if time.monotonic() - flushed > 2.0:
            _write_records(out / PAIRS_NAME, records)
            flushed = time.monotonic()
        if progress:
            progress(done, len(sources))
    _write_records(out / PAIRS_NAME, records)
    return [records[k] for k in sorted(records)]


def _write_pair(item: Source, out: Path, task: str, seed: int, max_seconds: float | None) -> dict:
    from ...audio import Audio
    from ...degrade import TASKS, apply_task
    from ...dsp.resample import resample
    from ...io import read_audio, write_audio

    spec = TASKS[task]
    audio = read_audio(item.path)
    x = audio.samples if max_seconds is None else audio.samples[:, : int(max_seconds * audio.sample_rate)]
    rate = spec.reference_rate
    x = resample(x, audio.sample_rate, rate)
    result = apply_task(task, x, rate, seed=int(unit_hash(f"{seed}:{item.name}") * 2**31))
    record = {"name": item.name, "task": task, "clean": f"clean/{item.name}.flac",
              "degraded": f"degraded/{item.name}.flac", "cutoff_hz": round(result.cutoff_hz, 1),
              "sample_rate": rate, "duration": round(x.shape[1] / rate, 3), "source": str(item.path)}
    outputs = [(record["clean"], x, rate), (record["degraded"], result.degraded, rate)]
    if result.low_rate_input is not None:
        record["low_rate"] = f"low_rate/{item.name}.flac"
        outputs.append((record["low_rate"], result.low_rate_input, spec.input_rate))
    for relative, samples, sample_rate in outputs:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        write_audio(out / relative, Audio(samples, sample_rate), overwrite=True)
    return record


def _write_records(path: Path, records: dict[str, dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(records[k]) + "\n" for k in sorted(records)))


def _read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
