"""Families ``specunet`` and ``hybrid``: low band kept, coherent phase copy-up, fusion, geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.specunet import Hybrid, SpecUNet, _unit_phasor

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny(family: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = registry.build(family, **{**registry.get_class(family).tiny_config, **overrides}).eval()
    for block in model.modules():  # FiLM layers start at the identity; give them some effect
        if type(block).__name__ == "FiLM":
            torch.nn.init.normal_(block.proj.weight, std=0.5)
    return model


def test_log_magnitude_keeps_the_input_below_the_cutoff():
    model = tiny("specunet", n_fft=1024, hop=256)
    x = torch.randn(2, 8192) * 0.1
    cutoff = torch.tensor([5000.0, 11000.0])
    spec = model.stft(x)
    with torch.no_grad():
        out = model.log_magnitude(spec, cutoff)
    log_in = spec.abs().clamp_min(1e-5).log()
    freqs = model.freqs
    for i, fc in enumerate(cutoff.tolist()):
        below = freqs < fc - 10 * model.config.mask_width_hz
        above = freqs > fc + 10 * model.config.mask_width_hz
        assert (out[i, below] - log_in[i, below]).abs().max() < 1e-3
        assert (out[i, above] - log_in[i, above]).abs().mean() > 1e-2  # the network acts up there


def test_phase_copy_up_sources_lie_below_the_cutoff_at_coherent_offsets():
    model = tiny("specunet", n_fft=1024, hop=256)
    cutoffs = torch.tensor([2000.0, 4410.0, 11025.0, 20000.0])
    source = model.source_bins(cutoffs)
    q = model.config.n_fft // model.config.hop
    k = torch.arange(513)
    for i, kc in enumerate(model.cutoff_bin(cutoffs).tolist()):
        assert torch.equal(source[i, :kc], k[:kc])  # below the cutoff: untouched
        assert (source[i, kc:] < kc).all() and (source[i, kc:] >= kc // 2 - q).all()  # from the top octave
        assert ((k[kc:] - source[i, kc:]) % q == 0).all()  # shifts are multiples of n_fft / hop
    phasor = torch.polar(torch.ones(4, 513, 3), torch.rand(4, 513, 3))
    copied = model.extend_phase(phasor, cutoffs)
    assert torch.equal(copied, phasor.gather(1, source[:, :, None].expand(4, 513, 3)))


def test_copied_phase_is_that_of_the_frequency_shifted_tone():
    """Copy-up by a multiple of ``n_fft / hop`` bins is frame-to-frame coherent: the phases it
    gives equal those of the tone shifted up by that many bins, in every frame."""
    model = tiny("specunet", n_fft=1024, hop=256)
    rate, n_fft = model.config.sample_rate, model.config.n_fft
    bin_hz = rate / n_fft
    t = torch.arange(48_000, dtype=torch.float64) / rate
    f0, cutoff = 150.3 * bin_hz, 8000.0  # a tone between bins, below the cutoff
    spec = model.stft(torch.sin(2 * math.pi * f0 * t).float()[None])
    copied = model.extend_phase(_unit_phasor(spec), torch.tensor([cutoff]))
    kc = int(model.cutoff_bin(torch.tensor([cutoff])))
    k0 = 150  # the tone's peak bin; its copies above the cutoff:
    target_bins = [k for k in range(kc, 513) if int(model.source_bins(torch.tensor([cutoff]))[0, k]) == k0]
    assert target_bins
    for k in target_bins:
        shifted = torch.sin(2 * math.pi * (f0 + (k - k0) * bin_hz) * t).float()[None]
        reference = _unit_phasor(model.stft(shifted))[0, k, 4:-4]
        error = (copied[0, k, 4:-4] - reference).abs()
        assert error.max() < 0.02


def test_outputs_do_not_depend_on_the_batch():
    model = tiny("specunet")
    x = torch.randn(3, 2, 5000) * 0.1
    cutoff = torch.tensor([4000.0, 7000.0, 12000.0])
    with torch.no_grad():
        together = model(x, cutoff)
        alone = model(x[1:2], cutoff[1:2])
    assert torch.allclose(together[1:2], alone, atol=1e-6)


def test_a_perturbation_stays_within_the_context():
    model = tiny("specunet")
    ctx, a = model.context_samples(), model.alignment()
    assert ctx % a == 0
    x = torch.randn(1, 1, 12_000) * 0.1
    bumped = x.clone()
    bumped[..., 6000] += 1.0
    with torch.no_grad():
        diff = (model(bumped, 6000.0) - model(x, 6000.0)).abs()[0, 0]
    reached = torch.nonzero(diff > 1e-6).flatten()
    assert reached.numel() > 0
    assert reached.min() >= 6000 - ctx and reached.max() <= 6000 + ctx


def test_bad_settings_are_user_errors():
    with pytest.raises(UpscalerError, match="depth"):
        registry.build("specunet", depth=-1)
    with pytest.raises(UpscalerError, match="unknown setting"):
        registry.build("hybrid", spec={"no_such_setting": 1})
    with pytest.raises(UpscalerError, match="sample_rate"):
        registry.build("hybrid", wave={"sample_rate": 44_100})


def test_hybrid_builds_both_parts_from_its_nested_config():
    model = tiny("hybrid")
    assert isinstance(model.spec, SpecUNet) and model.wave.family == "waveunet"
    assert model.spec.config.n_fft == SpecUNet.tiny_config["n_fft"]
    assert model.alignment() == math.lcm(model.spec.alignment(), model.wave.alignment())
    assert model.context_samples() % model.alignment() == 0
    assert model.context_samples() >= max(model.spec.context_samples(),
                                          model.wave.context_samples() + model.spec.config.n_fft)
    assert Hybrid.tiny_config["wave"] == registry.get_class("waveunet").tiny_config


def _band_energy(y: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1 / rate)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum())


def test_hybrid_takes_the_high_band_phase_from_the_waveform_model(monkeypatch):
    """Flipping the waveform model's output flips the output above the cutoff and nothing below."""
    model = tiny("hybrid")
    rate, cutoff = model.sample_rate, 6000.0
    x = torch.randn(1, 1, 9600) * 0.1
    outputs = []
    with torch.no_grad():
        for sign in (1.0, -1.0):
            monkeypatch.setattr(model.wave, "forward", lambda w, cutoff_hz, sign=sign: sign * w)
            outputs.append(model(x, cutoff)[0, 0, 1000:-1000].numpy())
    same, flipped = outputs[0] + outputs[1], outputs[0] - outputs[1]
    margin = 4 * rate / model.spec.config.n_fft  # the synthesis window spreads a few bins
    total = _band_energy(outputs[0], rate, 0, rate / 2)
    assert _band_energy(same, rate, cutoff + margin, rate / 2) < 1e-4 * total
    assert _band_energy(flipped, rate, 0, cutoff - margin) < 1e-4 * total
    assert _band_energy(flipped, rate, cutoff + margin, rate / 2) > 0.1 * total
