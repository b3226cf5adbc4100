"""Band merge: low band untouched, high band from the extension, exact seams, chunk-exact."""

from __future__ import annotations

import numpy as np
import pytest

from audio_upscaler.dsp.bands import crossover_band, crossover_taps, merge_bands, merge_context
from audio_upscaler.errors import UpscalerError

CASES = [(48_000, 8_000, None), (44_100, 16_000, None), (96_000, 11_025, 250.0), (16_000, 4_000, None)]


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-30))


def noise(sample_rate: int, n: int, top_hz: float | None, seed: int) -> np.ndarray:
    """Stereo white noise, optionally with every FFT bin above ``top_hz`` removed, float32 ``[2, n]``."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=-1)
    if top_hz is not None:
        spec[:, np.fft.rfftfreq(n, 1 / sample_rate) > top_hz] = 0
    return np.fft.irfft(spec, n, axis=-1).astype(np.float32)


def band_rms(x: np.ndarray, sample_rate: int, lo: float, hi: float, trim: int) -> float:
    """RMS spectral magnitude of ``x`` between ``lo`` and ``hi`` Hz (Hann-windowed, ``trim`` cut each end)."""
    x = x[:, trim:-trim]
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), axis=-1))
    f = np.fft.rfftfreq(x.shape[1], 1 / sample_rate)
    return float(np.sqrt(np.mean(spec[:, (f >= lo) & (f <= hi)] ** 2)))


@pytest.mark.parametrize("sample_rate,cutoff,width", CASES)
def test_low_band_is_base_and_high_band_is_extension(sample_rate, cutoff, width):
    n = sample_rate  # one second
    low, high = crossover_band(sample_rate, cutoff, width)
    base = noise(sample_rate, n, cutoff, seed=1) * 0.3  # the band-limited input
    extension = noise(sample_rate, n, None, seed=2)  # unrelated full-band content
    out = merge_bands(base, extension, sample_rate, cutoff, width)
    assert out.shape == base.shape and out.dtype == np.float32
    trim = 2 * merge_context(sample_rate, cutoff, width)
    level = band_rms(extension, sample_rate, 0, sample_rate / 2, trim)
    assert db(band_rms(out - base, sample_rate, 0, low, trim) / level) < -80
    assert db(band_rms(out - extension, sample_rate, high, sample_rate / 2, trim) / level) < -80
    # Both sides are large where the other signal lives: the measure can fail.
    assert db(band_rms(extension - base, sample_rate, 0, low, trim) / level) > -10


def test_crossover_sits_below_the_cutoff_and_is_a_few_hundred_hertz_wide():
    assert crossover_band(48_000, 8_000) == (7_600.0, 8_000.0)
    assert crossover_band(48_000, 1_000) == (750.0, 1_000.0)  # at most a quarter of the cutoff
    taps = crossover_taps(48_000, 8_000)
    assert taps.size % 2 == 1 and np.allclose(taps, taps[::-1])  # odd and symmetric: zero delay
    assert crossover_taps(48_000, 8_000) is taps  # designed once


def test_equal_inputs_give_base_exactly():
    base = noise(44_100, 20_000, None, seed=3)
    np.testing.assert_array_equal(merge_bands(base, base.copy(), 44_100, 11_025), base)


def test_merge_is_zero_delay():
    """An impulse only in the extension's high band comes out at the same sample."""
    base = np.zeros((1, 8_001), np.float32)
    extension = base.copy()
    extension[0, 4_000] = 1.0
    out = merge_bands(base, extension, 48_000, 8_000)
    assert int(np.argmax(np.abs(out[0]))) == 4_000
    np.testing.assert_allclose(out[0], out[0, ::-1], atol=1e-6)  # symmetric around it


def test_chunked_merge_equals_one_shot_with_merge_context():
    sr, cutoff = 48_000, 6_000
    base, extension = noise(sr, 30_000, cutoff, seed=4), noise(sr, 30_000, None, seed=5)
    whole = merge_bands(base, extension, sr, cutoff)
    ctx = merge_context(sr, cutoff)
    for start, stop in [(5_000, 9_000), (12_345, 20_000)]:
        part = slice(start - ctx, stop + ctx)
        chunk = merge_bands(base[:, part], extension[:, part], sr, cutoff)[:, ctx:-ctx]
        np.testing.assert_allclose(chunk, whole[:, start:stop], atol=1e-5)
    # With too little context the chunk differs: the context is really needed.
    short = slice(5_000 - ctx // 4, 9_000 + ctx // 4)
    chunk = merge_bands(base[:, short], extension[:, short], sr, cutoff)[:, ctx // 4 : -(ctx // 4)]
    assert np.abs(chunk - whole[:, 5_000:9_000]).max() > 1e-3


@pytest.mark.parametrize("cutoff", [0.0, -5.0, 30_000.0])
def test_cutoff_outside_the_band_is_refused(cutoff):
    x = np.zeros((1, 100), np.float32)
    with pytest.raises(UpscalerError, match="cutoff"):
        merge_bands(x, x, 48_000, cutoff)
