"""Raw PCM and WAV framing for audio on pipes (no seeking): read a WAV header from a stream,
write one whose length is not known yet, and convert interleaved bytes to and from float32
``[channels, n]`` blocks. libsndfile cannot read a WAV file from a pipe (it seeks), hence this.

Encodings: ``s16``, ``s24``, ``s32`` (little-endian signed integers) and ``f32`` (IEEE float).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .errors import UpscalerError

#: encoding -> (bytes per sample, WAV format tag: 1 integer PCM, 3 IEEE float)
ENCODINGS = {"s16": (2, 1), "s24": (3, 1), "s32": (4, 1), "f32": (4, 3)}
_EXTENSIBLE = 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF


@dataclass(frozen=True)
class PCMFormat:
    sample_rate: int
    channels: int
    encoding: str

    @property
    def frame_bytes(self) -> int:
        return ENCODINGS[self.encoding][0] * self.channels


def read_wav_header(stream: BinaryIO, consumed: bytes = b"") -> PCMFormat:
    """Read a WAV header up to the start of the ``data`` chunk (``consumed``: bytes already read
    from the stream's start, e.g. a sniffed ``b"RIFF"``)."""
    return read_wav_start(stream, consumed)[0]


def read_wav_start(stream: BinaryIO, consumed: bytes = b"") -> tuple[PCMFormat, int | None]:
    """As :func:`read_wav_header`, plus the size in bytes of the ``data`` chunk, or ``None``
    where the writer did not know it (0 or 0xFFFFFFFF, as streaming tools write). Pass that size
    to :func:`read_blocks`: chunks after the audio (a ``LIST`` or ``id3 `` tag block) are not
    audio."""
    head = consumed + _read_exact(stream, 12 - len(consumed))
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise UpscalerError("standard input is not a WAV stream (no RIFF/WAVE header)")
    fmt = None
    while True:
        chunk = _read_exact(stream, 8)
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"data":
            if fmt is None:
                raise UpscalerError("WAV stream has its data before its 'fmt ' chunk")
            return fmt, (None if size in (0, _UNKNOWN_SIZE) else size)
        body = _read_exact(stream, size + (size & 1))
        if kind == b"fmt ":
            fmt = _parse_fmt(body)


def _parse_fmt(body: bytes) -> PCMFormat:
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    encoding = {(1, 16): "s16", (1, 24): "s24", (1, 32): "s32", (3, 32): "f32"}.get((tag, bits))
    if encoding is None or channels < 1:
        raise UpscalerError(f"unsupported WAV stream (format tag {tag}, {bits} bits); use 16/24/32-bit PCM or 32-bit float")
    return PCMFormat(rate, channels, encoding)


def wav_header(fmt: PCMFormat, frames: int | None = None) -> bytes:
    """A 44-byte WAV header; ``frames=None`` marks the length unknown (as streaming tools do), and so
    does a length past what its 32-bit sizes hold (4 GiB; readers then read to the end of the file)."""
    width, tag = ENCODINGS[fmt.encoding]
    if frames is not None and 36 + frames * fmt.frame_bytes >= _UNKNOWN_SIZE:
        frames = None
    data = _UNKNOWN_SIZE if frames is None else frames * fmt.frame_bytes
    riff = _UNKNOWN_SIZE if frames is None else 36 + data
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, tag, fmt.channels, fmt.sample_rate,
                       fmt.sample_rate * fmt.frame_bytes, fmt.frame_bytes, 8 * width, b"data", data)


def decode(data: bytes, fmt: PCMFormat) -> np.ndarray:
    """Interleaved bytes (whole frames) -> float32 ``[channels, n]`` in +-1.0."""
    width = ENCODINGS[fmt.encoding][0]
    if fmt.encoding == "f32":
        x = np.frombuffer(data, "<f4").astype(np.float32)
    elif fmt.encoding == "s24":
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8) / np.float32(2**23)
    else:
        x = np.frombuffer(data, f"<i{width}") / np.float32(2 ** (8 * width - 1))
    return np.ascontiguousarray(x.astype(np.float32).reshape(-1, fmt.channels).T)


def encode(x: np.ndarray, encoding: str) -> bytes:
    """float ``[channels, n]`` -> interleaved bytes (integers rounded and clipped at full scale)."""
    frames = np.asarray(x, np.float64).T
    if encoding == "f32":
        return frames.astype("<f4").tobytes()
    width = ENCODINGS[encoding][0]
    scale = 2 ** (8 * width - 1)
    ints = np.clip(np.round(frames * scale), -scale, scale - 1).astype("<i4")
    if encoding == "s24":
        return np.ascontiguousarray(ints).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return ints.astype(f"<i{width}").tobytes()


def read_blocks(stream: BinaryIO, fmt: PCMFormat, frames: int, pending: bytes = b"",
                limit: int | None = None, on_partial: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    """Blocks ``[channels, frames]`` read from ``stream`` until EOF (the last may be shorter; a
    trailing partial frame is dropped, and ``on_partial(bytes)`` is called with its size). ``pending``:
    bytes already read past the header; ``limit``: bytes of audio in all (a WAV ``data`` chunk's
    size), ``pending`` included: what follows is not read."""
    size = max(int(frames), 1) * fmt.frame_bytes
    left = None if limit is None else max(int(limit), 0)  # bytes still to take from the stream
    if left is not None:
        pending, left = pending[:left], left - min(len(pending), left)
    buf, eof = pending, False
    while not eof or len(buf) >= fmt.frame_bytes:
        while len(buf) < size and not eof:
            want = size - len(buf) if left is None else min(size - len(buf), left)
            chunk = stream.read(want) if want > 0 else b""
            eof = not chunk
            buf += chunk
            if left is not None:
                left -= len(chunk)
        whole = min(len(buf), size) // fmt.frame_bytes * fmt.frame_bytes
        if not whole:
            break
        yield decode(buf[:whole], fmt)
        buf = buf[whole:]
    if buf and on_partial is not None:
        on_partial(len(buf))


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n) if n > 0 else b""
    if len(data) < n:
        raise UpscalerError("the WAV stream ended inside its header")
    return data
