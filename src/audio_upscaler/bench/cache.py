"""Per-item results cache that makes a benchmark resumable.

Each finished ``(task, method, clip)`` item is one JSON file ``OUT/cache/TASK/METHOD/CLIP.json``
holding the item and a fingerprint of everything that determines it (package version and the
size and mtime of each of its source files, task, absolute clip path, the clip file's size and
mtime, the clip's kind, ``seconds``, seed, and the method's model weights: folder, size and mtime). A cached item
is reused only when its fingerprint matches, so changing the clip, the settings, the weights
behind a model name or the package's code (a fixed analysis, a new resampler) recomputes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from .. import __version__
from ..textio import write_text_atomic


def file_identity(path: Path) -> list | None:
    """``[size, mtime_ns]`` of ``path``, None when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


@functools.lru_cache(maxsize=1)
def package_identity() -> str:
    """Hash of ``[relative path, size, mtime_ns]`` of every source file of the installed package."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(root.rglob("*.py"))
    key = [[str(f.relative_to(root)), *(file_identity(f) or [])] for f in files]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def weights_identity(model_names: list[str]) -> list:
    """``[[name, folder, [size, mtime_ns]], ...]`` for the installed weights called ``model_names``."""
    from ..models.base import WEIGHTS_FILE
    from ..models.registry import model_path

    identity = []
    for name in model_names:
        folder = model_path(name)
        identity.append([name, str(folder.resolve()), file_identity(folder / WEIGHTS_FILE)])
    return identity


class ItemCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, task: str, method: str, clip: str) -> Path:
        return self.folder / task / method / f"{clip}.json"

    @staticmethod
    def fingerprint(task: str, clip_path: Path, seconds: float | None, seed: int, weights: list | None = None,
                    kind: str | None = None) -> str:
        """``weights``: what identifies the method's model weights (:func:`weights_identity`);
        ``kind``: the clip's kind (speech clips get PESQ and STOI)."""
        key = [__version__, package_identity(), task, str(clip_path.resolve()), file_identity(clip_path), seconds, seed,
               weights or [], kind]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]

    def load(self, task: str, method: str, clip: str, fingerprint: str) -> dict | None:
        """The cached item, or None when there is none or it was made differently."""
        try:
            entry = json.loads(self.path(task, method, clip).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            return entry.get("item")
        return None

    def store(self, item: dict, fingerprint: str) -> None:
        path = self.path(item["task"], item["method"], item["clip"])
        write_text_atomic(path, json.dumps({"fingerprint": fingerprint, "item": item}))
