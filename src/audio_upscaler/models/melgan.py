"""Family ``melgan``: the AudioSR-GAN seed's mel-domain system (SRResNet mel generator + vocoder).

The input waveform's log-mel (:class:`~.vocoder.LogMel`) goes through an SRResNet-style
generator that predicts the full-band log-mel; mel bins that lie wholly below the cutoff are
kept from the input, the others come from the generator; a vocoder turns the mel back into a
waveform of the input's length. The seed trained the generator in the mel domain against a
PatchGAN discriminator (``models/discriminators.py``) and vocoded with a pretrained Vocos or
Griffin-Lim; here the vocoder is ``config.vocoder``:

* ``"vocos"`` (default): a :class:`~.vocoder.Vocos` sub-network (sizes in the nested dict
  ``config.vocos``; its mel settings are this config's). The generator's mel is full band, so
  the vocoder is called with the cutoff at Nyquist (as a vocos trained on clean -> clean pairs
  saw it). The model is differentiable end to end and trains with waveform losses like any
  family; :meth:`MelGAN.load_vocoder` puts a trained ``vocos`` checkpoint into it (the next
  :meth:`save` stores it with its config).
* ``"griffinlim"``: no weights after the generator. Below the cutoff Griffin-Lim starts from the
  input's exact STFT magnitude and phase, above it from the pseudo-inverse of the predicted mel
  and the input's (noise) phase. Train the generator with a mel loss: :meth:`MelGAN.mel_loss`
  (or :meth:`MelGAN.predict_mel` + :meth:`MelGAN.target_mel` for a custom loss or the PatchGAN).

Generator (1-D over time, the mel bins as channels): conv in (``io_kernel``) -> PReLU ->
``n_blocks`` x [conv -> per-frame LayerNorm -> cutoff FiLM -> PReLU -> conv, + skip] -> conv
-> LayerNorm, + long skip -> conv out (``io_kernel``). Why 1-D and not the seed's 2-D image
convs: every layer mixes *all* mel bins, so the band above a 4 kHz cutoff (half the mel bins
at 48 kHz) is predicted from the whole low band, where a stack of 3x3 convs would see a few
neighbouring bins; harmonic spacing is not shift-invariant along a mel axis anyway; and the
work is one small matrix per frame, about 100x cheaper than 64-channel 3x3 convs over the
128 x frames image. Input bins above the cutoff are replaced by the log floor, so junk there
(codec noise, resampler leakage) is ignored; log-mel values enter and leave the generator
through a fixed affine map (``MEL_CENTER``, ``MEL_SCALE``).

Mel settings: the seed used 80 mels, n_fft 1024 and hop 256 at 22.05 kHz (46 ms windows,
11.6 ms hop); the defaults here keep those durations at 48 kHz (n_fft 2048, hop 512) with 128
mels. :meth:`MelGAN.predict_mel` / :meth:`MelGAN.target_mel` give ``[B, C, n_mels, frames]``,
the image a mel PatchGAN judges.

Geometry: alignment ``hop``; the generator reaches ``2 * (io_kernel // 2) + (2 * n_blocks + 1)
* (kernel_size // 2)`` frames each side, the vocoder adds its own reach (Vocos) or ``n_fft``
samples per Griffin-Lim iteration; every per-frame norm keeps the receptive field bounded, so
chunks with :meth:`~MelGAN.context_samples` of context reproduce one long call exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscalerError
from .base import UpscalerModel
from .blocks import ChannelLayerNorm, CutoffEmbedding, FiLM
from .registry import make_config, register
from .vocoder import MEL_FIELDS, MEL_FLOOR, LogMel, MelGriffinLim, Vocos, VocosConfig

VOCODERS = ("vocos", "griffinlim")
#: Fixed affine map of log-mel values into the generator's working range and back:
#: ``(log_mel - MEL_CENTER) / MEL_SCALE``; the floor log(1e-5) maps to about -1.9, a loud bin
#: (log-mel 2) to 1.5, and an untrained generator's output (about 0) to quiet bins (e^-4).
MEL_CENTER, MEL_SCALE = -4.0, 4.0


@dataclass
class MelGANConfig:
    """Constructor settings of :class:`MelGAN` (YAML: ``configs/melgan.yaml``)."""

    sample_rate: int = 48_000
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 128
    channels: int = 128
    n_blocks: int = 8
    kernel_size: int = 3
    io_kernel: int = 9
    cond_dim: int = 64
    vocoder: str = "vocos"
    #: :class:`~.vocoder.VocosConfig` size settings (dim, mult, n_blocks, kernel_size, cond_dim);
    #: empty = the ``vocos`` family defaults. The mel settings come from this config.
    vocos: dict = field(default_factory=dict)
    griffinlim_iters: int = 32
    griffinlim_momentum: float = 0.99


class _ResBlock(nn.Module):
    """conv -> per-frame LayerNorm -> FiLM(cutoff) -> PReLU -> conv, + skip; ``[N, C, F]``."""

    def __init__(self, channels: int, kernel_size: int, cond_dim: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.norm = ChannelLayerNorm(channels)
        self.film = FiLM(cond_dim, channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.film(self.norm(self.conv1(x)), cond)))


class MelGenerator(nn.Module):
    """SRResNet over mel frames: masked log-mel ``[N, n_mels, F]`` + cutoff vector -> log-mel."""

    def __init__(self, c: MelGANConfig):
        super().__init__()
        pad_io, pad = c.io_kernel // 2, c.kernel_size // 2
        self.conv_in = nn.Conv1d(c.n_mels, c.channels, c.io_kernel, padding=pad_io)
        self.act_in = nn.PReLU(c.channels)
        self.blocks = nn.ModuleList(_ResBlock(c.channels, c.kernel_size, c.cond_dim) for _ in range(c.n_blocks))
        self.conv_mid = nn.Conv1d(c.channels, c.channels, c.kernel_size, padding=pad)
        self.norm_mid = ChannelLayerNorm(c.channels)
        self.conv_out = nn.Conv1d(c.channels, c.n_mels, c.io_kernel, padding=pad_io)

    def forward(self, log_mel: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        skip = h = self.act_in(self.conv_in(log_mel))
        for block in self.blocks:
            h = block(h, cond)
        return self.conv_out(self.norm_mid(self.conv_mid(h)) + skip)


@register("melgan")
class MelGAN(UpscalerModel):
    """Low-band log-mel -> full-band log-mel (SRResNet) -> vocoder; ``[B, C, T] -> [B, C, T]``."""

    config_class = MelGANConfig
    description = "mel-domain SRResNet generator + Vocos-style or Griffin-Lim vocoder (AudioSR-GAN)"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = False  # torch.stft/istft export is not wired up yet
    tune_space = {"channels": [64, 128, 192], "n_blocks": {"low": 4, "high": 12}}
    tiny_config = dict(n_fft=256, hop=64, n_mels=32, channels=32, n_blocks=1, io_kernel=3, cond_dim=16,
                       vocos=dict(dim=32, n_blocks=1, cond_dim=16))

    def __init__(self, config: MelGANConfig):
        super().__init__(config)
        c = config
        if c.vocoder not in VOCODERS:
            raise UpscalerError(f"unknown melgan vocoder '{c.vocoder}'; choose one of: {', '.join(VOCODERS)}")
        self.log_mel = LogMel(c.sample_rate, c.n_fft, c.hop, c.n_mels)
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.generator = MelGenerator(c)
        self.floor = math.log(MEL_FLOOR)
        if c.vocoder == "vocos":
            self.vocoder = Vocos(self._vocos_config(c.vocos))
        else:
            self.vocoder = MelGriffinLim(self.log_mel, c.griffinlim_iters, c.griffinlim_momentum)

    def _vocos_config(self, sizes: dict) -> VocosConfig:
        shared = sorted(set(sizes) & set(MEL_FIELDS))
        if shared:
            raise UpscalerError(f"melgan 'vocos' settings may not set {', '.join(shared)}: "
                                "they are the melgan config's own")
        return make_config("vocos", **sizes, **{k: getattr(self.config, k) for k in MEL_FIELDS})

    def load_vocoder(self, path: str | Path) -> None:
        """Replace the Vocos sub-network by the trained ``vocos`` checkpoint in folder ``path``
        (same mel settings required); ``config.vocos`` takes its sizes."""
        if self.config.vocoder != "vocos":
            raise UpscalerError("this melgan model uses Griffin-Lim; build it with vocoder: vocos to load one")
        vocoder = Vocos.load(path)
        mine = {k: getattr(self.config, k) for k in MEL_FIELDS}
        theirs = {k: getattr(vocoder.config, k) for k in MEL_FIELDS}
        if mine != theirs:
            raise UpscalerError(f"vocoder {path} uses mel settings {theirs}, this model {mine}")
        self.config.vocos = {k: v for k, v in vars(vocoder.config).items() if k not in MEL_FIELDS}
        self.vocoder = vocoder.to(self.log_mel.filterbank.device).train(self.training)

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return self.config.hop

    def reach_frames(self) -> int:
        """Frames on each side that influence one predicted mel frame."""
        c = self.config
        return 2 * (c.io_kernel // 2) + (2 * c.n_blocks + 1) * (c.kernel_size // 2)

    def receptive_field(self) -> int:
        c = self.config
        if isinstance(self.vocoder, Vocos):
            reach = (self.reach_frames() + self.vocoder.reach_frames()) * c.hop + c.n_fft
        else:  # each Griffin-Lim iteration (iSTFT + STFT) reaches n_fft further
            reach = self.reach_frames() * c.hop + (c.griffinlim_iters + 1) * c.n_fft
        return 2 * reach + 1

    def preferred_chunk(self) -> int:
        """About 4 s, or 4 contexts when the context is long (many Griffin-Lim iterations)."""
        return self.valid_length(max(4 * self.config.sample_rate, 4 * self.context_samples()))

    # ------------------------------------------------------------------ mel domain

    def _prepare(self, x: torch.Tensor, cutoff_hz) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, C, T]`` -> zero-padded ``[B * C, valid_length(T)]`` and cutoffs ``[B * C]``."""
        b, ch, t = x.shape
        flat = F.pad(x.reshape(b * ch, t), (0, self.valid_length(t) - t))
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        return flat, cutoff.repeat_interleave(ch)

    def _generate(self, log_mel: torch.Tensor, cutoff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel ``[N, n_mels, F]`` -> (predicted log-mel ``[N, n_mels, F]``, known ``[N, n_mels, 1]``)."""
        known = (self.log_mel.top_hz[None, :] <= cutoff[:, None])[:, :, None]
        masked = torch.where(known, log_mel, torch.full_like(log_mel, self.floor))
        generated = self.generator((masked - MEL_CENTER) / MEL_SCALE, self.cutoff_embed(cutoff))
        generated = generated * MEL_SCALE + MEL_CENTER
        return torch.where(known, log_mel, generated), known

    def target_mel(self, y: torch.Tensor) -> torch.Tensor:
        """Full-band target ``y [B, C, T]`` -> log-mel ``[B, C, n_mels, F]`` (the grid of :meth:`predict_mel`)."""
        flat, _ = self._prepare(y, 0.0)
        mel = self.log_mel(flat)
        return mel.reshape(*y.shape[:2], *mel.shape[1:])

    def predict_mel(self, x: torch.Tensor, cutoff_hz) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, C, T]``, ``cutoff_hz [B]`` -> (predicted log-mel ``[B, C, n_mels, F]``,
        predicted-bin mask ``[B, C, n_mels, 1]``: True where the generator's output is used)."""
        b, ch = x.shape[:2]
        flat, cutoff = self._prepare(x, cutoff_hz)
        pred, known = self._generate(self.log_mel(flat), cutoff)
        return pred.reshape(b, ch, *pred.shape[1:]), ~known.reshape(b, ch, -1, 1)

    def mel_loss(self, x: torch.Tensor, y: torch.Tensor, cutoff_hz) -> torch.Tensor:
        """Mean L1 between predicted and target log-mel over the predicted bins (scalar): the
        generator's loss when the vocoder is Griffin-Lim (no waveform path to train through)."""
        pred, predicted = self.predict_mel(x, cutoff_hz)
        weight = predicted.expand_as(pred).float()
        return ((pred - self.target_mel(y)).abs() * weight).sum() / weight.sum().clamp_min(1.0)

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        flat, cutoff = self._prepare(x, cutoff_hz)
        n = flat.shape[-1]
        spec = self.log_mel.stft(flat)
        pred, _ = self._generate(self.log_mel.mel(spec.abs()), cutoff)
        if isinstance(self.vocoder, Vocos):  # the predicted mel is full band: the vocoder is told so
            y = self.vocoder.synthesize(pred, torch.full_like(cutoff, self.config.sample_rate / 2), n)
        else:
            y = self._griffin_lim(pred, spec, cutoff, n)
        return y[:, :t].reshape(b, ch, t)

    def _griffin_lim(self, pred: torch.Tensor, spec: torch.Tensor, cutoff: torch.Tensor, n: int) -> torch.Tensor:
        """Griffin-Lim from the input's magnitude below the cutoff, the predicted one above, and
        the input's phase everywhere (deterministic and tied to the signal, not to chunk edges)."""
        c = self.config
        freqs = torch.arange(spec.shape[1], device=spec.device) * (c.sample_rate / c.n_fft)
        below = (freqs[None, :] <= cutoff[:, None])[:, :, None]
        mag = spec.abs()
        magnitude = torch.where(below, mag, self.vocoder.magnitude(pred))
        phase = torch.where(mag > 0, spec / mag.clamp_min(1e-30), torch.ones_like(spec))
        return self.vocoder(pred, n, magnitude=magnitude, phase=phase)
