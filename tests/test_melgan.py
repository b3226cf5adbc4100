"""Mel-domain system: log-mel, Griffin-Lim, the ``vocos`` vocoder and the ``melgan`` family.

(The shared contract tests for both families are in test_models.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.base import UpscalerModel
from audio_upscaler.models.blocks import ISTFT, STFT
from audio_upscaler.models.melgan import MelGAN
from audio_upscaler.models.vocoder import LogMel, MelGriffinLim, Vocos, griffin_lim

from .signals import harmonic_tone

pytestmark = pytest.mark.usefixtures("torch_one_thread")

RATE = 48_000


def tone_and_chirp(seconds: float = 0.5, n: int | None = None) -> torch.Tensor:
    """Harmonic notes plus a 500 Hz -> 4.5 kHz chirp, ``[1, n]`` (zero-padded to ``n``)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = harmonic_tone(RATE, seconds)[0] + 0.2 * np.sin(2 * np.pi * (500 * t + 4000 * t**2 / seconds))
    x = torch.from_numpy(x.astype(np.float32))[None]
    return x if n is None else torch.nn.functional.pad(x, (0, n - x.shape[-1]))


def tiny_melgan(seed: int = 0, **overrides) -> MelGAN:
    torch.manual_seed(seed)
    return registry.build("melgan", **{**MelGAN.tiny_config, **overrides}).eval()


def griffinlim_melgan(seed: int = 0, iters: int = 8) -> MelGAN:
    return tiny_melgan(seed, vocoder="griffinlim", griffinlim_iters=iters)


# ---------------------------------------------------------------------- log-mel and Griffin-Lim

def test_log_mel_is_the_mean_magnitude_per_band():
    mel = LogMel(RATE, 2048, 512, 128)
    sums = mel.filterbank.sum(dim=1)  # weights of one band: a weighted mean of its bins
    assert sums.min() > 0.85 and sums.max() < 1.15
    assert torch.all(mel.top_hz[1:] > mel.top_hz[:-1]) and mel.top_hz[-1] < RATE / 2
    t = torch.arange(8192) / RATE
    log_mel = mel((0.5 * torch.sin(2 * torch.pi * 3000.0 * t))[None])
    assert log_mel.shape == (1, 128, 8192 // 512 + 1)
    loudest = int(log_mel[0, :, 8].argmax())
    assert mel.top_hz[loudest - 1] < 3000.0 < mel.top_hz[loudest]
    assert mel(torch.zeros(1, 1024)).max() == pytest.approx(np.log(1e-5))  # the floor


def test_griffin_lim_converges_to_a_consistent_magnitude():
    n_fft, hop = 1024, 256
    stft, istft = STFT(n_fft, hop), ISTFT(n_fft, hop)
    x = tone_and_chirp(n=stft.valid_length(24_000))
    magnitude = stft(x).abs()

    def convergence(iters: int) -> float:
        y = griffin_lim(magnitude, stft, istft, x.shape[-1], n_iter=iters)
        return float((stft(y).abs() - magnitude).norm() / magnitude.norm())

    assert convergence(32) < 0.15 < 0.3 < convergence(2)
    once, again = (griffin_lim(magnitude, stft, istft, x.shape[-1], n_iter=4) for _ in range(2))
    assert torch.equal(once, again)  # deterministic initial phase


def test_mel_griffin_lim_reproduces_the_mel():
    log_mel = LogMel(RATE, 1024, 256, 96)
    x = tone_and_chirp(n=24_064)
    target = log_mel(x)
    y = MelGriffinLim(log_mel, n_iter=32)(target, x.shape[-1])
    assert y.shape == x.shape
    audible = target > np.log(1e-3)
    error = (log_mel(y) - target)[audible].abs().mean()
    assert error < 0.25  # natural-log units: within about 2 dB on average


# ---------------------------------------------------------------------- vocos

def test_vocos_resynthesizes_from_the_mel_alone():
    torch.manual_seed(0)
    model = registry.build("vocos", **Vocos.tiny_config).eval()
    x = tone_and_chirp(0.2)[None]
    with torch.no_grad():  # x and -x have the same mel, so the same output
        assert torch.equal(model(x, 6000.0), model(-x, 6000.0))
        log_mel = model.log_mel(x[0])
        assert torch.equal(model.synthesize(log_mel, torch.tensor([6000.0]), 9600), model(x, 6000.0)[0])


# ---------------------------------------------------------------------- melgan

def test_predict_mel_keeps_the_bins_below_the_cutoff():
    model = tiny_melgan()
    x = torch.from_numpy(harmonic_tone(RATE, 0.2, channels=2))[None].repeat(2, 1, 1)
    cutoff = torch.tensor([4000.0, 9000.0])
    with torch.no_grad():
        pred, predicted = model.predict_mel(x, cutoff)
        target = model.target_mel(x)
    frames = model.valid_length(x.shape[-1]) // model.config.hop + 1
    assert pred.shape == target.shape == (2, 2, model.config.n_mels, frames)
    assert predicted.shape == (2, 2, model.config.n_mels, 1)
    for b, hz in enumerate(cutoff):
        expected = model.log_mel.top_hz > hz
        assert torch.equal(predicted[b, 0, :, 0], expected) and 0 < int(expected.sum()) < model.config.n_mels
        keep = ~expected
        assert torch.equal(pred[b][:, keep], target[b][:, keep])
        assert not torch.allclose(pred[b][:, expected], target[b][:, expected])


def test_griffinlim_melgan_reproduces_a_full_band_input():
    """At a cutoff at Nyquist every bin is known: input magnitude and phase come straight back."""
    model = griffinlim_melgan(iters=16)
    assert sum(p.numel() for p in model.vocoder.parameters()) == 0
    x = tone_and_chirp(0.3)[None]
    with torch.no_grad():
        y = model(x, RATE / 2)
    assert (y - x).abs().max() < 1e-5


def test_griffinlim_melgan_chunk_with_context_equals_whole():
    model = griffinlim_melgan(iters=8)
    ctx, a = model.context_samples(), model.alignment()
    assert ctx % a == 0 and ctx >= 9 * model.config.n_fft  # each iteration reaches n_fft further
    x = tone_and_chirp(1.0)[None]
    start, length = (ctx // a + 3) * a, 10 * a
    with torch.no_grad():
        whole = model(x, 6000.0)[..., start : start + length]
        part = model(x[..., start - ctx : start + length + ctx], 6000.0)[..., ctx : ctx + length]
    assert torch.allclose(whole, part, atol=1e-5)


def test_mel_loss_trains_the_generator_for_griffinlim():
    model = griffinlim_melgan().train()
    target = tone_and_chirp(0.15)[None]
    x = torch.from_numpy(np.fft.irfft(np.fft.rfft(target.numpy()) * (np.fft.rfftfreq(7200, 1 / RATE) < 6000),
                                      7200).astype(np.float32))
    cutoff = torch.tensor([6000.0])
    with torch.no_grad():
        assert float(model.mel_loss(target, target, RATE / 2)) == 0.0  # nothing predicted at Nyquist
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = model.mel_loss(x, target, cutoff)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert min(losses[-5:]) < losses[0] / 3


def test_load_vocoder_puts_a_trained_vocos_inside(tmp_path):
    torch.manual_seed(1)
    c = MelGAN.tiny_config
    mel = {k: c[k] for k in ("n_fft", "hop", "n_mels")}
    vocos = registry.build("vocos", **mel, dim=24, n_blocks=2, cond_dim=8).eval()
    folder = vocos.save(tmp_path / "vocos")
    model = tiny_melgan()
    model.load_vocoder(folder)
    assert model.config.vocos == {"dim": 24, "mult": 3.0, "n_blocks": 2, "kernel_size": 7, "cond_dim": 8}
    x = tone_and_chirp(0.2)[None]
    with torch.no_grad():  # the vocoder part of the output is the loaded vocos
        pred, _ = model.predict_mel(x, 6000.0)
        expected = vocos.synthesize(pred[0], torch.tensor([RATE / 2]), x.shape[-1])
        assert torch.equal(model(x, 6000.0)[0], expected)
        reloaded = UpscalerModel.load(model.save(tmp_path / "melgan"))
        assert reloaded.config == model.config and torch.equal(reloaded(x, 6000.0), model(x, 6000.0))

    other = registry.build("vocos", **{**mel, "n_mels": c["n_mels"] + 8}).save(tmp_path / "other")
    with pytest.raises(UpscalerError, match="mel settings"):
        tiny_melgan().load_vocoder(other)
    with pytest.raises(UpscalerError, match="Griffin-Lim"):
        griffinlim_melgan().load_vocoder(folder)


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(vocoder="hifigan"), "unknown melgan vocoder"),
    (dict(vocos=dict(hop=128)), "may not set hop"),
    (dict(vocos=dict(depth=3)), "unknown setting"),
])
def test_bad_melgan_settings_are_user_errors(overrides, message):
    with pytest.raises(UpscalerError, match=message):
        registry.build("melgan", **{**MelGAN.tiny_config, **overrides})
