"""apnet's copy-up prior: an untrained model is spectral band replication, and it learns from there."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audio_upscaler.dsp.resample import resample
from audio_upscaler.errors import UpscalerError
from audio_upscaler.models import registry
from audio_upscaler.models.blocks import STFT, copy_up_bins

from .signals import harmonic_tone
from .test_models import overfit_losses

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY_COPY = dict(n_fft=256, hop=64, dim=32, n_blocks=2, cond_dim=16, prior="copy")


def band_limited(rate: int = 48_000, cutoff_rate: int = 12_000, seconds: float = 0.3) -> np.ndarray:
    return resample(resample(harmonic_tone(rate, seconds), rate, cutoff_rate), cutoff_rate, rate)


def test_copy_up_bins_map():
    src = copy_up_bins(torch.tensor([6000.0, 30000.0]), 1024, 256, 48_000)
    kc = 128  # 6000 Hz * 1024 / 48000
    assert torch.equal(src[0, :kc], torch.arange(kc))  # below the cutoff: itself
    assert (src[0, kc:] < kc).all() and (src[0, kc:] >= kc // 2).all()  # above: from the top octave
    assert torch.equal(src[1], torch.arange(513))  # cutoff above Nyquist: nothing to copy
    shifts = torch.arange(kc, 513) - src[0, kc:]
    assert (shifts % 4 == 0).all()  # multiples of n_fft / hop: frame-coherent phase


def test_untrained_copy_prior_fills_the_band_and_keeps_the_low_band():
    torch.manual_seed(0)
    model = registry.build("apnet", **TINY_COPY).eval()
    x = torch.from_numpy(band_limited())[None]
    with torch.no_grad():
        y = model(x, torch.tensor([6000.0]))
    stft = STFT(256, 64)
    sx, sy = stft(x[0]).abs(), stft(y[0]).abs()
    kc = int(6000 * 256 / 48_000)
    high_x, high_y = sx[:, kc + 4:].square().mean(), sy[:, kc + 4:].square().mean()
    assert high_y > 1e3 * high_x  # the empty band is filled
    low_err = (sy[:, : kc - 4] - sx[:, : kc - 4]).square().mean() / sx[:, : kc - 4].square().mean()
    assert low_err < 1e-3


def test_copy_prior_model_learns_beyond_the_prior():
    torch.manual_seed(0)
    losses = overfit_losses(registry.build("apnet", **TINY_COPY), 80)
    assert min(losses[-10:]) < 0.5 * losses[0]


def test_unknown_prior_is_refused():
    with pytest.raises(UpscalerError, match="prior"):
        registry.build("apnet", prior="mirror")
    with pytest.raises(UpscalerError, match="kept_bins"):
        registry.build("apnet", kept_bins="louder")


def test_fill_holes_keeps_the_input_bins_the_prediction_does_not_exceed():
    """fill_holes_db: bins where the prediction is not that much louder are the input's (to -50 dB);
    bins where it is (here: every bin above 6 kHz, made 8.7 dB louder by the head) are predicted;
    the prediction below 6 kHz (8.7 dB quieter) is not used."""
    torch.manual_seed(0)
    model = registry.build("apnet", **{**TINY_COPY, "prior": "none", "fill_holes_db": 3.0}).eval()
    kc = int(6000 * 256 / 48_000)
    with torch.no_grad():
        model.amp_head.bias[kc:] = 1.0  # e^1: +8.7 dB above 6 kHz
        model.amp_head.bias[:kc] = -1.0  # -8.7 dB below
        x = torch.from_numpy(harmonic_tone(48_000, 0.3))[None]  # full band
        y = model(x, torch.tensor([6000.0]))
    stft = STFT(256, 64)
    sx, sy = stft(x[0]), stft(y[0])
    frames = slice(4, -4)  # away from the ends of the call
    low_err = (sy[:, : kc - 1, frames] - sx[:, : kc - 1, frames]).abs().square().sum() / sx[:, : kc - 1, frames].abs().square().sum()
    assert low_err < 1e-5  # the input's bins, not just its magnitudes (-50 dB: overlap-add leakage)
    gain_db = 10 * torch.log10(sy[:, kc + 1:, frames].abs().square().sum() / sx[:, kc + 1:, frames].abs().square().sum())
    assert 7.7 < float(gain_db) < 9.7
    model.config.fill_holes_db = 10.0  # 8.7 dB is no longer enough: the output is the input
    with torch.no_grad():
        same = model(x, torch.tensor([6000.0]))
    torch.testing.assert_close(same, x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kept_bins", ["shrink", "rescale"])
def test_kept_bins_shrink_and_rescale_set_kept_bins_to_the_prediction_with_their_phase(kept_bins):
    """Below 6 kHz the head predicts 8.7 dB less, so with "shrink" and "rescale" those bins come
    out 8.7 dB quieter with the input's phase; between 6 and 12 kHz it predicts +2.2 dB (under the
    3 dB threshold): "shrink" leaves them as they are (never up), "rescale" turns them 2.2 dB up,
    phase kept."""
    torch.manual_seed(0)
    model = registry.build("apnet", **{**TINY_COPY, "prior": "none", "fill_holes_db": 3.0,
                                       "kept_bins": kept_bins}).eval()
    k6, k12 = int(6000 * 256 / 48_000), int(12000 * 256 / 48_000)
    with torch.no_grad():
        model.amp_head.bias[:k6] = -1.0  # -8.7 dB
        model.amp_head.bias[k6:] = 0.25  # +2.2 dB
        x = torch.from_numpy(harmonic_tone(48_000, 0.3))[None]
        y = model(x, torch.tensor([6000.0]))
    sx, sy = STFT(256, 64)(x[0]), STFT(256, 64)(y[0])
    frames = slice(4, -4)
    low_x, low_y = sx[:, 1 : k6 - 1, frames], sy[:, 1 : k6 - 1, frames]
    strong = low_x.abs() > 0.1 * low_x.abs().max()
    ratio = (low_y / low_x)[strong]  # a real factor e^-1: same phase, 8.7 dB down
    torch.testing.assert_close(ratio.abs(), torch.full_like(ratio.abs(), math.exp(-1)), atol=0.02, rtol=0)
    assert float(ratio.angle().abs().max()) < 0.02
    mid_x, mid_y = sx[:, k6 + 2 : k12, frames], sy[:, k6 + 2 : k12, frames]
    if kept_bins == "shrink":
        assert float((mid_y - mid_x).abs().square().sum() / mid_x.abs().square().sum()) < 1e-5
    else:
        strong = mid_x.abs() > 0.1 * mid_x.abs().max()
        ratio = (mid_y / mid_x)[strong]  # a real factor e^0.25: same phase, 2.2 dB up
        torch.testing.assert_close(ratio.abs(), torch.full_like(ratio.abs(), math.exp(0.25)), atol=0.04, rtol=0)
        assert float(ratio.angle().abs().max()) < 0.04  # leakage from the -8.7 dB band below


def tone_gains_db(x: torch.Tensor, ceiling: float | None, tones_hz: tuple[float, ...]) -> list[float]:
    """Gain (dB) at each tone's bin of a tiny hole-filling apnet whose head predicts +26 dB everywhere
    (cutoff 6 kHz), with ``fill_ceiling_db=ceiling``; ``x [1, 1, T]`` at 48 kHz."""
    model = registry.build("apnet", **{**TINY_COPY, "prior": "none", "fill_holes_db": 3.0,
                                       "fill_ceiling_db": ceiling}).eval()
    with torch.no_grad():
        model.amp_head.bias[:] = 3.0  # e^3: +26 dB
        sy = STFT(256, 64)(model(x, torch.tensor([6000.0]))[0])[0, :, 4:-4].abs()
    sx = STFT(256, 64)(x[0])[0, :, 4:-4].abs()
    return [20 * math.log10(float(sy[round(f * 256 / 48_000)].mean() / sx[round(f * 256 / 48_000)].mean()))
            for f in tones_hz]


def test_fill_ceiling_bounds_the_fill_below_and_above_the_cutoff():
    """fill_ceiling_db=6 with the head predicting +26 dB everywhere and a 6 kHz cutoff: a 3 kHz tone
    comes out at most 6 dB above the loudest input bin around it (itself), a 12 kHz tone as loud as
    it at most 6 dB above the loudest bin in the 4.5 kHz under the cutoff (the 3 kHz tone); a 12 kHz
    tone 40 dB quieter keeps the full +26 dB (it stays under that cap). (Re-analysed, a capped tone
    reads 8.5 dB: its window's side bins, 6 dB under it in the input, are raised to the same cap.)"""
    t = torch.arange(int(0.3 * 48_000)) / 48_000
    tone = lambda f, a: a * torch.sin(2 * math.pi * f * t)  # noqa: E731
    loud = (tone(3000, 0.3) + tone(12_000, 0.3))[None, None]
    quiet = (tone(3000, 0.3) + tone(12_000, 0.003))[None, None]
    assert tone_gains_db(loud, None, (3000, 12_000)) == pytest.approx([26.06, 26.06], abs=0.5)  # unbounded
    low, high = tone_gains_db(loud, 6.0, (3000, 12_000))
    assert 6.0 < low < 9.5 and 6.0 < high < 9.5
    assert tone_gains_db(quiet, 6.0, (12_000,))[0] == pytest.approx(26.06, abs=0.5)
    model = registry.build("apnet", **{**TINY_COPY, "prior": "none", "fill_ceiling_db": 6.0}).eval()
    with torch.no_grad():  # a cutoff of 0 leaves no band under it to cap from: nothing is capped
        model.amp_head.bias[:] = 1.0
        y = model(loud, torch.tensor([0.0]))
    gain = 20 * math.log10(float(y.square().sum() / loud.square().sum()) ** 0.5)
    assert gain == pytest.approx(20 * math.log10(math.e), abs=0.5)


def test_fill_ceiling_keeps_chunked_output_equal_to_a_whole_call():
    """The ceiling looks one frame either side (counted in the receptive field): a chunk with
    context_samples() of context on each side still equals the same stretch of a whole call."""
    model = registry.build("apnet", **{**TINY_COPY, "fill_holes_db": 3.0, "fill_ceiling_db": 0.0}).eval()
    with torch.no_grad():
        model.amp_head.bias[:] = 1.0
    assert_chunk_equals_whole_call(model, seconds=0.5, start_steps=20)


def assert_chunk_equals_whole_call(model, seconds: float, start_steps: int) -> None:
    """A stretch of 10 alignment steps, ``start_steps`` after the first ``context_samples()``,
    computed with that much context on each side, equals the same stretch of a call on the whole
    harmonic tone (with a DC offset, so that the DC estimate's reach is counted too)."""
    ctx, a = model.context_samples(), model.alignment()
    x = torch.from_numpy(harmonic_tone(48_000, seconds))[None] + 0.1
    start, length = (-(-ctx // a) + start_steps) * a, 10 * a
    assert start + length + ctx <= x.shape[-1]
    with torch.no_grad():
        whole = model(x, torch.tensor([6000.0]))[..., start : start + length]
        part = model(x[..., start - ctx : start + length + ctx], torch.tensor([6000.0]))[..., ctx : ctx + length]
    assert torch.allclose(whole, part, atol=1e-5)


def phase_filled(fill_phase_db: float | None, kept_bins: str = "input") -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny hole-filling apnet whose amplitude head predicts +8.7 dB above 6 kHz and whose phase
    head turns every phase (random weights), on a full-band tone: STFTs ``(input, output)``."""
    torch.manual_seed(0)
    model = registry.build("apnet", **{**TINY_COPY, "prior": "none", "fill_holes_db": 3.0,
                                       "fill_phase_db": fill_phase_db, "kept_bins": kept_bins}).eval()
    kc = int(6000 * 256 / 48_000)
    with torch.no_grad():
        model.amp_head.bias[kc:] = 1.0
        torch.nn.init.normal_(model.phase_head.bias, std=2.0)
        x = torch.from_numpy(harmonic_tone(48_000, 0.3))[None]
        y = model(x, torch.tensor([6000.0]))
    return STFT(256, 64)(x[0]), STFT(256, 64)(y[0])


@pytest.mark.parametrize("kept_bins", ["input", "rescale"])
def test_fill_phase_gives_partial_holes_the_input_phase(kept_bins):
    """Bins filled 8.7 dB over the input: with fill_phase_db=20 the input lies within 20 dB of the
    fill, so the output keeps the input's phase (output / input is close to a real factor; the
    modified spectrum is re-synthesised, so not exactly); without the option the predicted phase
    stays (the head turned it). The amplitude is the fill's either way, also when kept bins are
    rescaled (the phase step takes the input as it came in, not as rescaled)."""
    k = slice(int(7000 * 256 / 48_000), int(20_000 * 256 / 48_000))
    frames = slice(6, -6)
    angles, gains = {}, {}
    for db in (20.0, None):
        sx, sy = phase_filled(db, kept_bins)
        bx, by = sx[:, k, frames], sy[:, k, frames]
        strong = bx.abs() > 0.1 * bx.abs().max()
        angles[db] = float((by / bx)[strong].angle().abs().median())
        gains[db] = 10 * math.log10(float(by.abs().square().sum() / bx.abs().square().sum()))
    assert angles[20.0] < 0.3 and angles[None] > 0.5, angles
    assert gains[20.0] > 2.0 and abs(gains[20.0] - gains[None]) < 1.5, gains


def test_fill_phase_keeps_chunked_output_equal_to_a_whole_call():
    """The second STFT of fill_phase_db is counted in the receptive field: a chunk with
    context_samples() of context on each side still equals the same stretch of a whole call."""
    model = registry.build("apnet", **{**TINY_COPY, "fill_holes_db": 3.0, "fill_phase_db": 20.0}).eval()
    plain = registry.build("apnet", **{**TINY_COPY, "fill_holes_db": 3.0})
    assert model.context_samples() > plain.context_samples()
    with torch.no_grad():
        model.amp_head.bias[:] = 0.5
    assert_chunk_equals_whole_call(model, seconds=0.6, start_steps=30)


def test_fill_loud_turns_down_fills_near_the_frame_peak_by_their_distance():
    """fill_loud_db=60, cut 6 dB, 20 dB ramp: in a frame whose loudest input bin is at 0 dB, a fill
    predicted at -30 dB (20 dB or more inside the limit) loses 6 dB, one at -50 dB half of that, one
    at -70 dB (outside) nothing; a prediction no louder than its input bin is never touched."""
    model = registry.build("apnet", **{**TINY_COPY, "fill_holes_db": 3.0, "fill_loud_db": 60.0,
                                       "fill_loud_cut_db": 6.0}).eval()
    to_log = lambda db: db * (math.log(10) / 20)  # noqa: E731
    in_db = torch.tensor([0.0, -90.0, -90.0, -90.0, -20.0])[None, :, None]
    out_db = torch.tensor([0.0, -30.0, -50.0, -70.0, -25.0])[None, :, None]
    got = model._quieter_loud_fills(to_log(out_db), to_log(in_db)) * (20 / math.log(10))
    assert got[0, :, 0].tolist() == pytest.approx([0.0, -36.0, -53.0, -70.0, -25.0], abs=1e-4)


def test_fill_loud_keeps_chunked_output_equal_to_a_whole_call():
    """The cut looks at one frame only: chunked output still equals a whole call."""
    model = registry.build("apnet", **{**TINY_COPY, "fill_holes_db": 3.0, "fill_loud_db": 60.0,
                                       "fill_loud_cut_db": 6.0}).eval()
    with torch.no_grad():
        model.amp_head.bias[:] = 1.0
    assert_chunk_equals_whole_call(model, seconds=0.5, start_steps=20)
