"""Metrics: identities, hand-computable cases, and the published LSD formulas written out plainly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio_upscaler import metrics
from audio_upscaler.degrade import LowPassParams, lowpass
from audio_upscaler.errors import UpscalerError

EULER_GAMMA = 0.5772156649015329


def white_noise(sample_rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((channels, int(seconds * sample_rate)))).astype(np.float32)


def voiced(sample_rate: int, seconds: float) -> np.ndarray:
    """Speech-like: a gliding harmonic voice with syllable-rate bursts, ``[1, T]``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 40) if k * 160 < sample_rate / 2)
    x = x * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    return (0.5 * x / np.abs(x).max())[None].astype(np.float32)


# --- plain reimplementations of the published formulas (loops, numpy only) -------------------

def plain_stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| [bins, frames]: reflect-pad n_fft/2, periodic Hann, frames every hop samples."""
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = [np.abs(np.fft.rfft(padded[s:s + n_fft] * window))
              for s in range(0, len(padded) - n_fft + 1, hop)]
    return np.array(frames).T


def plain_lsd(ref: np.ndarray, est: np.ndarray, bins: slice = slice(None)) -> float:
    """NU-Wave 2 / AP-BWE: log10 of clamped power, RMS over bins per frame, mean over frames."""
    a = np.log10(np.maximum(plain_stft_magnitude(ref, 2048, 512) ** 2, 1e-8))[bins]
    b = np.log10(np.maximum(plain_stft_magnitude(est, 2048, 512) ** 2, 1e-8))[bins]
    per_frame = [math.sqrt(np.mean((a[:, t] - b[:, t]) ** 2)) for t in range(a.shape[1])]
    return float(np.mean(per_frame))


def plain_lsd_ssr(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """ssr_eval: log10(T^2 / (E + 1e-12)^2 + 1e-12)^2, mean over bins, sqrt, mean over frames."""
    n_fft, hop = int(2048 / (44100 / sample_rate)), int(sample_rate / 100)
    target = plain_stft_magnitude(ref, n_fft, hop)
    estimate = plain_stft_magnitude(est, n_fft, hop)
    per_frame = [math.sqrt(np.mean(np.log10(target[:, t] ** 2 / (estimate[:, t] + 1e-12) ** 2 + 1e-12) ** 2))
                 for t in range(target.shape[1])]
    return float(np.mean(per_frame))


# --- tests ---------------------------------------------------------------------------------------

def test_identity_gives_perfect_scores():
    rate = 16000
    # (a faint noise floor: the ssr_eval formula scores digital silence as log10(1e-12)^2 even
    # against itself)
    x = np.concatenate([voiced(rate, 3.0) + 1e-3 * white_noise(rate, 3.0, seed=11),
                        white_noise(rate, 3.0, seed=1)])
    result = metrics.evaluate_pair(x, x, rate, input_cutoff_hz=4000, speech=True)
    assert set(result) == set(metrics.METRIC_KEYS)
    for key in ("lsd", "lsd_hf", "lsd_lf", "lsd_ssr", "spectral_convergence",
                "centroid_distance_hz", "rolloff_distance_hz", "mfcc_distance", "delay_samples"):
        assert result[key] == pytest.approx(0.0, abs=1e-9), key
    assert result["snr"] == math.inf and result["si_sdr"] == math.inf
    assert result["sdr"] > 150
    assert result["spectrogram_ssim"] == pytest.approx(1.0, abs=1e-9)
    assert metrics.pesq_wb(x[:1], x[:1], rate) > 4.4
    assert result["stoi"] > 0.99


def test_lsd_matches_plain_published_formula():
    rate = 24000
    ref = white_noise(rate, 1.0, seed=2)[0]
    est = lowpass(ref[None] + 0.03 * white_noise(rate, 1.0, seed=3), rate,
                  LowPassParams(5000, "cheby1", order=6))[0]
    cutoff = 5000.0
    first_high_bin = int(np.floor(cutoff * 2048 / rate)) + 1  # bins strictly above the cutoff
    result = metrics.lsd(ref, est, rate, cutoff)
    assert result.lsd == pytest.approx(plain_lsd(ref, est), abs=1e-6)
    assert result.lsd_hf == pytest.approx(plain_lsd(ref, est, slice(first_high_bin, None)), abs=1e-6)
    assert result.lsd_lf == pytest.approx(plain_lsd(ref, est, slice(0, first_high_bin)), abs=1e-6)
    assert metrics.lsd_ssr(ref, est, rate) == pytest.approx(plain_lsd_ssr(ref, est, rate), abs=1e-6)


def test_lsd_of_white_noise_against_brickwall_lowpass_matches_hand_computation():
    # Above the cutoff the estimate's power is clamped to 1e-8 (log10 = -8); the reference's
    # power per bin is exponential with mean mu = sigma^2 * sum(w^2) = sigma^2 * 3 N / 8, so
    # E[(log10 P + 8)^2] = (log10 mu - gamma / ln 10 + 8)^2 + pi^2 / (6 ln^2 10).
    # Below the cutoff both agree, so LSD ~= sqrt(fraction_of_bins_above * that). Two small
    # effects can only lower the measured value: window leakage into the first ~20 bins above
    # the cutoff, and the two frames at each end (reflect padding puts a kink into the
    # band-limited signal). With 10 s of noise they stay below 2 %.
    rate, cutoff, sigma = 16000, 4000.0, 0.1
    ref = (sigma * np.random.default_rng(4).standard_normal((1, 10 * rate))).astype(np.float32)
    est = lowpass(ref, rate, LowPassParams(cutoff, "brickwall"))
    mu = sigma**2 * 3 * 2048 / 8
    mean_sq = (math.log10(mu) - EULER_GAMMA / math.log(10) + 8) ** 2 + math.pi**2 / (6 * math.log(10) ** 2)
    fraction_above = np.mean(np.arange(1025) * rate / 2048 > cutoff)
    result = metrics.lsd(ref, est, rate, cutoff)
    expected_lsd, expected_hf = math.sqrt(fraction_above * mean_sq), math.sqrt(mean_sq)
    assert 0.98 * expected_lsd < result.lsd < 1.002 * expected_lsd
    assert 0.98 * expected_hf < result.lsd_hf < 1.002 * expected_hf
    assert result.lsd_lf < 0.05 * result.lsd_hf


def test_snr_and_si_sdr_known_values_and_scale_invariance():
    rate = 16000
    ref = voiced(rate, 1.0).astype(np.float64)
    noise = white_noise(rate, 1.0, seed=5).astype(np.float64)
    noise *= np.sqrt((ref**2).sum() / (noise**2).sum() / 10 ** (20 / 10))  # exactly 20 dB
    est = ref + noise
    assert metrics.snr(ref, est) == pytest.approx(20.0, abs=1e-9)
    assert metrics.si_sdr(ref, est) == pytest.approx(20.0, abs=0.2)
    assert metrics.si_sdr(ref, 0.25 * est) == pytest.approx(metrics.si_sdr(ref, est), abs=1e-9)
    assert metrics.snr(ref, 0.25 * est) < 3.0  # SNR is not scale invariant


def test_sdr_forgives_a_linear_filter_but_snr_does_not():
    rate = 16000
    ref = white_noise(rate, 1.0, seed=6)
    est = lowpass(ref, rate, LowPassParams(6000, "butter", order=4))
    assert metrics.snr(ref, est) < 10
    assert metrics.sdr(ref, est) > metrics.snr(ref, est) + 20


def test_spectral_metrics_known_values():
    rate, cutoff = 16000, 4000.0
    ref = white_noise(rate, 2.0, seed=7)
    est = lowpass(ref, rate, LowPassParams(cutoff, "brickwall"))
    assert metrics.spectral_convergence(ref, 0.5 * ref) == pytest.approx(0.5, abs=1e-9)
    # white noise: centroid at half the band it covers; 99 % roll-off at 99 % of that band
    assert metrics.spectral_centroid_distance(ref, est, rate) == pytest.approx(rate / 4 - cutoff / 2, rel=0.03)
    assert metrics.rolloff_distance(ref, est, rate) == pytest.approx(0.99 * (rate / 2 - cutoff), rel=0.03)
    assert 0.0 < metrics.spectrogram_ssim(ref, est) < 0.9
    # A gain only moves c0, which the MFCC distance leaves out.
    assert metrics.mfcc_distance(ref, 2.0 * ref, rate) == pytest.approx(0.0, abs=1e-6)
    assert metrics.mfcc_distance(ref, est, rate) > 10


def test_mel_filterbank_covers_the_band():
    bank = metrics.mel_filterbank(16000, 2048, 40)
    freqs = np.arange(1025) * 16000 / 2048
    assert bank.shape == (40, 1025) and np.all(bank >= 0)
    assert np.all(bank[:, freqs > 8000] == 0)
    centres = freqs[np.argmax(bank, axis=1)]
    assert np.all(np.diff(centres) > 0)  # ordered, and spaced wider with frequency:
    assert np.diff(centres)[-1] > 5 * np.diff(centres)[0]


@pytest.mark.parametrize("shift", [37, -120, 0])
def test_align_detects_and_removes_a_known_shift(shift):
    rate = 16000
    ref = white_noise(rate, 1.0, channels=2, seed=8)
    est = np.roll(ref, shift, axis=1)
    aligned = metrics.align(ref, est, max_lag=400)
    assert aligned.lag == shift
    np.testing.assert_array_equal(aligned.estimate[:, 200:-200], aligned.reference[:, 200:-200])
    result = metrics.evaluate_pair(ref[:, 400:-400], est[:, 400:-400], rate)
    assert result["delay_samples"] == shift
    assert result["delay_ms"] == pytest.approx(1000 * shift / rate)
    assert result["snr"] == math.inf
    if shift:
        assert metrics.evaluate_pair(ref, est, rate, align=False)["snr"] < 1.0


def test_a_polarity_inverted_estimate_is_aligned_at_its_true_lag():
    """The search took the largest positive correlation: ``-ref`` got an invented delay half a
    period away (54 samples on a 440 Hz tone) and a flattering SNR instead of -6 dB."""
    rate = 48000
    t = np.arange(rate) / rate
    ref = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * white_noise(rate, 1.0, seed=4)[0])[None]
    assert metrics.align(ref, -ref, max_lag=4800).lag == 0
    assert metrics.align(ref, -np.roll(ref, 30, axis=1), max_lag=4800).lag == 30
    assert metrics.evaluate_pair(ref, -ref, rate)["snr"] == pytest.approx(-6.02, abs=0.01)
    with pytest.raises(UpscalerError, match="delay"):
        metrics.evaluate_pair(ref, ref, rate, max_delay_s=math.nan)


def test_silence_has_no_delay():
    """Identical silent files: no lag (every lag correlates equally, at zero), LSD 0."""
    silence = np.zeros((1, 16000), np.float32)
    assert metrics.align(silence, silence, max_lag=1600).lag == 0
    noise = white_noise(16000, 1.0, seed=3)
    assert metrics.align(noise, silence, max_lag=1600).lag == 0
    result = metrics.evaluate_pair(silence, silence, 16000)
    assert result["delay_samples"] == 0 and result["lsd"] == 0.0


def test_multichannel_results_are_channel_means():
    rate = 16000
    ref = white_noise(rate, 1.0, channels=2, seed=9)
    est = ref * np.array([[1.0], [0.5]], np.float32) + 0.01 * white_noise(rate, 1.0, 2, seed=10)
    both = metrics.lsd(ref, est, rate, 3000)
    per_channel = [metrics.lsd(ref[c], est[c], rate, 3000) for c in range(2)]
    for i in range(3):
        assert both[i] == pytest.approx(np.mean([p[i] for p in per_channel]), abs=1e-12)
    assert metrics.snr(ref, est) == pytest.approx(np.mean([metrics.snr(ref[c], est[c]) for c in range(2)]))


def test_speech_metrics_drop_for_a_band_limited_estimate():
    rate = 16000
    ref = voiced(rate, 3.0)
    est = lowpass(ref, rate, LowPassParams(800, "butter", order=8))
    assert metrics.pesq_wb(ref, est, rate) < metrics.pesq_wb(ref, ref, rate) - 0.5
    assert metrics.stoi(ref, est, rate) < 0.98


def test_unscorable_clip_gives_nan_in_evaluate_pair():
    silent = np.zeros((1, 16000 * 2), np.float32)
    result = metrics.evaluate_pair(silent, silent, 16000, speech=True)
    assert math.isnan(result["pesq_wb"])


def test_bad_inputs_raise_upscaler_error():
    with pytest.raises(UpscalerError, match="differ in shape"):
        metrics.snr(np.zeros((1, 100)), np.zeros((1, 90)))
    with pytest.raises(UpscalerError, match="too short"):
        metrics.lsd(np.zeros((1, 500)), np.zeros((1, 500)), 16000)
    with pytest.raises(UpscalerError, match="channels"):
        metrics.evaluate_pair(np.zeros((2, 4000)), np.zeros((1, 4000)), 16000)
    with pytest.raises(UpscalerError, match="NaN"):
        metrics.snr(np.full((1, 100), np.nan), np.zeros((1, 100)))
