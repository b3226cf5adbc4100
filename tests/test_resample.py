"""Resampling: lengths, streaming == one-shot, and the torch sinc resampler against soxr."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
import torch

from audio_upscaler.dsp.resample import QUALITIES, StreamResampler, output_length, resample
from audio_upscaler.dsp.sinc import SincResampler
from audio_upscaler.errors import UpscalerError

RATE_PAIRS = [(44_100, 48_000), (48_000, 44_100), (16_000, 48_000), (48_000, 16_000), (8_000, 44_100)]


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-30))


def band_limited_noise(n: int, sample_rate: int, top_hz: float, seed: int = 0) -> np.ndarray:
    """White noise with every FFT bin above ``top_hz`` removed, ``[1, n]`` float32."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[np.fft.rfftfreq(n, 1 / sample_rate) > top_hz] = 0
    return np.fft.irfft(spec, n)[None].astype(np.float32)


def tone_fit(y: np.ndarray, sample_rate: int, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a*cos + b*sin`` fit of each row of ``y`` at its frequency -> (complex amp, residual rms)."""
    t = np.arange(y.shape[1]) / sample_rate
    amps, resid = [], []
    for row, f in zip(y, freqs):
        basis = np.stack([np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, row, rcond=None)
        amps.append(coef[0] - 1j * coef[1])
        resid.append(np.sqrt(np.mean((row - basis @ coef) ** 2)))
    return np.array(amps), np.array(resid)


def sinc(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    with torch.no_grad():
        return SincResampler(sr_in, sr_out)(torch.from_numpy(x)[None])[0].numpy()


# ---------------------------------------------------------------------- lengths and soxr


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("sr_in,sr_out", RATE_PAIRS)
def test_output_length_is_what_soxr_and_every_quality_produce(quality, sr_in, sr_out):
    for n in (1, 2, 147, 1000, 4411):
        x = np.zeros((2, n), np.float32)
        expected = soxr.resample(x.T, sr_in, sr_out, "VHQ").shape[0]
        assert output_length(n, sr_in, sr_out) == expected
        assert resample(x, sr_in, sr_out, quality).shape == (2, expected)


def test_equal_rates_copy_and_bad_quality_is_refused():
    x = np.random.default_rng(0).standard_normal((1, 100)).astype(np.float32)
    np.testing.assert_array_equal(resample(x, 44_100, 44_100), x)
    with pytest.raises(UpscalerError, match="quality"):
        resample(x, 44_100, 48_000, "best")


def test_linear_reproduces_a_straight_line_and_keeps_its_position():
    x = np.arange(1000, dtype=np.float32)[None] * 0.001
    y = resample(x, 16_000, 44_100, "linear")
    t = np.arange(y.shape[1]) * 16_000 / 44_100  # output times in input samples
    inside = t <= 999
    np.testing.assert_allclose(y[0, inside], t[inside] * 0.001, atol=1e-6)
    np.testing.assert_allclose(y[0, ~inside], 0.999, atol=1e-6)  # held at the last sample


@pytest.mark.parametrize("quality", ["vhq", "hq", "linear"])
@pytest.mark.parametrize("sr_in,sr_out", RATE_PAIRS[:4])
def test_stream_equals_one_shot_for_random_blocks(quality, sr_in, sr_out):
    rng = np.random.default_rng(sr_in + sr_out)
    x = rng.standard_normal((2, 9_001)).astype(np.float32)
    stream = StreamResampler(sr_in, sr_out, 2, quality)
    parts, start = [], 0
    while start < x.shape[1]:
        size = int(rng.integers(0, 1_500))
        parts.append(stream.process(x[:, start : start + size]))
        start += size
    parts.append(stream.flush())
    streamed = np.concatenate(parts, axis=1)
    one_shot = resample(x, sr_in, sr_out, quality)
    assert streamed.shape == one_shot.shape == (2, output_length(9_001, sr_in, sr_out))
    np.testing.assert_allclose(streamed, one_shot, atol=1e-6)
    with pytest.raises(RuntimeError):
        stream.flush()


# ---------------------------------------------------------------------- torch sinc resampler


def test_sinc_ratio_is_reduced_and_shapes_follow_output_length():
    r = SincResampler(44_100, 48_000)
    assert (r.up, r.down) == (160, 147)
    x = torch.randn(2, 3, 1_234)
    assert r(x).shape == (2, 3, output_length(1_234, 44_100, 48_000))


@pytest.mark.parametrize("sr_in,sr_out", RATE_PAIRS)
def test_sinc_pass_band_is_flat_and_in_phase(sr_in, sr_out):
    """Tones up to 0.9 of the lower Nyquist: gain within 0.1 dB, phase and delay zero."""
    nyquist = min(sr_in, sr_out) / 2
    freqs = np.linspace(50, 0.9 * nyquist, 16)
    t = np.arange(sr_in // 5) / sr_in
    x = np.sin(2 * np.pi * freqs[:, None] * t).astype(np.float32)
    y = sinc(x, sr_in, sr_out)
    edge = y.shape[1] // 5
    amp, _ = tone_fit(y[:, edge:-edge], sr_out, freqs)
    # The fit runs from output sample `edge`; the ideal tone there has phase 2*pi*f*edge/sr_out.
    ideal = np.exp(1j * (2 * np.pi * freqs * edge / sr_out - np.pi / 2))
    assert np.max(np.abs(db(1) - 20 * np.log10(np.abs(amp)))) < 0.1
    assert np.max(np.abs(np.angle(amp / ideal))) < 1e-3  # radians: no delay, no phase shift


@pytest.mark.parametrize("sr_in,sr_out", [(48_000, 16_000), (48_000, 44_100), (16_000, 48_000), (44_100, 48_000)])
def test_sinc_stop_band_is_at_least_60_db_down(sr_in, sr_out):
    nyquist = min(sr_in, sr_out) / 2
    t = np.arange(sr_in // 5) / sr_in
    if sr_out < sr_in:  # tones above the output Nyquist must vanish (no aliasing)
        freqs = np.linspace(1.01 * nyquist, 0.99 * sr_in / 2, 16)
        y = sinc(np.sin(2 * np.pi * freqs[:, None] * t).astype(np.float32), sr_in, sr_out)
        edge = y.shape[1] // 5
        leak = np.sqrt(np.mean(y[:, edge:-edge] ** 2, axis=1)) / np.sqrt(0.5)
    else:  # images of in-band tones must vanish: the residual after removing the tone
        freqs = np.linspace(50, 0.9 * nyquist, 16)
        y = sinc(np.sin(2 * np.pi * freqs[:, None] * t).astype(np.float32), sr_in, sr_out)
        edge = y.shape[1] // 5
        _, resid = tone_fit(y[:, edge:-edge], sr_out, freqs)
        leak = resid / np.sqrt(0.5)
    assert db(leak.max()) < -60


@pytest.mark.parametrize("sr_in,sr_out", RATE_PAIRS)
def test_sinc_agrees_with_soxr_on_band_limited_audio(sr_in, sr_out):
    x = band_limited_noise(sr_in // 2, sr_in, 0.8 * min(sr_in, sr_out) / 2, seed=sr_out)
    ours, ref = sinc(x, sr_in, sr_out), resample(x, sr_in, sr_out)
    edge = ref.shape[1] // 10
    ours, ref = ours[:, edge:-edge], ref[:, edge:-edge]
    snr = db(np.sqrt(np.mean(ref**2)) / np.sqrt(np.mean((ref - ours) ** 2)))
    assert snr > 50
    lags = np.arange(-20, 21)
    xcorr = [np.sum(ref[0, 20:-20] * np.roll(ours[0], lag)[20:-20]) for lag in lags]
    assert lags[int(np.argmax(xcorr))] == 0


def test_sinc_impulse_lands_on_its_output_time():
    x = np.zeros((1, 3_000), np.float32)
    x[0, 147 * 10] = 1.0  # input time 1470 -> output time 1600 at 48 kHz
    y = sinc(x, 44_100, 48_000)
    assert int(np.argmax(np.abs(y[0]))) == 1_600
    # Upsampling: the output is the kernel itself, whose peak is the cut-off (0.95 of Nyquist).
    assert y[0, 1_600] == pytest.approx(0.95, abs=1e-3)


def test_sinc_is_differentiable_and_batch_items_are_independent():
    r = SincResampler(16_000, 48_000)
    x = torch.randn(3, 2, 800, requires_grad=True)
    y = r(x)
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(r(x[1:2, 1:2]), y[1:2, 1:2], atol=1e-6, rtol=0)
