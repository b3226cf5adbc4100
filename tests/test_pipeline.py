"""The Upscaler flow: band preservation, chunking, stereo, level, files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from audio_upscaler.audio import Audio
from audio_upscaler.dsp.resample import output_length, resample
from audio_upscaler.pipeline import UpscaleResult, Upscaler

from .signals import band_limited, harmonic_tone


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-30))


def band_energy_db(err: np.ndarray, ref: np.ndarray, sr: int, below_hz: float) -> float:
    """Energy of ``err`` relative to ``ref`` in the band below ``below_hz`` (Welch, Hann)."""
    f, p_err = welch(err, sr, nperseg=4096)
    _, p_ref = welch(ref, sr, nperseg=4096)
    band = f < below_hz
    return 10 * np.log10(p_err[..., band].sum() / p_ref[..., band].sum())


def test_output_rate_length_and_low_band_unchanged():
    audio = band_limited(48_000, 2.0, 16_000, seed=1)
    out = Upscaler("sbr", 48_000, limiter=False).upscale(audio)
    assert out.sample_rate == 48_000
    assert out.frames == output_length(audio.frames, 16_000, 48_000)
    plain = resample(audio.samples, 16_000, 48_000)
    # Energy was added above the cutoff ...
    assert np.std(out.samples - plain) > 1e-3
    # ... and below it (well inside the pass band) nothing changed: error below -80 dB.
    assert band_energy_db(out.samples - plain, plain, 48_000, 7_500) < -80


def test_chunked_equals_one_shot_away_from_edges_and_no_clicks():
    audio = band_limited(48_000, 4.0, 11_025, seed=2)
    one_shot = Upscaler("sbr", 44_100, limiter=False, chunk_seconds=100).upscale(audio).samples
    chunked = Upscaler("sbr", 44_100, limiter=False, chunk_seconds=0.5).upscale(audio).samples
    ref = np.sqrt(np.mean(one_shot**2))
    diff = np.abs(chunked - one_shot)
    assert db(diff.max() / ref) < -90


def test_full_band_input_is_only_resampled():
    x = np.random.default_rng(0).standard_normal((1, 44_100)).astype(np.float32) * 0.1
    up = Upscaler("auto", 48_000, limiter=False)
    out = up.upscale(Audio(x, 44_100)).samples
    np.testing.assert_allclose(out, resample(x, 44_100, 48_000), atol=1e-6)


@pytest.mark.parametrize("mode", ["independent", "mid-side"])
def test_stereo_image_is_kept(mode):
    mono = band_limited(48_000, 1.5, 16_000).samples
    both = np.concatenate([mono, mono])  # centre-panned
    out = Upscaler("sbr", 48_000, stereo=mode, limiter=False).upscale(Audio(both, 16_000)).samples
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    left_only = np.concatenate([mono, np.zeros_like(mono)])
    out = Upscaler("sbr", 48_000, stereo=mode, limiter=False).upscale(Audio(left_only, 16_000)).samples
    assert db(np.abs(out[1]).max()) < -80  # the silent side stays silent


def test_level_is_kept_by_default_and_normalize_sets_the_peak():
    audio = band_limited(48_000, 2.0, 16_000, seed=3)
    out = Upscaler("sbr", 48_000).upscale(audio).samples
    rms_in, rms_out = np.sqrt(np.mean(audio.samples**2)), np.sqrt(np.mean(out**2))
    assert abs(db(rms_out / rms_in)) < 0.5
    normalized = Upscaler("sbr", 48_000, normalize_dbfs=-1.0).upscale(audio).samples
    assert db(np.abs(normalized).max()) == pytest.approx(-1.0, abs=0.05)


def test_normalize_leaves_silence_silent(tmp_path):
    """Digital silence through an extender that leaves a tiny residue (1e-7 from a model) must not
    be raised by 140 dB into noise, in memory or through a file."""

    class Residue:
        name, keeps_low_band = "residue", True

        def context_samples(self, sample_rate):
            return 0

        def alignment(self, sample_rate):
            return 1

        def extend(self, base, sample_rate, cutoff_hz):
            return base + np.float32(1e-7) * np.random.default_rng(0).standard_normal(base.shape).astype(np.float32)

    up = Upscaler("sbr", 48_000, normalize_dbfs=-1.0)
    up._extenders["sbr"] = Residue()
    silence = Audio(np.zeros((1, 32_000), np.float32), 16_000)
    assert np.abs(up.upscale(silence).samples).max() < 1e-6
    path = tmp_path / "silence.wav"
    sf.write(path, silence.samples.T, 16_000, subtype="PCM_16")
    result = up.upscale_file(path, tmp_path / "out.wav")
    assert np.abs(sf.read(tmp_path / "out.wav")[0]).max() < 1e-4
    assert result.normalize_skipped and result.to_dict()["normalize_skipped"] is True


def test_normalize_skipped_on_silence_is_said(tmp_path, capsys):
    """``--normalize`` on a silent output was skipped without a word: the user asked for a level
    and got none. The result says so, and the CLI prints a note (not for a normal output, nor
    without --normalize)."""
    import json

    from audio_upscaler.cli import main

    sf.write(tmp_path / "silence.wav", np.zeros(16_000), 16_000, subtype="PCM_16")
    sf.write(tmp_path / "tone.wav", harmonic_tone(16_000, 1.0, top_hz=7_000).T * 0.5, 16_000, subtype="FLOAT")
    note = "note: normalization skipped: the output peak is under -100 dBFS (silence or near-silence)\n"
    for name, extra, skipped in [("silence", ["--normalize", "-1"], True), ("tone", ["--normalize", "-1"], False),
                                 ("silence", [], False)]:
        out = tmp_path / f"{name}{len(extra)}.flac"
        assert main(["upscale", str(tmp_path / f"{name}.wav"), "-o", str(out), "-m", "sbr", "--json", *extra]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["normalize_skipped"] is skipped
        assert (note in captured.err) is skipped
    assert main(["upscale", str(tmp_path / "silence.wav"), "-o", str(tmp_path / "q.flac"), "-m", "sbr", "-q",
                 "--normalize", "-1"]) == 0
    assert capsys.readouterr().err == ""


def test_limiter_prevents_clipping():
    x = harmonic_tone(16_000, 1.0, top_hz=7_000)
    x = x / np.abs(x).max() * 0.999
    out = Upscaler("sbr", 48_000).upscale(Audio(x, 16_000)).samples
    assert np.abs(out).max() <= 1.0


def test_clipping_without_the_limiter_is_counted(tmp_path, capsys):
    """``--no-limiter`` into an integer file clipped without a word; the result (and the CLI) count it."""
    from audio_upscaler.cli import main

    x = harmonic_tone(16_000, 1.0, top_hz=7_000)
    sf.write(tmp_path / "hot.wav", (x / np.abs(x).max() * 0.999).T, 16_000, subtype="FLOAT")
    limited = Upscaler("sbr", 48_000).upscale_file(tmp_path / "hot.wav", tmp_path / "a.flac")
    unlimited = Upscaler("sbr", 48_000, limiter=False).upscale_file(tmp_path / "hot.wav", tmp_path / "b.flac")
    written = sf.read(tmp_path / "b.flac")[0]
    assert limited.clipped_samples == 0 and unlimited.clipped_samples > 0
    assert np.count_nonzero(np.abs(written) >= 1 - 2.0**-23) >= unlimited.clipped_samples  # they sit at full scale
    assert unlimited.to_dict()["clipped_samples"] == unlimited.clipped_samples
    assert main(["upscale", str(tmp_path / "hot.wav"), "-o", str(tmp_path / "c.flac"), "-m", "sbr", "--no-limiter"]) == 0
    err = capsys.readouterr().err
    assert f"note: {unlimited.clipped_samples} samples went beyond full scale and were clipped (the limiter is off" in err


def energy_between_db(x: np.ndarray, rate: int, low_hz: float, high_hz: float) -> float:
    """Energy (dB, Welch) of mono ``x [1, T]`` between ``low_hz`` and ``high_hz``."""
    f, p = welch(x[0], rate, nperseg=4096)
    return float(10 * np.log10(p[(f >= low_hz) & (f < high_hz)].sum() + 1e-30))


def test_the_cli_says_when_the_output_keeps_a_dc_offset(capsys, tmp_path):
    """A DC offset of 0.02 is kept (band extension keeps the input's band); upscale says so and
    names --remove-dc, which takes it out. A clip without one gets no note."""
    from audio_upscaler.cli import main

    tone = harmonic_tone(16_000, 1.0)
    sf.write(tmp_path / "dc.wav", (tone + 0.02).T, 16_000, subtype="FLOAT")
    sf.write(tmp_path / "clean.wav", tone.T, 16_000, subtype="FLOAT")
    assert main(["upscale", str(tmp_path / "dc.wav"), "-o", str(tmp_path / "a.flac"), "-m", "sbr"]) == 0
    assert re.search(r"note: the input has a DC offset of 0\.0(199|200) of full scale \(-34 dBFS\), kept in the output; "
                     r"--remove-dc removes it\n", capsys.readouterr().err)
    assert main(["upscale", str(tmp_path / "dc.wav"), "-o", str(tmp_path / "b.flac"), "-m", "sbr", "--remove-dc"]) == 0
    assert "DC offset" not in capsys.readouterr().err
    assert abs(sf.read(tmp_path / "b.flac")[0][24_000:].mean()) < 1e-3  # taken out (after the blocker settles)
    assert main(["upscale", str(tmp_path / "clean.wav"), "-o", str(tmp_path / "c.flac"), "-m", "sbr"]) == 0
    assert "DC offset" not in capsys.readouterr().err


def test_a_target_rate_below_the_input_rate_resamples_down_first(tmp_path):
    """A 96 kHz file asked for at 48 kHz: full band, it is only resampled down (as soxr alone does);
    content stopping at 6 kHz is resampled down and then extended above 6 kHz. The plan says so."""
    full = harmonic_tone(96_000, 1.0, f0=330.0)
    sf.write(tmp_path / "full.wav", full.T, 96_000, subtype="FLOAT")
    result = Upscaler("auto", 48_000).upscale_file(tmp_path / "full.wav", tmp_path / "full.flac")
    assert result.model == "none"
    assert "the target rate 48000 Hz is below the input's 96000 Hz: resampled down" in result.model_reason
    written, rate = sf.read(tmp_path / "full.flac", dtype="float32", always_2d=True)
    assert rate == 48_000 and written.shape[0] == output_length(full.shape[1], 96_000, 48_000)
    expected = resample(full, 96_000, 48_000)
    assert np.max(np.abs(written.T - expected)) < 1e-4  # 24-bit rounding and dither

    narrow = resample(resample(harmonic_tone(96_000, 1.0, f0=330.0), 96_000, 12_000), 12_000, 96_000)
    sf.write(tmp_path / "narrow.wav", narrow.T, 96_000, subtype="FLOAT")
    result = Upscaler("sbr", 48_000).upscale_file(tmp_path / "narrow.wav", tmp_path / "narrow.flac")
    assert result.model == "sbr" and result.cutoff_hz < 6_500 and "resampled down" in result.model_reason
    out, rate = sf.read(tmp_path / "narrow.flac", dtype="float32", always_2d=True)
    assert rate == 48_000
    added = energy_between_db(out.T, 48_000, 8_000, 20_000) - energy_between_db(resample(narrow, 96_000, 48_000), 48_000, 8_000, 20_000)
    assert added > 30  # the band above the cutoff was filled


def test_a_cutoff_at_or_above_the_target_nyquist_is_refused():
    from audio_upscaler.errors import UpscalerError

    with pytest.raises(UpscalerError, match="not below the target rate's Nyquist frequency 22050 Hz"):
        Upscaler("sbr", 44_100, cutoff_hz=23_000).upscale(Audio(np.zeros((1, 4800), np.float32), 96_000))


def test_digital_silence_is_only_resampled_by_auto():
    """A silent 16 kHz file read as "content stops at 8.0 kHz -> model 'default' (band-limited input)"
    while analysis said "silent: no content to analyse"."""
    from audio_upscaler.analysis import analyze

    silence = Audio(np.zeros((1, 32_000), np.float32), 16_000)
    name, reason, _, _ = Upscaler("auto", 48_000)._plan(analyze(silence))
    assert name == "none" and reason.startswith("digital silence")
    assert Upscaler("default", 48_000)._plan(analyze(silence))[0] == "default"  # a model asked for still runs
    assert not Upscaler("auto", 48_000).upscale(silence).samples.any()


@pytest.mark.parametrize("subtype, bits", [("PCM_24", 24), ("PCM_16", 24), ("PCM_16", 16)])
def test_a_full_band_file_at_its_own_rate_is_copied_bit_exact(tmp_path, subtype, bits):
    """``auto`` reads a full-band 48 kHz file as nothing to do; dither added +-1 LSB to the copy."""
    from audio_upscaler.io import output_format_for

    noise = 0.2 * np.random.default_rng(0).standard_normal((48_000, 2))
    sf.write(tmp_path / "in.wav", noise, 48_000, subtype=subtype)
    out = tmp_path / "out.flac"
    result = Upscaler("auto", 48_000).upscale_file(tmp_path / "in.wav", out, fmt=output_format_for(out, bit_depth=bits))
    assert result.model == "none"
    source, written = sf.read(tmp_path / "in.wav", dtype="int32")[0], sf.read(out, dtype="int32")[0]
    np.testing.assert_array_equal(written, source)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_digital_silence_stays_digital_silence_in_integer_files(tmp_path, subtype):
    """Dither used to turn a silent file into -138 dBFS noise (24-bit), which analysis then read
    as "full band: content reaches 24.0 kHz"."""
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(32_000), 16_000, subtype=subtype)
    out = tmp_path / "out.wav"
    from audio_upscaler.io import output_format_for

    fmt = output_format_for(out, bit_depth=int(subtype[-2:]))
    Upscaler("auto", 48_000).upscale_file(path, out, fmt=fmt)
    data, rate = sf.read(out, dtype="int32")
    assert rate == 48_000 and data.size == 96_000 and not data.any()


@pytest.mark.parametrize("model", ["default", "sbr"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24"])
def test_a_dead_channel_and_a_silent_gap_stay_digital_silence(tmp_path, monkeypatch, model, subtype):
    """The extenders leave a residue where the input is digital silence (the shipped default
    model about -138 dBFS, band replication's merge -180 dBFS), which is not zero, so dither
    turned a dead right channel and a gap between phrases into +-1 LSB noise (-96 dBFS at 16 bits)."""
    from audio_upscaler.io import output_format_for
    from audio_upscaler.models import registry

    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "user"))  # only shipped models
    left = band_limited(48_000, 3.0, 22_050, seed=4).samples[0]
    left[22_050:2 * 22_050] = 0  # one second of digital silence in the middle
    path, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 22_050, subtype=subtype)
    Upscaler(model, 48_000).upscale_file(path, out, fmt=output_format_for(out, bit_depth=int(subtype[-2:])))
    data, rate = sf.read(out, dtype="int32")
    assert rate == 48_000 and data.shape == (144_000, 2)
    assert not data[:, 1].any()  # the dead channel
    assert not data[48_000 + 2_400 : 96_000 - 2_400, 0].any()  # the gap, 50 ms in from each edge
    assert np.count_nonzero(data[:48_000, 0]) > 40_000  # the music is there


@pytest.mark.parametrize("channels", [1, 6])
def test_mid_side_on_input_that_is_not_stereo_says_it_is_not_applied(tmp_path, channels):
    """--stereo mid-side on a mono or 5.1 file ran every channel independently without a word."""
    path, out = tmp_path / "in.wav", tmp_path / "out.wav"
    audio = band_limited(48_000, 0.5, 16_000, channels=channels)
    sf.write(path, audio.samples.T, 16_000, subtype="PCM_24")
    result = Upscaler("sbr", 48_000, stereo="mid-side").upscale_file(path, out)
    assert f"mid-side needs 2 channels, this input has {channels}: each is processed alone" in result.model_reason
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, band_limited(48_000, 0.5, 16_000, channels=2).samples.T, 16_000, subtype="PCM_24")
    assert "mid-side" not in Upscaler("sbr", 48_000, stereo="mid-side").upscale_file(stereo, tmp_path / "o2.wav").model_reason


def test_a_tone_under_2_khz_is_only_resampled_by_auto():
    """A 1 kHz tone "stops" at about 1.3 kHz: not a band limit to extend (a model given that
    cutoff filled 1.2-2.5 kHz louder than the tone); analysis says what it is."""
    from audio_upscaler.analysis import analyze

    t = np.arange(2 * 44_100) / 44_100
    tone = Audio((0.3 * np.sin(2 * np.pi * 1_000 * t))[None].astype(np.float32), 44_100)
    report = analyze(tone)
    assert report.cutoff_hz < 2_000 and not report.lossy_fingerprint
    assert "a tone or a sparse signal" in report.verdict
    up = Upscaler("auto", 48_000)
    assert up._plan(report)[0] == "none"
    out = up.upscale(tone).samples
    assert abs(db(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(tone.samples**2)))) < 0.1
    assert Upscaler("auto", 48_000, cutoff_hz=1_200)._plan(report)[0] != "none"  # --cutoff still extends


@pytest.mark.parametrize("cutoff", [100.0, 0.0, -5.0, float("nan"), float("inf")])
def test_a_cutoff_out_of_range_is_refused(cutoff):
    from audio_upscaler.errors import UpscalerError

    with pytest.raises(UpscalerError, match="cutoff must be (a frequency of at least 1000 Hz|finite)"):
        Upscaler("sbr", 48_000, cutoff_hz=cutoff)


@pytest.mark.parametrize("setting", [dict(target_rate=float("nan")), dict(target_rate="fast"), dict(target_rate=48_000.5),
                                     dict(chunk_seconds=float("nan")), dict(chunk_seconds=0), dict(chunk_seconds=-1),
                                     dict(cutoff_hz="8k"), dict(normalize_dbfs="loud"),
                                     dict(normalize_dbfs=float("nan"))])
def test_settings_that_are_not_usable_numbers_are_refused(setting):
    """Each was a bare ValueError/TypeError (nan rate, string cutoff), or silently accepted (a chunk
    length of 0 or less)."""
    from audio_upscaler.errors import UpscalerError

    with pytest.raises(UpscalerError, match="must be"):
        Upscaler("sbr", **{"target_rate": 48_000, **setting})


def test_a_cutoff_at_or_above_the_input_nyquist_is_refused():
    from audio_upscaler.errors import UpscalerError

    audio = band_limited(48_000, 0.5, 16_000, seed=1)
    with pytest.raises(UpscalerError, match="not below the input's Nyquist frequency 8000 Hz"):
        Upscaler("sbr", 48_000, cutoff_hz=9_000).upscale(audio)
    assert Upscaler("sbr", 48_000, cutoff_hz=7_500).upscale(audio).sample_rate == 48_000
    with pytest.raises(UpscalerError, match=r"^cutoff 1e\+308 Hz is not below"):  # was a 309-digit number
        Upscaler("sbr", 48_000, cutoff_hz=1e308).upscale(audio)


def test_an_output_format_that_cannot_hold_the_channels_fails_before_any_work(tmp_path, monkeypatch):
    """Three channels into MP3 with --normalize: refused before analysis, not after a whole pass."""
    from audio_upscaler.errors import UpscalerError

    sf.write(tmp_path / "in.wav", np.zeros((1600, 3), np.float32), 16_000)
    up = Upscaler("sbr", 48_000, normalize_dbfs=-1.0)
    monkeypatch.setattr(up, "_process", lambda *a, **k: pytest.fail("processing started"))
    with pytest.raises(UpscalerError, match="MP3 output supports 1-2 channels, not 3"):
        up.upscale_file(tmp_path / "in.wav", tmp_path / "out.mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_upscale_file_writes_flac_with_tags(tmp_path):
    audio = band_limited(48_000, 1.0, 22_050, channels=2)
    src = tmp_path / "in.wav"
    sf.write(src, audio.samples.T, 22_050, subtype="PCM_16")
    with sf.SoundFile(src, "r+") as f:
        f.title = "A title"
    dst = tmp_path / "out.flac"
    result = Upscaler("sbr", 48_000).upscale_file(src, dst)
    data, sr = sf.read(dst, always_2d=True)
    assert sr == 48_000 and data.shape == (output_length(audio.frames, 22_050, 48_000), 2)
    assert sf.info(dst).subtype == "PCM_24"
    with sf.SoundFile(dst) as f:
        assert f.title == "A title"
    assert result.model == "sbr" and 10_000 < result.cutoff_hz < 11_100
    assert {p.name for p in tmp_path.iterdir()} == {"in.wav", "out.flac"}  # no temp files left


def test_low_rate_file_full_band_for_its_rate_is_still_extended():
    audio = band_limited(48_000, 1.0, 8_000)  # content reaches 4 kHz = its own Nyquist
    up = Upscaler("auto", 48_000, limiter=False)
    out = up.upscale(audio).samples
    plain = resample(audio.samples, 8_000, 48_000)
    assert band_energy_db(out - plain, plain, 48_000, 24_000) > -30  # a high band was added


def falling_short_of_the_band_edge() -> Audio:
    """Noise at 8 kHz whose level falls 12-16 dB over its top octave fifth (3-3.6 kHz, as some
    voices do) yet carries content up to the 4 kHz band edge: the cutoff (the knee) reads 3.2 kHz."""
    from scipy.signal import firwin2, lfilter

    x = np.random.default_rng(0).standard_normal((1, 96_000)) * 0.1
    taps = firwin2(801, [0, 3000, 3300, 3600, 24_000], [1, 1, 0.25, 0.15, 0.15], fs=48_000)
    return Audio(resample(lfilter(taps, 1, x).astype(np.float32), 48_000, 8_000), 8_000)


def test_a_low_rate_file_whose_content_reaches_its_nyquist_frequency_keeps_all_of_it():
    """Audio resampled to 8 kHz has content, phase and all, up to its 4 kHz band edge, also where
    its level already falls short (a resampler's roll-off, a voice's own fall): the output keeps
    that band as it is instead of replacing it with a prediction, and the model stays conditioned
    on the measured cutoff. Both signals had 2-50 dB of error there before."""
    from audio_upscaler.analysis import analyze

    cases = [(band_limited(48_000, 2.0, 8_000), "default", 3000), (falling_short_of_the_band_edge(), "sbr", 3000)]
    for audio, model, low_hz in cases:
        report = analyze(audio)
        plan = Upscaler("auto", 48_000)._plan(report)
        assert plan.model == "default" and plan.keep_below_hz == 4000
        assert plan.cutoff_hz == report.cutoff_hz < 3850 and report.content_top_hz > 3750
        assert "reaches the input's band edge" in plan.reason
        result = UpscaleResult(8_000, 48_000, 1, 2.0, plan.cutoff_hz, plan.model, plan.reason, 1.0, None, report,
                               keep_below_hz=plan.keep_below_hz)
        assert result.cutoff_summary() == f"content falls from {report.cutoff_hz / 1000:.1f} kHz to its 4.0 kHz band edge"
        assert result.to_dict()["keep_below_hz"] == 4000
        at_own_rate = Upscaler("default", 8_000)._plan(report)  # nothing left to add: plain resampling
        assert at_own_rate.model == "none" and "already reaches 4.0 kHz" in at_own_rate.reason
        out = Upscaler(model, 48_000, limiter=False).upscale(audio).samples
        plain = resample(audio.samples, 8_000, 48_000)
        kept_db = energy_between_db(out - plain, 48_000, low_hz, 3550) - energy_between_db(plain, 48_000, low_hz, 3550)
        assert kept_db < -80


def test_a_telephone_band_at_8_khz_is_extended_from_where_it_stops():
    """Content that stops at 3.4 kHz in an 8 kHz file (a telephone band) does not reach the band
    edge: the model's band starts at the measured cutoff, with no hole up to 4 kHz."""
    from audio_upscaler.analysis import analyze

    x = np.random.default_rng(1).standard_normal((1, 96_000)).astype(np.float32) * 0.1
    phone = Audio(resample(resample(x, 48_000, 6_800), 6_800, 8_000), 8_000)
    report = analyze(phone)
    plan = Upscaler("auto", 48_000)._plan(report)
    assert report.content_top_hz < 3500 and plan.cutoff_hz == plan.keep_below_hz == report.cutoff_hz
    assert "band edge" not in plan.reason
    out = Upscaler("sbr", 48_000, limiter=False).upscale(phone).samples
    plain = resample(phone.samples, 8_000, 48_000)
    assert energy_between_db(out, 48_000, 3500, 3900) - energy_between_db(plain, 48_000, 3500, 3900) > 20


def gentle_roll_off(sample_rate: int, seconds: float = 2.0, corner_hz: float = 3000.0) -> Audio:
    """White noise through a 4th-order Butterworth low-pass (24 dB per octave): content that fades
    out from ``corner_hz`` with no edge, as a dark recording does; reads as a gentle roll-off."""
    from scipy.signal import butter, sosfilt

    x = np.random.default_rng(5).standard_normal((1, int(seconds * sample_rate))) * 0.1
    return Audio(sosfilt(butter(4, corner_hz, fs=sample_rate, output="sos"), x).astype(np.float32), sample_rate)


def fade_under_a_wall() -> Audio:
    """:func:`gentle_roll_off` at 48 kHz from 2 kHz, then resampled through 24 kHz: a dark
    recording cut by a resampler's steep wall near 11.5 kHz."""
    fade = gentle_roll_off(48_000, corner_hz=2000).samples
    return Audio(resample(resample(fade, 48_000, 24_000), 24_000, 48_000), 48_000)


def test_a_gentle_fade_at_a_full_rate_is_kept_not_extended():
    """No band limit, only content fading out: ``auto`` resamples and keeps what fades (a model
    would replace it with a band at the level of the pass band, 20 dB and more too loud)."""
    from audio_upscaler.analysis import analyze

    audio = gentle_roll_off(44_100)
    report = analyze(audio)
    assert not report.steep_cutoff and not report.full_band and report.cutoff_hz < 12_000
    up = Upscaler("auto", 48_000, limiter=False)
    assert up._plan(report)[0] == "none"
    np.testing.assert_allclose(up.upscale(audio).samples, resample(audio.samples, 44_100, 48_000), atol=1e-6)
    # A model the user names keeps the fade too and extends only above the input's own band.
    name, reason, cutoff, _ = Upscaler("sbr", 48_000)._plan(report)
    assert name == "sbr" and cutoff == pytest.approx(0.93 * 22_050) and "gentle fade" in reason
    assert Upscaler("sbr", 48_000, cutoff_hz=5000)._plan(report)[2] == 5000  # --cutoff still decides


def test_a_gentle_fade_at_a_low_rate_is_extended_above_the_input_band():
    audio = gentle_roll_off(22_050)
    up = Upscaler("sbr", 48_000, limiter=False)
    out = up.upscale(audio).samples
    plain = resample(audio.samples, 22_050, 48_000)
    assert band_energy_db(out - plain, plain, 48_000, 10_000) < -60  # the fade up to 10 kHz is kept
    f, p_out = welch(out, 48_000, nperseg=4096)
    _, p_plain = welch(plain, 48_000, nperseg=4096)
    above = (f > 11_500) & (f < 20_000)
    assert 10 * np.log10(p_out[..., above].sum() / p_plain[..., above].sum()) > 20  # a band was added above it


def test_a_gentle_fade_under_a_steep_wall_is_band_limited_at_the_wall():
    """A dark recording later cut by a steep filter (here at 12 kHz, as resampling from 24 kHz
    does): the wall is the band limit; the fade under it is kept and the model extends above it."""
    from audio_upscaler.analysis import analyze

    walled = fade_under_a_wall()
    report = analyze(walled)
    assert not report.steep_cutoff and report.cutoff_hz < 9000
    assert report.codec_wall_hz == pytest.approx(11_500, abs=500) and not report.lossy_fingerprint
    assert "under a steep wall" in report.verdict and "24 kHz" in report.verdict
    name, _, cutoff, keep_below = Upscaler("auto", 48_000)._plan(report)
    assert name == "default" and cutoff == keep_below == report.codec_wall_hz
    out = Upscaler("sbr", 48_000, limiter=False).upscale(walled).samples
    assert band_energy_db(out - walled.samples, walled.samples, 48_000, 10_500) < -60  # the fade kept


def test_a_lossy_file_that_is_full_band_for_its_low_rate_goes_to_restore(tmp_path):
    """A 24 kHz MP3 (a podcast's usual format) reaches its own Nyquist frequency, so its spectrum
    shows no codec; the file's codec says it is lossy, and `restore` gets it. The same samples in
    a WAV file go to `default`."""
    from audio_upscaler import io
    from audio_upscaler.analysis import analyze
    from audio_upscaler.io_formats import output_format_for

    audio = band_limited(48_000, 2.0, 24_000, seed=4)  # content up to 12 kHz
    mp3 = tmp_path / "talk.mp3"
    io.write_audio(mp3, Audio(audio.samples, 24_000), output_format_for(mp3, bitrate_kbps=48))
    report = analyze(mp3)
    assert report.codec == "mp3" and report.sample_rate == 24_000 and not report.lossy_fingerprint
    name, reason, _, _ = Upscaler("auto", 48_000)._plan(report)
    assert name == "restore" and "mp3 file" in reason
    wav = tmp_path / "talk.wav"
    io.write_audio(wav, io.read_audio(mp3))
    assert Upscaler("auto", 48_000)._plan(analyze(wav))[0] == "default"


def test_the_result_says_where_the_content_ends_and_what_the_model_was_given(tmp_path):
    """The CLI and the web UI print ``UpscaleResult.cutoff_summary()``."""
    fade = gentle_roll_off(44_100)
    sf.write(tmp_path / "fade.wav", fade.samples.T, 44_100, subtype="FLOAT")
    kept = Upscaler("auto", 48_000).upscale_file(tmp_path / "fade.wav", tmp_path / "kept.wav")
    assert kept.model == "none"
    assert kept.cutoff_summary() == f"content fades out above {kept.report.cutoff_hz / 1000:.1f} kHz"
    assert kept.content_cutoff_hz == kept.report.cutoff_hz < 10_000 and kept.model_cutoff_hz is None
    sf.write(tmp_path / "walled.wav", fade_under_a_wall().samples.T, 48_000, subtype="FLOAT")
    result = Upscaler("sbr", 48_000).upscale_file(tmp_path / "walled.wav", tmp_path / "out.wav")
    assert result.cutoff_summary() == (f"content fades out above {result.report.cutoff_hz / 1000:.1f} kHz "
                                       f"(model conditioned on {result.report.codec_wall_hz / 1000:.1f} kHz)")
    assert result.model_cutoff_hz == result.report.codec_wall_hz > result.content_cutoff_hz + 1000


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros((48_000, 2), np.float32), 48_000, r"48000 channels are not supported .*\[channels, time\]"),  # [T, C]
    (np.zeros((9, 4800), np.float32), 48_000, "9 channels are not supported"),
    (np.zeros((1, 4800), np.float32), 0, "sample rate 0 Hz is outside"),
    (np.zeros((1, 4800), np.float32), -16_000, "sample rate -16000 Hz is outside"),
    (np.zeros((1, 4800), np.float32), 500, "sample rate 500 Hz is outside"),
])
def test_in_memory_audio_out_of_range_is_refused_before_any_work(samples, rate, message):
    """As for files: a [time, channels] array was taken as 48000 channels and ran the machine out of
    memory; a rate of 0 gave a ValueError from deep inside the analysis."""
    from audio_upscaler.analysis import analyze
    from audio_upscaler.errors import UpscalerError

    audio = Audio(samples, rate)
    with pytest.raises(UpscalerError, match=message):
        Upscaler("sbr", 48_000).upscale(audio)
    with pytest.raises(UpscalerError, match=message):
        analyze(audio)


@pytest.mark.parametrize("samples, message", [
    ((0.1 * np.ones((1, 4800)) * 32767).astype(np.int16), "floating point in .* not int16"),
    (np.zeros((1, 1, 4800), np.float32), r"\[channels, time\], got shape \(1, 1, 4800\)"),
])
def test_audio_refuses_integer_samples_and_wrong_shapes(samples, message):
    """int16 PCM was taken as floats of +-32767 (90 dB over full scale) and silently crushed by the
    limiter; a 3-D array raised a bare ValueError."""
    from audio_upscaler.errors import UpscalerError

    with pytest.raises(UpscalerError, match=message):
        Audio(samples, 16_000)
