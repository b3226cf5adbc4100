"""The corpus manifest: one JSON object per line, one line per audio file.

Paths are relative to the corpus folder (POSIX separators), so a corpus can be moved or
copied whole. Files are written atomically (temp file in the same folder + ``os.replace``).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable

from ...errors import UpscalerError
from ...textio import write_text_atomic

MANIFEST_NAME = "manifest.jsonl"
KINDS = ("speech", "music")
SPLITS = ("train", "validation")
#: ``main``: full-band material for every task; ``speech_22k``: fillets-ng dialogue, usable only
#: for tasks whose target rate is 22.05 kHz (e.g. speech_8k_22k).
SUBSETS = ("main", "speech_22k")


@dataclass
class Entry:
    """One audio file of the corpus.

    Attributes:
        path: file path relative to the corpus folder.
        source: the package the audio comes from (``music21``, ``klettres-data`` ...).
        item: the source item the split is made on (score, drum kit, language, voice pack).
        kind: ``speech`` or ``music``.
        duration: seconds.
        sample_rate: Hz.
        channels: 1 or 2.
        bandwidth_hz: effective bandwidth measured on the written audio (Hz).
        licence: licence of the source material (from the package's copyright file).
        split: ``train`` or ``validation``.
        subset: see ``SUBSETS``.
        components: other ``source:item`` keys mixed into this file (e.g. a drum kit); they
            are on the same side of the split as ``item``.
        job: the build job that wrote the file (resumability).
        params: how the file was made (instruments, tempo, effects, seed ...).
    """

    path: str
    source: str
    item: str
    kind: str
    duration: float
    sample_rate: int
    channels: int
    bandwidth_hz: float
    licence: str
    split: str
    subset: str = "main"
    components: list[str] = field(default_factory=list)
    job: str = ""
    params: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``source:item``, the unit of the train/validation split."""
        return item_key(self.source, self.item)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Entry:
        known = {f.name for f in fields(cls)}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        if not isinstance(data, dict):
            raise UpscalerError("not a JSON object")
        missing = [name for name in required if name not in data]
        if missing:
            raise UpscalerError(f"manifest line lacks {', '.join(missing)}")
        values = {k: v for k, v in data.items() if k in known}
        for name, kinds in _FIELD_TYPES.items():
            if name in values and (isinstance(values[name], bool) or not isinstance(values[name], kinds)):
                raise UpscalerError(f"'{name}' must be {_TYPE_NAMES[kinds]}, got {values[name]!r}")
        for name in ("duration", "sample_rate", "channels", "bandwidth_hz"):
            value = values[name]
            if not (math.isfinite(value) and value >= 0) or (name in ("sample_rate", "channels") and value < 1):
                raise UpscalerError(f"'{name}' must be a {'positive' if name in ('sample_rate', 'channels') else 'non-negative'} "
                                    f"number, got {value!r}")
        if not all(isinstance(c, str) for c in values.get("components", [])):
            raise UpscalerError(f"'components' must be a list of 'source:item' names, got {values['components']!r}")
        return cls(**values)


_TEXT, _NUMBER, _WHOLE = (str,), (int, float), (int,)
#: field -> accepted JSON types (a bool is never a number here)
_FIELD_TYPES = {
    "path": _TEXT, "source": _TEXT, "item": _TEXT, "kind": _TEXT, "licence": _TEXT, "split": _TEXT,
    "subset": _TEXT, "job": _TEXT, "duration": _NUMBER, "bandwidth_hz": _NUMBER, "sample_rate": _WHOLE,
    "channels": _WHOLE, "components": (list,), "params": (dict,),
}
_TYPE_NAMES = {_TEXT: "a string", _NUMBER: "a number", _WHOLE: "a whole number", (list,): "a list",
               (dict,): "an object"}


def item_key(source: str, item: str) -> str:
    return f"{source}:{item}"


def read_manifest(path: str | Path) -> list[Entry]:
    """Entries of a manifest file (or of ``<folder>/manifest.jsonl`` when given a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise UpscalerError(f"no manifest at {path}")
    entries = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entries.append(Entry.from_dict(json.loads(line)))
            except (ValueError, TypeError, UpscalerError) as exc:  # UnicodeEncodeError: not UTF-8
                raise UpscalerError(f"{path}:{number}: not a manifest line ({exc})") from None
    return entries


def write_manifest(path: str | Path, entries: Iterable[Entry]) -> Path:
    """Write entries (sorted by path) atomically; returns the path."""
    lines = [json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=False)
             for e in sorted(entries, key=lambda e: e.path)]
    return write_text_atomic(path, "".join(line + "\n" for line in lines))



def split_conflicts(entries: Iterable[Entry]) -> set[str]:
    """``source:item`` keys found on both sides of the split (items and mixed-in components)."""
    sides: dict[str, set[str]] = {}
    for e in entries:
        for key in (e.key, *e.components):
            sides.setdefault(key, set()).add(e.split)
    return {k for k, s in sides.items() if len(s) > 1}


def summarize(entries: list[Entry]) -> dict:
    """Corpus statistics: hours and items per kind/subset/split and per source, bandwidth
    percentiles (10/50/90, Hz) per kind, and split conflicts (should be empty)."""
    import numpy as np

    def hours(selected: list[Entry]) -> float:
        return round(sum(e.duration for e in selected) / 3600, 3)

    groups: dict[str, list[Entry]] = {}
    sources: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(f"{e.kind}/{e.subset}/{e.split}", []).append(e)
        sources.setdefault(e.source, []).append(e)
    bandwidth = {}
    for kind in sorted({e.kind for e in entries}):
        values = [e.bandwidth_hz for e in entries if e.kind == kind]
        bandwidth[kind] = [round(float(v)) for v in np.percentile(values, [10, 50, 90])]
    return {
        "files": len(entries),
        "hours": hours(entries),
        "by_kind_subset_split": {k: {"files": len(v), "hours": hours(v), "items": len({e.item for e in v})}
                                 for k, v in sorted(groups.items())},
        "by_source": {k: {"hours": hours(v), "train_items": len({e.item for e in v if e.split == "train"}),
                          "validation_items": len({e.item for e in v if e.split == "validation"})}
                      for k, v in sorted(sources.items())},
        "bandwidth_hz_p10_p50_p90": bandwidth,
        "split_conflicts": sorted(split_conflicts(entries)),
    }
