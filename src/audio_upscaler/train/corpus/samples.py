"""sonic-pi samples: 164 FLAC loops and one-shots, grouped by their name prefix (``ambi``,
``bass``, ``bd``, ``elec``, ``loop``, ``tabla`` ...); each group is one source item, packed
into 6-15 s stereo files."""

from __future__ import annotations

from pathlib import Path

from .clipjob import ClipItem, ClipPackJob
from .licences import licence_for

SONIC_PI = "sonic-pi-samples"


def sonic_pi_items(tree: Path) -> dict[str, list[Path]]:
    """Category (file-name prefix) -> sample files."""
    items: dict[str, list[Path]] = {}
    for path in sorted((tree / "usr/share/sonic-pi/samples").glob("*.flac")):
        items.setdefault(path.stem.split("_", 1)[0], []).append(path)
    return items


def sonic_pi_job(tree: Path, copyright_text: str, fraction: float) -> ClipPackJob:
    items = tuple(ClipItem(name, tuple(str(f) for f in files),
                           ", ".join(sorted({licence_for(copyright_text, f"etc/samples/{f.name}", "MIT")
                                             for f in files})))
                  for name, files in sonic_pi_items(tree).items())
    return ClipPackJob(SONIC_PI, "music", items, f"music/{SONIC_PI}", fraction, mono=False, seconds=(6.0, 15.0))
