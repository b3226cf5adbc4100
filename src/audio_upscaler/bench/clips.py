"""The clean clips a benchmark runs on, and which tasks apply to which kind of clip."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UpscalerError

KINDS = ("speech", "music")
DEFAULT_KIND = "music"
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".oga", ".opus", ".mp3", ".m4a")
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class Clip:
    """A clean reference: ``name`` is its id (path relative to the data folder, no suffix)."""

    name: str
    path: Path
    kind: str


def find_clips(data: str | os.PathLike, split: str | None = "validation",
               max_clips: int | None = None, exclude: Iterable[str | os.PathLike] = ()) -> list[Clip]:
    """The clean clips of ``data``: a corpus manifest (``manifest.jsonl``, or a folder holding
    one) or a folder of audio files.

    Manifest entries give ``path`` and ``kind``; with ``split`` only entries of that split are
    used. In a plain folder a clip's kind comes from a sidecar ``<name>.json``
    (``{"kind": "speech"}``), else from the nearest folder named ``speech`` or ``music`` on its
    path, else it counts as ``music``. Clips are sorted by name within each kind and the kinds
    interleaved (speech, music, speech, ...), so ``max_clips`` keeps a balanced prefix. Files
    under a folder of ``exclude`` (a report's audio) are left out; a file listed twice counts once, and
    files whose names differ only in their suffix (``a.wav``, ``a.flac``) keep it in their names.
    """
    data = Path(data)
    manifest = data / MANIFEST_NAME if data.is_dir() else data
    if manifest.is_file() and manifest.suffix == ".jsonl":
        clips = _unique(_manifest_clips(manifest, split), exclude)
        if not clips:
            raise UpscalerError(f"{manifest}: no clips" + (f" in split '{split}'" if split else ""))
    elif data.is_dir():
        clips = _unique(_folder_clips(data), exclude)
        if not clips:
            raise UpscalerError(f"{data}: no audio clips found")
    else:
        raise UpscalerError(f"{data}: not a folder of audio files or a corpus manifest")
    by_kind = [sorted((c for c in clips if c.kind == k), key=lambda c: c.name) for k in KINDS]
    ordered = [c for group in _interleave(by_kind) for c in group]
    return ordered[:max_clips] if max_clips else ordered


def task_applies(task: str, kind: str) -> bool:
    """``speech_*`` tasks run on speech clips only, ``music_*`` on music only, others on all."""
    prefix = task.split("_", 1)[0]
    return prefix not in KINDS or prefix == kind


def _unique(clips: list[Clip], exclude: Iterable[str | os.PathLike]) -> list[Clip]:
    """``clips`` without those under a folder of ``exclude`` and without repeats; a name two
    files share (``a.wav``, ``a.flac``) gets each file's suffix, so results, cache and plots
    stay apart."""
    left_out = [Path(folder).resolve() for folder in exclude]
    seen: dict[Path, Clip] = {}
    for clip in clips:
        real = clip.path.resolve()
        if real not in seen and not any(real.is_relative_to(folder) for folder in left_out):
            seen[real] = clip
    counts = Counter(c.name for c in seen.values())
    return [replace(c, name=c.name + c.path.suffix) if counts[c.name] > 1 else c for c in seen.values()]


def _interleave(groups: list[list[Clip]]) -> Iterable[list[Clip]]:
    for i in range(max(map(len, groups))):
        yield [g[i] for g in groups if i < len(g)]


def _manifest_clips(manifest: Path, split: str | None) -> list[Clip]:
    from ..train.corpus.manifest import read_manifest

    clips = []
    for entry in read_manifest(manifest):
        if split and entry.split != split:
            continue
        if entry.kind not in KINDS:
            raise UpscalerError(f"{manifest}: {entry.path} has kind {entry.kind!r}, not speech or music")
        relative = Path(entry.path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise UpscalerError(f"{manifest}: {entry.path!r} is not a path inside the corpus folder")
        name = relative.with_suffix("").as_posix()
        clips.append(Clip(name, manifest.parent / entry.path, entry.kind))
    return clips


def _folder_clips(folder: Path) -> list[Clip]:
    clips = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            name = path.relative_to(folder).with_suffix("").as_posix()
            clips.append(Clip(name, path, _folder_kind(path, folder)))
    return clips


def _folder_kind(path: Path, root: Path) -> str:
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            kind = json.loads(sidecar.read_text(encoding="utf-8")).get("kind")
        except (ValueError, AttributeError):
            raise UpscalerError(f"{sidecar}: not a JSON object with a 'kind'") from None
        if kind not in KINDS:
            raise UpscalerError(f"{sidecar}: kind must be speech or music, not {kind!r}")
        return kind
    for part in reversed(path.relative_to(root).parts[:-1]):
        if part.lower() in KINDS:
            return part.lower()
    return DEFAULT_KIND
