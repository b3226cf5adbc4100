"""Speech: klettres letters/syllables (per language), hedgewars exclamations (per voice pack),
fillets-ng dialogue (per level, kept apart for the 8 kHz -> 22.05 kHz task).

Only clips whose measured bandwidth is at least ``MIN_BANDWIDTH_HZ`` are kept (most klettres
languages and some packs are Vorbis-encoded with a 11-18 kHz cutoff); fillets-ng is 22.05 kHz
material, so its bar is ``FILLETS_MIN_BANDWIDTH_HZ`` at that rate. Short clips of one voice
are joined into 3-6 s utterances.
"""

from __future__ import annotations

from pathlib import Path

from .clipjob import ClipItem, ClipPackJob
from .licences import licence_for

KLETTRES = "klettres-data"
HEDGEWARS = "hedgewars-data"
FILLETS = "fillets-ng-data"
MIN_BANDWIDTH_HZ = 19000.0
FILLETS_RATE = 22050
FILLETS_MIN_BANDWIDTH_HZ = 9500.0  # 86 % of the 11.025 kHz Nyquist, as 19 kHz is of 22.05 kHz
EFFECT_PROCESSED_PACKS = ("Robot",)  # hedgewars voice packs that are not natural speech
_AUDIO = (".ogg", ".wav", ".flac")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _AUDIO and p.is_file())


def klettres_items(tree: Path) -> dict[str, list[Path]]:
    """Language code -> clips (``usr/share/klettres/<lang>/{alpha,syllab}/*.ogg``)."""
    root = tree / "usr/share/klettres"
    return {d.name: files for d in sorted(root.iterdir()) if d.is_dir() and (files := _audio_files(d))}


def hedgewars_items(tree: Path) -> dict[str, list[Path]]:
    """Voice pack -> clips, without the effect-processed packs."""
    root = tree / "usr/share/games/hedgewars/Data/Sounds/voices"
    return {d.name: files for d in sorted(root.iterdir())
            if d.is_dir() and d.name not in EFFECT_PROCESSED_PACKS and (files := _audio_files(d))}


def fillets_items(tree: Path) -> dict[str, list[Path]]:
    """Level -> English dialogue clips (``sound/<level>/en/*.ogg``)."""
    root = tree / "usr/share/games/fillets-ng/sound"
    return {d.name: files for d in sorted(root.iterdir())
            if (d / "en").is_dir() and (files := _audio_files(d / "en"))}


def speech_job(package: str, tree: Path, copyright_text: str, fraction: float) -> ClipPackJob:
    """The job measuring, splitting and packing every voice (language, pack or level) of ``package``."""
    find = {KLETTRES: klettres_items, HEDGEWARS: hedgewars_items, FILLETS: fillets_items}[package]
    items = tuple(ClipItem(name, tuple(str(f) for f in files),
                           licence_for(copyright_text, files[0].relative_to(tree).as_posix(), "GPL-2"))
                  for name, files in find(tree).items())
    if package == FILLETS:
        return ClipPackJob(package, "speech", items, f"speech_22k/{package}", fraction, rate=FILLETS_RATE,
                           min_bandwidth_hz=FILLETS_MIN_BANDWIDTH_HZ, band_split_hz=FILLETS_MIN_BANDWIDTH_HZ,
                           subset="speech_22k")
    return ClipPackJob(package, "speech", items, f"speech/{package}", fraction, min_bandwidth_hz=MIN_BANDWIDTH_HZ)
