"""Discriminators (MRD, MPD, PatchGAN), their factory, adversarial and feature-matching losses."""

from __future__ import annotations

import json
import math

import pytest
import torch

from audio_upscaler.errors import UpscalerError
from audio_upscaler.losses import (AdversarialLoss, LogMelSpectrogram, MultiResolutionSTFTLoss,
                                   feature_matching_loss)
from audio_upscaler.models.discriminators import (CombinedDiscriminator, DiscriminatorOutput,
                                                  PatchGANDiscriminator, build_discriminator)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

#: Sub-discriminators of each default discriminator.
SUBS = {"mrd": 3, "mpd": 5, "patchgan": 1}


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", SUBS)
@pytest.mark.parametrize("shape", [(2, 1, 4001), (1, 2, 3333), (1, 1, 7), (1, 1, 3)])
def test_outputs_per_sub_discriminator(name, shape):
    outputs = build_discriminator(name)(noise(*shape))
    n = shape[0] * shape[1]
    assert len(outputs) == SUBS[name]
    for out in outputs:
        assert isinstance(out, DiscriminatorOutput)
        logits, features = out
        assert logits.dim() == 2 and logits.shape[0] == n and logits.shape[1] >= 1
        assert torch.isfinite(logits).all()
        assert len(features) >= 4
        assert all(f.dim() == 4 and f.shape[0] == n for f in features)


@pytest.mark.parametrize("name", SUBS)
def test_channels_are_folded_into_the_batch(name):
    d = build_discriminator(name)
    stereo = noise(1, 2, 3001)
    both, right = d(stereo), d(stereo[:, 1:])
    for a, b in zip(both, right):
        torch.testing.assert_close(a.logits[1:], b.logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.features[-1][1:], b.features[-1], rtol=1e-4, atol=1e-5)


def test_patchgan_on_mel_input_matches_waveform_mode():
    x = noise(1, 2, 6000)
    on_wave = PatchGANDiscriminator(input="waveform", sample_rate=16_000, n_fft=512, hop=128, n_mels=40)
    on_mel = PatchGANDiscriminator(input="mel", n_mels=40)
    on_mel.load_state_dict(on_wave.state_dict())
    mel = LogMelSpectrogram(16_000, 512, 128, 40)(x)                       # [2, 40, frames]
    torch.testing.assert_close(on_mel(mel)[0].logits, on_wave(x)[0].logits)
    torch.testing.assert_close(on_mel(mel.reshape(1, 2, 40, -1))[0].logits, on_wave(x)[0].logits)
    with pytest.raises(ValueError, match="40 mel bands"):
        on_mel(torch.zeros(1, 80, 20))


def test_weight_norm_on_every_conv():
    convs = [m for m in CombinedDiscriminator(["mrd", "mpd", "patchgan"]).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 * 6 + 5 * 6 + 5
    assert all(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in convs)


def test_default_sizes_are_moderate():
    counts = {name: sum(p.numel() for p in build_discriminator(name).parameters()) for name in SUBS}
    assert 50_000 < counts["mrd"] < 1_000_000
    assert 500_000 < counts["mpd"] < 5_000_000
    assert 50_000 < counts["patchgan"] < 1_000_000


def test_config_rebuilds_the_same_discriminator():
    spec = ["mpd", {"name": "mrd", "resolutions": [[256, 64], [512, 128]], "channels": 8},
            {"name": "patchgan", "sample_rate": 16_000, "n_fft": 512, "hop": 128, "n_mels": 40}]
    d = CombinedDiscriminator(spec)
    assert len(d(noise(1, 1, 2000))) == 5 + 2 + 1
    config = json.loads(json.dumps(d.config))                            # plain data, JSON-safe
    rebuilt = build_discriminator(**config)
    rebuilt.load_state_dict(d.state_dict())
    x = noise(2, 1, 2500, seed=1)
    for a, b in zip(d(x), rebuilt(x)):
        torch.testing.assert_close(a.logits, b.logits)


@pytest.mark.parametrize("name, config, message", [
    ("gan", {}, "unknown discriminator"),
    ("mrd", {"chanels": 8}, "unknown option"),
    ("mrd", {"resolutions": [[512, 1024]]}, "resolutions"),
    ("mpd", {"periods": [0, 2]}, "periods"),
    ("patchgan", {"input": "stft"}, "input"),
    ("patchgan", {"kernel_size": 4}, "odd"),
    ("combined", {"discriminators": [{"channels": 8}]}, "name"),
])
def test_bad_configs_raise(name, config, message):
    with pytest.raises(UpscalerError, match=message):
        build_discriminator(name, **config)


# --- losses on hand-made logits ---------------------------------------------------------------

R1, F1 = torch.tensor([[0.5, 1.5]]), torch.tensor([[0.2, -0.4]])
R2, F2 = torch.tensor([[2.0, -1.0, 0.0]]), torch.tensor([[1.0, 0.5, -3.0]])


def test_lsgan_values():
    adv = AdversarialLoss("lsgan")
    d1 = (0.25 + 0.25) / 2 + (0.04 + 0.16) / 2                           # mean((1-r)^2) + mean(f^2)
    d2 = (1 + 4 + 1) / 3 + (1 + 0.25 + 9) / 3
    assert adv.discriminator_loss([R1], [F1]).item() == pytest.approx(d1)
    assert adv.discriminator_loss([R1, R2], [F1, F2]).item() == pytest.approx((d1 + d2) / 2)
    g1, g2 = (0.64 + 1.96) / 2, (0 + 0.25 + 16) / 3                       # mean((1-f)^2)
    assert adv.generator_loss([F1]).item() == pytest.approx(g1)
    assert adv.generator_loss([F1, F2]).item() == pytest.approx((g1 + g2) / 2)


def test_hinge_values():
    adv = AdversarialLoss("hinge")
    d1 = (0.5 + 0) / 2 + (1.2 + 0.6) / 2                                 # mean(relu(1-r)) + mean(relu(1+f))
    d2 = (0 + 2 + 1) / 3 + (2 + 1.5 + 0) / 3
    assert adv.discriminator_loss([R1], [F1]).item() == pytest.approx(d1)
    assert adv.discriminator_loss([R1, R2], [F1, F2]).item() == pytest.approx((d1 + d2) / 2)
    assert adv.generator_loss([F1]).item() == pytest.approx(0.1)          # -mean(f)
    assert adv.generator_loss([F1, F2]).item() == pytest.approx((0.1 + 0.5) / 2)


def test_losses_accept_discriminator_outputs():
    adv = AdversarialLoss("lsgan")
    real = [DiscriminatorOutput(R1, []), DiscriminatorOutput(R2, [])]
    fake = [DiscriminatorOutput(F1, []), DiscriminatorOutput(F2, [])]
    assert adv.discriminator_loss(real, fake).item() == adv.discriminator_loss([R1, R2], [F1, F2]).item()
    assert adv.generator_loss(fake).item() == adv.generator_loss([F1, F2]).item()
    with pytest.raises(UpscalerError, match="unknown adversarial loss"):
        AdversarialLoss("wasserstein")


def test_feature_matching_values_and_detached_reals():
    real = [[torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])], [torch.tensor([[4.0]])]]
    real = [[r.requires_grad_() for r in maps] for maps in real]
    fake = [[torch.tensor([1.5, 1.0]), torch.tensor([0.0, 0.0, 0.0])], [torch.tensor([[2.0]])]]
    fake = [[f.requires_grad_() for f in maps] for maps in fake]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx((0.75 + 1.0 + 2.0) / 3)          # mean over all layers of L1
    loss.backward()
    assert all(r.grad is None for maps in real for r in maps)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for maps in fake for f in maps)
    assert feature_matching_loss(real, [[r.detach().clone() for r in maps] for maps in real]).item() == 0.0
    outputs = [DiscriminatorOutput(torch.zeros(1, 1), maps) for maps in fake]
    assert feature_matching_loss([DiscriminatorOutput(torch.zeros(1, 1), m) for m in real], outputs) == loss
    with pytest.raises(ValueError):
        feature_matching_loss(real, fake[:1])


@pytest.mark.parametrize("name", SUBS)
@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_gradients_flow(name, kind):
    d, adv = build_discriminator(name), AdversarialLoss(kind)
    real, fake = noise(1, 1, 3000), noise(1, 1, 3000, seed=1).requires_grad_()
    adv.discriminator_loss(d(real), d(fake.detach())).backward()
    assert fake.grad is None
    # hinge: the output bias gets -1 per real and +1 per fake logit, which cancel while unsaturated
    params = [p for n, p in d.named_parameters() if not (kind == "hinge" and n.endswith("post.bias"))]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    d.zero_grad()
    real_out, fake_out = d(real), d(fake)
    (adv.generator_loss(fake_out) + feature_matching_loss(real_out, fake_out)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_toy_adversarial_training(kind):
    """Real = a sine; the "generator" is a trainable vector starting as noise."""
    torch.manual_seed(0)
    t = torch.arange(2048)
    real = (0.5 * torch.sin(2 * math.pi * 0.05 * t))[None, None]
    fake = torch.nn.Parameter(0.3 * torch.randn(1, 1, 2048))
    d = build_discriminator("mrd", resolutions=[[256, 64], [128, 32]], channels=8)
    adv, distance = AdversarialLoss(kind), MultiResolutionSTFTLoss(resolutions=[(256, 64)])
    opt_d = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam([fake], 1e-2, betas=(0.5, 0.9))

    def d_step() -> float:
        loss = adv.discriminator_loss(d(real), d(fake.detach()))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss.item()

    d_losses = [d_step() for _ in range(30)]
    assert d_losses[-1] < 0.5 * d_losses[0]                               # D learns to tell them apart

    start = distance(fake.detach(), real).item()
    for _ in range(80):
        d_step()
        real_out, fake_out = d(real), d(fake)
        g_loss = adv.generator_loss(fake_out) + 2.0 * feature_matching_loss(real_out, fake_out)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    assert distance(fake.detach(), real).item() < 0.7 * start              # fake moved toward the sine
