"""Fuzzing (hypothesis) of the entry points that take outside data: ``io.probe``/``io.read_audio``,
``analysis.analyze`` and ``Upscaler.upscale_file``/``Upscaler.upscale``.

Whatever the bytes, each either works (finite samples, a readable output file) or raises
:class:`UpscalerError`; no other exception, no output or temporary file left after a failure.
Inputs: random bytes under audio names, WAV files with random (but well-formed) headers, real
WAV/FLAC/AIFF/MP3/OGG files with random bytes changed or cut off, and random in-memory arrays.
A few dozen examples per test keep the whole file at a few seconds; for a longer hunt set
``AUDIO_UPSCALER_FUZZ_EXAMPLES`` (e.g. 5000).
"""

from __future__ import annotations

import functools
import os
import struct
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audio_upscaler import io
from audio_upscaler.analysis import analyze
from audio_upscaler.audio import Audio
from audio_upscaler.errors import UpscalerError
from audio_upscaler.pipeline import Upscaler

FUZZ = settings(
    max_examples=int(os.environ.get("AUDIO_UPSCALER_FUZZ_EXAMPLES", "40")),
    deadline=timedelta(seconds=5),  # an example far slower than its ~50 ms is a hang in the making
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SUFFIXES = [".wav", ".flac", ".aiff", ".mp3", ".ogg", ".opus", ".m4a", ".bin"]


@functools.lru_cache(maxsize=1)
def upscaler() -> Upscaler:
    return Upscaler("sbr", 48_000, chunk_seconds=1.0)


def check_entry_points(data: bytes, suffix: str) -> str:
    """Write ``data`` as a file and run every entry point over it; returns how far it got:
    ``refused`` (by the reader), ``decoded`` or ``upscaled``."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "input" + suffix)
        source.write_bytes(data)
        try:
            audio = io.read_audio(source)
        except UpscalerError as exc:
            assert "\n" not in str(exc)
            outcome = "refused"
        else:
            outcome = "decoded"
            assert audio.samples.dtype == np.float32 and 1 <= audio.channels <= 8 and audio.frames >= 1
            assert np.isfinite(audio.samples).all()
        for entry in (io.probe, analyze):
            try:
                entry(source)
            except UpscalerError:
                pass
        out_dir = Path(folder, "out")
        out_dir.mkdir()
        output = out_dir / "out.flac"
        try:
            upscaler().upscale_file(source, output)
        except UpscalerError:
            assert list(out_dir.iterdir()) == []
        else:
            outcome = "upscaled"
            assert [p.name for p in out_dir.iterdir()] == ["out.flac"]
            assert np.isfinite(io.read_audio(output).samples).all()
    return outcome


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(data, suffix):
    event(check_entry_points(data, suffix))


@st.composite
def wav_files(draw) -> bytes:
    """A RIFF/WAVE file with a well-formed layout but random values in its header fields."""
    rate = draw(st.one_of(st.sampled_from([0, 1, 999, 1000, 8000, 44_100, 768_000, 768_001]), st.integers(0, 2**32 - 1)))
    channels = draw(st.integers(0, 12))
    tag, bits = draw(st.sampled_from([(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64), (1, 12), (6, 8), (0x55, 16)]))
    payload = draw(st.binary(max_size=3000))
    claimed = draw(st.one_of(st.just(len(payload)), st.integers(0, 2**32 - 1)))
    align = channels * max(bits // 8, 1)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align & 0xFFFF, bits)
    return (b"RIFF" + struct.pack("<I", (36 + claimed) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", claimed) + payload)


@FUZZ
@given(data=wav_files())
def test_random_wav_headers(data):
    event(check_entry_points(data, ".wav"))


@functools.lru_cache(maxsize=None)
def valid_file(suffix: str) -> bytes:
    """A short, valid stereo file of this format (two tones, 0.3 s at 22.05 kHz)."""
    t = np.arange(6615) / 22_050
    x = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 1500 * t)]).astype(np.float32) * 0.5
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "valid" + suffix)
        io.write_audio(path, Audio(x, 22_050, {"title": "fuzz"}), io.output_format_for(path, **(
            {"bit_depth": 16} if suffix in (".wav", ".flac", ".aiff") else {})))
        return path.read_bytes()


@FUZZ
@given(
    suffix=st.sampled_from([".wav", ".flac", ".aiff", ".mp3", ".ogg"]),
    changes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    keep=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_real_files(suffix, changes, keep):
    data = bytearray(valid_file(suffix))
    for where, value in changes:  # bias towards the header, where damage matters most
        data[int(where**3 * len(data))] = value
    if keep is not None:
        data = data[: int(keep * len(data))]
    event(check_entry_points(bytes(data), suffix))


@FUZZ
@given(
    samples=hnp.arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(0, 3000)),
                       elements=st.floats(-4, 4, width=32)),
    rate=st.sampled_from([1000, 8000, 11_025, 22_050, 44_100, 48_000]),
    poison=st.one_of(st.none(), st.tuples(st.floats(0, 1), st.sampled_from([np.nan, -np.inf, 3e38, -2e7]))),
)
def test_random_arrays_in_memory(samples, rate, poison):
    if poison is not None and samples.size:
        where, value = poison
        samples.flat[int(where * (samples.size - 1))] = value
    audio = Audio(samples, rate)
    try:
        report = analyze(audio)
    except UpscalerError:
        return
    assert report.channels == samples.shape[0] and report.frames == samples.shape[1]
    try:
        out = upscaler().upscale(audio)
    except UpscalerError:
        event("refused")
        return
    event("upscaled")
    assert out.sample_rate == 48_000 and out.channels == samples.shape[0]
    assert np.isfinite(out.samples).all()


def test_the_fuzz_cases_can_fail():
    """The property is not vacuous: a valid file gets through every entry point."""
    for suffix in (".wav", ".mp3"):
        assert check_entry_points(valid_file(suffix), suffix) == "upscaled"
    assert check_entry_points(b"\x00" * 100, ".wav") == "refused"
