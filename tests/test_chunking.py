"""The chunk engine: output length, exactness away from fades, smooth joins."""

import numpy as np
import pytest
from scipy.signal import fftconvolve

from audio_upscaler.chunking import OverlapChunker, process_chunked

TAPS = np.hanning(33).astype(np.float32) / np.hanning(33).sum()


def local_filter(x: np.ndarray) -> np.ndarray:
    """A function with a 33-sample receptive field (centred FIR)."""
    return fftconvolve(x, TAPS[None, :], mode="same").astype(np.float32)


def run(x, hop, context, fade, block):
    blocks = [x[:, i : i + block] for i in range(0, x.shape[1], block)]
    return np.concatenate(list(process_chunked(local_filter, blocks, x.shape[0], hop, context, fade)), axis=1)


@pytest.mark.parametrize("n", [1, 7, 999, 1000, 1001, 5003])
@pytest.mark.parametrize("block", [1, 64, 777, 10_000])
def test_length_and_exactness_without_fade(n, block):
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    y = run(x, hop=250, context=32, fade=0, block=block)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, local_filter(x), atol=1e-5)


def test_fade_regions_join_without_error_when_context_suffices():
    x = np.random.default_rng(0).standard_normal((1, 4000)).astype(np.float32)
    y = run(x, hop=500, context=64, fade=32, block=300)
    # Both windows agree in the fade region, so the cross-fade is exact too.
    np.testing.assert_allclose(y, local_filter(x), atol=1e-5)


def test_crossfade_smooths_a_window_dependent_function():
    """Each window adds its own constant; the joins must ramp, not jump."""
    calls = []

    def offset(x):
        calls.append(1)
        return x + len(calls)

    chunker = OverlapChunker(offset, 1, hop=1000, context=100, fade=200)
    x = np.zeros((1, 5000), dtype=np.float32)
    y = np.concatenate([chunker.push(x), chunker.finish()], axis=1)[0]
    assert y.shape == (5000,)
    assert np.max(np.abs(np.diff(y))) < 1.0 / 150  # ramps over 200 samples, no step of 1
    assert y[500] == pytest.approx(1.0) and y[1500] == pytest.approx(2.0)
