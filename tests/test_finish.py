"""Finishing: level conversions, DC blocker, look-ahead limiter, TPDF dither."""

from __future__ import annotations

import numpy as np
import pytest

from audio_upscaler.dsp.finish import (
    DCBlocker,
    Limiter,
    db_to_gain,
    gain_to_db,
    peak_normalize_gain,
    tpdf_dither,
)

SR = 48_000


def run_blocks(stage, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Feed ``x`` in random-sized blocks; append ``flush()`` when the stage has one."""
    rng = np.random.default_rng(seed)
    parts, start = [], 0
    while start < x.shape[1]:
        size = int(rng.integers(1, 3_000))
        parts.append(stage.process(x[:, start : start + size]))
        start += size
    if hasattr(stage, "flush"):
        parts.append(stage.flush())
    return np.concatenate(parts, axis=1)


def test_level_conversions():
    assert db_to_gain(-6.0206) == pytest.approx(0.5, rel=1e-4)
    assert gain_to_db(2.0) == pytest.approx(6.0206, abs=1e-4)
    levels = np.array([-60.0, -1.0, 0.0, 3.0])
    np.testing.assert_allclose(gain_to_db(db_to_gain(levels)), levels)
    assert peak_normalize_gain(0.5, -1.0) * 0.5 == pytest.approx(db_to_gain(-1.0))
    assert peak_normalize_gain(0.0, -1.0) == 1.0


def test_dc_blocker_removes_dc_keeps_audio_and_streams():
    t = np.arange(2 * SR) / SR
    tone = 0.5 * np.sin(2 * np.pi * 1_000 * t)
    x = np.stack([tone + 0.3, tone - 0.2]).astype(np.float32)
    y = run_blocks(DCBlocker(SR, 2), x)
    settled = y[:, SR:]  # after one second (time constant ~ 30 ms at 5 Hz)
    assert np.abs(settled.mean(axis=1)).max() < 1e-4
    rms = np.sqrt(np.mean(settled**2, axis=1))
    np.testing.assert_allclose(rms, 0.5 / np.sqrt(2), rtol=1e-3)  # 1 kHz passes at full level
    np.testing.assert_allclose(y, DCBlocker(SR, 2).process(x), atol=1e-6)


def loud_stereo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 0.15 * rng.standard_normal((2, SR))  # peaks below -1 dBFS
    x[0, 10_000:10_050] *= 8  # sharp peaks on the left only
    x[:, 30_000:31_000] *= 5  # a loud passage on both
    return x.astype(np.float32)


def test_limiter_keeps_the_ceiling_and_has_a_fixed_delay():
    x = loud_stereo()
    limiter = Limiter(SR, 2, ceiling_dbfs=-1.0)
    assert limiter.delay == round(1.5e-3 * SR)
    y = run_blocks(limiter, x)
    assert y.shape == (2, x.shape[1] + limiter.delay)
    assert np.abs(y).max() <= db_to_gain(-1.0)
    assert np.abs(x).max() > 2 * db_to_gain(-1.0)  # it really had to work
    np.testing.assert_array_equal(y, run_blocks(Limiter(SR, 2, ceiling_dbfs=-1.0), x, seed=1))


def test_limiter_is_linked_ramps_and_releases():
    x = loud_stereo()
    limiter = Limiter(SR, 2, ceiling_dbfs=-1.0)
    d = limiter.delay
    y = run_blocks(limiter, x)[:, d:]
    gain = y / np.where(x == 0, 1, x)
    np.testing.assert_allclose(gain[0], gain[1], atol=1e-5)  # one gain for both channels
    peak = 10_000 + int(np.argmax(np.abs(x[0, 10_000:10_050])))
    assert gain[0, peak - d // 2] < 0.99  # gain falls before the peak arrives (look-ahead) ...
    steps = np.abs(np.diff(gain[0, peak - 2 * d : peak]))
    assert steps.max() < 0.2  # ... as a ramp, not a jump
    assert np.all(gain[:, 25_000:29_000] > 0.999)  # recovered well after the release time


def test_limiter_is_transparent_below_the_ceiling():
    x = loud_stereo(1)
    x *= 0.95 / np.abs(x).max()  # peak -0.45 dBFS, below a -0.3 dBFS ceiling
    limiter = Limiter(SR, 2, ceiling_dbfs=-0.3)
    y = run_blocks(limiter, x)
    np.testing.assert_array_equal(y[:, : limiter.delay], 0)
    np.testing.assert_array_equal(y[:, limiter.delay :], x)


def test_tpdf_dither_is_triangular_with_one_lsb_span():
    bits = 16
    lsb = 2.0 ** -(bits - 1)
    level = np.float32(0.25 + 2.0**-20)  # off the 16-bit grid (a block on it is left alone)
    x = np.full((2, 200_000), level, np.float32)
    y = tpdf_dither(x, bits, np.random.default_rng(0))
    assert y.dtype == np.float32 and y.shape == x.shape
    noise = (y.astype(np.float64) - level) / lsb  # in LSB
    assert np.abs(noise).max() <= 1.0 + 1e-3
    assert abs(noise.mean()) < 0.01
    assert noise.var() == pytest.approx(1 / 6, rel=0.03)  # TPDF of +-1 LSB: LSB^2 / 6
    # Triangular, not uniform: 75 % of the mass lies within +-0.5 LSB (uniform would give 50 %).
    assert np.mean(np.abs(noise) < 0.5) == pytest.approx(0.75, abs=0.01)
    np.testing.assert_array_equal(y, tpdf_dither(x, bits, np.random.default_rng(0)))  # seeded
    with pytest.raises(ValueError):
        tpdf_dither(x, 1, np.random.default_rng(0))


def test_tpdf_dither_leaves_a_block_already_on_the_grid_bit_exact():
    """A 16-bit signal written at 16 or 24 bits needs no dither; one step off the grid anywhere in
    the block and the whole block is dithered."""
    rng = np.random.default_rng(1)
    x = (np.round(rng.uniform(-0.5, 0.5, (2, 4096)) * 32768) / 32768).astype(np.float32)
    for bits in (16, 24):
        np.testing.assert_array_equal(tpdf_dither(x, bits, np.random.default_rng(0)), x)
    off = x.copy()
    off[1, 100] += np.float32(2.0 ** -20)
    y = tpdf_dither(off, 16, np.random.default_rng(0))
    assert np.count_nonzero(y != off) > 4000


def test_tpdf_dither_leaves_digital_silence_silent():
    """Exact zeros (a leader, a gap, a dead channel) get no dither; every other sample does."""
    x = np.zeros((2, 10_000), np.float32)
    x[0, 5_000:] = 0.25 + 2.0**-20  # off the grid
    y = tpdf_dither(x, 16, np.random.default_rng(0))
    assert not y[1].any() and not y[0, :5_000].any()
    assert np.count_nonzero(y[0, 5_000:] != x[0, 5_000:]) > 4_000  # dithered where there is signal
