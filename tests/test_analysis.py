"""Analysis: effective bandwidth (accuracy table, codecs, verdicts), levels, loudness, streaming."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from scipy.signal import butter, ellip, sosfilt, sosfreqz, welch

from audio_upscaler.analysis import StreamingAnalyzer, analyze, estimate_cutoff
from audio_upscaler.audio import Audio
from audio_upscaler.bandwidth import KNEE_DB, TREND_DROP_DB, WALL_OCTAVES, CutoffEstimate
from audio_upscaler.errors import UpscalerError
from audio_upscaler.fingerprint import HOLE_FRACTION, HOLE_PERSISTENCE, HOLE_RUN_BINS, classify, codec_holes
from audio_upscaler.loudness import k_weighting_sos

from .signals import harmonic_tone

TOLERANCE_HZ = 300.0
DATA = Path(__file__).parent / "data"


# ---------------------------------------------------------------- test signals


@functools.lru_cache(maxsize=None)
def _pinkish(sample_rate: int, seconds: float, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(sample_rate * seconds)
    spec = np.fft.rfft(rng.standard_normal((channels, n)), axis=-1)
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    spec *= 1 / np.sqrt(np.maximum(f, 20.0) / 1000)  # -3 dB/octave above 20 Hz
    x = np.fft.irfft(spec, n, axis=-1)
    x *= 0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 0.7 * np.arange(n) / sample_rate))  # phrasing
    return (x / np.sqrt(np.mean(x**2)) * 0.1).astype(np.float32)  # -20 dBFS RMS


def pinkish(sample_rate: int, seconds: float = 2.0, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Music-like broadband content ``[channels, T]``: pink noise with a slow amplitude envelope."""
    return _pinkish(sample_rate, seconds, channels, seed).copy()


def brick_wall(x: np.ndarray, sample_rate: int, hz: float) -> np.ndarray:
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / sample_rate) > hz] = 0
    return np.fft.irfft(spec, x.shape[-1], axis=-1).astype(np.float32)


def filter_sos(shape: str, sample_rate: int, hz: float) -> np.ndarray:
    return {
        "butter16": lambda: butter(16, hz, fs=sample_rate, output="sos"),
        "elliptic": lambda: ellip(8, 0.1, 90, hz, fs=sample_rate, output="sos"),
        "butter4": lambda: butter(4, hz, fs=sample_rate, output="sos"),
    }[shape]()


def low_pass(x: np.ndarray, sample_rate: int, shape: str, hz: float) -> np.ndarray:
    if shape == "brick":
        return brick_wall(x, sample_rate, hz)
    return sosfilt(filter_sos(shape, sample_rate, hz), x, axis=-1).astype(np.float32)


def true_cutoff(shape: str, sample_rate: int, hz: float) -> float:
    """The documented definition applied to the filter's exact magnitude response: the -6 dB
    point for a steep wall (-6 -> -20 dB within a quarter octave), else the -20 dB point."""
    if shape == "brick":
        return hz
    freqs, h = sosfreqz(filter_sos(shape, sample_rate, hz), worN=1 << 16, fs=sample_rate)
    db = 20 * np.log10(np.abs(h) + 1e-30)
    knee = freqs[np.flatnonzero(db >= -KNEE_DB)[-1]]
    deep = freqs[np.flatnonzero(db >= -TREND_DROP_DB)[-1]]
    return knee if np.log2(deep / knee) <= WALL_OCTAVES else deep


def white_floor(shape: tuple, level_db: float, seed: int = 7) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 10 ** (level_db / 20)).astype(np.float32)


def to_16_bit_with_dither(x: np.ndarray, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lsb = 1 / 32768
    tpdf = (rng.uniform(-0.5, 0.5, x.shape) + rng.uniform(-0.5, 0.5, x.shape)) * lsb
    return (np.round((x + tpdf) / lsb) * lsb).astype(np.float32)


def assert_cutoff(samples: np.ndarray, sample_rate: int, expected_hz: float):
    est = estimate_cutoff(samples, sample_rate)
    if expected_hz >= 0.95 * sample_rate / 2:
        assert est.full_band, f"expected full band, got {est.hz:.0f} Hz"
    else:
        assert not est.full_band and abs(est.hz - expected_hz) <= TOLERANCE_HZ, (
            f"estimated {est.hz:.0f} Hz, true {expected_hz:.0f} Hz"
        )
    return est


# ---------------------------------------------------------------- cutoff accuracy


@pytest.mark.parametrize("floor_db", [None, -60, -90])
@pytest.mark.parametrize("hz", [4000, 8000, 11000, 16000, 20000])
@pytest.mark.parametrize("shape", ["brick", "butter16", "elliptic", "butter4"])
@pytest.mark.parametrize("sample_rate", [44_100, 48_000])
def test_cutoff_accuracy_table(sample_rate, shape, hz, floor_db):
    x = low_pass(pinkish(sample_rate), sample_rate, shape, hz)
    if floor_db is not None:
        x = x + white_floor(x.shape, floor_db)
    est = assert_cutoff(x, sample_rate, true_cutoff(shape, sample_rate, hz))
    if shape in ("brick", "elliptic"):
        assert est.steep


def test_gentle_roll_off_is_placed_at_the_20_db_point_not_the_nominal_cutoff():
    x = low_pass(pinkish(48_000), 48_000, "butter4", 4000)
    est = estimate_cutoff(x, 48_000)
    assert not est.steep and est.hz > 6000  # Butterworth-4 is 20 dB down at ~6.8 kHz


def test_dithered_16_bit_file():
    x = to_16_bit_with_dither(0.1 * low_pass(pinkish(44_100), 44_100, "brick", 11_000))  # -40 dBFS RMS
    assert_cutoff(x, 44_100, 11_000)


@pytest.mark.parametrize("pause", ["digital silence", "dither"])
def test_long_quiet_passages_do_not_hide_the_content(pause):
    sr = 44_100
    music = low_pass(pinkish(sr, 3.0), sr, "brick", 16_000)
    gap = np.zeros((1, 12 * sr), np.float32)
    x = np.concatenate([music[:, : sr], gap, music[:, sr:], gap], axis=1)  # 80 % pauses
    if pause == "dither":
        x = to_16_bit_with_dither(x)
    assert_cutoff(x, sr, 16_000)


def test_rates_from_8_khz_to_192_khz():
    assert_cutoff(brick_wall(pinkish(8000), 8000, 3000), 8000, 3000)
    assert_cutoff(brick_wall(pinkish(22_050), 22_050, 8000), 22_050, 8000)
    assert_cutoff(brick_wall(pinkish(96_000, 1.0), 96_000, 22_000), 96_000, 22_000)
    assert_cutoff(brick_wall(pinkish(192_000, 0.5), 192_000, 40_000), 192_000, 40_000)


def test_tonal_content_resampled_from_16_khz():
    tone = soxr.resample(harmonic_tone(48_000, 2.0).T, 48_000, 16_000, quality="VHQ")
    x = soxr.resample(tone, 16_000, 48_000, quality="VHQ").T
    assert_cutoff(x, 48_000, 7600)  # soxr's pass band ends at 95 % of 8 kHz


def test_per_channel_and_overall_cutoff():
    x = pinkish(48_000, channels=3)
    x[0] = brick_wall(x[0], 48_000, 8000)
    x[1] = brick_wall(x[1], 48_000, 16_000)
    x[2] = 0.0
    est = estimate_cutoff(x, 48_000)
    assert abs(est.per_channel_hz[0] - 8000) <= TOLERANCE_HZ
    assert abs(est.per_channel_hz[1] - 16_000) <= TOLERANCE_HZ
    assert est.per_channel_hz[2] == 0.0  # silent channel
    assert est.hz == est.per_channel_hz[1] and not est.full_band


@pytest.mark.parametrize("sample_rate", [16_000, 44_100, 48_000, 96_000])
def test_full_band_content(sample_rate):
    white = white_floor((2, sample_rate), -20)
    est = estimate_cutoff(white, sample_rate)
    assert est.full_band and est.hz >= 0.95 * sample_rate / 2
    assert estimate_cutoff(pinkish(sample_rate), sample_rate).full_band
    assert estimate_cutoff(harmonic_tone(sample_rate, 1.0), sample_rate).full_band


def test_short_and_silent_inputs():
    assert estimate_cutoff(np.zeros((2, 1000), np.float32), 44_100).full_band
    short = brick_wall(pinkish(44_100, 0.05), 44_100, 8000)  # shorter than one FFT frame
    assert abs(estimate_cutoff(short, 44_100).hz - 8000) <= 2 * TOLERANCE_HZ


# ---------------------------------------------------------------- real codecs


def _white_noise_cutoff(y: np.ndarray, sample_rate: int) -> float:
    """Ground truth, independent of the detector: where a white-noise encode's spectrum
    (Welch) falls 6 dB below its 1-5 kHz level."""
    f, p = welch(y.mean(axis=0), sample_rate, nperseg=4096)
    db = 10 * np.log10(p + 1e-30)
    return float(f[np.flatnonzero(db >= np.median(db[(f > 1000) & (f < 5000)]) - 6)[-1]])


@pytest.mark.parametrize(
    "codec, kbps, sample_rate, guess",
    [
        ("mp3", 64, 44_100, "mp3/aac"),
        ("mp3", 128, 44_100, "mp3/aac"),
        ("mp3", 192, 44_100, "mp3/aac"),
        ("mp3", 320, 44_100, "mp3/aac"),
        ("aac", 128, 44_100, "mp3/aac"),
        ("aac", 192, 48_000, "mp3/aac"),
        ("opus", 64, 48_000, "opus"),
    ],
)
def test_codec_cutoff_and_fingerprint(codec, kbps, sample_rate, guess):
    from audio_upscaler.codecs import roundtrip

    white = white_floor((2, 3 * sample_rate), -20)
    truth = _white_noise_cutoff(roundtrip(white, sample_rate, codec, kbps), sample_rate)
    assert truth < 0.93 * sample_rate / 2  # the encoder did cut
    coded = roundtrip(pinkish(sample_rate, 3.0, channels=2, seed=1), sample_rate, codec, kbps)
    report = analyze(Audio(coded, sample_rate))
    assert abs(report.cutoff_hz - truth) <= TOLERANCE_HZ
    assert report.steep_cutoff and not report.full_band
    assert report.codec_guess == guess and report.lossy_fingerprint


def test_mp3_128k_shows_spectral_holes_and_resampling_does_not():
    from audio_upscaler.codecs import roundtrip

    music = pinkish(44_100, 3.0, channels=2, seed=1)
    mp3 = analyze(Audio(roundtrip(music, 44_100, "mp3", 128), 44_100))
    assert mp3.spectral_holes >= 0.01 and mp3.lossy_fingerprint
    assert mp3.hole_persistence >= 2 * HOLE_PERSISTENCE  # a zeroed scale-factor band lasts
    assert mp3.hole_run_bins >= 1.25 * HOLE_RUN_BINS  # and spans several bins
    low = soxr.resample(music.T, 44_100, 32_000, quality="VHQ")
    resampled = analyze(Audio(soxr.resample(low, 32_000, 44_100, quality="VHQ").T, 44_100))
    assert resampled.spectral_holes < 0.005  # chance level for noise-like content is ~0.1 %
    # A resampler's wall at 95 % of 16 kHz is read as resampling, not as a codec (see
    # audio_upscaler.fingerprint for why a codec cutting there would be ambiguous).
    assert resampled.codec_guess == "resampled from 32000 Hz" and not resampled.lossy_fingerprint
    assert "upsampled from 32 kHz" in resampled.verdict


def test_content_falling_short_of_its_own_band_edge_at_a_low_rate_is_not_a_codec():
    """Audio resampled to 16 kHz whose level falls 12-16 dB over 6-7 kHz (a voice, a choir) reads
    as a steep cutoff there that no resampler explains, once taken for an MP3's low-pass (10 of 64
    corpus clips at 11 and 16 kHz). Its content still reaches the band edge, where the resampler to
    16 kHz put its wall, so it is not a codec; an MP3 at 16 kHz, whose LAME low-pass ends at 7.3
    kHz, still is."""
    from scipy.signal import firwin2, lfilter

    from audio_upscaler.codecs import roundtrip

    x = np.random.default_rng(3).standard_normal(144_000) * 0.1
    taps = firwin2(801, [0, 6000, 6600, 7200, 24_000], [1, 1, 0.25, 0.15, 0.15], fs=48_000)
    low = soxr.resample(lfilter(taps, 1, x), 48_000, 16_000, quality="VHQ").astype(np.float32)[None, :]
    report = analyze(Audio(low, 16_000))
    assert report.steep_cutoff and report.cutoff_hz < 7000 and report.content_top_hz > 7440
    assert not report.lossy_fingerprint and report.codec_guess is None
    assert "band edge of its 16 kHz rate" in report.verdict
    tone = soxr.resample(harmonic_tone(48_000, 3.0, seed=3).T, 48_000, 16_000, quality="VHQ").T
    mp3 = analyze(Audio(roundtrip(np.ascontiguousarray(tone, np.float32), 16_000, "mp3", 48), 16_000))
    assert mp3.lossy_fingerprint and mp3.codec_guess == "mp3/aac" and mp3.content_top_hz < 7440


def test_flickering_holes_of_lossless_speech_are_not_a_codec():
    """Speech resampled from 8 kHz without loss: the gaps between its harmonics under the 3.8
    kHz wall pass the hole count (1.4 %) but seldom last into the next frame, so the file is
    narrow-band speech for `default`, not a coded file for `restore` (which changes the band it
    keeps). Holes one bin wide do not count either (gaps between partials)."""
    from audio_upscaler.pipeline import Upscaler

    speech, rate = sf.read(DATA / "validation" / "speech" / "klettres_it_2.flac", dtype="float32", always_2d=True)
    low = soxr.resample(speech, rate, 8000, quality="VHQ")
    report = analyze(Audio(soxr.resample(low, 8000, 44_100, quality="VHQ").T, 44_100))
    assert 3000 < report.cutoff_hz < 4000 and (report.steep_cutoff or report.codec_wall_hz < 4000)
    assert report.spectral_holes >= HOLE_FRACTION and report.hole_persistence < HOLE_PERSISTENCE
    assert report.codec_guess == "telephone band" and not report.lossy_fingerprint
    assert Upscaler("auto", 48_000)._plan(report)[0] == "default"
    chorale, rate = sf.read(DATA / "validation" / "music" / "bwv187_7.flac", dtype="float32", always_2d=True)
    low = soxr.resample(chorale, rate, 8000, quality="VHQ")
    lasting = analyze(Audio(soxr.resample(low, 8000, 44_100, quality="VHQ").T, 44_100))
    assert lasting.spectral_holes >= HOLE_FRACTION and lasting.hole_persistence >= HOLE_PERSISTENCE
    assert lasting.hole_run_bins < HOLE_RUN_BINS and not lasting.lossy_fingerprint  # gaps between partials
    steep = CutoffEstimate(3800.0, [3800.0], False, steep=True)
    assert classify(steep, 44_100, 0.02, hole_persistence=0.3)[:2] == ("mp3/aac", True)
    assert classify(steep, 44_100, 0.02, hole_persistence=0.05)[:2] == ("telephone band", False)
    assert classify(steep, 44_100, 0.02, hole_persistence=0.3, hole_run_bins=1.1)[:2] == ("telephone band", False)
    assert codec_holes(0.06, 0.0, 1.0) and not codec_holes(0.009, 1.0, 3.0)  # many holes always count; few never


def test_hole_counts_do_not_depend_on_how_the_stream_is_cut():
    """Persistence links each frame to the next across the analyzer's blocks: fed in odd-sized
    blocks, ``HoleCounter`` counts exactly what it counts on the whole signal at once."""
    from audio_upscaler.codecs import roundtrip
    from audio_upscaler.fingerprint import HoleCounter

    mono = roundtrip(pinkish(44_100, 2.0, channels=1, seed=3), 44_100, "mp3", 64)[0]
    whole, pieces = HoleCounter(44_100), HoleCounter(44_100)
    whole.update(mono)
    edges = [0, 1000, 1001, 7777, 30_000, 30_512, mono.size]
    for a, b in zip(edges[:-1], edges[1:]):
        pieces.update(mono[a:b])
    for name in ("holes", "active", "followed", "repeated", "starts"):
        assert np.array_equal(getattr(whole, name), getattr(pieces, name)), name
    assert whole.repeated.sum() > 0 and whole.followed.sum() > whole.repeated.sum() > 0
    assert whole.holes.sum() >= whole.starts.sum() > 0


def test_content_stopping_under_a_resamplers_wall_reads_as_resampled():
    """The chorale upsampled from 11.025 kHz: its soundfont's content stops steeply at 4.7 kHz,
    where no resampler cuts, so it read as an encoder's low-pass and went to `restore` (LSD 2.13
    against `default`'s 1.19 on 8 s of it); soxr's wall at 5.4 kHz above it, and no codec's holes,
    make it resampled (coded files keep their reading: test_codec_cutoff_and_fingerprint)."""
    from audio_upscaler.pipeline import Upscaler

    chorale, rate = sf.read(DATA / "validation" / "music" / "bwv187_7.flac", dtype="float32", always_2d=True)
    low = soxr.resample(chorale, rate, 11_025, quality="VHQ")
    up = soxr.resample(low, 11_025, 44_100, quality="VHQ").T
    report = analyze(Audio(up, 44_100))
    assert report.steep_cutoff and report.cutoff_hz < 0.93 * 11_025 / 2  # under the resampler's wall
    assert report.codec_guess == "resampled from 11025 Hz" and not report.lossy_fingerprint
    assert "resampler's wall at 5." in report.verdict and 5000 < report.codec_wall_hz < 0.99 * 11_025 / 2
    name, reason, cutoff, _ = Upscaler("auto", 48_000)._plan(report)
    assert name == "default" and cutoff == report.codec_wall_hz  # the band limit is the resampler's wall


def test_a_hi_res_recordings_own_low_pass_is_not_read_as_a_codec():
    """A 96 kHz recording cut steeply at 38.4 kHz read "probably MP3/AAC-encoded", and ``auto --air``
    sent it to ``restore``; no lossy encoder cuts above 24 kHz."""
    from audio_upscaler.pipeline import Upscaler

    rate = 96_000
    noise = np.random.default_rng(0).standard_normal(rate * 2) * 0.1
    recording = sosfilt(ellip(12, 0.1, 100, 38_400, fs=rate, output="sos"), noise).astype(np.float32)[None]
    report = analyze(Audio(recording, rate))
    assert report.steep_cutoff and 37_000 < report.cutoff_hz < 39_500
    assert not report.lossy_fingerprint and report.codec_guess is None and "lossy codecs stop by 24 kHz" in report.verdict
    assert Upscaler("auto", 192_000, air=True)._plan(report)[0] == "default"
    coded = analyze(Audio(sosfilt(ellip(12, 0.1, 100, 16_500, fs=44_100, output="sos"),
                                  noise[:88_200]).astype(np.float32)[None], 44_100))
    assert coded.lossy_fingerprint  # the same wall at an encoder's frequency still reads as one


def test_quiet_tonal_mp3_is_not_read_as_full_band():
    """A soft woodwind chorale (fixture clip) falls 70-80 dB from its fundamentals to 14 kHz; at
    64 kbps the decoder leaves debris 110 dB under the peak up to 22 kHz. That debris is not
    content (``DYNAMIC_RANGE_DB``): the cutoff is the codec's, and the clean clip stays full band."""
    from audio_upscaler.codecs import roundtrip

    clean, sr = sf.read(DATA / "validation/music/bwv187_7.flac", always_2d=True, dtype="float32")
    assert estimate_cutoff(clean.T, sr).full_band
    decoded = estimate_cutoff(roundtrip(clean.T, sr, "mp3", 64), sr)
    assert 12_000 < decoded.hz < 17_000 and not decoded.full_band


# ---------------------------------------------------------------- verdicts and report


def test_verdicts():
    sr = 48_000
    phone = soxr.resample(soxr.resample(pinkish(sr).T, sr, 8000), 8000, sr).T
    report = analyze(Audio(phone, sr))
    assert report.codec_guess == "telephone band" and "telephone" in report.verdict
    assert report.verdict.startswith(f"content stops at {report.cutoff_hz / 1000:.1f} kHz")

    gentle = analyze(Audio(low_pass(pinkish(sr), sr, "butter4", 6000), sr))
    assert gentle.codec_guess is None and not gentle.steep_cutoff and "gentle" in gentle.verdict

    full = analyze(Audio(pinkish(sr), sr))
    assert full.full_band and full.codec_guess is None and full.verdict.startswith("full band")
    assert not full.lossy_fingerprint


def test_silent_input_report_is_json_serialisable():
    report = analyze(Audio(np.zeros((2, 48_000), np.float32), 48_000))
    assert report.peak_dbfs == float("-inf") and report.loudness_lufs == float("-inf")
    assert report.full_band and report.verdict.startswith("silent")
    assert "bandwidth  none (digital silence)" in report.summary_lines()  # not "24.0 kHz (channels: 0.0, 0.0 kHz)"
    data = report.to_dict()
    assert data["peak_dbfs"] is None and data["clipped_samples"] == 0
    json.dumps(data, allow_nan=False)


def test_report_dict_and_summary():
    x = brick_wall(pinkish(44_100, channels=2), 44_100, 16_000)
    report = analyze(Audio(x, 44_100, bit_depth=16, codec="pcm_16"))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["sample_rate"] == 44_100 and data["channels"] == 2 and data["bit_depth"] == 16
    assert data["duration"] == pytest.approx(2.0) and len(data["channel_cutoffs_hz"]) == 2
    assert abs(data["cutoff_hz"] - 16_000) <= TOLERANCE_HZ
    lines = report.summary_lines()
    assert 5 <= len(lines) <= 10 and any("16.0 kHz" in line for line in lines)
    assert lines[-1].endswith(report.verdict)


def test_analyze_reads_files(tmp_path):
    path = tmp_path / "in.wav"
    x = brick_wall(pinkish(22_050, channels=2), 22_050, 8000)
    sf.write(path, x.T, 22_050, subtype="PCM_16")
    report = analyze(path)
    assert report.sample_rate == 22_050 and report.channels == 2 and report.bit_depth == 16
    assert report.frames == x.shape[1] and abs(report.cutoff_hz - 8000) <= TOLERANCE_HZ
    assert report.rms_dbfs == pytest.approx(analyze(Audio(x, 22_050)).rms_dbfs, abs=0.01)
    with pytest.raises(UpscalerError):
        analyze(tmp_path / "missing.wav")


# ---------------------------------------------------------------- levels


def test_peak_rms_and_dc_of_known_signals():
    sr = 48_000
    t = np.arange(sr) / sr
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    x = np.stack([sine + 0.1, sine - 0.05]).astype(np.float32)
    report = analyze(Audio(x, sr))
    assert report.dc_offset == pytest.approx([0.1, -0.05], abs=1e-5)
    assert report.peak_dbfs == pytest.approx(20 * np.log10(0.6), abs=0.01)
    expected_rms = np.sqrt(0.125 + (0.1**2 + 0.05**2) / 2)  # sine power + DC power
    assert report.rms_dbfs == pytest.approx(20 * np.log10(expected_rms), abs=0.01)


def test_true_peak_catches_inter_sample_peaks():
    sr = 48_000
    n = np.arange(sr)
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4)[None].astype(np.float32)  # fs/4: samples at +-0.707
    report = analyze(Audio(x, sr))
    assert report.peak_dbfs == pytest.approx(-3.01, abs=0.01)
    assert report.true_peak_dbtp == pytest.approx(0.0, abs=0.2)


def test_clipping_counts_flat_runs_only():
    x = np.zeros((2, 100), np.float32)
    x[0, 10:15] = 1.0  # run of 5: clipped
    x[0, 30] = 1.0  # a single full-scale peak: not clipping
    x[1, 50:53] = -1.0  # run of 3: clipped
    x[1, 70:72] = 0.9995  # run of 2 above 0.999: clipped
    x[1, 80:84] = 0.998  # below the clip level
    x[0, 98:100] = 1.2  # over full scale at the very end (float file): clipped
    for block in (100, 1, 2, 3, 7):
        analyzer = StreamingAnalyzer(48_000, 2)
        for start in range(0, 100, block):
            analyzer.update(x[:, start : start + block])
        report = analyzer.report()
        assert (report.clipped_samples, report.clip_runs) == (5 + 3 + 2 + 2, 4), block


def test_clipped_sine():
    sr = 44_100
    t = np.arange(sr) / sr
    x = np.clip(1.5 * np.sin(2 * np.pi * 100 * t), -1, 1)[None].astype(np.float32)
    report = analyze(Audio(x, sr))
    assert report.clip_runs == 200  # every half period of 100 Hz over one second
    assert report.clipped_samples == np.count_nonzero(np.abs(x) >= 0.999)


# ---------------------------------------------------------------- loudness


def test_k_weighting_matches_bs1770_coefficients_at_48_khz():
    sos = k_weighting_sos(48_000)
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-8)
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585], atol=1e-8)
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621], atol=1e-8)


@pytest.mark.parametrize("sample_rate", [44_100, 48_000])
def test_loudness_matches_pyloudnorm(sample_rate):
    pyloudnorm = pytest.importorskip("pyloudnorm", reason="pyloudnorm is a dev extra")
    x = pinkish(sample_rate, 6.0, channels=2, seed=2)
    x[1] *= 0.5
    x[:, sample_rate : 2 * sample_rate] *= 0.003  # a quiet second, below the relative gate
    reference = pyloudnorm.Meter(sample_rate).integrated_loudness(x.T.astype(np.float64))
    assert analyze(Audio(x, sample_rate)).loudness_lufs == pytest.approx(reference, abs=0.1)


def test_loudness_of_reference_sine_and_gating_of_silence():
    sr = 48_000
    t = np.arange(5 * sr) / sr
    sine = np.sin(2 * np.pi * 997 * t)[None].astype(np.float32)  # 0 dBFS, one channel
    assert analyze(Audio(sine, sr)).loudness_lufs == pytest.approx(-3.01, abs=0.02)
    # 20 s of silence after it: the silent 400 ms blocks fall under the absolute gate, so only
    # the 3 blocks straddling the end (3/4, 2/4, 1/4 sine) join the 47 full ones.
    padded = np.concatenate([sine, np.zeros((1, 20 * sr), np.float32)], axis=1)
    expected = -3.01 + 10 * np.log10((47 + 0.75 + 0.5 + 0.25) / 50)
    assert analyze(Audio(padded, sr)).loudness_lufs == pytest.approx(expected, abs=0.02)


# ---------------------------------------------------------------- streaming


def test_streaming_in_small_blocks_equals_one_block():
    sr = 44_100
    x = brick_wall(pinkish(sr, 3.0, channels=2), sr, 15_000) * 12  # loud enough to clip
    x = np.clip(x, -1.0, 1.0) + 0.01
    one = StreamingAnalyzer(sr, 2)
    one.update(x)
    many = StreamingAnalyzer(sr, 2)
    rng = np.random.default_rng(0)
    start = 0
    while start < x.shape[1]:
        size = int(rng.integers(1, 3000))
        many.update(x[:, start : start + size])
        start += size
    a, b = one.report().to_dict(), many.report().to_dict()
    assert a["clipped_samples"] > 0
    for key, value in a.items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        elif isinstance(value, list):
            np.testing.assert_allclose(b[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            assert b[key] == value, key


def test_update_checks_the_block_shape_and_state():
    analyzer = StreamingAnalyzer(48_000, 2)
    with pytest.raises(ValueError):
        analyzer.update(np.zeros((1, 10), np.float32))
    analyzer.update(np.zeros((2, 10), np.float32))
    analyzer.report()
    with pytest.raises(RuntimeError):
        analyzer.update(np.zeros((2, 10), np.float32))


def test_codec_wall_is_the_top_of_a_steep_drop_far_above_the_given_frequency():
    """``codec_wall``: the highest frequency standing 20 dB over everything from 500 Hz above it."""
    from audio_upscaler.bandwidth import codec_wall

    rate = 44_100
    freqs = np.linspace(0, rate / 2, 2049)
    dark = 10 ** ((-20 - 50 * np.log2(np.maximum(freqs, 500) / 500) / 5) / 10)  # falls 10 dB per octave
    walled = np.where(freqs < 16_000, dark, dark * 1e-4)  # a codec's low-pass: -40 dB from 16 kHz
    assert codec_wall(walled[None], rate, 6000) == pytest.approx(16_000, abs=150)
    assert codec_wall(walled[None], rate, 17_000) is None  # nothing above the given frequency
    assert codec_wall(dark[None], rate, 6000) is None  # a falling spectrum alone has no wall
    near_nyquist = np.where(freqs < 21_000, dark, dark * 1e-4)
    assert codec_wall(near_nyquist[None], rate, 6000) is None  # within 7 % of Nyquist: full band
    # A decoder's debris far down (its own small steps 110-160 dB under the peak, one near Nyquist)
    # neither counts as the wall nor hides the real one under it.
    debris = np.where(freqs < 16_000, dark, np.where(freqs < 21_500, 1e-12, 1e-16))
    assert codec_wall(debris[None], rate, 6000) == pytest.approx(16_000, abs=150)


def test_report_has_no_codec_wall_when_the_cutoff_is_the_codecs_edge():
    """An MP3 of full-band music: the measured cutoff is LAME's edge, no second wall far above it."""
    from audio_upscaler.degrade import apply_task

    x = harmonic_tone(44_100, 2.0, f0=220) + 0.01 * np.random.default_rng(3).standard_normal((1, 88_200))
    report = analyze(Audio(apply_task("mp3_128k", x.astype(np.float32), 44_100).degraded, 44_100))
    assert report.lossy_fingerprint and report.cutoff_hz > 15_000 and report.codec_wall_hz is None


def test_holes_under_a_gentle_roll_off_need_a_steep_wall_to_mean_lossy():
    """Gaps between the partials of sparse tonal music read as spectral holes: the lossless dark
    piece in tests/data/dark has 4.8 % of them under its gentle fade at 7 kHz, and only a codec's
    wall above the fade (its MP3: tests/test_shipped.py) makes them a lossy fingerprint."""

    report = analyze(Path(__file__).parent / "data" / "dark" / "trecento_gloria.flac")
    assert report.spectral_holes >= 2 * HOLE_FRACTION and not report.steep_cutoff and report.cutoff_hz < 8000
    assert not report.lossy_fingerprint and report.codec_guess is None and report.codec_wall_hz is None
    assert "gentle roll-off" in report.verdict
    gentle = CutoffEstimate(7000.0, [7000.0], False, steep=False)
    assert classify(gentle, 44_100, 0.05, wall_hz=16_000.0)[:2] == ("mp3/aac", True)
    assert classify(gentle, 44_100, 0.05, wall_hz=None)[:2] == (None, False)
    # a steep wall above a gentle roll-off is the band limit and reads as a steep cutoff would
    assert classify(gentle, 44_100, 0.001, wall_hz=17_000.0)[:2] == ("mp3/aac", True)  # no resampler puts it there
    guess, lossy, verdict = classify(gentle, 44_100, 0.001, wall_hz=15_300.0)  # 96 % of 16 kHz: a 32 kHz source's
    assert (guess, lossy) == ("resampled from 32000 Hz", False)
    assert verdict.startswith("content fades out above 7.0 kHz under a steep wall at 15.3 kHz")


@pytest.mark.parametrize("frames", [1, 10, 200])
def test_input_too_short_to_measure_says_so_and_counts_as_full_band(frames):
    """A 1-sample file read "bandwidth 24.0 kHz (channels: 0.0 kHz)" and "full band"; a few hundred
    samples of a low-passed signal could read as band-limited from a spectrum of that length."""
    x = sosfilt(butter(8, 3000, fs=48_000, output="sos"), np.random.default_rng(0).standard_normal(frames))
    report = analyze(Audio((0.3 * x)[None].astype(np.float32), 48_000))
    assert report.verdict.startswith(f"too short to measure ({frames} samples")
    assert report.full_band and report.cutoff_hz == 24_000 and report.channel_cutoffs_hz == [24_000]
    long = analyze(Audio((0.3 * sosfilt(butter(8, 3000, fs=48_000, output="sos"),
                                       np.random.default_rng(0).standard_normal(480)))[None].astype(np.float32), 48_000))
    assert not long.verdict.startswith("too short") and not long.full_band  # 10 ms: measured
