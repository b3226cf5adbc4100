"""Tests for audio_upscaler.io: round trips per format, PyAV inputs, streaming, errors, atomic writes."""

from __future__ import annotations

import errno
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from audio_upscaler import io
from audio_upscaler.audio import Audio
from audio_upscaler.errors import UpscalerError

TAGS = {"title": "Tïtle ünd Ärt", "artist": "Someone", "album": "An Album", "date": "2024",
        "genre": "Test", "tracknumber": "7", "comment": "made in a test"}


def tones(sample_rate: int, seconds: float, channels: int, amplitude: float = 0.5) -> np.ndarray:
    """Float32 [channels, time]: a different low harmonic tone per channel."""
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    rows = [amplitude * (0.7 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.3 * np.sin(2 * np.pi * (440 + 220 * c) * t))
            for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """What an integer PCM file must store: round to the step, clip to the integer range."""
    scale = 2.0 ** (bits - 1)
    return (np.clip(np.round(x.astype(np.float64) * scale), -scale, scale - 1) / scale).astype(np.float32)


def aligned_correlation(ref: np.ndarray, test: np.ndarray, max_lag: int = 2500) -> float:
    """Lowest per-channel correlation of ``test`` with ``ref`` at the best lag (codec delays); NaN if silent."""
    correlations = []
    for r, y in zip(ref, test):
        full = np.correlate(y[: len(r) + max_lag], r[: len(r) - max_lag], mode="valid")
        lag = int(np.argmax(full[: max_lag + 1]))
        segment = y[lag : lag + len(r) - max_lag]
        with np.errstate(invalid="ignore", divide="ignore"):
            correlations.append(np.corrcoef(r[: len(segment)], segment)[0, 1])
    return float(np.min(correlations))


def encode_with_pyav(path: Path, x: np.ndarray, sample_rate: int, codec: str, sample_format: str,
                     tags: dict | None = None, video: bool = False) -> None:
    """Encode float32 [channels, time] with FFmpeg through PyAV (optionally with a tiny video track)."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[x.shape[0]]
    with av.open(str(path), "w") as container:
        container.metadata.update(tags or {})
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        stream.codec_context.format = sample_format
        if codec in ("aac", "wmav2"):
            stream.bit_rate = 192_000
        if video:
            vstream = container.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 16, 16, "yuv420p"
        stream.codec_context.open()
        step = stream.codec_context.frame_size or 1024
        kind = sample_format.rstrip("p")
        scale, offset, dtype = {"flt": (1.0, 0, np.float32), "u8": (2.0**7, 128, np.uint8),
                                "s16": (2.0**15, 0, np.int16), "s32": (2.0**31, 0, np.int32)}[kind]
        for start in range(0, x.shape[1], step):
            block = x[:, start : start + step].astype(np.float64) * scale
            block = block.astype(dtype) if kind == "flt" else (np.round(block) + offset).astype(dtype)
            if not sample_format.endswith("p"):
                block = block.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=sample_format, layout=layout)
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if video:
            for k in range(5):
                picture = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
                picture.pts = k
                container.mux(vstream.encode(picture))
            container.mux(vstream.encode(None))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- lossless round trips ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, bit_depth, rate, channels",
    [("a.wav", 16, 44_100, 2), ("a.wav", 24, 192_000, 3), ("a.wav", 32, 8_000, 1),
     ("a.flac", 16, 48_000, 2), ("a.flac", 24, 96_000, 6), ("a.aiff", 16, 22_050, 2),
     ("a.aiff", 24, 384_000, 2), ("a.aiff", 32, 44_100, 1)],
)
def test_lossless_round_trip_is_exact_up_to_quantization(tmp_path, name, bit_depth, rate, channels):
    x = tones(rate, 0.2, channels)
    x[:, 10], x[:, 11] = 1.5, -1.7  # out of range: integer formats must clip, not wrap around
    fmt = io.output_format_for(name, bit_depth=bit_depth)
    io.write_audio(tmp_path / name, Audio(x, rate), fmt)
    audio = io.read_audio(tmp_path / name)
    assert audio.sample_rate == rate and audio.samples.shape == x.shape
    assert audio.samples.dtype == np.float32
    if bit_depth == 32:
        assert audio.bit_depth is None and audio.codec == "float"
        np.testing.assert_array_equal(audio.samples, x)  # float keeps values beyond full scale
    else:
        assert audio.bit_depth == bit_depth
        np.testing.assert_array_equal(audio.samples, quantize(x, bit_depth))
        assert audio.samples[:, 10].max() == pytest.approx(1 - 2.0 ** (1 - bit_depth))
        assert audio.samples[:, 11].min() == -1.0


def test_probe_reports_header_facts_without_decoding_everything(tmp_path):
    x = tones(44_100, 1.0, 2)
    sf.write(tmp_path / "a.wav", x.T, 44_100, subtype="PCM_24")
    info = io.probe(tmp_path / "a.wav")
    assert (info.container, info.codec, info.sample_rate, info.channels) == ("wav", "pcm_24", 44_100, 2)
    assert info.frames == 44_100 and info.duration == pytest.approx(1.0) and info.bit_depth == 24


# ---- lossy round trips ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, kwargs, rate, channels, codec",
    [("a.mp3", {"bitrate_kbps": 192}, 44_100, 2, "mp3"), ("a.mp3", {"vbr": 2.0}, 48_000, 1, "mp3"),
     ("a.mp3", {}, 22_050, 2, "mp3"), ("a.ogg", {}, 44_100, 2, "vorbis"), ("a.ogg", {"vbr": 0.3}, 96_000, 3, "vorbis"),
     ("a.opus", {}, 48_000, 2, "opus"), ("a.opus", {"bitrate_kbps": 256}, 24_000, 3, "opus")],
)
def test_lossy_round_trip_keeps_rate_channels_length_and_waveform(tmp_path, name, kwargs, rate, channels, codec):
    x = tones(rate, 0.5, channels)
    io.write_audio(tmp_path / name, Audio(x, rate), io.output_format_for(name, **kwargs))
    audio = io.read_audio(tmp_path / name)
    assert (audio.sample_rate, audio.channels, audio.codec, audio.bit_depth) == (rate, channels, codec, None)
    assert abs(audio.frames - x.shape[1]) <= 2048  # encoder padding at most
    assert aligned_correlation(x, audio.samples) > 0.9


@pytest.mark.parametrize(
    "name, kwargs, expected_kbps",
    [("a.mp3", {"bitrate_kbps": 128}, 128), ("a.mp3", {"bitrate_kbps": 320}, 320),
     ("a.mp3", {}, 320), ("a.opus", {"bitrate_kbps": 64}, 64), ("a.opus", {}, 192)],
)
def test_requested_bitrate_is_what_the_encoder_uses(tmp_path, name, kwargs, expected_kbps):
    rate = 48_000
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (2, rate * 2)).astype(np.float32)  # needs every bit
    io.write_audio(tmp_path / name, Audio(noise, rate), io.output_format_for(name, **kwargs))
    kbps = (tmp_path / name).stat().st_size * 8 / 2.0 / 1000
    assert kbps == pytest.approx(expected_kbps, rel=0.12)


@pytest.mark.parametrize("name", ["a.ogg", "a.mp3"])
def test_lossy_output_is_clipped_to_full_scale(tmp_path, name):
    loud = tones(44_100, 0.3, 1, amplitude=1.5)
    io.write_audio(tmp_path / name, Audio(loud, 44_100))
    assert 0.9 < np.abs(io.read_audio(tmp_path / name).samples).max() < 1.1


def test_vorbis_quality_and_mp3_vbr_quality_change_the_size(tmp_path):
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 44_100)).astype(np.float32)

    def size(name, q):
        io.write_audio(tmp_path / name, Audio(noise, 44_100), io.output_format_for(name, vbr=q), overwrite=True)
        return (tmp_path / name).stat().st_size

    assert size("a.ogg", 0.9) > 1.5 * size("a.ogg", 0.2)
    assert size("a.mp3", 0) > 1.5 * size("a.mp3", 7)


# ---- tags -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.wav", "a.flac", "a.ogg", "a.opus", "a.mp3"])
def test_tags_round_trip(tmp_path, name):
    rate = 48_000
    io.write_audio(tmp_path / name, Audio(tones(rate, 0.1, 2), rate, dict(TAGS)))
    assert io.probe(tmp_path / name).tags == TAGS


def test_aiff_keeps_the_tags_it_has_room_for(tmp_path):
    io.write_audio(tmp_path / "a.aiff", Audio(tones(8000, 0.1, 1), 8000, dict(TAGS)))
    tags = io.probe(tmp_path / "a.aiff").tags
    assert tags == {k: TAGS[k] for k in ("title", "artist", "comment")}


def test_mp3_tags_beyond_latin1_read_back_exactly(tmp_path):
    """MP3 tags are an ID3v2 tag with UTF-8 text: libsndfile and FFmpeg both read them back."""
    tags = {"title": "Café – 東京", "artist": "Ärt 🎵", "comment": "ünïcode"}
    io.write_audio(tmp_path / "a.mp3", Audio(tones(44_100, 0.1, 2), 44_100, dict(tags)))
    assert io.probe(tmp_path / "a.mp3").tags == tags
    with av.open(str(tmp_path / "a.mp3")) as container:  # strict decoding of the metadata
        assert {k: container.metadata[k] for k in tags} == tags
    assert sf.info(tmp_path / "a.mp3").frames == 4_410  # the tag in front does not change the audio


# ---- FFmpeg (PyAV) inputs ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, codec, sample_format, rate, channels, video, bit_depth, container",
    [("a.m4a", "aac", "fltp", 44_100, 2, False, None, "m4a"),
     ("b.m4a", "alac", "s32p", 96_000, 2, False, 24, "m4a"),
     ("c.wma", "wmav2", "fltp", 44_100, 2, False, None, "asf"),
     ("d.mp4", "aac", "fltp", 48_000, 2, True, None, "mp4"),
     ("e.mkv", "flac", "s16", 32_000, 6, True, 16, "matroska"),
     ("f.mka", "pcm_s24le", "s32", 48_000, 2, False, 24, "matroska"),
     ("g.mkv", "pcm_u8", "u8", 8_000, 1, False, 8, "matroska")],
)
def test_pyav_formats_are_read(tmp_path, name, codec, sample_format, rate, channels, video, bit_depth, container):
    x = tones(rate, 0.5, channels)
    encode_with_pyav(tmp_path / name, x, rate, codec, sample_format, tags={"title": "T", "artist": "A", "track": "3"},
                     video=video)
    info = io.probe(tmp_path / name)
    assert (info.container, info.codec, info.sample_rate, info.channels) == (container, codec, rate, channels)
    assert info.bit_depth == bit_depth
    assert info.tags == {"title": "T", "artist": "A", "tracknumber": "3"}
    audio = io.read_audio(tmp_path / name)
    assert audio.samples.shape[0] == channels and abs(audio.frames - x.shape[1]) <= 2048
    assert aligned_correlation(x, audio.samples) > 0.9
    if bit_depth:  # lossless: exact up to the encoder's integer step
        np.testing.assert_allclose(audio.samples, x, atol=2.0 ** (1 - bit_depth) * 1.01)


# ---- streaming --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.flac", "a.mp3", "a.m4a"])
def test_streaming_blocks_equal_the_whole_read(tmp_path, name):
    x = tones(44_100, 2.0, 2)
    if name == "a.m4a":
        encode_with_pyav(tmp_path / name, x, 44_100, "aac", "fltp")
    else:
        io.write_audio(tmp_path / name, Audio(x, 44_100))
    whole = io.read_audio(tmp_path / name).samples
    with io.open_reader(tmp_path / name) as reader:
        first = reader.read(777)
        blocks = [first, *reader.blocks(10_000)]
        assert reader.read(10).shape == (2, 0)
    assert first.shape == (2, 777) and all(b.shape[1] == 10_000 for b in blocks[1:-1])
    assert 0 < blocks[-1].shape[1] <= 10_000
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)


def _streaming_peak_bytes(path: Path, seconds: float) -> int:
    """Peak Python/numpy allocation while streaming a ``seconds`` long mono file in 4096-frame blocks."""
    rate = 48_000
    x = tones(rate, seconds, 1, amplitude=0.3)
    if path.suffix == ".m4a":
        encode_with_pyav(path, x, rate, "aac", "fltp")
    else:
        io.write_audio(path, Audio(x, rate), io.output_format_for(path, bit_depth=16), overwrite=True)
    tracemalloc.start()
    try:
        with io.open_reader(path) as reader:
            frames = sum(block.shape[1] for block in reader.blocks(4096))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(frames - x.shape[1]) <= 2048
    return peak


@pytest.mark.parametrize("name", ["a.flac", "a.m4a"])
def test_streaming_memory_does_not_grow_with_file_length(tmp_path, name):
    short = _streaming_peak_bytes(tmp_path / name, 4.0)
    long = _streaming_peak_bytes(tmp_path / name, 20.0)
    assert long < 1.3 * short + 50_000
    assert long < 20 * 48_000 * 4 / 4  # a quarter of the decoded float32 size


# ---- bad inputs -------------------------------------------------------------------------------

def _png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = zlib.compress(b"".join(b"\x00" + bytes(48) for _ in range(16)))
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _truncated(path: Path, fmt: str, keep: float = 0.5) -> None:
    sf.write(path, tones(44_100, 1.0, 2).T, 44_100, format=fmt, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _float_wav_with(value: float, at: int):
    def make(path: Path) -> None:
        x = tones(44_100, 3.0, 2)
        x[1, at] = value
        sf.write(path, x.T, 44_100, subtype="FLOAT")
    return make


BAD_INPUTS = {
    "missing": ("missing.wav", lambda p: None, "file not found"),
    "directory": ("folder.wav", lambda p: p.mkdir(), "is a directory"),
    "zero bytes": ("empty.wav", lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    "text": ("notes.wav", lambda p: p.write_text("this is not audio\n" * 50), "not an audio file"),
    "image": ("picture.png", lambda p: p.write_bytes(_png_bytes()), "not an audio file"),
    "junk": ("junk.mp3", lambda p: p.write_bytes(np.random.default_rng(3).bytes(20_000)), "not an audio file"),
    "truncated wav": ("cut.wav", lambda p: _truncated(p, "WAV"), "truncated"),
    "truncated aiff": ("cut.aiff", lambda p: _truncated(p, "AIFF"), "truncated"),
    "truncated flac": ("cut.flac", lambda p: _truncated(p, "FLAC"), "truncated"),
    "no samples": ("silence.wav", lambda p: sf.write(p, np.zeros((0, 2)), 44_100), "contains no audio samples"),
    "nan": ("nan.wav", _float_wav_with(np.nan, 100_000), "NaN or infinite"),
    "inf": ("inf.wav", _float_wav_with(-np.inf, 5), "NaN or infinite"),
    "rate too low": ("low.wav", lambda p: sf.write(p, np.zeros((900, 1)), 900), "900 Hz is not supported"),
    "rate too high": ("high.wav", lambda p: sf.write(p, np.zeros((900, 1)), 800_000), "800000 Hz is not supported"),
    "9 channels": ("nine.wav", lambda p: sf.write(p, np.zeros((100, 9)), 48_000), "9 channels are not supported"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_line_and_no_output(tmp_path, case):
    name, make, fragment = BAD_INPUTS[case]
    source = tmp_path / "in" / name
    source.parent.mkdir()
    make(source)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(UpscalerError) as caught:
        with io.open_reader(source) as reader:
            fmt = io.output_format_for("out.flac")
            with io.open_writer(out_dir / "out.flac", reader.info.sample_rate, reader.info.channels, fmt) as writer:
                for block in reader.blocks(8192):
                    writer.write(block)
    message = str(caught.value)
    assert fragment in message and name in message and "\n" not in message
    assert listing(out_dir) == []


def test_nan_is_found_while_reading_not_only_at_open(tmp_path):
    _float_wav_with(np.nan, 100_000)(tmp_path / "nan.wav")
    with io.open_reader(tmp_path / "nan.wav") as reader:
        assert reader.read(50_000).shape == (2, 50_000)
        with pytest.raises(UpscalerError, match=r"at 2\.268 s"):
            reader.read(100_000)


def test_truncated_mp3_with_length_header_is_reported(tmp_path):
    io.write_audio(tmp_path / "a.mp3", Audio(tones(44_100, 2.0, 2), 44_100))
    data = (tmp_path / "a.mp3").read_bytes()
    (tmp_path / "a.mp3").write_bytes(data[: len(data) // 2])
    with pytest.raises(UpscalerError, match="truncated"):
        io.read_audio(tmp_path / "a.mp3")


# ---- output formats ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, format, expected",
    [("x.wav", None, "wav"), ("x.WAVE", None, "wav"), ("x.FLAC", None, "flac"), ("x.aif", None, "aiff"),
     ("x.mp3", None, "mp3"), ("x.oga", None, "ogg"), ("x.opus", None, "opus"), ("x.wav", "flac", "flac")],
)
def test_format_from_extension_or_explicit(name, format, expected):
    assert io.output_format_for(name, format=format).container == expected


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"path": "x.xyz"}, ".flac"), ({"path": "x.wav", "format": "wma"}, "unknown output format"),
     ({"path": "x.flac", "bit_depth": 32}, "use WAV or AIFF for 32-bit float"),
     ({"path": "x.wav", "bit_depth": 20}, "not 20"), ({"path": "x.mp3", "bit_depth": 16}, "bit depth"),
     ({"path": "x.wav", "bitrate_kbps": 128}, "apply to MP3"),
     ({"path": "x.mp3", "bitrate_kbps": 128, "vbr": 2}, "not both"),
     ({"path": "x.mp3", "vbr": 12}, "between 0 and 9"), ({"path": "x.ogg", "bitrate_kbps": 128}, "quality"),
     ({"path": "x.opus", "vbr": 0.5}, "bitrate")],
)
def test_bad_format_requests_are_explained(kwargs, fragment):
    with pytest.raises(UpscalerError, match=fragment.replace(".", r"\.")):
        io.output_format_for(**kwargs)


def test_defaults_and_integer_flag():
    assert io.output_format_for("x.flac") == io.OutputFormat("flac", 24)
    assert io.output_format_for("x.wav", bit_depth=16).is_integer_pcm
    assert not io.output_format_for("x.wav", bit_depth=32).is_integer_pcm
    assert not io.output_format_for("x.mp3").is_integer_pcm
    mp3 = io.output_format_for("x.mp3", vbr=True)
    assert mp3.vbr and mp3.quality == 0


@pytest.mark.parametrize(
    "name, rate, fragment",
    [("x.mp3", 96_000, "at most 48 kHz"), ("x.mp3", 40_000, "at most 48 kHz"), ("x.opus", 44_100, "48 kHz"),
     ("x.ogg", 384_000, "at most 192000"), ("x.flac", 768_000, "at most 655350"), ("x.wav", 900, "outside")],
)
def test_rates_a_format_cannot_store_are_refused(name, rate, fragment):
    with pytest.raises(UpscalerError, match=fragment):
        io.output_format_for(name).validate_rate(rate)


@pytest.mark.parametrize("channels, kbps, top", [(1, 300, 256), (2, 600, 510), (5, 1400, 1280)])
def test_opus_bitrate_beyond_what_libopus_gives_is_refused(tmp_path, channels, kbps, top):
    fmt = io.output_format_for("a.opus", bitrate_kbps=kbps)
    with pytest.raises(UpscalerError, match=f"between 6 and {top}, not {kbps}"):
        io.open_writer(tmp_path / "a.opus", 48_000, channels, fmt)
    assert listing(tmp_path) == []
    io.output_format_for("a.opus", bitrate_kbps=top).validate_channels(channels)  # the top itself is fine


@pytest.mark.parametrize("name, rate", [("x.mp3", 48_000), ("x.mp3", 8_000), ("x.opus", 48_000),
                                        ("x.ogg", 192_000), ("x.flac", 384_000), ("x.wav", 768_000)])
def test_rates_a_format_can_store_are_accepted(name, rate):
    io.output_format_for(name).validate_rate(rate)


def test_mp3_refuses_more_than_two_channels(tmp_path):
    with pytest.raises(UpscalerError, match="1-2 channels"):
        io.open_writer(tmp_path / "a.mp3", 44_100, 3, io.output_format_for("a.mp3"))
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name, channels", [("a.ogg", 6), ("a.opus", 6), ("a.opus", 7), ("a.ogg", 8)])
def test_vorbis_and_opus_refuse_channel_counts_with_an_lfe_channel(tmp_path, name, channels):
    """libvorbis / libopus code one of 6-8 channels as an LFE channel (only its lowest ~120 Hz
    survives): a 6-channel Vorbis file lost its 6th channel's 770 Hz tone without a word."""
    with pytest.raises(UpscalerError, match="1-5 channels.*LFE.*use FLAC or WAV"):
        io.open_writer(tmp_path / name, 48_000, channels, io.output_format_for(name))
    assert listing(tmp_path) == []
    x = tones(48_000, 0.5, 5)  # five channels all come back
    io.write_audio(tmp_path / name, Audio(x, 48_000))
    assert aligned_correlation(x, io.read_audio(tmp_path / name).samples) > 0.9


# ---- M4A output: AAC and ALAC (through FFmpeg) ---------------------------------------------------

@pytest.mark.parametrize("bit_depth, rate, channels", [(16, 44_100, 2), (24, 192_000, 1), (24, 48_000, 6)])
def test_alac_round_trip_is_exact_up_to_quantization(tmp_path, bit_depth, rate, channels):
    x = tones(rate, 0.3, channels)
    x[:, 10], x[:, 11] = 1.5, -1.7  # clipped, not wrapped around
    io.write_audio(tmp_path / "a.m4a", Audio(x, rate, tags=TAGS), io.output_format_for("a.m4a", format="alac",
                                                                                        bit_depth=bit_depth))
    audio = io.read_audio(tmp_path / "a.m4a")
    assert (audio.codec, audio.bit_depth, audio.sample_rate, audio.channels) == ("alac", bit_depth, rate, channels)
    np.testing.assert_array_equal(audio.samples, quantize(x, bit_depth))
    assert audio.tags == TAGS
    assert listing(tmp_path) == ["a.m4a"]


@pytest.mark.parametrize("rate, channels", [(48_000, 2), (96_000, 1), (44_100, 5)])
def test_aac_m4a_keeps_length_alignment_and_tags(tmp_path, rate, channels):
    """The encoder's 1024 priming samples are in the edit list and its end padding is cut on
    reading: the file decodes to exactly the samples written, at lag 0 (44.1 kHz * 0.7 s is not
    a whole number of milliseconds: the edit list counts samples, not the muxer's default ms)."""
    x = tones(rate, 0.7, channels)
    io.write_audio(tmp_path / "a.m4a", Audio(x, rate, tags=TAGS))
    audio = io.read_audio(tmp_path / "a.m4a")
    assert (audio.codec, audio.bit_depth, audio.sample_rate, audio.channels) == ("aac", None, rate, channels)
    assert audio.frames == x.shape[1] and audio.tags == TAGS
    for ref, out in zip(x, audio.samples):
        assert np.corrcoef(ref[2000:-2000], out[2000:-2000])[0, 1] > 0.99  # no shift


@pytest.mark.parametrize("kbps, expected", [(None, 256), (96, 96), (320, 320)])
def test_aac_bitrate_is_what_the_encoder_uses(tmp_path, kbps, expected):
    rate = 48_000
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (2, rate * 2)).astype(np.float32)
    io.write_audio(tmp_path / "a.m4a", Audio(noise, rate), io.output_format_for("a.m4a", bitrate_kbps=kbps))
    assert (tmp_path / "a.m4a").stat().st_size * 8 / 2.0 / 1000 == pytest.approx(expected, rel=0.12)


@pytest.mark.parametrize(
    "kwargs, rate, channels, fragment",
    [({}, 192_000, 2, "AAC cannot store 192000 Hz.*--format alac"), ({"format": "alac"}, 48_000, 8, "ALAC output supports 1-6 channels"),
     ({}, 48_000, 6, "AAC output supports 1-5 channels"),
     ({}, 48_000, 1, "between 16 and 256, not 300"), ({"format": "alac", "bit_depth": 32}, 48_000, 2, "16, 24, not 32"),
     ({"format": "alac", "bitrate_kbps": 128}, 48_000, 2, "not to ALAC"), ({"vbr": 2.0}, 48_000, 2, "not a VBR")],
)
def test_m4a_requests_it_cannot_hold_are_explained_before_any_file(tmp_path, kwargs, rate, channels, fragment):
    if channels == 1:
        kwargs = {"bitrate_kbps": 300}
    with pytest.raises(UpscalerError, match=fragment):
        io.open_writer(tmp_path / "a.m4a", rate, channels, io.output_format_for("a.m4a", **kwargs))
    assert listing(tmp_path) == []


def test_m4a_format_names():
    assert io.output_format_for("x.m4a") == io.OutputFormat("m4a")  # AAC
    assert io.output_format_for("x.m4a", bit_depth=16) == io.OutputFormat("m4a", 16)  # a bit depth means ALAC
    alac = io.output_format_for("x.m4a", format="alac")
    assert alac == io.OutputFormat("m4a", 24) and alac.is_integer_pcm and alac.is_lossless
    assert not io.output_format_for("x.m4a").is_lossless


@pytest.mark.parametrize("fmt", [{}, {"format": "alac"}])
def test_disk_full_while_writing_m4a_is_one_clear_error_and_no_file(tmp_path, monkeypatch, fmt):
    """FFmpeg writes through a Python file object: the ENOSPC it raises must come out as the
    writers' usual message, with the temporary file gone."""
    from audio_upscaler import m4a

    class FillsUp:
        def __init__(self, file):
            self.file, self.written = file, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 20_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    monkeypatch.setattr(m4a, "open", lambda path, mode: FillsUp(open(path, mode)), raising=False)
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 48_000 * 3)).astype(np.float32)
    with pytest.raises(UpscalerError, match="a.m4a: cannot write: disk full"):
        io.write_audio(tmp_path / "a.m4a", Audio(noise, 48_000), io.output_format_for("a.m4a", **fmt))
    assert listing(tmp_path) == []


def test_exception_mid_m4a_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with io.open_writer(tmp_path / "a.m4a", 48_000, 2, io.output_format_for("a.m4a")) as writer:
            writer.write(tones(48_000, 0.5, 2))
            raise RuntimeError("boom")
    assert listing(tmp_path) == []


# ---- atomic writes and output paths -----------------------------------------------------------

def test_writer_uses_a_hidden_temp_file_in_the_destination_folder(tmp_path):
    fmt = io.output_format_for("a.flac")
    with io.open_writer(tmp_path / "a.flac", 48_000, 2, fmt) as writer:
        writer.write(tones(48_000, 0.1, 2))
        names = listing(tmp_path)
        assert len(names) == 1 and names[0].startswith(".a.flac.") and names[0].endswith(".tmp")
    assert listing(tmp_path) == ["a.flac"]


def test_writer_flushes_the_data_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    io.write_audio(tmp_path / "a.wav", Audio(tones(48_000, 0.1, 1), 48_000), io.output_format_for("a.wav"))
    assert events == ["fsync", "replace"]


def test_exception_mid_write_leaves_nothing_and_keeps_the_old_output(tmp_path):
    old = Audio(tones(48_000, 0.1, 1), 48_000)
    io.write_audio(tmp_path / "a.wav", old, io.output_format_for("a.wav", bit_depth=32))
    with pytest.raises(RuntimeError, match="boom"):
        with io.open_writer(tmp_path / "a.wav", 48_000, 1, io.output_format_for("a.wav"), overwrite=True) as writer:
            writer.write(tones(48_000, 0.5, 1, amplitude=0.1))
            raise RuntimeError("boom")
    assert listing(tmp_path) == ["a.wav"]
    np.testing.assert_array_equal(io.read_audio(tmp_path / "a.wav").samples, old.samples)


@pytest.mark.parametrize("code, fragment", [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied")])
def test_os_errors_during_write_become_clear_messages_without_files(tmp_path, monkeypatch, code, fragment):
    calls = []
    real_write = sf.SoundFile.write

    def failing_write(self, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(code, os.strerror(code))
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    long_audio = Audio(tones(48_000, 3.0, 2), 48_000)  # three blocks: the second write fails
    with pytest.raises(UpscalerError, match=fragment) as caught:
        io.write_audio(tmp_path / "a.flac", long_audio)
    assert "a.flac" in str(caught.value) and len(calls) == 2
    assert listing(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path):
    first, second = Audio(tones(8000, 0.1, 1), 8000), Audio(tones(8000, 0.2, 1), 8000)
    io.write_audio(tmp_path / "a.wav", first)
    with pytest.raises(UpscalerError, match="exists; pass --overwrite"):
        io.write_audio(tmp_path / "a.wav", second)
    assert io.probe(tmp_path / "a.wav").frames == first.frames
    io.write_audio(tmp_path / "a.wav", second, overwrite=True)
    assert io.probe(tmp_path / "a.wav").frames == second.frames
    assert listing(tmp_path) == ["a.wav"]


@pytest.mark.parametrize("alias", ["same", "relative", "symlink", "hardlink"])
def test_output_equal_to_input_is_refused_even_with_overwrite(tmp_path, monkeypatch, alias):
    source = tmp_path / "in.wav"
    io.write_audio(source, Audio(tones(8000, 0.1, 1), 8000))
    output = {"same": source, "relative": Path("sub/../in.wav"), "symlink": tmp_path / "link.wav",
              "hardlink": tmp_path / "hard.wav"}[alias]
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    if alias == "symlink":
        output.symlink_to(source)
    if alias == "hardlink":
        os.link(source, output)
    with pytest.raises(UpscalerError, match="overwrite the input"):
        io.check_output_path(output, source, overwrite=True)


def test_check_output_path_accepts_a_new_file_and_refuses_bad_folders(tmp_path):
    assert io.check_output_path(tmp_path / "new.flac", tmp_path / "in.wav") == tmp_path / "new.flac"
    with pytest.raises(UpscalerError, match="does not exist"):
        io.check_output_path(tmp_path / "nope" / "a.flac")
    with pytest.raises(UpscalerError, match="is a directory"):
        io.check_output_path(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions, so nothing to refuse")
def test_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UpscalerError, match="permission denied"):
        io.write_audio(locked / "a.wav", Audio(tones(8000, 0.1, 1), 8000))


def test_written_file_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_audio(tmp_path / "a.wav", Audio(tones(8000, 0.1, 1), 8000))
    finally:
        os.umask(old)
    assert (tmp_path / "a.wav").stat().st_mode & 0o777 == 0o644


# --- WAV files past 4 GiB: RF64 when the length is known, a clean error when it is not -------------
SMALL_LIMIT = 40_000  # bytes, standing in for the 4 GiB a WAV/AIFF header can describe


@pytest.fixture
def small_riff_limit(monkeypatch):
    from audio_upscaler import io_formats

    monkeypatch.setattr(io_formats, "RIFF_DATA_LIMIT", SMALL_LIMIT)


def test_a_wav_too_long_for_its_header_is_written_as_rf64(tmp_path, small_riff_limit):
    x = tones(48_000, 0.5, 2)  # 96,000 bytes at 16 bits
    io.write_audio(tmp_path / "long.wav", Audio(x, 48_000), io.output_format_for("x.wav", bit_depth=16))
    info = sf.info(tmp_path / "long.wav")
    assert (info.format, info.frames, info.channels) == ("RF64", x.shape[1], 2)
    np.testing.assert_array_equal(io.read_audio(tmp_path / "long.wav").samples, quantize(x, 16))
    short = x[:, :4_000]  # 16,000 bytes: a plain WAV
    io.write_audio(tmp_path / "short.wav", Audio(short, 48_000), io.output_format_for("x.wav", bit_depth=16))
    assert sf.info(tmp_path / "short.wav").format == "WAV"


@pytest.mark.parametrize("name", ["x.wav", "x.aiff"])
def test_a_riff_file_of_unknown_length_past_the_limit_fails_cleanly(tmp_path, small_riff_limit, name):
    x = tones(48_000, 0.5, 2)
    with pytest.raises(UpscalerError, match="longer than a (WAV|AIFF) file can hold"):
        with io.open_writer(tmp_path / name, 48_000, 2, io.output_format_for(name, bit_depth=16)) as writer:
            for start in range(0, x.shape[1], 4_800):
                writer.write(x[:, start:start + 4_800])
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file


def test_upscaling_to_a_long_wav_writes_rf64(tmp_path, small_riff_limit):
    from audio_upscaler.pipeline import Upscaler

    io.write_audio(tmp_path / "in.flac", Audio(tones(16_000, 0.5, 1), 16_000))
    Upscaler(model="none", target_rate=48_000).upscale_file(tmp_path / "in.flac", tmp_path / "out.wav")
    info = sf.info(tmp_path / "out.wav")
    assert (info.format, info.frames) == ("RF64", 24_000)


# ---- output paths that are not plain new files ------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "symlink-to-device"])
def test_output_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    target = tmp_path / "out.wav"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(os.devnull)
    with pytest.raises(UpscalerError, match="not a regular file"):
        io.check_output_path(target, overwrite=True)
    with pytest.raises(UpscalerError, match="not a regular file"):
        io.write_audio(target, Audio(tones(8000, 0.1, 1), 8000), overwrite=True)
    assert listing(tmp_path) == ["out.wav"]
    assert target.is_fifo() if kind == "fifo" else target.is_symlink() and target.is_char_device()


def test_symlink_output_is_written_through_to_its_target(tmp_path):
    (tmp_path / "music").mkdir()
    target, link = tmp_path / "music" / "real.wav", tmp_path / "link.wav"
    io.write_audio(target, Audio(tones(8000, 0.1, 1), 8000))
    link.symlink_to(target)
    with pytest.raises(UpscalerError, match="exists; pass --overwrite"):
        io.write_audio(link, Audio(tones(8000, 0.2, 1), 8000))
    written = io.write_audio(link, Audio(tones(8000, 0.2, 1), 8000), overwrite=True)
    assert written == target and link.is_symlink() and link.resolve() == target
    assert io.probe(target).frames == 1600
    assert listing(tmp_path) == ["link.wav", "music"] and listing(tmp_path / "music") == ["real.wav"]


@pytest.mark.parametrize("stem", ["a" * 249, "é" * 125], ids=["ascii", "two-byte"])
def test_longest_legal_output_name_is_written(tmp_path, stem):
    name = stem + ".flac"
    assert len(os.fsencode(name)) in (254, 255)
    io.write_audio(tmp_path / name, Audio(tones(8000, 0.1, 1), 8000))
    assert listing(tmp_path) == [name]


def test_output_name_too_long_for_the_file_system_is_a_clear_error(tmp_path):
    with pytest.raises(UpscalerError, match="file name is too long"):
        io.write_audio(tmp_path / ("a" * 300 + ".flac"), Audio(tones(8000, 0.1, 1), 8000))
    with pytest.raises(UpscalerError, match="too long"):  # the whole path past the system's limit
        io.check_output_path(tmp_path.joinpath(*["b" * 200] * 30, "a.flac"))
    assert listing(tmp_path) == []


def test_empty_output_name_is_refused():
    with pytest.raises(UpscalerError, match="empty"):
        io.check_output_path("")


# ---- file names that are not UTF-8 ------------------------------------------------------------

def non_utf8_name(folder: Path, name: bytes) -> Path:
    """``folder / name`` for a name that is not valid UTF-8, as Python gives it (surrogate
    escapes, ``os.fsdecode``); skips the test where the file system refuses such names."""
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    try:
        Path(path).touch()
        path.unlink()
    except OSError as exc:  # e.g. EILSEQ on a file system that allows only UTF-8 names
        pytest.skip(f"the file system refuses the non-UTF-8 name {name!r}: {exc}")
    return path


@pytest.mark.parametrize("name", [b"caf\xe9.wav", b"caf\xe9.flac", b"caf\xe9.mp3", b"caf\xe9.ogg"])
def test_non_utf8_file_names_are_written_and_read(tmp_path, name):
    path = non_utf8_name(tmp_path, name)
    x = tones(44_100, 0.5, 2)
    assert io.write_audio(path, Audio(x, 44_100, dict(TAGS))) == path
    assert os.listdir(os.fsencode(tmp_path)) == [name]  # the temporary file was renamed onto it
    info = io.probe(path)
    assert (info.path, info.sample_rate, info.channels) == (path, 44_100, 2)
    back = io.read_audio(path)
    assert back.sample_rate == 44_100 and back.channels == 2 and back.tags["title"] == TAGS["title"]
    if name.endswith((b".wav", b".flac")):
        np.testing.assert_allclose(back.samples, quantize(x, back.bit_depth), atol=1e-6)


def test_non_utf8_names_of_files_only_ffmpeg_reads_and_of_folders(tmp_path):
    folder = non_utf8_name(tmp_path, b"d\xf6rt")
    folder.mkdir()
    m4a = folder / os.fsdecode(b"caf\xe9.m4a")
    encode_with_pyav(m4a, tones(44_100, 0.5, 1), 44_100, "aac", "fltp")
    assert io.probe(m4a).codec == "aac" and io.read_audio(m4a).channels == 1
    # the pipeline's two-pass (normalizing) write keeps a float temporary file in the output folder
    from audio_upscaler import Upscaler

    out = folder / os.fsdecode(b"\xe9t\xe9.flac")
    Upscaler(model="none", target_rate=48_000, normalize_dbfs=-1.0).upscale_file(m4a, out)
    assert sorted(os.listdir(os.fsencode(folder))) == [b"caf\xe9.m4a", b"\xe9t\xe9.flac"]
    assert io.probe(out).sample_rate == 48_000
