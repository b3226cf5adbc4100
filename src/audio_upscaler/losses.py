"""Training losses for band extension. Inputs are waveforms ``[B, C, T]`` (or ``[B, T]``) at
``sample_rate``; every loss returns a scalar tensor and is zero for identical signals.

Phase: :class:`ComplexSTFTLoss` compares complex spectra, so it is zero only when amplitude *and*
phase match; it is what waveform metrics (SNR, SI-SDR) reward and magnitude losses cannot see.

Source band: :func:`outside_band_from_target` lets a loss ignore what lies above the band a
training target really has (a 44.1 kHz recording at 48 kHz has nothing above 22.05 kHz, which
says nothing about the sound), by giving the prediction the target's content there.

High-band weighting: with ``high_band_weight = w > 1`` and a cutoff per item (``[B]`` Hz),
spectral bins above the cutoff count ``w`` times as much as those below it.

Adversarial terms (:class:`AdversarialLoss`, :func:`feature_matching_loss`) take discriminator
outputs instead of waveforms (see the section at the end of this module).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .errors import UpscalerError

EPS = 1e-7
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def _fold(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T]`` or ``[B, T]`` -> ``[B * C, T]``."""
    return x.reshape(-1, x.shape[-1])


def stft_complex(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``x [N, T]`` -> complex spectrum ``[N, n_fft // 2 + 1, frames]`` (Hann, centred, zero padding)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``x [N, T]`` -> magnitude ``[N, n_fft // 2 + 1, frames]`` of :func:`stft_complex`."""
    spec = stft_complex(x, n_fft, hop)
    return (spec.real.square() + spec.imag.square() + EPS).sqrt()


def band_weights(cutoff_hz: torch.Tensor | None, channels: int, n_fft: int, sample_rate: int,
                 high_band_weight: float) -> torch.Tensor | float:
    """Per-bin weights ``[B * channels, bins, 1]``: 1 below the cutoff, ``high_band_weight`` above."""
    if cutoff_hz is None or high_band_weight == 1.0:
        return 1.0
    freqs = torch.arange(n_fft // 2 + 1, device=cutoff_hz.device) * (sample_rate / n_fft)
    above = freqs[None, :] >= cutoff_hz.float().repeat_interleave(channels)[:, None]
    return (1.0 + (high_band_weight - 1.0) * above.float())[:, :, None]


SOURCE_BAND_FFT = (1024, 256)  # STFT (n_fft, hop) of the source-band split


def outside_band_from_target(pred: torch.Tensor, target: torch.Tensor, band_hz: torch.Tensor,
                             sample_rate: int) -> torch.Tensor:
    """``pred [B, C, T]`` with everything above each item's ``band_hz [B]`` (Hz) replaced by the
    target's content there: ``pred - H(pred - target)``, ``H`` keeping the STFT bins above the band.

    Any loss of the result against ``target`` then sees (and sends gradients to) only the band the
    source has. Items whose band reaches the Nyquist frequency are returned unchanged.
    """
    nyquist = sample_rate / 2
    limited = torch.nonzero(band_hz < nyquist).flatten()
    if limited.numel() == 0:
        return pred
    n_fft, hop = SOURCE_BAND_FFT
    _, ch, t = pred.shape
    diff = _fold(pred[limited] - target[limited])
    spec = stft_complex(diff, n_fft, hop)
    freqs = torch.arange(n_fft // 2 + 1, device=pred.device) * (sample_rate / n_fft)
    above = (freqs[None, :] > band_hz[limited].float().repeat_interleave(ch)[:, None])[:, :, None]
    window = torch.hann_window(n_fft, device=pred.device, dtype=diff.dtype)
    high = torch.istft(spec * above, n_fft, hop, window=window, center=True, length=t)
    out = pred.clone()
    out[limited] = pred[limited] - high.reshape(-1, ch, t)
    return out


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of spectral convergence + L1 of log-magnitude.

    Spectral convergence: ``||w (|Y| - |Ŷ|)||_F / ||w |Y|||_F``; log-magnitude: mean of
    ``w |log|Y| - log|Ŷ||`` (``w`` = :func:`band_weights`).
    """

    def __init__(self, resolutions=RESOLUTIONS, sample_rate: int = 48_000, high_band_weight: float = 1.0):
        super().__init__()
        self.resolutions = tuple((int(n), int(h)) for n, h in resolutions)
        self.sample_rate = int(sample_rate)
        self.high_band_weight = float(high_band_weight)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, cutoff_hz: torch.Tensor | None = None) -> torch.Tensor:
        channels = pred.shape[1] if pred.dim() == 3 else 1
        p, t = _fold(pred), _fold(target)
        total = pred.new_zeros(())
        for n_fft, hop in self.resolutions:
            w = band_weights(cutoff_hz, channels, n_fft, self.sample_rate, self.high_band_weight)
            mp, mt = stft_magnitude(p, n_fft, hop), stft_magnitude(t, n_fft, hop)
            sc = torch.linalg.norm(w * (mt - mp)) / torch.linalg.norm(w * mt).clamp_min(EPS)
            log_mag = (w * (mt.log() - mp.log()).abs()).mean()
            total = total + sc + log_mag
        return total / len(self.resolutions)


class OverfillLoss(nn.Module):
    """Mean over resolutions of ``max(0, log|Ŷ| - log|Y|)``: only what the prediction puts above
    the target counts (a codec-restoration model that fills the gaps between sparse partials as if
    they were spectral holes is louder than the target there; the symmetric log-magnitude term of
    :class:`MultiResolutionSTFTLoss` weighs that no more than leaving a real hole too quiet)."""

    def __init__(self, resolutions=RESOLUTIONS):
        super().__init__()
        self.resolutions = tuple((int(n), int(h)) for n, h in resolutions)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p, t = _fold(pred), _fold(target)
        total = pred.new_zeros(())
        for n_fft, hop in self.resolutions:
            mp, mt = stft_magnitude(p, n_fft, hop), stft_magnitude(t, n_fft, hop)
            total = total + (mp.log() - mt.log()).clamp_min(0.0).mean()
        return total / len(self.resolutions)


COMPLEX_BANDS = ("high", "low", "kept", "all")
#: ``ComplexSTFTLoss(band="kept")``: a bin counts as kept by the codec from this fraction of the
#: target's amplitude (-6 dB) up.
KEPT_FRACTION = 0.5


class ComplexSTFTLoss(nn.Module):
    """Mean over resolutions and items of ``||m (Ŷ - Y)||_F / ||m Y||_F`` on complex spectra.

    ``m`` selects the bins at or above each item's cutoff when ``band == "high"`` and a cutoff is
    given (the band a band-preserving model generates), the bins below it when ``band == "low"``
    (the band a codec kept: there the loss rewards removing noise without moving the phase, the
    Wiener-like shrinkage that SI-SDR rewards, and does not pull the generated band down as
    ``"all"`` does), every bin when ``band == "all"``. ``band == "kept"`` is ``"low"`` without the
    codec's spectral holes: only bins where the degraded input (``degraded``, same shape as the
    target) keeps at least ``KEPT_FRACTION`` of the target's amplitude count, so the loss does not
    teach a restoration model to leave holes empty (an incoherent fill raises complex error; the
    magnitude losses judge the fill). Each item is normalized by its own target energy there, so
    quiet and loud crops count alike. A prediction with the right amplitude but unrelated phase
    scores about ``sqrt(2)``; silence, 1.
    """

    def __init__(self, resolutions=RESOLUTIONS, sample_rate: int = 48_000, band: str = "high"):
        super().__init__()
        if band not in COMPLEX_BANDS:
            raise UpscalerError(f"complex loss band {band!r}: choose one of {', '.join(COMPLEX_BANDS)}")
        self.resolutions = tuple((int(n), int(h)) for n, h in resolutions)
        self.sample_rate = int(sample_rate)
        self.band = band

    def forward(self, pred: torch.Tensor, target: torch.Tensor, cutoff_hz: torch.Tensor | None = None,
                degraded: torch.Tensor | None = None) -> torch.Tensor:
        channels = pred.shape[1] if pred.dim() == 3 else 1
        p, t = _fold(pred), _fold(target)
        if self.band == "kept" and degraded is None:
            raise UpscalerError("complex loss band 'kept' needs the degraded input")
        total = pred.new_zeros(())
        for n_fft, hop in self.resolutions:
            ref = stft_complex(t, n_fft, hop)
            diff = stft_complex(p, n_fft, hop) - ref
            if self.band != "all" and cutoff_hz is not None:
                mask = band_weights(cutoff_hz, channels, n_fft, self.sample_rate, 2.0) - 1.0  # 1 above, 0 below
                if self.band in ("low", "kept"):
                    mask = 1.0 - mask
                if self.band == "kept":
                    kept = stft_complex(_fold(degraded), n_fft, hop).abs() >= KEPT_FRACTION * ref.abs()
                    mask = mask * kept
                diff, ref = diff * mask, ref * mask
            error = torch.linalg.vector_norm(diff, dim=(1, 2))
            energy = torch.linalg.vector_norm(ref, dim=(1, 2))
            total = total + (error / energy.clamp_min(EPS)).mean()
        return total / len(self.resolutions)


#: ``PhaseLoss``: bins more than this far (dB) under their item's loudest target bin do not count
#: (their phase is rounding noise).
PHASE_FLOOR_DB = 80.0
PHASE_SOFTNESS = 1e-3  # see _phase_distance


class PhaseLoss(nn.Module):
    """AP-BWE's three phase losses on the band above the cutoff, as cosine distances.

    With ``Ŷ``, ``Y`` the complex STFTs (``n_fft``/``hop``) of prediction and target and
    ``d(a, b) = 1 - cos(angle a - angle b) = 1 - Re(a b*) / (|a| |b|)`` (0 for equal phases, 1 on
    average for unrelated ones, 2 for opposite ones; no phase wrapping to handle, and with a
    floor under the prediction's amplitude the gradient stays finite where it is silent):

    - instantaneous phase: ``d(Ŷ[k, t], Y[k, t])``;
    - group delay (phase step between neighbouring bins): ``d(Ŷ[k] Ŷ*[k+1], Y[k] Y*[k+1])``;
    - instantaneous angular frequency (phase advance from one frame to the next):
      ``d(Ŷ[t] Ŷ*[t+1], Y[t] Y*[t+1])``.

    Each is averaged over the bins at or above each item's cutoff (all bins without a cutoff) whose
    target lies within :data:`PHASE_FLOOR_DB` of the item's loudest bin (for the two differences,
    both bins must); the loss is the mean of the three. Unlike :class:`ComplexSTFTLoss` it cannot
    be lowered by making the band quieter: it asks for the phase alone, and the group delay and
    angular frequency terms reward a band whose phase structure (partials advancing at their own
    frequency, transients lined up across bins) is right even where its absolute phase is not.
    """

    def __init__(self, n_fft: int = 1024, hop: int = 256, sample_rate: int = 48_000):
        super().__init__()
        self.n_fft, self.hop, self.sample_rate = int(n_fft), int(hop), int(sample_rate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, cutoff_hz: torch.Tensor | None = None) -> torch.Tensor:
        channels = pred.shape[1] if pred.dim() == 3 else 1
        p = stft_complex(_fold(pred), self.n_fft, self.hop)
        t = stft_complex(_fold(target), self.n_fft, self.hop)
        amplitude = t.abs()
        loud = amplitude >= amplitude.amax(dim=(1, 2), keepdim=True) * 10 ** (-PHASE_FLOOR_DB / 20)
        mask = loud.float() * (band_weights(cutoff_hz, channels, self.n_fft, self.sample_rate, 2.0) - 1.0
                               if cutoff_hz is not None else 1.0)
        terms = [
            _phase_distance(p, t, mask),
            _phase_distance(p[:, :-1] * p[:, 1:].conj(), t[:, :-1] * t[:, 1:].conj(), mask[:, :-1] * mask[:, 1:]),
            _phase_distance(p[:, :, :-1] * p[:, :, 1:].conj(), t[:, :, :-1] * t[:, :, 1:].conj(),
                            mask[:, :, :-1] * mask[:, :, 1:]),
        ]
        return sum(terms) / len(terms)


def _phase_distance(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(angle a - angle b)`` over ``mask`` (complex ``a`` (prediction), ``b``
    (target) and ``mask`` of one shape). ``a`` is divided by its amplitude, but by no less than
    :data:`PHASE_SOFTNESS` times ``|b|``: exact where ``a`` is within 60 dB of ``b``, and a bounded
    gradient where ``a`` is silent."""
    unit_b = b / b.abs().clamp_min(1e-30)
    floor = (PHASE_SOFTNESS * b.abs()).square().clamp_min(1e-30)
    unit_a = a / torch.maximum(a.real.square() + a.imag.square(), floor).sqrt()
    cosine = (unit_a * unit_b.conj()).real
    return ((1.0 - cosine) * mask).sum() / mask.sum().clamp_min(1.0)


class LogMelSpectrogram(nn.Module):
    """Waveform ``[B, C, T]`` or ``[B, T]`` -> ``log(mel + 1e-5)`` ``[B * C, n_mels, frames]`` of the
    STFT magnitude (:func:`stft_magnitude`; filterbank: :func:`audio_upscaler.metrics.mel_filterbank`)."""

    def __init__(self, sample_rate: int = 48_000, n_fft: int = 2048, hop: int = 512, n_mels: int = 80):
        super().__init__()
        from .metrics.spectral import mel_filterbank

        self.n_fft, self.hop = int(n_fft), int(hop)
        fb = torch.from_numpy(mel_filterbank(int(sample_rate), self.n_fft, int(n_mels)).astype("float32"))
        self.register_buffer("filterbank", fb, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.filterbank @ stft_magnitude(_fold(x), self.n_fft, self.hop) + 1e-5).log()


class MelLoss(nn.Module):
    """L1 between log-mel spectrograms (:class:`LogMelSpectrogram`)."""

    def __init__(self, sample_rate: int = 48_000, n_fft: int = 2048, hop: int = 512, n_mels: int = 80):
        super().__init__()
        self.log_mel = LogMelSpectrogram(sample_rate, n_fft, hop, n_mels)
        self.n_fft, self.hop = self.log_mel.n_fft, self.log_mel.hop

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.log_mel(pred), self.log_mel(target))


@dataclass
class GeneratorLossConfig:
    """Weights of the generator loss terms (0 disables a term)."""

    stft_weight: float = 0.7
    l1_weight: float = 0.3
    mel_weight: float = 0.0
    high_band_weight: float = 1.0
    sample_rate: int = 48_000
    complex_weight: float = 0.0
    complex_band: str = "high"
    overfill_weight: float = 0.0
    phase_weight: float = 0.0


class GeneratorLoss(nn.Module):
    """Weighted sum of multi-resolution STFT, waveform L1, mel L1, complex-spectrum, over-fill and phase losses.

    ``forward(pred, target, cutoff_hz=None, degraded=None) -> (total, {name: value})`` (``degraded``:
    the model's input, needed by the complex loss on the ``kept`` band).
    """

    def __init__(self, config: GeneratorLossConfig | None = None):
        super().__init__()
        self.config = config = config or GeneratorLossConfig()
        self.stft = MultiResolutionSTFTLoss(sample_rate=config.sample_rate, high_band_weight=config.high_band_weight)
        self.mel = MelLoss(config.sample_rate) if config.mel_weight else None
        self.complex = ComplexSTFTLoss(sample_rate=config.sample_rate, band=config.complex_band) if config.complex_weight else None
        self.overfill = OverfillLoss() if config.overfill_weight else None
        self.phase = PhaseLoss(sample_rate=config.sample_rate) if config.phase_weight else None

    def forward(self, pred: torch.Tensor, target: torch.Tensor, cutoff_hz: torch.Tensor | None = None,
                degraded: torch.Tensor | None = None):
        c = self.config
        parts = {}
        if c.stft_weight:
            parts["stft"] = self.stft(pred, target, cutoff_hz)
        if c.l1_weight:
            parts["l1"] = F.l1_loss(pred, target)
        if self.mel is not None:
            parts["mel"] = self.mel(pred, target)
        if self.complex is not None:
            parts["complex"] = self.complex(pred, target, cutoff_hz, degraded)
        if self.overfill is not None:
            parts["overfill"] = self.overfill(pred, target)
        if self.phase is not None:
            parts["phase"] = self.phase(pred, target, cutoff_hz)
        weights = {"stft": c.stft_weight, "l1": c.l1_weight, "mel": c.mel_weight, "complex": c.complex_weight,
                   "overfill": c.overfill_weight, "phase": c.phase_weight}
        total = sum(weights[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}


# --- Adversarial training -------------------------------------------------------------------
# Discriminator outputs (see :mod:`audio_upscaler.models.discriminators`) are lists with one
# ``(logits, feature_maps)`` pair per sub-discriminator; the functions below also accept plain
# lists of logits tensors. Every sub-discriminator counts equally: terms are averaged over them.


def _logits(outputs) -> list[torch.Tensor]:
    """``[(logits, features), ...]`` or ``[logits, ...]`` -> ``[logits, ...]``."""
    return [o if isinstance(o, torch.Tensor) else o[0] for o in outputs]


def _features(outputs) -> list[list[torch.Tensor]]:
    """``[(logits, features), ...]`` or ``[features, ...]`` -> ``[features, ...]``."""
    return [o[1] if isinstance(o, tuple) and len(o) == 2 and isinstance(o[1], (list, tuple)) else o
            for o in outputs]


def _average(terms: list[torch.Tensor]) -> torch.Tensor:
    if not terms:
        raise ValueError("no discriminator outputs")
    return torch.stack(terms).mean()


ADVERSARIAL_LOSSES = ("lsgan", "hinge")


class AdversarialLoss:
    """Adversarial loss selected by name (``kind`` in :data:`ADVERSARIAL_LOSSES`).

    With ``r`` = logits on real audio and ``f`` = logits on generated audio, per sub-discriminator
    (means over all logits of that sub-discriminator; the result is averaged over them):

    - ``"lsgan"`` (least squares): ``D = mean((1 - r)^2) + mean(f^2)``, ``G = mean((1 - f)^2)``.
    - ``"hinge"``: ``D = mean(relu(1 - r)) + mean(relu(1 + f))``, ``G = -mean(f)``.
    """

    def __init__(self, kind: str = "lsgan"):
        if kind not in ADVERSARIAL_LOSSES:
            raise UpscalerError(f"unknown adversarial loss '{kind}' (choose from {', '.join(ADVERSARIAL_LOSSES)})")
        self.kind = kind

    def discriminator_loss(self, real_outputs, fake_outputs) -> torch.Tensor:
        """Scalar loss for the discriminator (generated audio detached by the caller)."""
        real, fake = _logits(real_outputs), _logits(fake_outputs)
        if len(real) != len(fake):
            raise ValueError(f"{len(real)} real vs {len(fake)} fake discriminator outputs")
        if self.kind == "lsgan":
            terms = [(1 - r).square().mean() + f.square().mean() for r, f in zip(real, fake)]
        else:
            terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)]
        return _average(terms)

    def generator_loss(self, fake_outputs) -> torch.Tensor:
        """Scalar adversarial loss for the generator."""
        fake = _logits(fake_outputs)
        if self.kind == "lsgan":
            return _average([(1 - f).square().mean() for f in fake])
        return _average([-f.mean() for f in fake])



def feature_matching_loss(real_features, fake_features) -> torch.Tensor:
    """Mean over every sub-discriminator and layer of ``mean(|real.detach() - fake|)``.

    Arguments are discriminator outputs (lists of ``(logits, feature_maps)``) or lists (one per
    sub-discriminator) of feature-map lists. No gradient reaches the real features.
    """
    real, fake = _features(real_features), _features(fake_features)
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real vs {len(fake)} fake discriminator outputs")
    terms = []
    for real_maps, fake_maps in zip(real, fake):
        if len(real_maps) != len(fake_maps):
            raise ValueError(f"{len(real_maps)} real vs {len(fake_maps)} fake feature maps")
        terms += [F.l1_loss(f, r.detach()) for r, f in zip(real_maps, fake_maps)]
    return _average(terms)
