"""A minimal Standard MIDI File writer (format 0) for rendered performances.

Times are in seconds; the file runs at a fixed 120 BPM with 480 ticks per quarter note, so
one second is 960 ticks (about 1 ms resolution) and tempo lives in the note times.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_QUARTER = 480
TICKS_PER_SECOND = 960  # at the fixed 120 BPM (500 000 us per quarter note)

CC_VOLUME, CC_PAN, CC_REVERB, CC_CHORUS = 7, 10, 91, 93


@dataclass(frozen=True)
class NoteEvent:
    """One note: ``start``/``end`` in seconds, MIDI ``channel`` 0-15, ``pitch`` and ``velocity`` 1-127."""

    start: float
    end: float
    channel: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class ChannelSetup:
    """Program (General MIDI, 0-127) and controller values (0-127) of one channel."""

    channel: int
    program: int
    volume: int = 100
    pan: int = 64
    reverb: int = 0
    chorus: int = 0


def variable_length(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits per byte, high bit = more bytes follow)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _tick(seconds: float) -> int:
    return max(0, round(seconds * TICKS_PER_SECOND))


def midi_bytes(notes: list[NoteEvent], channels: list[ChannelSetup], end_seconds: float) -> bytes:
    """The SMF (format 0) bytes; the track ends at ``end_seconds`` (leave room for release tails)."""
    events: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big"))]
    for c in channels:
        ch = c.channel & 0x0F
        events.append((0, 0, bytes([0xC0 | ch, c.program & 0x7F])))
        for controller, value in ((CC_VOLUME, c.volume), (CC_PAN, c.pan),
                                  (CC_REVERB, c.reverb), (CC_CHORUS, c.chorus)):
            events.append((0, 0, bytes([0xB0 | ch, controller, int(value) & 0x7F])))
    for n in notes:
        ch, pitch = n.channel & 0x0F, int(n.pitch) & 0x7F
        start, end = _tick(n.start), max(_tick(n.end), _tick(n.start) + 1)
        events.append((start, 2, bytes([0x90 | ch, pitch, max(1, min(127, int(n.velocity)))])))
        events.append((end, 1, bytes([0x80 | ch, pitch, 0])))
    last = max([e[0] for e in events] + [_tick(end_seconds)])
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray()
    now = 0
    for tick, _, data in events:
        track += variable_length(tick - now) + data
        now = tick
    track += variable_length(last - now) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(path: str | Path, notes: list[NoteEvent], channels: list[ChannelSetup],
               end_seconds: float) -> None:
    Path(path).write_bytes(midi_bytes(notes, channels, end_seconds))
