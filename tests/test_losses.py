"""Training losses: zero for identical signals, monotone in distortion, high-band weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_upscaler.losses import (ComplexSTFTLoss, GeneratorLoss, GeneratorLossConfig, MelLoss,
                                   MultiResolutionSTFTLoss, OverfillLoss, PhaseLoss, band_weights,
                                   outside_band_from_target)

from .signals import harmonic_tone

SR = 48_000


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def clean() -> torch.Tensor:
    return torch.from_numpy(harmonic_tone(SR, 0.5, channels=2))[None]  # [1, 2, T]


def band_noise(shape, low_hz: float, high_hz: float, seed: int = 0) -> torch.Tensor:
    """White noise restricted to ``[low_hz, high_hz)`` (FFT mask), RMS about 0.01 before masking."""
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(shape) * 0.01
    spec = np.fft.rfft(n)
    f = np.fft.rfftfreq(shape[-1], 1 / SR)
    spec[..., (f < low_hz) | (f >= high_hz)] = 0
    return torch.from_numpy(np.fft.irfft(spec, shape[-1]).astype(np.float32))


LOSSES = {
    "stft": lambda: MultiResolutionSTFTLoss(),
    "mel": lambda: MelLoss(SR),
    "complex": lambda: ComplexSTFTLoss(),
    "phase": lambda: PhaseLoss(),
    "generator": lambda: (lambda p, t: GeneratorLoss(GeneratorLossConfig(mel_weight=1.0))(p, t)[0]),
}


@pytest.mark.parametrize("name", LOSSES)
def test_zero_for_identical_signals(name, clean):
    assert float(LOSSES[name]()(clean, clean.clone())) == pytest.approx(0.0, abs=1e-7)  # phase: float rounding


@pytest.mark.parametrize("name", LOSSES)
def test_loss_grows_with_distortion(name, clean):
    loss = LOSSES[name]()
    noise = band_noise(clean.shape, 0, SR / 2)
    values = [float(loss(clean + g * noise, clean)) for g in (0.1, 1.0, 10.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_generator_loss_parts_and_weights(clean):
    noisy = clean + band_noise(clean.shape, 0, SR / 2)
    total, parts = GeneratorLoss()(noisy, clean)
    assert set(parts) == {"stft", "l1"}
    assert float(total) == pytest.approx(0.7 * parts["stft"] + 0.3 * parts["l1"], rel=1e-5)


def test_band_weights():
    w = band_weights(torch.tensor([6000.0, 12000.0]), 2, 1024, SR, 4.0)
    assert w.shape == (4, 513, 1)
    freqs = np.arange(513) * SR / 1024
    for row, cutoff in zip(w[:, :, 0].numpy(), [6000, 6000, 12000, 12000]):
        np.testing.assert_array_equal(row, np.where(freqs >= cutoff, 4.0, 1.0))
    assert band_weights(None, 2, 1024, SR, 4.0) == 1.0


def test_high_band_weighting_emphasizes_errors_above_the_cutoff(clean):
    cutoff = torch.tensor([8000.0])
    plain, weighted = MultiResolutionSTFTLoss(), MultiResolutionSTFTLoss(high_band_weight=4.0)

    def ratio(distorted):
        return float(weighted(distorted, clean, cutoff)) / float(plain(distorted, clean, cutoff))

    high = ratio(clean + band_noise(clean.shape, 10_000, SR / 2))
    low = ratio(clean + band_noise(clean.shape, 0, 6_000))
    assert high > 2.0
    assert low < 1.2
    assert high > 2 * low


def with_random_phase(x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """``x`` with the same FFT magnitudes and random phases."""
    spec = np.fft.rfft(x.numpy())
    phases = np.random.default_rng(seed).uniform(-np.pi, np.pi, spec.shape)
    return torch.from_numpy(np.fft.irfft(np.abs(spec) * np.exp(1j * phases), x.shape[-1]).astype(np.float32))


def low_passed(x: torch.Tensor, cutoff_hz: float) -> torch.Tensor:
    spec = np.fft.rfft(x.numpy())
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / SR) >= cutoff_hz] = 0
    return torch.from_numpy(np.fft.irfft(spec, x.shape[-1]).astype(np.float32))


def test_complex_loss_sees_the_phase_that_magnitude_losses_miss(clean):
    low, air = low_passed(clean, 9_000), band_noise(clean.shape, 10_000, SR / 2) * 3
    target, cutoff = low + air, torch.tensor([10_000.0])
    wrong_phase = low + with_random_phase(air)
    nothing = low
    complex_loss, magnitude_loss = ComplexSTFTLoss(), MultiResolutionSTFTLoss()
    assert float(complex_loss(target, target, cutoff)) == 0.0
    assert float(complex_loss(nothing, target, cutoff)) == pytest.approx(1.0, abs=1e-3)  # all of the band missing
    assert float(complex_loss(wrong_phase, target, cutoff)) == pytest.approx(np.sqrt(2), abs=0.05)
    assert float(magnitude_loss(wrong_phase, target, cutoff)) < 0.3 * float(magnitude_loss(nothing, target, cutoff))


def test_complex_loss_high_band_ignores_the_band_below_the_cutoff(clean):
    cutoff = torch.tensor([10_000.0])
    low_error = clean + 10 * band_noise(clean.shape, 0, 6_000)
    assert float(ComplexSTFTLoss(band="high")(low_error, clean, cutoff)) < 0.01
    assert float(ComplexSTFTLoss(band="all")(low_error, clean, cutoff)) > 0.1
    with pytest.raises(Exception, match="choose one of high, low, kept, all"):
        ComplexSTFTLoss(band="middle")


def test_complex_loss_low_band_ignores_the_band_above_the_cutoff_and_rewards_denoising(clean):
    cutoff = torch.tensor([10_000.0])
    high_error = clean + 10 * band_noise(clean.shape, 14_000, SR / 2)
    low_loss = ComplexSTFTLoss(band="low")
    assert float(low_loss(high_error, clean, cutoff)) < 0.01
    assert float(ComplexSTFTLoss(band="high")(high_error, clean, cutoff)) > 0.1
    noise = band_noise(clean.shape, 0, 6_000)
    noisy = clean + noise * (clean.std() / noise.std())  # as loud as the signal: the best gain is about 0.5
    assert float(low_loss(0.7 * noisy, clean, cutoff)) < 0.9 * float(low_loss(noisy, clean, cutoff))


def test_complex_loss_kept_band_ignores_the_codec_holes(clean):
    """band="kept": a hole (3-5 kHz missing from the degraded input) filled with the right
    amplitude but another phase costs under "low" and nothing under "kept"; noise in the bins the
    codec kept still costs under both."""
    cutoff = torch.tensor([10_000.0])
    target = clean
    hole = low_passed(target, 5_000) - low_passed(target, 3_000)
    degraded = target - hole  # the codec dropped the 3-5 kHz part
    filled = degraded + with_random_phase(hole)
    low, kept = ComplexSTFTLoss(band="low"), ComplexSTFTLoss(band="kept")
    low_cost = float(low(filled, target, cutoff)) - float(low(degraded, target, cutoff))
    kept_cost = float(kept(filled, target, cutoff, degraded)) - float(kept(degraded, target, cutoff, degraded))
    assert low_cost > 0.02 and abs(kept_cost) < 0.1 * low_cost
    noise = band_noise(clean.shape, 0, 2_000, seed=3)
    noisy = degraded + noise * (0.3 * clean.std() / noise.std())
    assert float(kept(noisy, target, cutoff, degraded)) > float(kept(degraded, target, cutoff, degraded)) + 0.05
    with pytest.raises(Exception, match="needs the degraded input"):
        kept(filled, target, cutoff)


def test_complex_loss_has_finite_gradients_and_counts_in_the_generator_loss(clean):
    pred = (clean * 0.5).requires_grad_()
    total, parts = GeneratorLoss(GeneratorLossConfig(complex_weight=2.0))(pred, clean, torch.tensor([8000.0]))
    assert set(parts) == {"stft", "l1", "complex"}
    assert float(total.detach()) == pytest.approx(0.7 * parts["stft"] + 0.3 * parts["l1"] + 2.0 * parts["complex"], rel=1e-5)
    total.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_phase_loss_asks_for_the_phase_and_not_for_a_quieter_band(clean):
    """Zero for the right band at any level (complex loss: not), high for a random phase, and
    blind to the band below the cutoff."""
    low, air = low_passed(clean, 9_000), band_noise(clean.shape, 10_000, SR / 2) * 3
    target, cutoff = low + air, torch.tensor([10_000.0])
    loss = PhaseLoss()
    assert float(loss(target, target, cutoff)) < 1e-7
    assert float(loss(low + 0.1 * air, target, cutoff)) < 0.02  # quieter, same phase (leakage from below the cutoff)
    assert float(ComplexSTFTLoss()(low + 0.1 * air, target, cutoff)) > 0.8
    # IP about 1; GD and IAF lower, as the window's overlap ties neighbouring bins and frames of any signal
    assert 0.6 < float(loss(low + with_random_phase(air), target, cutoff)) < 1.1
    assert float(loss(low - air, target, cutoff)) == pytest.approx(2 / 3, abs=0.01)  # IP 2, GD and IAF 0
    low_error = low + 5 * band_noise(clean.shape, 0, 6_000, seed=4) + air
    assert float(loss(low_error, target, cutoff)) < 1e-3


def test_phase_loss_structure_terms_reward_a_delayed_band_over_a_random_one(clean):
    """A band delayed by 3 samples has every absolute phase wrong but the right phase advance from
    frame to frame (IAF): it scores well under a random phase."""
    low, air = low_passed(clean, 9_000), band_noise(clean.shape, 10_000, SR / 2) * 3
    target, cutoff, loss = low + air, torch.tensor([10_000.0]), PhaseLoss()
    delayed = low + torch.roll(air, 3, dims=-1)
    assert float(loss(delayed, target, cutoff)) < 0.8 * float(loss(low + with_random_phase(air), target, cutoff))


def test_phase_loss_has_finite_gradients_on_silence_and_counts_in_the_generator_loss(clean):
    cutoff = torch.tensor([8_000.0])
    silent = torch.zeros_like(clean).requires_grad_()
    value = PhaseLoss()(silent, clean, cutoff)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(silent.grad).all()
    pred = (clean + band_noise(clean.shape, 8_000, SR / 2)).requires_grad_()
    total, parts = GeneratorLoss(GeneratorLossConfig(phase_weight=0.5))(pred, clean, cutoff)
    assert set(parts) == {"stft", "l1", "phase"} and parts["phase"] > 0.1
    assert float(total.detach()) == pytest.approx(0.7 * parts["stft"] + 0.3 * parts["l1"] + 0.5 * parts["phase"], rel=1e-5)
    total.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_outside_band_from_target_hides_errors_above_the_source_band(clean):
    """Item 0's source stops at 16 kHz: what the prediction puts above it costs nothing and gets no
    gradient; below it nothing changes. Item 1 is full band: it is passed through untouched."""
    target = torch.cat([low_passed(clean, 15_000), clean])  # [2, 2, T]
    top = band_noise(target.shape, 17_000, SR / 2, seed=1) * 5
    mid = band_noise(target.shape, 4_000, 8_000, seed=2)
    band = torch.tensor([16_000.0, SR / 2])
    pred = target + top
    out = outside_band_from_target(pred, target, band, SR)
    assert torch.equal(out[1], pred[1])
    inner = slice(2048, -2048)  # the first and last frames see the zero padding's smearing
    assert float((out[0] - target[0]).detach()[:, inner].abs().max()) < 1e-4 * float(top[0].abs().max())
    loss = MultiResolutionSTFTLoss()
    assert float(loss(out[:1], target[:1])) < 0.01 * float(loss(pred[:1], target[:1]))
    low_error = outside_band_from_target(target + mid, target, band, SR)  # below the band: kept
    assert torch.allclose((low_error - target)[..., inner], mid[..., inner], atol=1e-5)
    full = torch.full((2,), SR / 2)
    assert outside_band_from_target(pred, target, full, SR) is pred


def test_overfill_loss_counts_only_what_is_louder_than_the_target(clean):
    """A prediction at half the target's level costs nothing; one at twice its level costs about
    log 2 per bin; the generator loss adds it with its weight."""
    overfill = OverfillLoss()
    assert float(overfill(0.5 * clean, clean)) == pytest.approx(0.0, abs=1e-3)
    assert float(overfill(2.0 * clean, clean)) == pytest.approx(np.log(2.0), abs=0.02)
    loud = 2.0 * clean
    total, parts = GeneratorLoss(GeneratorLossConfig(overfill_weight=0.5))(loud, clean)
    assert set(parts) == {"stft", "l1", "overfill"}
    assert float(total) == pytest.approx(0.7 * parts["stft"] + 0.3 * parts["l1"] + 0.5 * parts["overfill"], rel=1e-5)
