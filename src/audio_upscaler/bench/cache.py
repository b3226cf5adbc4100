"""Per-item results cache that makes a benchmark resumable.

Each finished ``(task, method, clip)`` item is one JSON file ``OUT/cache/TASK/METHOD/CLIP.json``
holding the item and a fingerprint of everything that determines it (package version, task,
absolute clip path, the clip file's size and mtime, ``seconds``, seed). A cached item is reused
only when its fingerprint matches, so changing the clip or the settings recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import __version__
from ..textio import write_text_atomic


class ItemCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, task: str, method: str, clip: str) -> Path:
        return self.folder / task / method / f"{clip}.json"

    @staticmethod
    def fingerprint(task: str, clip_path: Path, seconds: float | None, seed: int) -> str:
        try:
            stat = clip_path.stat()
            file_id = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            file_id = None
        key = [__version__, task, str(clip_path.resolve()), file_id, seconds, seed]
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
