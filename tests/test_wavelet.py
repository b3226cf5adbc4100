"""Wavelet U-Net: the DWT layers against PyWavelets, exact inversion, honest receptive field,
chunk alignment, the bounded tanh residual and config errors."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch
from torch.nn import functional as F

from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.wavelet import WaveletUNet, _WaveletLevel

from .signals import harmonic_tone

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = WaveletUNet.tiny_config


def build(seed: int = 0, **config) -> WaveletUNet:
    torch.manual_seed(seed)
    return registry.build("wavelet", **config).eval()


def run(model: WaveletUNet, x: torch.Tensor, cutoff: float = 6000.0) -> torch.Tensor:
    with torch.no_grad():
        return model(x, cutoff)


@pytest.mark.parametrize("name", ["db4", "haar", "sym5", "coif2"])
def test_dwt_matches_pywavelets(name):
    level = _WaveletLevel(name)
    x = torch.randn(1, 1, 256)
    coeffs = level.down(x)[0].numpy()  # [2, 128]: approximation, detail
    approx, detail = pywt.dwt(x[0, 0].numpy(), name, mode="zero")
    window = slice(level.shift, level.shift + 128)
    assert np.abs(coeffs[0] - approx[window]).max() < 1e-5
    assert np.abs(coeffs[1] - detail[window]).max() < 1e-5


def test_dwt_interleaves_bands_per_channel():
    level = _WaveletLevel("db4")
    x = torch.randn(2, 3, 64)
    coeffs = level.down(x)
    assert coeffs.shape == (2, 6, 32)
    for c in range(3):
        assert torch.equal(coeffs[:, 2 * c : 2 * c + 2], level.down(x[:, c : c + 1]))


@pytest.mark.parametrize("levels", [1, 3, 5])
@pytest.mark.parametrize("name", ["db4", "sym5"])
def test_multi_level_round_trip_is_exact_everywhere(levels, name):
    """Zero-extended by ``reach * 2**levels``, no coefficient falls outside the call: the inverse is
    exact up to the ends, and the orthogonal transform keeps the energy."""
    level = _WaveletLevel(name)
    margin = level.reach * 2**levels
    x = torch.from_numpy(harmonic_tone(44_100, 0.02))[None] + 0.1 * torch.randn(1, 1, 882)
    x = x[..., : 2**levels * (882 // 2**levels)]
    h = F.pad(x, (margin, margin))
    for _ in range(levels):
        h = level.down(h)
    assert h.shape[1] == 2**levels
    assert torch.allclose(h.square().sum(), x.square().sum(), rtol=1e-5)
    for _ in range(levels):
        h = level.up(h)
    assert torch.allclose(h[..., margin:-margin], x, atol=1e-5)
    assert h[..., :margin].abs().max() < 1e-5 and h[..., -margin:].abs().max() < 1e-5


def test_single_level_without_margin_is_exact_away_from_the_ends():
    level = _WaveletLevel("db4")
    x = torch.randn(1, 4, 1000)
    y = level.up(level.down(x))
    inner = slice(level.reach, -level.reach)
    assert torch.allclose(y[..., inner], x[..., inner], atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-3)  # zero padding drops the end coefficients


def test_model_margin_keeps_every_level1_coefficient():
    model = build(**TINY)
    m = model.margin()
    assert m % model.alignment() == 0 and m >= model.wavelet.reach
    x = torch.randn(1, 1, 8 * model.alignment())
    padded = F.pad(x, (m, m))
    assert torch.allclose(model.wavelet.up(model.wavelet.down(padded))[..., m:-m], x, atol=1e-5)


@pytest.mark.parametrize("config", [{}, TINY], ids=["default", "tiny"])
def test_receptive_field_is_an_honest_and_tight_bound(config):
    """Perturbing one input sample changes the output (by any amount: bit-exact elsewhere) only
    within the reported reach, and the reach is not a gross overestimate."""
    model = build(**config)
    reach = model.receptive_field() // 2
    n = 4 * reach + 3 * model.alignment() + 5
    x = torch.randn(1, 1, n) * 0.1
    p = n // 2 + 3  # off the alignment grid
    bumped = x.clone()
    bumped[..., p] += 1.0
    changed = torch.nonzero(run(model, bumped)[0, 0] != run(model, x)[0, 0])[:, 0]
    distance = (changed - p).abs()
    assert changed.numel() > 0
    assert distance.max() <= reach
    assert distance.max() >= reach // 2
    assert model.context_samples() >= reach and model.context_samples() % model.alignment() == 0


@pytest.mark.parametrize("config", [{}, TINY], ids=["default", "tiny"])
def test_chunks_on_the_grid_reproduce_the_whole_signal(config):
    model = build(**config)
    ctx, a = model.context_samples(), model.alignment()
    x = torch.from_numpy(harmonic_tone(44_100, 0.2, channels=2))[None] + 0.01 * torch.randn(1, 2, 8820)
    length = 3 * a
    whole = run(model, x)
    for start in (ctx, ctx + a, ctx + 5 * a):
        part = run(model, x[..., start - ctx : start + length + ctx])[..., ctx : ctx + length]
        assert torch.allclose(whole[..., start : start + length], part, atol=1e-5)
    # Off the grid (an odd start) the level-1 sub-bands differ, so the chunk is not reproduced.
    start = ctx + 1
    part = run(model, x[..., start - ctx : start + length + ctx])[..., ctx : ctx + length]
    assert not torch.allclose(whole[..., start : start + length], part, atol=1e-4)


def test_batch_items_and_channels_are_independent():
    model = build(**TINY)
    x = torch.randn(2, 2, 1500) * 0.1
    both = run(model, x)
    assert torch.allclose(both[1:, :1], run(model, x[1:, :1]), atol=1e-6)
    assert torch.allclose(both[:1, 1:], run(model, x[:1, 1:]), atol=1e-6)


def test_output_is_the_input_plus_a_bounded_residual():
    model = build(**TINY, residual_scale=0.25)
    with torch.no_grad():
        model.head.weight.mul_(1000.0)  # drive the tanh into saturation
    x = torch.randn(1, 1, 3000) * 0.3
    deviation = (run(model, x) - x).abs()
    assert deviation.max() <= 0.25 + 1e-6
    assert deviation.max() > 0.2


def test_default_size_and_geometry():
    model = build()
    assert model.sample_rate == 44_100
    assert model.alignment() == 2**model.config.levels
    assert 1e5 < model.num_parameters() < 3e6
    assert model.context_samples() < 0.25 * model.sample_rate  # bounded: a fraction of a second
    assert not [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.GroupNorm,
                                                               torch.nn.InstanceNorm1d))]


@pytest.mark.parametrize(("config", "message"), [
    (dict(wavelet="nope"), "unknown wavelet"),
    (dict(wavelet="bior2.2"), "not orthogonal"),
    (dict(kernel_size=8), "odd kernel_size"),
    (dict(levels=0), "levels >= 1"),
])
def test_bad_configs_are_user_errors(config, message):
    with pytest.raises(UpscalerError, match=message):
        registry.build("wavelet", **config)
