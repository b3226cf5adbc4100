"""Edge U-Net specifics: size budget, export-friendly graph, causality and honest geometry."""

from __future__ import annotations

import time
import warnings

import pytest
import torch
from torch import nn

from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.edge import EdgeUNet

from .signals import harmonic_tone

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: Leaf modules an int8/ONNX/TFLite toolchain handles everywhere.
EXPORT_FRIENDLY = (nn.Conv1d, nn.ConvTranspose1d, nn.Linear, nn.GELU, nn.ConstantPad1d, nn.Identity)
#: Traced ops that would break export or bring statistics over time.
FORBIDDEN_OPS = ("fft", "stft", "complex", "norm", "mean", "var", "std")


def lively(causal: bool, seed: int = 0) -> EdgeUNet:
    """A tiny model whose every path has a clearly visible effect (random FiLM, full-size head)."""
    torch.manual_seed(seed)
    model = registry.build("edge", causal=causal, **EdgeUNet.tiny_config).eval()
    for module in model.modules():
        if type(module).__name__ == "FiLM":
            nn.init.normal_(module.proj.weight, std=0.3)
    nn.init.normal_(model.head.conv.weight, std=0.3)
    return model


def run(model: EdgeUNet, x: torch.Tensor, cutoff: float = 6000.0) -> torch.Tensor:
    with torch.no_grad():
        return model(x, torch.full((x.shape[0],), cutoff))


def test_default_size_fits_the_edge_budget():
    model = registry.build("edge")
    assert 0.5e6 <= model.num_parameters() <= 2e6
    assert 2 * model.num_parameters() < 4e6  # fp16 weights under 4 MB
    assert model.alignment() == model.config.fold * 2**model.config.depth


def test_untrained_model_is_close_to_identity():
    torch.manual_seed(0)
    model = registry.build("edge").eval()
    x = torch.from_numpy(harmonic_tone(48_000, 0.3))[None]
    y = run(model, x)
    assert 0 < (y - x).norm() < 0.02 * x.norm()


def test_layers_and_traced_ops_are_export_friendly():
    model = lively(causal=True)
    leaves = [m for m in model.modules() if not list(m.children())]
    assert all(isinstance(m, EXPORT_FRIENDLY) for m in leaves), {type(m).__name__ for m in leaves}
    x = torch.randn(1, 1, 1000) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # jit.trace is what the edge toolchains take
        traced = torch.jit.trace(model, (x, torch.tensor([6000.0])))
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert not [k for k in kinds if any(bad in k.lower() for bad in FORBIDDEN_OPS)]


@pytest.mark.parametrize("causal", [False, True])
def test_traced_model_matches_eager(causal):
    model = lively(causal)
    x, cutoff = torch.randn(2, 2, 1001) * 0.1, torch.tensor([5000.0, 11000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # jit.trace is what the edge toolchains take
        traced = torch.jit.trace(model, (x, cutoff))
    with torch.no_grad():
        assert torch.allclose(traced(x, cutoff), model(x, cutoff), atol=1e-6)
        other = torch.tensor([3000.0, 16000.0])  # the cutoff stays a graph input, not a constant
        assert torch.allclose(traced(x, other), model(x, other), atol=1e-6)
        assert not torch.allclose(traced(x, other), traced(x, cutoff), atol=1e-4)


def test_causal_output_ignores_the_future():
    """Changing samples from ``p`` on leaves every output before ``p - latency`` bit-identical;
    the latency is tight: the first sample of a fold frame hears the frame's last sample."""
    model = lively(causal=True)
    fold, latency = model.config.fold, model.latency_samples()
    assert latency == fold - 1
    x = torch.randn(1, 1, 20 * model.alignment()) * 0.1
    y = run(model, x)
    frame_start = 9 * model.alignment() + 3 * fold
    for p in (frame_start, frame_start + 1, frame_start + fold - 1):
        changed = x.clone()
        changed[..., p:] = torch.randn(x.shape[-1] - p)
        z = run(model, changed)
        same = max(p - latency, frame_start)  # nothing before the frame holding p moves either
        assert torch.equal(z[..., :same], y[..., :same])
        assert not torch.equal(z[..., : p + 1], y[..., : p + 1])
        if p == frame_start + fold - 1:  # the look-ahead is used in full
            assert z[0, 0, p - latency] != y[0, 0, p - latency]


@pytest.mark.parametrize("causal", [False, True])
def test_receptive_field_is_honest_and_tight(causal):
    """An impulse at ``p`` moves outputs only in ``[p - after, p + before]`` (``reach()``), and
    over every phase of the alignment grid it reaches most of that span."""
    model = lively(causal)
    before, after = model.reach()
    a = model.alignment()
    n = 8 * a + 2 * (before + after)
    x = torch.randn(1, 1, n) * 0.1
    y = run(model, x)
    reached_back = reached_ahead = 0
    for p in range(n // 2, n // 2 + a, 3):
        moved = x.clone()
        moved[..., p] += 1.0
        diff = (run(model, moved) - y)[0, 0]
        hit = torch.nonzero(diff).flatten()
        assert hit.numel() and p - after <= hit.min() and hit.max() <= p + before
        reached_back, reached_ahead = max(reached_back, p - hit.min().item()), max(reached_ahead, hit.max().item() - p)
    assert reached_back >= 0.9 * after and reached_ahead >= 0.9 * before
    assert model.receptive_field() == before + after + 1
    assert model.context_samples() % a == 0 and model.context_samples() >= max(before, after)


@pytest.mark.parametrize("causal", [False, True])
def test_chunk_with_context_equals_whole(causal):
    model = lively(causal)
    ctx, a = model.context_samples(), model.alignment()
    x = torch.from_numpy(harmonic_tone(48_000, 0.25))[None]
    start, length = ctx + 3 * a, 5 * a
    whole = run(model, x)[..., start : start + length]
    part = run(model, x[..., start - ctx : start + length + ctx])[..., ctx : ctx + length]
    assert torch.allclose(whole, part, atol=1e-5)


def test_non_causal_latency_is_the_context():
    model = lively(causal=False)
    assert model.latency_samples() == model.context_samples() > model.config.fold


@pytest.mark.parametrize("bad", [dict(kernel_size=4), dict(fold=0), dict(depth=-1)])
def test_invalid_config_is_a_user_error(bad):
    with pytest.raises(UpscalerError, match="invalid edge config"):
        registry.build("edge", **bad)


@pytest.mark.slow
@pytest.mark.parametrize("causal", [False, True])
def test_default_model_runs_far_faster_than_real_time(causal):
    """10 s of 48 kHz mono in well under 0.2 s of CPU time on one thread (so also on two).

    Slow: needs a few seconds; CPU time rather than wall time keeps it meaningful on a busy machine.
    """
    model = registry.build("edge", causal=causal).eval()
    x = torch.randn(1, 1, 480_000) * 0.1
    with torch.inference_mode():
        model(x, 8000.0)
        best = min(_cpu_seconds(model, x) for _ in range(3))
    assert 10.0 / best > 50


def _cpu_seconds(model: EdgeUNet, x: torch.Tensor) -> float:
    start = time.process_time()
    model(x, 8000.0)
    return time.process_time() - start
