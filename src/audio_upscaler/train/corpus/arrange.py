"""Turn a score (notes per part) into a varied performance: instruments, tempo, dynamics, effects.

Everything random comes from one ``numpy.random.Generator``, so a seed reproduces a rendering.
Instrumentation follows an *ensemble* drawn per piece (piano, organ, strings, winds, brass,
saxophones, choir, guitars, synths, mallets, or a free mix); each part gets a General-MIDI
program whose playing range fits the part (parts are moved by octaves when none fits), and
the lowest part often gets a bass instrument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .midi import ChannelSetup, NoteEvent

#: General-MIDI program -> (name, lowest, highest comfortable MIDI pitch).
INSTRUMENTS: dict[int, tuple[str, int, int]] = {
    0: ("acoustic grand piano", 21, 108), 1: ("bright piano", 21, 108), 2: ("electric grand", 21, 108),
    4: ("electric piano 1", 28, 103), 5: ("electric piano 2", 28, 103), 6: ("harpsichord", 29, 89),
    7: ("clavinet", 36, 96), 8: ("celesta", 60, 108), 11: ("vibraphone", 53, 89),
    12: ("marimba", 45, 96), 13: ("xylophone", 65, 108), 16: ("drawbar organ", 36, 96),
    17: ("percussive organ", 36, 96), 19: ("church organ", 21, 108), 20: ("reed organ", 36, 96),
    21: ("accordion", 41, 89), 24: ("nylon guitar", 40, 84), 25: ("steel guitar", 40, 84),
    26: ("jazz guitar", 40, 86), 27: ("clean guitar", 40, 86), 28: ("muted guitar", 40, 84),
    29: ("overdriven guitar", 40, 86), 30: ("distortion guitar", 40, 86),
    32: ("acoustic bass", 28, 55), 33: ("fingered bass", 28, 60), 34: ("picked bass", 28, 60),
    35: ("fretless bass", 28, 60), 38: ("synth bass 1", 28, 60), 39: ("synth bass 2", 28, 60),
    40: ("violin", 55, 103), 41: ("viola", 48, 91), 42: ("cello", 36, 76), 43: ("contrabass", 28, 67),
    44: ("tremolo strings", 28, 96), 45: ("pizzicato strings", 28, 96), 46: ("harp", 23, 103),
    48: ("string ensemble 1", 28, 96), 49: ("string ensemble 2", 28, 96),
    50: ("synth strings", 36, 96), 52: ("choir aahs", 40, 79), 53: ("voice oohs", 40, 79),
    54: ("synth voice", 40, 84), 56: ("trumpet", 54, 86), 57: ("trombone", 40, 72),
    58: ("tuba", 28, 58), 60: ("french horn", 41, 77), 61: ("brass section", 36, 84),
    62: ("synth brass", 36, 96), 64: ("soprano sax", 56, 87), 65: ("alto sax", 49, 81),
    66: ("tenor sax", 44, 76), 67: ("baritone sax", 36, 69), 68: ("oboe", 58, 91),
    69: ("english horn", 52, 81), 70: ("bassoon", 34, 75), 71: ("clarinet", 50, 94),
    72: ("piccolo", 74, 108), 73: ("flute", 60, 96), 74: ("recorder", 60, 96),
    75: ("pan flute", 60, 96), 80: ("square lead", 36, 96), 81: ("saw lead", 36, 96),
    88: ("new age pad", 36, 96), 89: ("warm pad", 36, 96), 90: ("polysynth pad", 36, 96),
    91: ("choir pad", 36, 96), 94: ("halo pad", 36, 96), 95: ("sweep pad", 36, 96),
}


@dataclass(frozen=True)
class Ensemble:
    """Programs parts may take; ``bass`` programs for the lowest part; ``single``: one program
    for every part (a keyboard playing the whole score)."""

    programs: tuple[int, ...]
    bass: tuple[int, ...] = ()
    single: bool = False
    weight: float = 1.0


ENSEMBLES: dict[str, Ensemble] = {
    "piano": Ensemble((0, 1, 2, 4, 5, 6, 7), single=True, weight=2.0),
    "organ": Ensemble((16, 17, 19, 20, 21), single=True),
    "strings": Ensemble((40, 41, 42, 43, 44, 45, 48, 49), bass=(42, 43), weight=2.0),
    "winds": Ensemble((68, 69, 70, 71, 72, 73, 74), bass=(70,)),
    "brass": Ensemble((56, 57, 58, 60, 61), bass=(57, 58)),
    "saxophones": Ensemble((64, 65, 66, 67), bass=(67,)),
    "choir": Ensemble((52, 53, 54)),
    "guitars": Ensemble((24, 25, 26, 27, 28, 29, 30), bass=(32, 33, 34, 35)),
    "synths": Ensemble((50, 62, 80, 81, 88, 89, 90, 91, 94, 95), bass=(38, 39)),
    "mallets": Ensemble((8, 11, 12, 13, 46), bass=(32, 35)),
    "mixed": Ensemble(tuple(INSTRUMENTS), bass=(32, 33, 35, 38, 42, 43, 58, 67, 70), weight=3.0),
}
MELODIC_CHANNELS = tuple(c for c in range(16) if c != 9)  # channel 10 (index 9) is percussion


@dataclass(frozen=True)
class ScoreNote:
    """A note of the score: ``onset`` and ``duration`` in quarter notes, MIDI ``pitch``."""

    onset: float
    duration: float
    pitch: int


@dataclass
class ScoreData:
    """What a performance needs from a score.

    ``tempo_qpm``: the marked tempo in quarter notes per minute (None if unmarked);
    ``beats_per_bar``/``beat_quarters``: the meter (6/8 is 2 beats of 1.5 quarters);
    ``first_bar``: quarter-note offset of the first full bar (after a pick-up).
    """

    parts: list[list[ScoreNote]]
    tempo_qpm: float | None = None
    beats_per_bar: int = 4
    beat_quarters: float = 1.0
    first_bar: float = 0.0


@dataclass(frozen=True)
class Effects:
    """FluidSynth's global reverb and chorus (None = off), values as FluidSynth settings."""

    reverb: dict | None = None
    chorus: dict | None = None


@dataclass
class Performance:
    """A rendered-to-be piece: notes and channel setups for MIDI, plus the facts a drum groove
    needs to follow it (``beat_seconds``, ``beats_per_bar``, ``compound``: beats split in three,
    ``first_bar_seconds``)."""

    notes: list[NoteEvent]
    channels: list[ChannelSetup]
    effects: Effects
    duration: float
    beat_seconds: float
    beats_per_bar: int
    compound: bool
    first_bar_seconds: float
    description: dict = field(default_factory=dict)


def choose_tempo(data: ScoreData, rng: np.random.Generator) -> float:
    """Quarter notes per minute: the marked tempo +-15 %, or one giving a typical note rate."""
    if data.tempo_qpm:
        qpm = data.tempo_qpm * rng.uniform(0.85, 1.15)
    else:  # unmarked: make the median note last 0.25-0.55 s, whatever the notation's unit
        durations = [n.duration for part in data.parts for n in part if n.duration > 0]
        median = float(np.median(durations)) if durations else 1.0
        qpm = 60.0 * median / rng.uniform(0.25, 0.55)
    return float(np.clip(qpm, 40.0, 220.0))


def choose_program(pitch: float, candidates: tuple[int, ...], rng: np.random.Generator,
                   avoid: set[int]) -> int:
    """A program whose range holds ``pitch`` (preferring unused ones), else any candidate."""
    fitting = [p for p in candidates if INSTRUMENTS[p][1] + 3 <= pitch <= INSTRUMENTS[p][2] - 5]
    pool = [p for p in fitting if p not in avoid] or fitting or list(candidates)
    return int(rng.choice(pool))


def octave_shift(pitch: float, program: int) -> int:
    """Semitones (a multiple of 12) that bring a part's median ``pitch`` into the program's range."""
    _, low, high = INSTRUMENTS[program]
    shift = 0
    while pitch + shift < low + 3 and shift < 48:
        shift += 12
    while pitch + shift > high - 5 and shift > -48:
        shift -= 12
    return shift


def choose_effects(rng: np.random.Generator) -> Effects:
    """Reverb on for about 60 % of pieces, chorus for about 30 %, with random settings."""
    reverb = chorus = None
    if rng.random() < 0.6:
        reverb = {"room-size": round(rng.uniform(0.2, 0.95), 2), "damp": round(rng.uniform(0.0, 0.7), 2),
                  "width": round(rng.uniform(0.3, 1.0), 2), "level": round(rng.uniform(0.3, 0.9), 2)}
    if rng.random() < 0.3:
        chorus = {"nr": int(rng.integers(2, 6)), "level": round(rng.uniform(0.8, 3.0), 2),
                  "speed": round(rng.uniform(0.2, 0.8), 2), "depth": round(rng.uniform(3.0, 12.0), 2)}
    return Effects(reverb, chorus)


def arrange(data: ScoreData, rng: np.random.Generator, max_seconds: float = 150.0) -> Performance:
    """A performance of ``data`` no longer than ``max_seconds`` (notes after it are dropped)."""
    parts = [p for p in data.parts if p]
    if len(parts) == 1 and rng.random() < 0.5:  # a lone melody: double it an octave lower
        parts.append([ScoreNote(n.onset, n.duration, n.pitch - 12) for n in parts[0]])
    names = list(ENSEMBLES)
    weights = np.array([ENSEMBLES[n].weight for n in names])
    ensemble_name = str(rng.choice(names, p=weights / weights.sum()))
    ensemble = ENSEMBLES[ensemble_name]
    medians = [float(np.median([n.pitch for n in part])) for part in parts]
    lowest = int(np.argmin(medians))
    single = int(rng.choice(ensemble.programs)) if ensemble.single else None
    qpm = choose_tempo(data, rng)
    seconds_per_quarter = 60.0 / qpm
    effects = choose_effects(rng)
    spread = rng.uniform(0.2, 0.8)
    pans = rng.permutation(np.linspace(-spread, spread, len(parts))) if len(parts) > 1 else [0.0]

    notes: list[NoteEvent] = []
    channels: dict[int, ChannelSetup] = {}
    used: set[int] = set()
    description = []
    for index, (part, median) in enumerate(zip(parts, medians)):
        if single is not None:
            program = single
        elif index == lowest and ensemble.bass and len(parts) > 1 and median < 55 and rng.random() < 0.7:
            program = choose_program(median, ensemble.bass, rng, used)
        else:
            program = choose_program(median, ensemble.programs, rng, used)
        used.add(program)
        shift = octave_shift(median, program)
        channel = MELODIC_CHANNELS[index % len(MELODIC_CHANNELS)]
        if channel not in channels:  # more parts than channels share the first part's setup
            channels[channel] = ChannelSetup(
                channel, program, volume=int(rng.integers(85, 118)), pan=int(round(64 + 63 * pans[index])),
                reverb=int(rng.integers(20, 90)) if effects.reverb else 0,
                chorus=int(rng.integers(10, 70)) if effects.chorus else 0)
        description.append({"program": channels[channel].program,
                             "instrument": INSTRUMENTS[channels[channel].program][0], "transpose": shift})
        notes += _perform_part(part, channel, shift, seconds_per_quarter, data, rng, max_seconds)
    duration = max((n.end for n in notes), default=0.0)
    return Performance(
        notes=sorted(notes, key=lambda n: n.start), channels=list(channels.values()), effects=effects,
        duration=duration, beat_seconds=data.beat_quarters * seconds_per_quarter,
        beats_per_bar=data.beats_per_bar, compound=data.beat_quarters in (0.75, 1.5, 3.0),
        first_bar_seconds=data.first_bar * seconds_per_quarter,
        description={"ensemble": ensemble_name, "tempo_qpm": round(qpm, 1), "parts": description,
                     "reverb": effects.reverb, "chorus": effects.chorus})


def _perform_part(part: list[ScoreNote], channel: int, shift: int, seconds_per_quarter: float,
                  data: ScoreData, rng: np.random.Generator, max_seconds: float) -> list[NoteEvent]:
    """Notes of one part with phrase dynamics, beat accents, timing jitter and articulation."""
    base = rng.uniform(55, 105)
    legato = rng.uniform(0.8, 1.0)
    period = rng.uniform(8.0, 30.0)
    phase = rng.uniform(0, 2 * np.pi)
    bar = data.beats_per_bar * data.beat_quarters
    out = []
    for n in part:
        start = n.onset * seconds_per_quarter
        if start >= max_seconds:
            continue
        position = (n.onset - data.first_bar) % bar
        accent = 10 if abs(position) < 1e-6 else 5 if abs(position % data.beat_quarters) < 1e-6 else 0
        velocity = base + accent + 12 * np.sin(2 * np.pi * start / period + phase) + rng.normal(0, 5)
        start = max(0.0, start + float(np.clip(rng.normal(0, 0.008), -0.02, 0.02)))
        length = max(0.04, max(n.duration, 0.125) * seconds_per_quarter * legato)
        out.append(NoteEvent(start, min(start + length, max_seconds), channel,
                             int(np.clip(n.pitch + shift, 0, 127)), int(np.clip(velocity, 20, 127))))
    return out
