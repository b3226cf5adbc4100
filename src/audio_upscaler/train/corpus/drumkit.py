"""Hydrogen drum kits: parse ``drumkit.xml`` (old and new formats) and load the one-shots.

A kit is a folder with ``drumkit.xml`` and its samples. Each instrument has velocity layers
(``<layer>`` with ``filename``/``min``/``max``/``gain``; older kits give one ``<filename>``
per instrument), a volume, a pan (``pan_L``/``pan_R`` gains or one ``pan`` in [-1, 1]) and
a mute (choke) group. Instruments get a drum *role* from their name (kick, snare, hi-hat,
...); roles a kit lacks are filled from its other sounds by spectral centroid, so every kit,
even a hand-percussion one, can play every groove.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UpscalerError
from .clips import read_clip, resample

ROLES = ("kick", "snare", "rim", "clap", "hihat_open", "hihat_pedal", "hihat", "ride", "crash",
         "tom", "perc")
_ROLE_PATTERNS = (  # checked in order; the first match wins
    ("hihat_open", r"(hat|hh|hi-hat).*(open|op\b)|open.*(hat|hh)"),
    ("hihat_pedal", r"(hat|hh).*(pedal|pd\b|foot)|pedal.*(hat|hh)"),
    ("hihat", r"hat|\bhh\b"),
    ("kick", r"kick|bass ?drum|\bbd\b|bassdrum"),
    ("rim", r"rim|stick"),
    ("snare", r"snare|\bsn\b|\bsd\b"),
    ("clap", r"clap|snap"),
    ("ride", r"ride"),
    ("crash", r"crash|splash|china|cymbal"),
    ("tom", r"tom\b|tom ?\d|\btom"),
)
#: Order in which missing roles are filled (a role may borrow from one filled before it).
_FILL_ORDER = ("kick", "snare", "hihat", "ride", "crash", "tom", "perc", "rim", "clap", "hihat_open",
               "hihat_pedal")
#: When a kit lacks a role: roles to borrow from, then "lowest"/"highest" spectral centroid.
_FALLBACKS = {
    "kick": ("tom", "lowest"), "snare": ("clap", "rim", "perc", "tom"), "rim": ("snare", "perc"),
    "clap": ("snare", "rim"), "hihat": ("ride", "perc", "highest"), "hihat_open": ("hihat", "crash", "ride"),
    "hihat_pedal": ("hihat",), "ride": ("hihat", "crash", "highest"), "crash": ("ride", "hihat_open", "highest"),
    "tom": ("perc", "snare"), "perc": ("tom", "rim", "clap", "snare"),
}


@dataclass
class Layer:
    """One sample of an instrument, used for velocities within ``[low, high]`` (0-1)."""

    file: Path
    low: float
    high: float
    gain: float


@dataclass
class Instrument:
    name: str
    role: str
    volume: float
    pan: tuple[float, float]  # left and right gains
    mute_group: int
    layers: list[Layer]


@dataclass
class DrumKit:
    """A parsed kit: ``name`` (the folder name), ``licence`` as the kit states it."""

    name: str
    folder: Path
    licence: str
    instruments: list[Instrument]


def _text(element: ET.Element | None, tag: str, default: str = "") -> str:
    child = element.find(tag) if element is not None else None
    return child.text.strip() if child is not None and child.text else default


def _number(element: ET.Element, tag: str, default: float) -> float:
    try:
        return float(_text(element, tag, str(default)))
    except ValueError:
        return default


def role_of(name: str) -> str:
    """Drum role of an instrument name (``perc`` when nothing matches)."""
    lower = name.lower()
    for role, pattern in _ROLE_PATTERNS:
        if re.search(pattern, lower):
            return role
    return "perc"


def parse_drumkit(xml_path: str | Path) -> DrumKit:
    """Parse a Hydrogen ``drumkit.xml``; instruments without an existing sample are dropped."""
    xml_path = Path(xml_path)
    try:
        text = xml_path.read_text(encoding="utf-8", errors="replace")
        text = re.sub(r'\s(xmlns|\w+:\w+)(:\w+)?="[^"]*"', "", text)  # namespaces are not needed
        root = ET.fromstring(text)
    except (OSError, ET.ParseError) as exc:
        raise UpscalerError(f"cannot read drum kit {xml_path}: {exc}") from None
    folder = xml_path.parent
    licence = _text(root, "license") or _text(root, "licence")
    instruments = []
    for element in root.iter("instrument"):
        layers = [Layer(folder / _text(layer, "filename"), _number(layer, "min", 0.0),
                        _number(layer, "max", 1.0), _number(layer, "gain", 1.0))
                  for layer in element.iter("layer") if _text(layer, "filename")]
        if not layers and _text(element, "filename"):
            layers = [Layer(folder / _text(element, "filename"), 0.0, 1.0, 1.0)]
        layers = [layer for layer in layers if layer.file.is_file()]
        if not layers:
            continue
        if element.find("pan_L") is not None:
            pan = (_number(element, "pan_L", 1.0), _number(element, "pan_R", 1.0))
        else:
            p = _number(element, "pan", 0.0)
            pan = (min(1.0, 1.0 - p), min(1.0, 1.0 + p))
        name = _text(element, "name") or layers[0].file.stem
        instruments.append(Instrument(name, role_of(name), _number(element, "volume", 1.0), pan,
                                      int(_number(element, "muteGroup", -1)), layers))
    if not instruments:
        raise UpscalerError(f"drum kit {folder.name} has no usable instrument")
    return DrumKit(folder.name, folder, licence, instruments)


@dataclass
class LoadedKit:
    """A kit with its samples decoded: ``sounds[i][j]`` is layer ``j`` of instrument ``i`` as
    float32 ``[2, n]`` at ``rate``; ``roles`` maps every role in ``ROLES`` to instrument indices
    (borrowed ones included) ordered from highest to lowest spectral centroid."""

    kit: DrumKit
    rate: int
    sounds: list[list[np.ndarray]]
    roles: dict[str, list[int]] = field(default_factory=dict)

    def sound(self, instrument: int, velocity: float) -> np.ndarray:
        """Stereo sample ``[2, n]`` for a hit at ``velocity`` (0-1), gains and pan applied."""
        inst = self.kit.instruments[instrument]
        fits = [j for j, layer in enumerate(inst.layers) if layer.low <= velocity <= layer.high]
        j = fits[0] if fits else int(np.argmin([min(abs(velocity - layer.low), abs(velocity - layer.high))
                                                for layer in inst.layers]))
        gain = velocity * inst.layers[j].gain * inst.volume
        return self.sounds[instrument][j] * (gain * np.asarray(inst.pan, dtype=np.float32)[:, None])


def load_kit(kit: DrumKit, rate: int) -> LoadedKit:
    """Decode every layer (resampled to ``rate``, mono made stereo) and assign roles."""
    sounds = []
    for inst in kit.instruments:
        layers = []
        for layer in inst.layers:
            x, sr = read_clip(layer.file)
            x = resample(x[:2] if x.shape[0] >= 2 else np.repeat(x, 2, axis=0), sr, rate)
            layers.append(x)
        sounds.append(layers)
    loaded = LoadedKit(kit, rate, sounds)
    loaded.roles = _assign_roles(loaded)
    return loaded


def spectral_centroid(x: np.ndarray, rate: int) -> float:
    """Power-weighted mean frequency (Hz) of ``[C, T]`` audio."""
    spectrum = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / rate)
    return float((spectrum * freqs).sum() / max(spectrum.sum(), 1e-20))


def _assign_roles(loaded: LoadedKit) -> dict[str, list[int]]:
    centroid = [spectral_centroid(layers[-1][:, : loaded.rate], loaded.rate) for layers in loaded.sounds]
    by_role = {role: sorted((i for i, inst in enumerate(loaded.kit.instruments) if inst.role == role),
                            key=lambda i: -centroid[i]) for role in ROLES}
    everything = sorted(range(len(centroid)), key=lambda i: -centroid[i])
    for role in _FILL_ORDER:
        for source in _FALLBACKS[role]:
            if by_role[role]:
                break
            if source == "lowest":
                by_role[role] = everything[-1:]
            elif source == "highest":
                by_role[role] = everything[:1]
            else:
                by_role[role] = list(by_role[source])
        by_role[role] = by_role[role] or everything
    return by_role
