"""The codec-consistency check of restorations (audio_upscaler.consistency) and its plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audio_upscaler import codecs
from audio_upscaler.consistency import SourceCodec, codec_consistent, parse_source_codec, source_codec_of
from audio_upscaler.errors import UpscalerError

RATE = 44_100


def band_level_db(x: np.ndarray, low_hz: float, high_hz: float, rate: int = RATE) -> float:
    freqs, power = signal.welch(x[0], rate, nperseg=4096)
    band = (freqs >= low_hz) & (freqs < high_hz)
    return float(10 * np.log10(power[band].sum() + 1e-30))


def write_mp3(path, samples: np.ndarray, kbps: int) -> None:
    """Mono ``[1, T]`` at ``RATE`` as a CBR MP3 file, written by the project's own writer."""
    from audio_upscaler.audio import Audio
    from audio_upscaler.io import output_format_for, write_audio

    write_audio(path, Audio(np.clip(samples, -1, 1), RATE), output_format_for(str(path), bitrate_kbps=kbps))


def tonal_clip(seconds: float = 2.0) -> np.ndarray:
    """Harmonics of 220 Hz up to 6 kHz over a -70 dBFS noise floor: ``[1, T]`` float32."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 28))
    x = x + 10 ** (-70 / 20) * np.random.default_rng(0).standard_normal(t.size)
    return (0.5 * x / np.abs(x).max())[None].astype(np.float32)


@pytest.fixture(scope="module")
def decoded_and_restored():
    """A 128 kbps MP3 of the tonal clip, and a "restoration" of it that adds a loud false fill at
    9 kHz (the original has only its -70 dBFS floor there; the codec would keep a tone that loud)
    and quiet noise at 20.8-21.8 kHz (above LAME's low-pass at 128 kbps, 20.2 kHz: nothing comes back)."""
    decoded = codecs.roundtrip(tonal_clip(), RATE, "mp3", 128)
    t = np.arange(decoded.shape[1]) / RATE
    false_fill = 0.05 * np.sin(2 * np.pi * 9000 * t)
    sos = signal.butter(8, [20_800, 21_800], "bandpass", fs=RATE, output="sos")
    air = signal.sosfilt(sos, 1e-3 * np.random.default_rng(1).standard_normal(t.size))
    return decoded, (decoded + false_fill + air).astype(np.float32)


def test_a_fill_the_codec_would_keep_is_turned_down_and_the_rest_left_alone(decoded_and_restored):
    decoded, restored = decoded_and_restored
    out = codec_consistent(restored, decoded, RATE, SourceCodec("mp3", 128, RATE))
    assert out.shape == restored.shape and out.dtype == np.float32
    # two passes of 10 dB: the tone comes back from every round trip, so it loses 20 dB
    drop = band_level_db(restored, 8900, 9100) - band_level_db(out, 8900, 9100)
    assert 17.0 < drop < 23.0
    # the band above the codec's low-pass never comes back from a round trip: untouched
    assert band_level_db(out, 20_900, 21_700) == pytest.approx(band_level_db(restored, 20_900, 21_700), abs=0.2)
    # the kept band (the decoded partials) is as it was
    kept = band_level_db(out - restored, 100, 6000) - band_level_db(restored, 100, 6000)
    assert kept < -60.0


def test_nothing_above_the_sources_nyquist_frequency_is_touched():
    """Checked at 48 kHz against a 44.1 kHz source: the band above 22.05 kHz (which the pipeline
    may extend into) is never judged by a codec that could not represent it."""
    from audio_upscaler.dsp.resample import resample

    decoded = resample(codecs.roundtrip(tonal_clip(1.0), RATE, "mp3", 128), RATE, 48_000)
    t = np.arange(decoded.shape[1]) / 48_000
    restored = (decoded + 0.01 * np.sin(2 * np.pi * 23_000 * t)).astype(np.float32)
    out = codec_consistent(restored, decoded, 48_000, SourceCodec("mp3", 128, RATE))
    assert band_level_db(out, 22_800, 23_200, 48_000) == pytest.approx(band_level_db(restored, 22_800, 23_200, 48_000), abs=0.1)


def test_an_unchanged_decoded_input_passes_unchanged():
    decoded = codecs.roundtrip(tonal_clip(1.0), RATE, "aac", 96)
    np.testing.assert_array_equal(codec_consistent(decoded, decoded, RATE, SourceCodec("aac", 96)), decoded)


def test_shapes_must_match():
    with pytest.raises(ValueError):
        codec_consistent(np.zeros((1, 100), np.float32), np.zeros((2, 100), np.float32), RATE, SourceCodec("mp3", 128))


@pytest.mark.parametrize("text,expected", [
    ("mp3:128", SourceCodec("mp3", 128)),
    (" MP3:150 ", SourceCodec("mp3", 128)),  # off MP3's ladder (a VBR mean): down to the next step
    ("aac:150", SourceCodec("aac", 150)),
    ("opus:64", SourceCodec("opus", 64)),
])
def test_parse_source_codec(text, expected):
    assert parse_source_codec(text) == expected


@pytest.mark.parametrize("text,message", [
    ("mp3", "codec:kbps"), ("mp3:fast", "codec:kbps"), ("flac:128", "unknown codec"), ("mp3:1000", "8-320"),
])
def test_parse_source_codec_rejects_bad_text(text, message):
    with pytest.raises(UpscalerError, match=message):
        parse_source_codec(text)


def test_the_source_codec_is_read_from_a_lossy_file(tmp_path):
    from audio_upscaler.analysis import analyze

    write_mp3(tmp_path / "x.mp3", tonal_clip(1.0), 96)
    report = analyze(tmp_path / "x.mp3")
    assert (report.codec, report.bitrate_kbps) == ("mp3", 96)
    assert "mp3 96 kbps" in report.summary_lines()[0]
    assert source_codec_of(report.codec, report.bitrate_kbps, RATE) == SourceCodec("mp3", 96, RATE)
    sf.write(tmp_path / "x.wav", tonal_clip(0.5)[0], RATE)
    report = analyze(tmp_path / "x.wav")
    assert report.bitrate_kbps is None and source_codec_of(report.codec, report.bitrate_kbps, RATE) is None
    assert source_codec_of("mp3", 150, RATE) == SourceCodec("mp3", 128, RATE)  # a VBR mean, rounded down
    assert source_codec_of("mp3", None, RATE) is None


# ---------------------------------------------------------------- pipeline, with the shipped model


@pytest.fixture(scope="module")
def chorale_at_128k():
    """The fixture's BWV 333 at 44.1 kHz and its 128 kbps MP3 (as the benchmark's mp3_128k task)."""
    from pathlib import Path

    from audio_upscaler.degrade import apply_task
    from audio_upscaler.dsp.resample import resample

    clean, rate = sf.read(Path(__file__).parent / "data" / "validation" / "music" / "bwv333.flac",
                          dtype="float32", always_2d=True)
    clean = resample(clean.T, rate, RATE)
    return clean, apply_task("mp3_128k", clean, RATE).degraded


def test_the_check_brings_a_restored_mp3_closer_to_the_original(chorale_at_128k, monkeypatch, tmp_path):
    """BWV 333 at 128 kbps: the restore model takes the gaps between the chorale's sparse partials
    at 12-16 kHz for holes; checked against MP3 128 kbps those fills are turned down (measured LSD
    0.78 -> 0.66, decoded MP3 1.44) and SI-SDR rises."""
    from audio_upscaler.audio import Audio
    from audio_upscaler.metrics import lsd, si_sdr
    from audio_upscaler.models import registry
    from audio_upscaler.pipeline import Upscaler

    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))  # only shipped models
    clean, decoded = chorale_at_128k
    plain = Upscaler("restore", RATE, limiter=False).upscale(Audio(decoded, RATE)).samples[:, : clean.shape[1]]
    checked = Upscaler("restore", RATE, limiter=False, source_codec="mp3:128").upscale(
        Audio(decoded, RATE)).samples[:, : clean.shape[1]]
    assert lsd(clean, checked, RATE).lsd < lsd(clean, plain, RATE).lsd - 0.05
    assert si_sdr(clean, checked) > si_sdr(clean, plain)


def test_a_lossy_files_codec_is_read_and_named_only_when_the_check_is_asked_for(chorale_at_128k, monkeypatch, tmp_path):
    from audio_upscaler.models import registry
    from audio_upscaler.pipeline import Upscaler

    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    _, decoded = chorale_at_128k
    write_mp3(tmp_path / "in.mp3", decoded, 112)
    outputs = {}
    for check in (False, True):
        result = Upscaler("restore", RATE, codec_check=check).upscale_file(tmp_path / "in.mp3", tmp_path / f"{check}.wav")
        assert ("fills checked by re-encoding as mp3 112 kbps" in result.model_reason) == check
        outputs[check] = sf.read(tmp_path / f"{check}.wav", dtype="float32")[0]
    assert not np.allclose(outputs[False], outputs[True])
    sf.write(tmp_path / "decoded.wav", decoded[0], RATE)
    result = Upscaler("restore", RATE, codec_check=True).upscale_file(tmp_path / "decoded.wav", tmp_path / "w.wav")
    assert "codec and bitrate are unknown" in result.model_reason
    result = Upscaler("default", RATE, source_codec="mp3:128").upscale_file(tmp_path / "decoded.wav", tmp_path / "d.wav")
    assert "re-encoding" not in result.model_reason  # a band extender keeps the decoded band: nothing to check
    assert "no codec check: it checks restoration models, and 'default' keeps the input's band" in result.model_reason


def test_a_declared_source_codec_makes_auto_restore_a_plain_band_limited_wav(monkeypatch, tmp_path):
    """A WAV decoded from a lossy file may show no codec in its spectrum (here: a clean tonal clip
    cut at 8 kHz); ``--source-codec`` says it is lossy, so ``auto`` restores it, checked."""
    from audio_upscaler.dsp.resample import resample
    from audio_upscaler.models import registry
    from audio_upscaler.pipeline import Upscaler

    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    sf.write(tmp_path / "in.wav", resample(tonal_clip(1.0), RATE, 16_000)[0], 16_000)
    plain = Upscaler("auto", RATE).upscale_file(tmp_path / "in.wav", tmp_path / "a.wav")
    declared = Upscaler("auto", RATE, source_codec="mp3:64").upscale_file(tmp_path / "in.wav", tmp_path / "b.wav")
    assert plain.model == "default" and declared.model == "restore"
    assert "decoded from mp3 64 kbps, says --source-codec" in declared.model_reason
    assert "fills checked by re-encoding as mp3 64 kbps" in declared.model_reason


def test_benchmark_methods_with_the_check():
    from audio_upscaler.bench.runner import check_methods, method_model, source_codec

    assert check_methods(["restore+check", "sinc"]) == ["restore+check", "sinc"]
    assert method_model("restore+check") == "restore" and method_model("sinc") == "none"
    assert source_codec("restore+check", "mp3_128k") == "mp3:128"
    assert source_codec("restore", "mp3_128k") is None and source_codec("restore+check", "bwe_8k_48k") is None
    with pytest.raises(UpscalerError, match="unknown method"):
        check_methods(["restore+chek"])
