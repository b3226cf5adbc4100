"""Degradations: deterministic per seed, same length, no delay, and they do what they say."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from audio_upscaler import degrade
from audio_upscaler.degrade import (AddNoise, Clip, ClipParams, Codec, CodecParams, Gain,
                                    GainParams, LowPass, LowPassParams, NoiseParams, Quantize,
                                    QuantizeParams, Resample, ResampleParams)
from audio_upscaler.errors import UpscalerError

from .signals import xcorr_peak_lag

RATE = 48000


def white_noise(seconds: float = 1.0, channels: int = 1, seed: int = 0, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)


def response_edges(x: np.ndarray, y: np.ndarray, rate: int = RATE) -> tuple[float, float]:
    """Frequencies (Hz) where the measured response ``y / x`` of white noise first falls
    3 dB and 20 dB below its 200 Hz - 2 kHz level (linear interpolation between Welch bins)."""
    freqs, p_in = signal.welch(x[0], rate, nperseg=4096)
    _, p_out = signal.welch(y[0], rate, nperseg=4096)
    gain_db = 10 * np.log10(np.maximum(p_out, 1e-30) / p_in)
    gain_db -= np.median(gain_db[(freqs > 200) & (freqs < 2000)])
    gain_db[freqs < 100] = 0.0
    edges = []
    for drop in (3.0, 20.0):
        i = int(np.argmax(gain_db < -drop))
        frac = (-drop - gain_db[i - 1]) / (gain_db[i] - gain_db[i - 1])
        edges.append(float(freqs[i - 1] + frac * (freqs[i] - freqs[i - 1])))
    return edges[0], edges[1]


ALL_DEGRADATIONS = [
    LowPass(),
    Resample(),
    Codec(("mp3", "opus"), (64, 128), vbr_probability=0.5),
    Quantize(),
    AddNoise(),
    Gain(),
    Clip(),
]


@pytest.mark.parametrize("degradation", ALL_DEGRADATIONS, ids=lambda d: type(d).__name__)
def test_deterministic_for_a_seed_same_length_and_no_delay(degradation):
    x = white_noise(0.5, channels=2, seed=1)
    params = degradation.sample(np.random.default_rng(3), RATE)
    assert params == degradation.sample(np.random.default_rng(3), RATE)
    y1 = degradation(x, RATE, np.random.default_rng(3))
    y2 = degradation.apply(x, RATE, params)
    np.testing.assert_array_equal(y1, y2)
    assert y1.shape == x.shape and y1.dtype == np.float32
    assert xcorr_peak_lag(x, y1, max_lag=500) == 0
    others = {degradation.sample(np.random.default_rng(seed), RATE) for seed in range(8)}
    assert len(others) > 1  # the seed matters


@pytest.mark.parametrize("params,minus3_range,minus20_range", [
    (LowPassParams(6000, "brickwall"), (0.99, 1.01), (1.0, 1.02)),
    (LowPassParams(9000, "butter", order=12), (0.98, 1.02), (1.0, 1.3)),
    (LowPassParams(4000, "cheby1", order=6, ripple_db=1.0), (0.98, 1.02), (1.0, 1.3)),
    (LowPassParams(11000, "cheby2", order=8, atten_db=60), (0.98, 1.02), (1.0, 1.3)),
    (LowPassParams(7000, "ellip", order=5, ripple_db=0.3, atten_db=70), (0.98, 1.02), (1.0, 1.3)),
    (LowPassParams(5000, "soxr"), (0.92, 0.98), (0.94, 1.0)),  # soxr: pass band to ~95 % of Nyquist
    (LowPassParams(5000, "poly"), (0.90, 0.96), (1.0, 1.12)),  # Kaiser filter lets some alias through
])
def test_lowpass_measured_cutoff(params, minus3_range, minus20_range):
    x = white_noise(2.0, seed=2)
    y = degrade.lowpass(x, RATE, params)
    minus3, minus20 = response_edges(x, y)
    assert minus3_range[0] < minus3 / params.cutoff_hz < minus3_range[1]
    assert minus20_range[0] < minus20 / params.cutoff_hz < minus20_range[1]
    assert xcorr_peak_lag(x, y) == 0


def test_butterworth_order_2_matches_its_analytic_response():
    # forward-backward 2nd-order Butterworth: power gain 1 / (1 + r^4)^2 with r the bilinear-
    # warped frequency ratio tan(pi f / fs) / tan(pi f0 / fs); -3 dB at r^4 = sqrt(2) - 1,
    # -20 dB at r^4 = 9.
    cutoff = 6000.0
    x = white_noise(2.0, seed=2)
    minus3, minus20 = response_edges(x, degrade.lowpass(x, RATE, LowPassParams(cutoff, "butter", order=2)))
    warped_minus20 = np.tan(np.pi * cutoff / RATE) * (9 / (np.sqrt(2) - 1)) ** 0.25
    assert minus3 == pytest.approx(cutoff, rel=0.01)
    assert minus20 == pytest.approx(RATE / np.pi * np.arctan(warped_minus20), rel=0.01)


def test_sampled_lowpass_keeps_its_reported_cutoff():
    lowpass = LowPass((3000, 15000), shapes=("butter", "cheby1", "cheby2", "ellip", "brickwall"))
    x = white_noise(2.0, seed=3)
    rng = np.random.default_rng(4)
    for _ in range(5):
        params = lowpass.sample(rng, RATE)
        minus3, _ = response_edges(x, lowpass.apply(x, RATE, params))
        assert minus3 == pytest.approx(lowpass.cutoff_hz(params, RATE), rel=0.02), params


@pytest.mark.parametrize("rate,method", [(8000, "soxr"), (11025, "poly"), (22050, "soxr"), (32000, "poly")])
def test_resample_limits_band_to_the_low_rate(rate, method):
    x = white_noise(2.0, seed=5)
    resample = Resample()
    params = ResampleParams(rate, method)
    low = resample.downsample(x, RATE, params)
    assert low.shape[1] == pytest.approx(x.shape[1] * rate / RATE, abs=1)
    y = resample.apply(x, RATE, params)
    minus3, minus20 = response_edges(x, y)
    assert 0.9 * rate / 2 < minus3 < rate / 2
    assert minus20 < 1.12 * rate / 2
    assert resample.cutoff_hz(params, RATE) == rate / 2
    assert xcorr_peak_lag(x, y) == 0


def test_quantize_measured_bit_depth_and_error():
    x = white_noise(1.0, seed=6)
    for bits in (8, 12, 16):
        step = 2.0 ** (1 - bits)
        for dither, rms_error in ((False, step / np.sqrt(12)), (True, step / 2)):
            y = degrade.quantize(x, QuantizeParams(bits, dither, seed=1))
            levels = y.astype(np.float64) / step
            np.testing.assert_allclose(levels, np.round(levels), atol=1e-6)
            assert np.min(np.diff(np.unique(levels))) == pytest.approx(1.0)  # grid is the step
            # rounding error is uniform (variance step^2/12); TPDF adds step^2/6 -> step^2/4
            assert np.sqrt(np.mean((y - x) ** 2)) == pytest.approx(rms_error, rel=0.1)


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_measured_snr_and_colour(color):
    x = white_noise(1.0, channels=2, seed=7)
    for snr_db in (10.0, 35.0):
        y = degrade.add_noise(x, NoiseParams(snr_db, color, seed=2))
        noise = (y - x).astype(np.float64)
        measured = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(noise**2))
        assert measured == pytest.approx(snr_db, abs=0.5)
    freqs, power = signal.welch(noise[0], RATE, nperseg=2048)
    octave_drop = 10 * np.log10(power[(freqs > 1000) & (freqs < 2000)].mean()
                                / power[(freqs > 4000) & (freqs < 8000)].mean())
    assert octave_drop == pytest.approx(6.0 if color == "pink" else 0.0, abs=1.0)  # two octaves


def test_gain_and_clip_do_what_they_say():
    x = white_noise(1.0, seed=8)
    y = Gain().apply(x, RATE, GainParams(-7.5))
    assert 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2))) == pytest.approx(-7.5, abs=1e-4)
    y = Clip().apply(x, RATE, ClipParams(0.01))
    level = np.abs(y).max()
    assert level < np.abs(x).max()
    assert np.mean(np.abs(x) > level) == pytest.approx(0.01, abs=0.001)
    np.testing.assert_array_equal(y[np.abs(x) <= level], x[np.abs(x) <= level])


def test_codec_degradation_reports_its_band_limit():
    x = white_noise(1.0, channels=2, seed=9)
    codec = Codec(("mp3",))
    params = CodecParams("mp3", bitrate_kbps=64)
    y = codec.apply(x, RATE, params)
    cutoff = codec.cutoff_hz(params, RATE, channels=2)
    assert 8000 < cutoff < 16000  # LAME stereo 64 kbps: about 11 kHz
    freqs, p_in = signal.welch(x, RATE, nperseg=2048)
    _, p_out = signal.welch(y, RATE, nperseg=2048)
    gain_db = 10 * np.log10(p_out.mean(0) / p_in.mean(0))
    assert np.median(gain_db[(freqs > 1.05 * cutoff)]) < -30
    assert np.median(gain_db[(freqs > 500) & (freqs < 0.8 * cutoff)]) > -3
    assert xcorr_peak_lag(x, y) == 0


def test_codec_coding_rates_code_at_the_drawn_rate_and_report_that_band_limit():
    """48 kHz audio coded at 32 kHz (a 32 kHz MP3 as a 48 kHz model sees it): same length, no
    delay, and the band limit is LAME's at 32 kHz (about 15 kHz), not its one at 48 kHz (20 kHz)."""
    from audio_upscaler.degrade.codec import codec_cutoff_hz
    from audio_upscaler.degrade.spec import chain_from_spec

    x = white_noise(1.0, seed=9)
    codec = Codec(("mp3",), (128, 128), coding_rates=(32000,))
    params = codec.sample(np.random.default_rng(0), RATE)
    assert params == CodecParams("mp3", bitrate_kbps=128, coding_rate=32000)
    y = codec.apply(x, RATE, params)
    assert y.shape == x.shape and xcorr_peak_lag(x, y) == 0
    cutoff = codec.cutoff_hz(params, RATE)
    assert cutoff == codec_cutoff_hz(CodecParams("mp3", bitrate_kbps=128), 32000)
    assert cutoff < codec.cutoff_hz(CodecParams("mp3", bitrate_kbps=128), RATE) - 3000
    freqs, p_in = signal.welch(x, RATE, nperseg=2048)
    _, p_out = signal.welch(y, RATE, nperseg=2048)
    gain_db = 10 * np.log10(p_out.mean(0) / p_in.mean(0))
    assert np.median(gain_db[freqs > 1.05 * cutoff]) < -30
    assert np.median(gain_db[(freqs > 500) & (freqs < 0.8 * cutoff)]) > -3
    spec = [{"type": "codec", "codec_names": ["mp3"], "coding_rates": [44100, 48000]}]
    drawn = {chain_from_spec(spec).sample(np.random.default_rng(seed), RATE).steps[0][1].coding_rate
             for seed in range(12)}
    assert drawn == {44100, 48000}
    with pytest.raises(UpscalerError, match="coding_rates"):
        Codec(("mp3",), coding_rates=(4000,))


def test_chain_is_reproducible_and_reports_the_lowest_cutoff():
    chain = degrade.robust_training_chain(p_quantize=0.5, p_mp3=0.5)
    x = white_noise(0.5, seed=10)
    a = chain(x, RATE, np.random.default_rng(11))
    b = chain(x, RATE, np.random.default_rng(11))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.cutoff_hz == b.cutoff_hz
    params = [chain.sample(np.random.default_rng(seed), RATE) for seed in range(20)]
    for p in params:
        assert 0 in [i for i, _ in p.steps]  # the band limit (step 0) is always applied
        expected = min(chain.steps[i][0].cutoff_hz(sp, RATE, 1) for i, sp in p.steps)
        assert chain.apply(x, RATE, p).cutoff_hz == pytest.approx(expected)
        assert expected <= 12000
    orders = {tuple(i for i, _ in p.steps) for p in params}
    assert (0, 1) in {o[:2] for o in orders} and (1, 0) in {o[:2] for o in orders}  # shuffled
    assert any(len(p.steps) == 1 for p in params) and any(len(p.steps) == 3 for p in params)


def test_chain_cutoff_matches_the_measured_band_limit():
    chain = degrade.DegradationChain([(LowPass((5000, 9000)), 1.0), (Gain((-6, 0)), 1.0)])
    x = white_noise(2.0, seed=12)
    for seed in range(3):
        result = chain(x, RATE, np.random.default_rng(seed))
        minus3, _ = response_edges(x, result.samples)
        assert 0.9 * result.cutoff_hz < minus3 < 1.02 * result.cutoff_hz  # soxr/poly: 0.93-0.95


def test_fixed_params_and_probabilities():
    fixed = Gain().fixed(GainParams(-3.0))
    assert fixed.sample(np.random.default_rng(0), RATE) == GainParams(-3.0)
    never = degrade.DegradationChain([(Gain(), 0.0)])
    assert never.sample(np.random.default_rng(0), RATE).steps == ()
    with pytest.raises(UpscalerError, match="probabilities"):
        degrade.DegradationChain([(Gain(), 1.5)])


@pytest.mark.parametrize("name", ["bwe_8k_48k", "music_11k_44k", "speech_8k_22k"])
def test_resampling_tasks(name):
    spec = degrade.TASKS[name]
    x = white_noise(1.0, channels=2, seed=14, rate=spec.reference_rate)
    out = degrade.apply_task(name, x, spec.reference_rate, seed=0)
    assert out.degraded.shape == x.shape
    assert out.cutoff_hz == spec.input_rate / 2
    assert out.low_rate_input.shape[1] == pytest.approx(x.shape[1] * spec.input_rate / spec.reference_rate, abs=1)
    minus3, minus20 = response_edges(x, out.degraded, spec.reference_rate)
    assert 0.9 * out.cutoff_hz < minus3 < out.cutoff_hz and minus20 < 1.05 * out.cutoff_hz
    assert xcorr_peak_lag(x, out.degraded) == 0
    np.testing.assert_array_equal(out.degraded, degrade.apply_task(name, x, spec.reference_rate, 1).degraded)


def test_codec_task_and_task_errors():
    x = white_noise(1.0, seed=15, rate=44100)
    out = degrade.apply_task("mp3_128k", x, 44100)
    assert out.low_rate_input is None and out.degraded.shape == x.shape
    assert 15000 < out.cutoff_hz < 21000
    assert xcorr_peak_lag(x, out.degraded) == 0
    assert set(degrade.TASKS) == {"bwe_8k_48k", "bwe_16k_48k", "bwe_12k_48k", "music_11k_44k",
                                  "mp3_64k", "mp3_128k", "speech_8k_22k"}
    with pytest.raises(UpscalerError, match="unknown task"):
        degrade.apply_task("bwe_1k", x, 44100)
    with pytest.raises(UpscalerError, match="cannot down-sample"):
        degrade.apply_task("bwe_16k_48k", x[:, :8000], 8000)


def test_codec_task_at_another_rate_codes_the_mp3_a_user_would_have():
    """At 48 kHz (a 48 kHz model's validation) ``mp3_128k`` is the 44.1 kHz MP3 resampled to
    48 kHz, as the pipeline feeds a real 44.1 kHz MP3 to the model: back at 44.1 kHz it is the
    44.1 kHz task's output, and its band limit is LAME's at 44.1 kHz."""
    from audio_upscaler.dsp.resample import resample

    x48 = white_noise(1.0, seed=16)
    x44 = resample(x48, RATE, 44100)
    at44 = degrade.apply_task("mp3_128k", x44, 44100)
    at48 = degrade.apply_task("mp3_128k", x48, RATE)
    assert at48.degraded.shape == x48.shape and xcorr_peak_lag(x48, at48.degraded) == 0
    assert at48.cutoff_hz == at44.cutoff_hz
    back = resample(at48.degraded, RATE, 44100)[:, 2000:-2000]
    error = back - at44.degraded[:, 2000:-2000]
    assert 10 * np.log10(np.mean(error**2) / np.mean(at44.degraded[:, 2000:-2000] ** 2)) < -50
    freqs, p_out = signal.welch(at48.degraded[0], RATE, nperseg=2048)
    assert np.max(p_out[freqs > 22_500]) < 1e-7 * np.max(p_out)  # nothing above 22.05 kHz


def test_bad_requests_raise_upscaler_error():
    with pytest.raises(UpscalerError, match="no room"):
        LowPass((4000, 12000)).sample(np.random.default_rng(0), 8000)
    with pytest.raises(UpscalerError, match="Nyquist"):
        degrade.lowpass(white_noise(0.1), RATE, LowPassParams(30000, "butter"))
    with pytest.raises(UpscalerError, match="unknown filter shape"):
        degrade.lowpass(white_noise(0.1), RATE, LowPassParams(3000, "bessel"))
    with pytest.raises(UpscalerError, match="channels, time"):
        Gain().apply(np.zeros(10), RATE, GainParams(0.0))
