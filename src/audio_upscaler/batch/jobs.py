"""Which files a batch processes and where each output goes.

Inputs are found under ``IN_DIR`` (optionally recursively, following folder symlinks but visiting
each real folder once, so symlink loops end); each output mirrors the input's place in the tree
under ``OUT_DIR`` with the output format's extension.  Hidden files and folders (names starting
with ``.``) are skipped: they are temporary files of the writers and the batch journal.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UpscalerError
from ..io_formats import EXTENSIONS

#: Extensions looked at when no ``--pattern`` is given: what libsndfile and FFmpeg read.
AUDIO_SUFFIXES = frozenset(EXTENSIONS) | {
    ".m4a", ".m4b", ".aac", ".alac", ".wma", ".mka", ".caf", ".w64", ".wv", ".mp4", ".mkv", ".webm", ".mov",
}
#: Output extension of each container.
SUFFIXES = {"wav": ".wav", "flac": ".flac", "aiff": ".aiff", "mp3": ".mp3", "ogg": ".ogg", "opus": ".opus", "m4a": ".m4a"}
# Names of the temporary files a killed run can leave next to its outputs: AudioWriter's
# ".NAME.<8 hex>.tmp" and the pipeline's two-pass ".upscale-*.rf64" (see io.py, pipeline.py).
_WRITER_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")
_PIPELINE_TEMP = ".upscale-*.rf64"


@dataclass(frozen=True)
class Job:
    """One file of a batch.

    Attributes:
        name: the input's path relative to ``IN_DIR`` (POSIX form); the key in journal and summary.
        input, output: absolute paths (they must be the same on every machine of a Ray cluster).
        replace: the output may replace an existing file (``--overwrite``, or redoing our own
            unfinished work).
        problem: why the job fails without running (e.g. two inputs would write the same output).
    """

    name: str
    input: str
    output: str
    replace: bool = False
    problem: str | None = None


def find_inputs(in_dir: Path, pattern: str | None = None, recursive: bool = False,
                exclude: Path | None = None) -> list[Path]:
    """Files under ``in_dir`` whose name matches ``pattern`` (case-insensitive glob such as
    ``*.mp3``; default: any audio extension), sorted.  ``exclude`` (e.g. an ``OUT_DIR`` inside
    ``IN_DIR``) is not entered.  A folder reachable by several paths (symlinks) is read once,
    under the first of them in sorted order."""
    skip = {_identity(exclude)} if exclude is not None and exclude.is_dir() else set()
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for folder, dirs, files in os.walk(in_dir, followlinks=True):
        try:
            ident = _identity(Path(folder))
        except OSError:  # vanished or unreadable meanwhile
            ident = None
        if ident is None or ident in seen or ident in skip:  # a symlink loop, or a second way in
            dirs[:] = []
            continue
        seen.add(ident)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [Path(folder, f) for f in files if not f.startswith(".") and _wanted(f, pattern)]
    return sorted(found)


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def _wanted(name: str, pattern: str | None) -> bool:
    if pattern is None:
        return Path(name).suffix.lower() in AUDIO_SUFFIXES
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def plan_jobs(in_dir: Path, out_dir: Path, container: str, pattern: str | None = None,
              recursive: bool = False) -> list[Job]:
    """One :class:`Job` per input found, outputs mirrored under ``out_dir`` with the new extension.

    Raises :class:`UpscalerError` when the folders cannot work (missing ``IN_DIR``, the same
    folder for both, no matching file).
    """
    in_dir, out_dir = Path(in_dir).absolute(), Path(out_dir).absolute()
    if in_dir.exists() and not in_dir.is_dir():
        raise UpscalerError(f"{in_dir}: batch takes a folder of audio files; for one file use 'audio-upscaler upscale'")
    if not in_dir.is_dir():
        raise UpscalerError(f"{in_dir}: input folder not found")
    if out_dir.exists() and not out_dir.is_dir():
        raise UpscalerError(f"{out_dir}: the output exists and is not a folder")
    if out_dir.resolve() == in_dir.resolve():
        raise UpscalerError("the output folder must differ from the input folder")
    inputs = find_inputs(in_dir, pattern, recursive, exclude=out_dir)
    if not inputs:
        what = f"matching '{pattern}'" if pattern else "with an audio extension"
        deep = "" if recursive else " (add --recursive to look in sub-folders)"
        raise UpscalerError(f"{in_dir}: no files {what}{deep}")
    suffix = SUFFIXES[container]
    jobs: list[Job] = []
    owner: dict[Path, str] = {}
    for path in inputs:
        rel = path.relative_to(in_dir)
        output = out_dir / rel.with_suffix(suffix)
        name = rel.as_posix()
        first = owner.setdefault(output, name)
        problem = None if first == name else f"writes the same output as {first}; rename one of them"
        jobs.append(Job(name, str(path), str(output), problem=problem))
    return jobs


def prepare_output_folder(output: str | Path, out_dir: str | Path) -> Path:
    """Create the folder of ``output`` and return ``output``; refuses any folder that resolves
    outside ``out_dir`` (a symlink inside ``OUT_DIR`` pointing elsewhere)."""
    output, root = Path(output), Path(out_dir).resolve()
    if not output.parent.resolve().is_relative_to(root):  # resolves the symlinks that exist so far
        raise UpscalerError(f"{output}: its folder leads outside the output folder {out_dir} (a symlink)")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpscalerError(f"{output.parent}: cannot create the output folder: {exc.strerror or exc}") from None
    return output


def stale_temp_files(outputs: list[str]) -> list[Path]:
    """Temporary files that an interrupted run left next to these outputs."""
    from ..io import temp_stem

    by_folder: dict[Path, set[str]] = {}  # folder -> the temporary-name stems of its outputs
    for output in outputs:
        by_folder.setdefault(Path(output).parent, set()).add(temp_stem(Path(output)))
    stale: list[Path] = []
    for folder, names in by_folder.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            match = _WRITER_TEMP.match(entry.name)
            if (match and match["name"] in names) or fnmatch.fnmatchcase(entry.name, _PIPELINE_TEMP):
                stale.append(entry)
    return stale
