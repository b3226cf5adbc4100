"""Write degraded/clean pairs to disk with a fixed benchmark task (``audio-upscaler data make-pairs``).

For every input file (a folder of audio, a corpus folder or a manifest) this writes, as
24-bit FLAC under ``OUT``::

    clean/<name>.flac      the reference at the task's rate
    degraded/<name>.flac   the degraded input at the same rate and length (sample-aligned)
    low_rate/<name>.flac   the low-rate signal itself (resampling tasks only)

and ``pairs.jsonl`` (one line per pair: paths relative to ``OUT``, task, cutoff, duration).
Each file's degradation seed comes from its name, so pairs are reproducible; files whose
outputs exist are skipped (resumable). An input that cannot be read stops the run, or, given
``on_skip``, is reported and left out (no output of it is written). An output folder holds the
pairs of one task, seed and ``max_seconds``: other settings are refused there, as are two
inputs that would share a name.
"""

from __future__ import annotations

import json
import math
import os
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
                 subsets: tuple[str, ...] = ("main",), exclude: str | Path | None = None) -> list[Source]:
    """Input files of a folder, a corpus folder or a manifest (manifest entries filtered by
    ``split``, ``kind`` and ``subsets``); a folder's files under ``exclude`` (the pairs' own
    output folder, when it lies inside the input) are left out."""
    path = Path(source)
    manifest = path if path.is_file() else path / MANIFEST_NAME
    if manifest.is_file():
        return [Source(manifest.parent / e.path, e.path.rsplit(".", 1)[0]) for e in read_manifest(manifest)
                if (split is None or e.split == split) and (kind is None or e.kind == kind)
                and e.subset in subsets]
    if not path.is_dir():
        raise UpscalerError(f"no such folder or manifest: {path}")
    skip = None if exclude is None else Path(os.path.realpath(exclude))
    if skip is not None and Path(os.path.realpath(path)).is_relative_to(skip):
        raise UpscalerError(f"the output folder {exclude} holds the input folder {path}; write the pairs elsewhere")
    return [Source(p, p.relative_to(path).with_suffix("").as_posix()) for p in sorted(path.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            and not (skip is not None and Path(os.path.realpath(p)).is_relative_to(skip))]


def make_pairs(source: str | Path, out: str | Path, task: str, seed: int = 0, split: str | None = None,
               kind: str | None = None, max_seconds: float | None = None,
               progress: Callable[[int, int], None] | None = None,
               on_skip: Callable[[Path, str], None] | None = None) -> list[dict]:
    """Write the pairs of ``task`` for every input (see the module docstring); returns the
    ``pairs.jsonl`` records. ``max_seconds`` keeps only the start of long files.

    An input that cannot be read or processed raises :class:`UpscalerError`; with ``on_skip``
    it is left out and ``on_skip(path, reason)`` is called instead (``reason`` one line), and
    the error is raised only when no input gave a pair."""
    from ...degrade import TASKS

    spec = TASKS.get(task)
    if spec is None:
        raise UpscalerError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if max_seconds is not None and not (math.isfinite(max_seconds) and max_seconds > 0):
        raise UpscalerError(f"--max-seconds must be a positive number of seconds, got {max_seconds:g}")
    speech_task = task.startswith("speech_")
    sources = list_sources(source, split, kind or ("speech" if speech_task else None),
                           ("main", "speech_22k") if speech_task else ("main",), exclude=out)
    if not sources:
        raise UpscalerError(f"no audio files in {source}")
    _check_names(sources)
    out = Path(out)
    records = {r["name"]: r for r in _read_records(out / PAIRS_NAME)}
    settings = {"task": task, "seed": seed, "max_seconds": max_seconds}
    _check_settings(out, records.values(), settings)
    flushed = time.monotonic()
    skipped = 0
    try:
        for done, item in enumerate(sources, 1):
            record = records.get(item.name)
            if not (record and _same_file(record.get("source"), item.path)
                    and all((out / record[k]).exists() for k in ("clean", "degraded"))):
                try:
                    record, outputs = _make_pair(item, task, seed, max_seconds)
                except UpscalerError as exc:
                    if on_skip is None:
                        raise
                    skipped += 1
                    on_skip(item.path, str(exc).removeprefix(f"{item.path}: "))
                else:
                    _write_outputs(out, outputs)
                    records[item.name] = {**record, **settings}
            if time.monotonic() - flushed > 2.0:
                _write_records(out / PAIRS_NAME, records)
                flushed = time.monotonic()
            if progress:
                progress(done, len(sources))
    finally:  # a file that fails (or Ctrl-C) keeps the pairs already written on record
        if records or (out / PAIRS_NAME).exists():  # no empty output folder where nothing was written
            _write_records(out / PAIRS_NAME, records)
    if skipped == len(sources):
        raise UpscalerError(f"no pairs written: none of the {skipped} audio files in {source} could be read")
    return [records[k] for k in sorted(records)]


def _same_file(recorded, path: Path) -> bool:
    """Whether a record's ``source`` is ``path`` (spelt relative or absolute)."""
    return isinstance(recorded, str) and os.path.realpath(recorded) == os.path.realpath(path)


def _check_names(sources: list[Source]) -> None:
    """Two inputs whose pairs would be stored under one name (``a.wav`` and ``a.flac``)."""
    seen: dict[str, Source] = {}
    for item in sources:
        other = seen.setdefault(item.name, item)
        if other is not item:
            raise UpscalerError(f"{other.path} and {item.path} would both be written as clean/{item.name}.flac; "
                                "rename one of them")


def _check_settings(out: Path, records, settings: dict) -> None:
    """Pairs already in ``out`` must have been made with the same task, seed and length limit:
    they are reused, so others would be mixed in silently (or overwritten)."""
    for record in records:
        theirs = {"task": record.get("task"), "seed": record.get("seed", 0), "max_seconds": record.get("max_seconds")}
        if theirs != settings:
            def describe(s: dict) -> str:
                limit = "whole files" if s["max_seconds"] is None else f"--max-seconds {s['max_seconds']:g}"
                return f"task {s['task']}, seed {s['seed']}, {limit}"

            raise UpscalerError(f"{out} holds pairs made with {describe(theirs)}, not {describe(settings)}; "
                                "write these pairs to another folder")


def _make_pair(item: Source, task: str, seed: int, max_seconds: float | None) -> tuple[dict, list]:
    """Read and degrade one input; returns its record and the ``(relative path, samples
    [channels, time], rate in Hz)`` to write. Writes nothing, so a bad input leaves no output."""
    from ...degrade import TASKS, apply_task
    from ...dsp.resample import resample
    from ...io import read_audio

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
    return record, outputs


def _write_outputs(out: Path, outputs: list) -> None:
    """Write a pair's files under ``out``; one that fails (or Ctrl-C) removes those written."""
    from ...audio import Audio
    from ...io import write_audio

    written = []
    try:
        for relative, samples, sample_rate in outputs:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            written.append(write_audio(out / relative, Audio(samples, sample_rate), overwrite=True))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _write_records(path: Path, records: dict[str, dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(records[k]) + "\n" for k in sorted(records)))


def _read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("name", "clean", "degraded"))):
            raise UpscalerError(f"{path}:{number}: not a pairs record; write the pairs to another folder")
        records.append(record)
    return records
