"""Drum-only music: grooves played on every Hydrogen kit (``hydrogen-drumkits``, ``hydrogen-data``).

Grooves are dealt to the kits in turn (groove ``i`` uses kit ``i mod kits``), so a larger
``--hours-drums`` only adds grooves. Kits are one split group across both packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import UpscalerError
from . import drums
from .clips import finish
from .drumkit import load_kit, parse_drumkit
from .jobs import JobContext, job_rng, make_entry, safe_name
from .manifest import Entry, item_key
from .split import assign_splits

HYDROGEN_PACKAGES = ("hydrogen-drumkits", "hydrogen-data")
KITS_FOLDER = "usr/share/hydrogen/data/drumkits"
GROOVE_SECONDS = (20.0, 40.0)


@dataclass(frozen=True)
class KitInfo:
    """A usable kit: package, folder name, folder path, licence and split."""

    package: str
    name: str
    folder: str
    licence: str
    split: str

    @property
    def key(self) -> str:
        return item_key(self.package, self.name)


def find_kits(trees: dict[str, Path], copyrights: dict[str, str], fraction: float) -> list[KitInfo]:
    """Every kit with at least one playable instrument, sorted by key, with its split."""
    found = []
    for package, tree in sorted(trees.items()):
        for xml in sorted((tree / KITS_FOLDER).glob("*/drumkit.xml")):
            try:
                kit = parse_drumkit(xml)
            except UpscalerError:
                continue
            licence = drums.kit_licence(copyrights.get(package, ""), kit.name, kit.licence, "GPL-2")
            found.append((package, kit.name, str(xml.parent), licence))
    splits = assign_splits((item_key(p, n) for p, n, _, _ in found), fraction)
    return [KitInfo(p, n, f, lic, splits[item_key(p, n)]) for p, n, f, lic in found]


@dataclass(frozen=True)
class GrooveJob:
    """Groove number ``number`` on ``kit``: random style, tempo and meter, 20-40 s."""

    kit: KitInfo
    number: int

    @property
    def key(self) -> str:
        return f"{self.kit.key}#groove-{self.number:03d}"

    def run(self, context: JobContext) -> list[Entry]:
        rng = job_rng(context.seed, self.key)
        loaded = load_kit(parse_drumkit(Path(self.kit.folder) / "drumkit.xml"), context.music_rate)
        groove = drums.random_groove(rng, duration=float(rng.uniform(*GROOVE_SECONDS)))
        length = round((groove.duration + 2.0) * context.music_rate)
        audio = drums.render(drums.sequence(groove, loaded, rng), loaded, length)
        relative = f"music/{self.kit.package}/{safe_name(self.kit.name)}/groove-{self.number:03d}.flac"
        written = finish(audio, context.music_rate, context.out, relative)
        if written is None:
            return []
        return [make_entry(written, self.key, self.kit.package, self.kit.name, "music", self.kit.split,
                           self.kit.licence, params=groove.to_dict())]


def groove_jobs(kits: list[KitInfo], hours: float) -> list[GrooveJob]:
    """About ``hours`` of grooves (30 s on average each), dealt to the kits in turn."""
    count = round(hours * 3600 / (sum(GROOVE_SECONDS) / 2)) if kits else 0
    return [GrooveJob(kits[i % len(kits)], i // len(kits)) for i in range(count)]
