"""Spectral band replication: beats plain sinc upsampling on LSD-HF, keeps timing, chunk-exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import hilbert, lfilter

from audio_upscaler.dsp.bandext import SpectralBandReplication
from audio_upscaler.dsp.bands import crossover_band, merge_bands
from audio_upscaler.dsp.resample import resample
from audio_upscaler.errors import UpscalerError

SR = 48_000


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-30))


# ---------------------------------------------------------------------- synthesized test audio


def resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonance at ``freq`` Hz (``bandwidth`` Hz) at rate ``SR``."""
    r = np.exp(-np.pi * bandwidth / SR)
    return lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / SR), r * r], x)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Glottal pulse train (gliding f0) through changing formants, plus fricative noise bursts; ``[1, T]``."""
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    t = np.arange(n) / SR
    f0 = 130 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 5 * t)
    pulses = np.diff(np.floor(np.cumsum(f0 / SR)), prepend=0.0)
    voiced = np.diff(lfilter([1], [1, -0.97], lfilter([1], [1, -0.97], pulses)), prepend=0.0)
    vowels = [(700, 1200, 2600, 3600, 4800), (300, 2300, 3000, 3800, 5000), (500, 900, 2500, 3500, 4600)]
    out, seg = np.zeros(n), int(0.3 * SR)
    for i, start in enumerate(range(0, n, seg)):
        part = voiced[start : start + seg]
        formants = zip(vowels[i % len(vowels)], (1, 0.7, 0.4, 0.3, 0.2))
        out[start : start + seg] = sum(g * resonator(part, f, 60 + 0.04 * f) for f, g in formants)
    out /= np.abs(out).max()
    for start in range(int(0.2 * SR), n - int(0.15 * SR), int(0.55 * SR)):
        m = int(rng.uniform(0.06, 0.14) * SR)
        burst = np.diff(rng.standard_normal(m + 1)) * 0.15 * np.hanning(m)
        out[start : start + m] += 4 * resonator(burst, rng.uniform(4_000, 7_000), 3_000) + 0.3 * burst
    return (0.5 * out / np.abs(out).max())[None].astype(np.float32)


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Chords of harmonic notes with decaying partials up to 20 kHz, plus noise percussion; ``[1, T]``."""
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    out, t_all = np.zeros(n), np.arange(n) / SR
    for onset in np.arange(0, seconds - 0.1, 0.4):
        start = int(onset * SR)
        t = t_all[: n - start]
        for _ in range(3):
            f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
            k = np.arange(1, int(20_000 // f0) + 1)[:, None]
            phases = rng.uniform(0, 2 * np.pi, k.shape)
            partials = np.exp(-(1.5 + 0.15 * k) * t) * np.sin(2 * np.pi * f0 * k * t + phases) / k**0.8
            out[start:] += partials.sum(0) * (1 - np.exp(-400 * t))
    for onset in np.arange(0.2, seconds - 0.1, 0.4):
        start, m = int(onset * SR), int(0.15 * SR)
        hit = rng.standard_normal(m) * np.exp(-30 * np.arange(m) / SR)
        out[start : start + m] += 0.3 * np.diff(hit, prepend=0.0)
    return (0.5 * out / np.abs(out).max())[None].astype(np.float32)


def lsd_hf(reference: np.ndarray, estimate: np.ndarray, cutoff_hz: float) -> float:
    """LSD over bins above ``cutoff_hz`` (NU-Wave 2 convention: n_fft 2048, hop 512, log10 power)."""
    window = torch.hann_window(2048)

    def log_power(x):
        spec = torch.stft(torch.from_numpy(x), 2048, 512, 2048, window, center=True, return_complex=True)
        return torch.log10(torch.clamp(spec.abs() ** 2, min=1e-8))

    diff = log_power(reference) - log_power(estimate)
    diff = diff[..., torch.fft.rfftfreq(2048, 1 / SR) > cutoff_hz, :]
    return torch.sqrt((diff**2).mean(-2)).mean().item()


def band_limit(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """What the pipeline sees: ``x`` at rate ``2 * cutoff``, sinc-upsampled back to ``SR``."""
    low_rate = round(2 * cutoff_hz)
    return resample(resample(x, SR, low_rate), low_rate, SR)


# ---------------------------------------------------------------------- quality


@pytest.mark.parametrize("make", [speech_like, music_like])
@pytest.mark.parametrize("cutoff", [4_000, 8_000, 11_025])
def test_lowers_lsd_hf_clearly_against_sinc_upsampling(make, cutoff):
    reference = make(2.0)
    plain = band_limit(reference, cutoff)
    out = merge_bands(plain, SpectralBandReplication().extend(plain, SR, cutoff), SR, cutoff)
    sinc_lsd, sbr_lsd = lsd_hf(reference, plain, cutoff), lsd_hf(reference, out, cutoff)
    assert sinc_lsd > 3.0  # the baseline really misses the band ...
    assert sbr_lsd < 0.7 * sinc_lsd  # ... and replication fills it far better


def test_harmonic_excitation_is_mixed_in_and_still_beats_sinc():
    reference = music_like(2.0, seed=1)
    plain = band_limit(reference, 8_000)
    plain_ext = SpectralBandReplication().extend(plain, SR, 8_000)
    harm_ext = SpectralBandReplication(harmonic_excitation=0.5).extend(plain, SR, 8_000)
    assert np.std(harm_ext - plain_ext) > 0.1 * np.std(plain_ext - plain)  # it changes the band
    out = merge_bands(plain, harm_ext, SR, 8_000)
    assert lsd_hf(reference, out, 8_000) < 0.7 * lsd_hf(reference, plain, 8_000)


# ---------------------------------------------------------------------- shape, band, timing


def test_same_length_low_band_untouched_and_energy_above_the_cutoff():
    plain = band_limit(speech_like(1.0), 8_000)
    ext = SpectralBandReplication().extend(plain, SR, 8_000)
    assert ext.shape == plain.shape and ext.dtype == np.float32
    added = np.abs(np.fft.rfft(ext[0] - plain[0])) ** 2
    f = np.fft.rfftfreq(plain.shape[1], 1 / SR)
    above, below = added[f > 8_000].sum(), added[f < 7_000].sum()
    assert above > 0 and 10 * np.log10(below / above) < -30
    merged = merge_bands(plain, ext, SR, 8_000)
    low = np.fft.rfft(merged[0] - plain[0])[f < crossover_band(SR, 8_000)[0]]
    assert db(np.abs(low).max() / np.abs(np.fft.rfft(plain[0])).max()) < -80


def test_synthesized_envelope_falls_from_the_band_edge_to_nyquist():
    plain = band_limit(music_like(2.0, seed=2), 4_000)
    added = SpectralBandReplication().extend(plain, SR, 4_000) - plain
    spec = np.abs(np.fft.rfft(added[0])) ** 2
    f = np.fft.rfftfreq(added.shape[1], 1 / SR)
    edges = [4_000, 6_000, 9_000, 13_500, 20_000, 24_000]
    psd = [10 * np.log10(spec[(f >= lo) & (f < hi)].mean()) for lo, hi in zip(edges, edges[1:])]
    assert all(np.diff(psd) < 0.5)  # never rising (dB per band, small tolerance)
    assert psd[-1] < psd[0] - 6  # and clearly lower at the top
    base_psd = 10 * np.log10((np.abs(np.fft.rfft(plain[0])) ** 2)[(f >= 2_000) & (f < 3_600)].mean())
    assert psd[0] < base_psd + 1  # not louder than the band it continues


def test_zero_delay_clicks_stay_in_place():
    x = np.zeros((1, SR), np.float32)
    clicks = [5_000, 17_011, 30_123, 41_234]
    x[0, clicks] = 1.0
    x += 1e-3 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    plain = band_limit(x, 8_000)
    envelope = np.abs(hilbert((SpectralBandReplication().extend(plain, SR, 8_000) - plain)[0]))
    for c in clicks:
        around = envelope[c - 2_000 : c + 2_000]
        assert abs(int(np.argmax(around)) - 2_000) <= 8
        assert around.max() > 100 * np.median(around)  # a sharp click, no smearing


def test_silence_stays_silent_channels_are_independent():
    tone = band_limit(music_like(0.5), 8_000)[0]
    stereo = np.stack([tone, np.zeros_like(tone)])
    ext = SpectralBandReplication().extend(stereo, SR, 8_000)
    assert np.all(ext[1] == 0)
    same = SpectralBandReplication().extend(np.stack([tone, tone]), SR, 8_000)
    np.testing.assert_array_equal(same[0], same[1])
    np.testing.assert_allclose(same[0], ext[0], atol=1e-7)


def test_nothing_to_fill_returns_base_and_bad_cutoff_is_refused():
    x = band_limit(music_like(0.3), 8_000)
    np.testing.assert_array_equal(SpectralBandReplication().extend(x, SR, 24_000), x)
    assert SpectralBandReplication().extend(x[:, :0], SR, 8_000).shape == (1, 0)
    with pytest.raises(UpscalerError, match="cutoff"):
        SpectralBandReplication().extend(x, SR, 0.0)
    with pytest.raises(ValueError):
        SpectralBandReplication(harmonic_excitation=2.0)


# ---------------------------------------------------------------------- chunked processing


@pytest.mark.parametrize("sample_rate,excitation", [(48_000, 0.0), (44_100, 0.4)])
def test_chunks_with_context_equal_one_shot_in_their_centre(sample_rate, excitation):
    sbr = SpectralBandReplication(harmonic_excitation=excitation)
    x = np.random.default_rng(0).standard_normal((2, sample_rate)).astype(np.float32)
    x = resample(resample(x, sample_rate, 16_000), 16_000, sample_rate)
    whole = sbr.extend(x, sample_rate, 8_000)
    ctx, step = sbr.context_samples(sample_rate), sbr.alignment(sample_rate)
    assert ctx % step == 0
    for start, stop in [(40 * step, 60 * step), (100 * step, 100 * step + 7_777)]:
        chunk = sbr.extend(x[:, start - ctx : stop + ctx], sample_rate, 8_000)[:, ctx : ctx + stop - start]
        assert db(np.abs(chunk - whole[:, start:stop]).max() / np.std(whole)) < -100
    # Half the context is not enough: the declared context is needed.
    half, start, stop = ctx // 2, 40 * step, 60 * step
    chunk = sbr.extend(x[:, start - half : stop + half], sample_rate, 8_000)[:, half : half + stop - start]
    assert db(np.abs(chunk - whole[:, start:stop]).max() / np.std(whole)) > -60
