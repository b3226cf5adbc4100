"""Waveform U-Net (family ``waveunet``): geometry checked against the network itself, windowed AdaIN,
configuration errors. The contract tests shared by every family live in ``test_models.py``."""

from __future__ import annotations

import math

import pytest
import torch

from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.blocks import AdaIN
from audio_upscaler.models.waveunet import WaveUNet, receptive_span

from .signals import harmonic_tone

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: The default geometry (strides, dilations, windows, kernels) with few channels: cheap to run.
NARROW_DEFAULT = dict(base_channels=4, cond_dim=8)
GEOMETRIES = {"tiny": WaveUNet.tiny_config, "default": NARROW_DEFAULT}


def build(overrides: dict, seed: int = 0) -> WaveUNet:
    """A model whose residual is large (output conv re-drawn), so any dependency shows."""
    torch.manual_seed(seed)
    model = registry.build("waveunet", **overrides).eval()
    torch.nn.init.normal_(model.output_conv.weight)
    return model


def phase_batch(model: WaveUNet) -> tuple[torch.Tensor, torch.Tensor]:
    """One input per phase of the stride grid: ``x [a, 1, n]`` and output positions ``t [a]``
    (item ``p`` looks at ``t[p] = t0 + p``, far from both ends)."""
    lo, hi = receptive_span(model.config)
    a = model.alignment()
    t0 = math.ceil(1 - lo / a) * a  # the span stays inside the signal
    x = torch.randn(1, 1, t0 + a + hi + 1).expand(a, 1, -1) * 0.1
    return x.contiguous(), t0 + torch.arange(a)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_gradient_support_equals_the_computed_span(geometry):
    """The samples an output depends on (over every grid phase) span exactly receptive_span()."""
    model = build(GEOMETRIES[geometry])
    x, t = phase_batch(model)
    x.requires_grad_(True)
    y = model(x, 6000.0)
    y[torch.arange(len(t)), 0, t].sum().backward()
    offsets = [g[0].nonzero().squeeze(1) - tp for g, tp in zip(x.grad, t)]
    measured = (min(int(o.min()) for o in offsets), max(int(o.max()) for o in offsets))
    assert measured == receptive_span(model.config)
    lo, hi = measured
    assert model.receptive_field() == hi - lo + 1


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_far_samples_do_not_change_an_output(geometry):
    """Replacing every input sample farther than the span (hence the context) leaves y[t] as it was."""
    model = build(GEOMETRIES[geometry])
    x, t = phase_batch(model)
    lo, hi = receptive_span(model.config)
    assert model.context_samples() >= max(-lo, hi)
    positions = torch.arange(x.shape[-1])
    far = (positions[None, :] < (t + lo)[:, None]) | (positions[None, :] > (t + hi)[:, None])
    # Dependence fades fast towards the span's edges; within half of it, it is strong.
    outside_half = (positions[None, :] < (t + lo // 2)[:, None]) | (positions[None, :] > (t + hi // 2)[:, None])
    noise, items = torch.randn_like(x), torch.arange(len(t))
    with torch.no_grad():
        before = model(x, 6000.0)[items, 0, t]
        after = model(torch.where(far[:, None], noise, x), 6000.0)[items, 0, t]
        nearer = model(torch.where(outside_half[:, None], noise, x), 6000.0)[items, 0, t]
    assert torch.allclose(before, after, atol=1e-6)
    assert (nearer - before).abs().min() > 1e-4  # the check does see a dependency


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_chunk_with_context_equals_whole(geometry):
    """In float64, so that the comparison is exact up to rounding (fp32 rounding, amplified by
    the local normalizations of this large-residual model, reaches about 1e-5 of full scale)."""
    model = build(GEOMETRIES[geometry]).double()
    ctx, a = model.context_samples(), model.alignment()
    assert ctx % a == 0
    x = torch.from_numpy(harmonic_tone(48_000, 0.4))[None].double()
    start, length = ctx + 3 * a, 5 * a + 17
    with torch.no_grad():
        whole = model(x, 7000.0)[..., start : start + length]
        part = model(x[..., start - ctx : start + length + ctx], 7000.0)[..., ctx : ctx + length]
    assert (whole - x[..., start : start + length]).abs().mean() > 1e-2  # a residual large enough to show
    assert torch.allclose(whole, part, atol=1e-9)


def test_default_geometry():
    model = registry.build("waveunet")
    c = model.config
    assert model.alignment() == math.prod(c.strides) == 64
    assert c.channels() == [32, 64, 128, 256]
    assert model.context_samples() < 0.1 * c.sample_rate  # bounded: well under 0.1 s each side
    assert model.num_parameters() < 3_000_000  # about 6 MB in fp16


def test_untrained_model_is_close_to_identity():
    torch.manual_seed(0)
    model = registry.build("waveunet").eval()
    x = torch.from_numpy(harmonic_tone(48_000, 0.2))[None]
    with torch.no_grad():
        y = model(x, 8000.0)
    assert 0 < (y - x).square().mean() < 1e-4 * x.square().mean()  # residual below -40 dB


def test_train_mode_injects_noise_only_once_learned():
    model = registry.build("waveunet", **WaveUNet.tiny_config).train()
    x = torch.randn(1, 1, 800) * 0.1
    assert torch.equal(model(x, 5000.0), model(x, 5000.0))  # noise scales start at zero
    for level in model.decoder:
        torch.nn.init.constant_(level.noise.weight, 0.5)
    assert not torch.allclose(model(x, 5000.0), model(x, 5000.0))
    assert torch.equal(model.eval()(x, 5000.0), model(x, 5000.0))


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(strides=[2, 4, 4]), "one stride per layer"),
    (dict(num_layers=2, strides=[2, 3]), "even"),
    (dict(kernel_size=4), "odd"),
])
def test_bad_config_is_a_user_error(overrides, message):
    with pytest.raises(UpscalerError, match=message):
        registry.build("waveunet", **overrides)


# ---------------------------------------------------------------------- AdaIN

def test_adain_normalizes_over_its_window_only():
    torch.manual_seed(0)
    adain = AdaIN(3, cond_dim=4, window=33)
    quiet, loud = 0.01 * torch.randn(1, 3, 400) + 2.0, 10.0 * torch.randn(1, 3, 400) - 5.0
    x = torch.cat([quiet, loud], dim=-1)
    with torch.no_grad():
        y = adain(x, torch.zeros(1, 4))
        alone = adain(quiet, torch.zeros(1, 4))
    reach = adain.reach()
    assert reach == 32
    # Away from the join the quiet part is normalized as if the loud part were not there...
    assert torch.allclose(y[..., : 400 - reach], alone[..., : 400 - reach], atol=1e-5)
    assert not torch.allclose(y[..., 400 - reach : 400], alone[..., 400 - reach :], atol=1e-3)
    # ...and each part comes out with zero mean and unit spread.
    for part in (y[..., 50:350], y[..., 450:750]):
        assert part.mean().abs() < 0.1 and 0.8 < part.std() < 1.2


def test_adain_style_uses_local_statistics_and_conditioning():
    torch.manual_seed(0)
    adain = AdaIN(2, cond_dim=4, window=9)
    x = torch.randn(1, 2, 200) * 3.0 + 1.0
    cond = torch.randn(1, 4)
    with torch.no_grad():
        plain = adain(x, cond)
        adain.style_weight[1, 0] = 1.0  # shift = local mean: the mean is put back
        shifted = adain(x, cond)
        mean = torch.nn.functional.avg_pool1d(x, 9, 1, 4, count_include_pad=False)
        assert torch.allclose(shifted - plain, mean, atol=1e-5)
        torch.nn.init.normal_(adain.film.proj.weight)
        assert not torch.allclose(adain(x, cond), adain(x, -cond), atol=1e-3)


def test_adain_rejects_an_even_window():
    with pytest.raises(ValueError, match="odd"):
        AdaIN(4, cond_dim=4, window=8)
