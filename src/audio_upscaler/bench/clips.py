"""The clean clips a benchmark runs on, and which tasks apply to which kind of clip."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
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
               max_clips: int | None = None) -> list[Clip]:
    """The clean clips of ``data``: a corpus manifest (``manifest.jsonl``, or a folder holding
    one) or a folder of audio files.

    Manifest entries give ``path`` and ``kind``; with ``split`` only entries of that split are
    used. In a plain folder a clip's kind comes from a sidecar ``<name>.json``
    (``{"kind": "speech"}``), else from the nearest folder named ``speech`` or ``music`` on its
    path, else it counts as ``music``. Clips are sorted by name within each kind and the kinds
    interleaved (speech, music, speech, ...), so ``max_clips`` keeps a balanced prefix.
    """
    data = Path(data)
    manifest = data / MANIFEST_NAME if data.is_dir() else data
    if manifest.is_file() and manifest.suffix == ".jsonl":
        clips = _manifest_clips(manifest, split)
        if not clips:
            raise UpscalerError(f"{manifest}: no clips" + (f" in split '{split}'" if split else ""))
    elif data.is_dir():
        clips = _folder_clips(data)
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
        name = Path(entry.path).with_suffix("").as_posix()
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
