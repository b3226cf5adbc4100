"""Drum grooves sequenced from Hydrogen kit one-shots.

A ``Groove`` fixes tempo, meter, style, swing and phrase length; ``sequence`` turns it into
hits (time, instrument, velocity) with accents, ghost notes, fills at phrase ends and crashes
on phrase starts; ``render`` mixes the kit's velocity layers into stereo audio, with hi-hats
(and the kit's mute groups) choking each other as on a real kit.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from .drumkit import LoadedKit
from .licences import parse_dep5

STYLES = ("rock", "four_on_floor", "funk", "half_time", "swing", "sparse")
_HIGH_ROLES = {"hihat", "hihat_open", "hihat_pedal", "ride", "crash"}
_CHOKE_ROLES = {"hihat", "hihat_open", "hihat_pedal"}
_FADE_SECONDS = 0.008


@dataclass(frozen=True)
class Groove:
    """Tempo (``beat_seconds``), meter (``beats_per_bar``, ``steps_per_beat``: 4 for straight
    16ths, 3 for compound/swing), ``style``, ``swing`` (0-0.5 of a step), ``start`` and
    ``duration`` in seconds, ``phrase_bars`` (fills and crashes every phrase)."""

    beat_seconds: float
    beats_per_bar: int
    steps_per_beat: int
    style: str
    swing: float
    start: float
    duration: float
    phrase_bars: int

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Hit:
    time: float       # seconds
    instrument: int   # index into the kit's instruments
    velocity: float   # 0-1


def random_groove(rng: np.random.Generator, duration: float, beat_seconds: float | None = None,
                  beats_per_bar: int | None = None, compound: bool | None = None,
                  start: float = 0.0) -> Groove:
    """A groove; tempo and meter are drawn unless given (to follow a rendered piece)."""
    if beats_per_bar is None:
        beats_per_bar, compound = [(4, False), (3, False), (2, True), (4, True)][
            int(rng.choice(4, p=[0.7, 0.1, 0.15, 0.05]))]
    compound = bool(compound)
    if beat_seconds is None:
        beat_seconds = 60.0 / rng.uniform(70, 170) * (1.5 if compound else 1.0)
    style = str(rng.choice(STYLES, p=[0.3, 0.15, 0.15, 0.1, 0.15, 0.15]))
    steps = 3 if compound or style == "swing" else 4
    swing = float(rng.uniform(0.0, 0.25)) if steps == 4 and rng.random() < 0.3 else 0.0
    return Groove(float(beat_seconds), int(beats_per_bar), steps, style, swing, float(start),
                  float(duration), int(rng.choice([4, 8])))


def fit_tempo(beat_seconds: float, beats_per_bar: int) -> tuple[float, int]:
    """A drummer's beat for a piece's beat: halved or doubled (bar length kept where possible)
    until it lies within 70-170 BPM, and at least two beats per bar."""
    while beat_seconds < 60 / 170:
        beat_seconds *= 2
        beats_per_bar = max(1, beats_per_bar // 2)
    while beat_seconds > 60 / 70:
        beat_seconds /= 2
        beats_per_bar *= 2
    return beat_seconds, max(2, beats_per_bar)


def _pick(kit: LoadedKit, role: str, rng: np.random.Generator) -> int:
    """An instrument for ``role``: bright half of the list for cymbals, dark half for kicks."""
    options = kit.roles[role]  # brightest first
    half = max(1, len(options) // 2)
    if role in _HIGH_ROLES:
        options = options[:half]
    elif role == "kick":
        options = options[-half:]
    return int(rng.choice(options))


def _bar_pattern(groove: Groove, rng: np.random.Generator, fill: bool) -> list[tuple[int, str, float]]:
    """``(step, role, velocity)`` for one bar; steps count from the bar's start."""
    spb, beats, style = groove.steps_per_beat, groove.beats_per_bar, groove.style
    total = spb * beats
    hits: list[tuple[int, str, float]] = []
    cymbal = "ride" if style == "swing" else "hihat"
    hat_every = {"funk": 1, "swing": 1, "sparse": spb}.get(style, 2 if spb == 4 else spb)
    for step in range(0, total, hat_every):
        on_beat = step % spb == 0
        if style == "swing" and step % spb == 1:
            continue  # ride "spang-a-lang": beat and last triplet
        role = "hihat_open" if style == "four_on_floor" and step % spb == spb // 2 else cymbal
        hits.append((step, role, 0.75 if on_beat else 0.55))
    kicks = {"four_on_floor": range(beats), "half_time": [0], "swing": [0], "sparse": [0]}.get(
        style, [0, beats // 2] if beats >= 4 else [0])
    hits += [(b * spb, "kick", 0.9) for b in kicks]
    if style in ("rock", "funk"):
        hits += [(s, "kick", 0.7) for s in range(1, total) if s % spb and rng.random() < (0.12 if style == "rock" else 0.2)]
    if style == "half_time":
        backbeats = [beats // 2] if beats >= 2 else [0]
    elif beats == 3:
        backbeats = [1, 2]
    else:
        backbeats = list(range(1, beats, 2))
    snare = "rim" if style == "sparse" else "snare"
    hits += [(b * spb, snare, 0.85) for b in backbeats]
    if style in ("funk", "rock", "swing"):
        hits += [(s, "snare", 0.25) for s in range(total) if s % spb and rng.random() < 0.12]
    if style == "swing":
        hits += [(b * spb, "hihat_pedal", 0.6) for b in backbeats]
    if style == "sparse":
        hits += [(s, "perc", 0.6) for s in range(total) if rng.random() < 0.3]
    if fill:  # the last beat (or two) becomes a run over snare and toms
        first = total - spb * int(rng.integers(1, min(2, beats) + 1))
        hits = [h for h in hits if h[0] < first or h[1] in ("kick", "hihat_pedal")]
        hits += [(s, "tom" if rng.random() < 0.6 else "snare", 0.7 + 0.3 * (s - first) / (total - first))
                 for s in range(first, total) if rng.random() < 0.85]
    return hits


def sequence(groove: Groove, kit: LoadedKit, rng: np.random.Generator) -> list[Hit]:
    """All hits of ``groove`` played on ``kit`` (instruments fixed per role for the groove)."""
    chosen = {role: _pick(kit, role, rng) for role in kit.roles}
    toms = kit.roles["tom"]
    step_seconds = groove.beat_seconds / groove.steps_per_beat
    bar_seconds = groove.beat_seconds * groove.beats_per_bar
    dynamics = rng.uniform(0.7, 1.0)
    hits = []
    bars = int(np.ceil(groove.duration / bar_seconds))
    for bar in range(bars):
        phrase_end = bar % groove.phrase_bars == groove.phrase_bars - 1
        pattern = _bar_pattern(groove, rng, fill=phrase_end and rng.random() < 0.8)
        if bar % groove.phrase_bars == 0 and (bar or rng.random() < 0.5):
            pattern.append((0, "crash", 0.9))
        for step, role, velocity in pattern:
            swing = groove.swing * step_seconds if groove.steps_per_beat == 4 and step % 2 else 0.0
            t = groove.start + bar * bar_seconds + step * step_seconds + swing + rng.normal(0, 0.004)
            if not groove.start <= t < groove.start + groove.duration:
                continue
            if role == "tom":  # fills run from high to low toms
                instrument = toms[min(len(toms) - 1, step * len(toms) // (groove.steps_per_beat * groove.beats_per_bar))]
            else:
                instrument = chosen[role]
            v = float(np.clip(velocity * dynamics + rng.normal(0, 0.06), 0.05, 1.0))
            hits.append(Hit(max(0.0, float(t)), instrument, v))
    return sorted(hits, key=lambda h: h.time)


def render(hits: list[Hit], kit: LoadedKit, length: int) -> np.ndarray:
    """Mix the hits into float32 ``[2, length]`` at ``kit.rate``; choked sounds fade in 8 ms."""
    out = np.zeros((2, length), np.float32)
    groups = {}
    for i, inst in enumerate(kit.kit.instruments):
        if inst.mute_group >= 0:
            groups[i] = f"group{inst.mute_group}"
        elif inst.role in _CHOKE_ROLES:
            groups[i] = "hihat"
    fade = max(1, round(_FADE_SECONDS * kit.rate))
    for k, hit in enumerate(hits):
        start = round(hit.time * kit.rate)
        if start >= length:
            continue
        sound = kit.sound(hit.instrument, hit.velocity)
        group = groups.get(hit.instrument)
        if group is not None:  # cut at the next hit of the same choke group
            later = next((h for h in hits[k + 1:] if groups.get(h.instrument) == group), None)
            if later is not None:
                stop = max(fade, round(later.time * kit.rate) - start)
                if stop < sound.shape[1]:
                    sound = sound[:, :stop].copy()
                    sound[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        n = min(sound.shape[1], length - start)
        out[:, start:start + n] += sound[:, :n]
    return out


def kit_licence(copyright_text: str, kit_name: str, kit_licence_text: str, default: str) -> str:
    """A kit's licence: the Debian copyright paragraph naming its archive, else the licence the
    kit's ``drumkit.xml`` states, else ``default``."""
    def norm(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    name = norm(kit_name)
    for patterns, licence in reversed(parse_dep5(copyright_text)):
        for pattern in patterns:
            stem = norm(pattern.rsplit("/", 1)[-1].removesuffix(".h2drumkit"))
            if pattern.endswith(".h2drumkit") and stem and (name.startswith(stem) or stem.startswith(name)):
                return licence
    return kit_licence_text.strip()[:80] or default
