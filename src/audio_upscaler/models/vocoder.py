"""Mel-to-waveform vocoders: Griffin-Lim (no weights) and family ``vocos`` (a small neural vocoder).

These are the waveform back ends of the AudioSR-GAN seed's mel-domain system (see
:mod:`.melgan`); the seed used a pretrained Vocos at 22.05 kHz, here the vocoder is our own and
trained on the corpus.

* :class:`LogMel` - waveform -> log-mel frames: centred periodic-Hann STFT (:class:`~.blocks.STFT`),
  magnitude, the HTK-scale filterbank of :func:`audio_upscaler.metrics.spectral.mel_filterbank`
  rescaled so each filter is a weighted *mean* of the magnitudes in its band, then
  ``log(max(mel, 1e-5))``.
* :func:`griffin_lim` / :class:`MelGriffinLim` - mel -> linear magnitude by the least-squares
  (pseudo-inverse) solution of the filterbank, clamped at 0, then fast Griffin-Lim (Perraudin
  et al. 2013, momentum 0.99) from a deterministic initial phase (zero, or a phase supplied by
  the caller).
* :class:`Vocos` (family ``vocos``) - log-mel frames -> conv embedding (kernel 7) -> cutoff-FiLM ->
  ConvNeXt blocks over time -> :class:`~.blocks.ISTFTHead` predicting log-magnitude and phase
  -> inverse STFT, as in Vocos (Siuzdak 2023). As an upscaler its ``forward(x, cutoff)`` takes
  the log-mel of ``x`` and resynthesizes the waveform; trained on clean -> clean pairs it is a
  vocoder, and the cutoff (FiLM) lets it also learn to fill the band above the cutoff. As in
  Vocos, layer scales start at ``1 / n_blocks``; the head starts quiet (``INIT_LOG_AMP``). The
  phase is predicted from the mel alone, so it must be learned (adversarial losses help most).
  Defaults: 128 mels, n_fft 2048, hop 512 at 48 kHz (the seed's 46 ms / 11.6 ms frames at
  22.05 kHz, scaled), about 2.1 M parameters.

Geometry: frames sit on a ``hop`` grid anchored at the input start (alignment ``hop``). One mel
frame reads ``n_fft`` samples; the backbone reaches ``R = 3 + n_blocks * (kernel_size // 2)``
frames to each side; overlap-add spreads each frame over ``n_fft`` samples again. So a chunk
needs ``R * hop + n_fft`` samples of context on each side (a multiple of ``hop``). Each
Griffin-Lim iteration (an iSTFT followed by an STFT) widens that by ``n_fft``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..metrics.spectral import mel_filterbank
from .base import UpscalerModel
from .blocks import ISTFT, STFT, ChannelLayerNorm, ConvNeXt1d, CutoffEmbedding, FiLM, ISTFTHead
from .registry import register

MEL_FLOOR = 1e-5
LOG_MEL_MAX = 8.0  # exp(8) ~ 3000: far above the mean STFT magnitude of any full-scale signal
EMBED_KERNEL = 7
#: Initial log-magnitude bias of the head: an untrained vocoder outputs quiet noise (0.01 per STFT
#: bin, about -70 dBFS at n_fft 2048) rather than loud noise (0 would give 1 per bin).
INIT_LOG_AMP = math.log(1e-2)


class LogMel(nn.Module):
    """Waveform ``[N, T]`` (``T`` a multiple of ``hop``) -> log-mel ``[N, n_mels, T // hop + 1]``.

    Natural log of the mean STFT magnitude in each mel band (floor ``1e-5``). Buffers:
    ``filterbank [n_mels, n_fft // 2 + 1]`` and ``top_hz [n_mels]``, the highest frequency each
    filter reads (0 for a filter that covers no bin).
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int):
        super().__init__()
        self.stft = STFT(n_fft, hop)
        # mel_filterbank normalizes each triangle to unit area in Hz; times the bin spacing
        # (sample_rate / n_fft) its weights sum to about 1, i.e. a mean magnitude per band.
        fb = torch.from_numpy(mel_filterbank(int(sample_rate), int(n_fft), int(n_mels)) * (sample_rate / n_fft))
        self.register_buffer("filterbank", fb.float(), persistent=False)
        freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float32) * (sample_rate / n_fft)
        self.register_buffer("top_hz", (freqs * (fb > 0)).amax(dim=1), persistent=False)

    def mel(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Linear magnitude ``[N, bins, F]`` -> log-mel ``[N, n_mels, F]``."""
        return (self.filterbank @ magnitude).clamp_min(MEL_FLOOR).log()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mel(self.stft(x).abs())


def griffin_lim(magnitude: torch.Tensor, stft: STFT, istft: ISTFT, length: int, n_iter: int = 32,
                momentum: float = 0.99, phase: torch.Tensor | None = None) -> torch.Tensor:
    """Fast Griffin-Lim: a waveform ``[N, length]`` whose STFT magnitude approaches ``magnitude``.

    ``magnitude [N, bins, frames]`` on the ``stft`` grid; ``phase`` (complex, same shape, unit
    modulus) is the initial phase; ``None`` starts from zero phase, so the result is
    deterministic and depends only on the frames' content, never on their absolute position.
    """
    angles = torch.ones_like(magnitude, dtype=torch.complex64) if phase is None else phase
    previous = None
    for _ in range(n_iter):
        rebuilt = stft(istft(magnitude * angles, length))
        angles = rebuilt if previous is None else rebuilt - (momentum / (1.0 + momentum)) * previous
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return istft(magnitude * angles, length)


class MelGriffinLim(nn.Module):
    """Log-mel ``[N, n_mels, F]`` -> waveform ``[N, length]`` with no trainable weights.

    Magnitude = ``max(0, pinv(filterbank) @ exp(log_mel))`` (minimum-norm least squares), then
    :func:`griffin_lim`. The caller may pass known magnitudes/phases (e.g. the input's low band).
    """

    def __init__(self, log_mel: LogMel, n_iter: int = 32, momentum: float = 0.99):
        super().__init__()
        self.stft = log_mel.stft
        self.istft = ISTFT(log_mel.stft.n_fft, log_mel.stft.hop)
        self.n_iter, self.momentum = int(n_iter), float(momentum)
        self.register_buffer("inverse", torch.linalg.pinv(log_mel.filterbank), persistent=False)

    def magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``[N, n_mels, F]`` -> linear magnitude ``[N, n_fft // 2 + 1, F]`` (>= 0)."""
        return (self.inverse @ log_mel.clamp(max=LOG_MEL_MAX).exp()).clamp_min(0.0)

    def forward(self, log_mel: torch.Tensor, length: int, magnitude: torch.Tensor | None = None,
                phase: torch.Tensor | None = None) -> torch.Tensor:
        """``magnitude`` (optional) replaces the one derived from ``log_mel``."""
        mag = self.magnitude(log_mel) if magnitude is None else magnitude
        return griffin_lim(mag, self.stft, self.istft, length, self.n_iter, self.momentum, phase)


@dataclass
class VocosConfig:
    """Constructor settings of :class:`Vocos` (YAML: ``configs/vocos.yaml``)."""

    sample_rate: int = 48_000
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 128
    dim: int = 192
    mult: float = 3.0
    n_blocks: int = 6
    kernel_size: int = 7
    cond_dim: int = 64


#: Fields of :class:`VocosConfig` that fix the mel representation (shared with a mel generator).
MEL_FIELDS = ("sample_rate", "n_fft", "hop", "n_mels")


@register("vocos")
class Vocos(UpscalerModel):
    """Neural vocoder on log-mel frames; as an upscaler ``[B, C, T] -> [B, C, T]`` (mel resynthesis)."""

    default_task = "vocoder"
    config_class = VocosConfig
    description = "Vocos-style mel vocoder (ConvNeXt + iSTFT head), resynthesizes the log-mel of the input"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = False  # torch.stft/istft export is not wired up yet
    tune_space = {"dim": [128, 192, 256], "n_blocks": {"low": 4, "high": 8}}
    tiny_config = dict(n_fft=256, hop=64, n_mels=32, dim=32, n_blocks=2, cond_dim=16)

    def __init__(self, config: VocosConfig):
        super().__init__(config)
        c = config
        self.log_mel = LogMel(c.sample_rate, c.n_fft, c.hop, c.n_mels)
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.embed = nn.Conv1d(c.n_mels, c.dim, EMBED_KERNEL, padding=EMBED_KERNEL // 2)
        self.embed_norm = ChannelLayerNorm(c.dim)
        self.embed_film = FiLM(c.cond_dim, c.dim)
        self.blocks = nn.ModuleList(
            ConvNeXt1d(c.dim, c.mult, c.kernel_size, cond_dim=c.cond_dim, layer_scale=1.0 / max(c.n_blocks, 1))
            for _ in range(c.n_blocks)
        )
        self.norm = ChannelLayerNorm(c.dim)
        self.head = ISTFTHead(c.dim, c.n_fft, c.hop, max_log_amp=LOG_MEL_MAX, init_log_amp=INIT_LOG_AMP)

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return self.config.hop

    def reach_frames(self) -> int:
        """Frames on each side that influence one output frame."""
        c = self.config
        return EMBED_KERNEL // 2 + c.n_blocks * (c.kernel_size // 2)

    def receptive_field(self) -> int:
        c = self.config
        return 2 * (self.reach_frames() * c.hop + c.n_fft) + 1

    # ------------------------------------------------------------------ forward

    def synthesize(self, log_mel: torch.Tensor, cutoff_hz: torch.Tensor, length: int) -> torch.Tensor:
        """``log_mel [N, n_mels, F]``, ``cutoff_hz [N]`` -> waveform ``[N, length]``,
        ``length <= (F - 1) * hop``."""
        cond = self.cutoff_embed(cutoff_hz)
        h = self.embed_film(self.embed_norm(self.embed(log_mel)), cond)
        for block in self.blocks:
            h = block(h, cond)
        return self.head(self.norm(h), length)

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        n = self.valid_length(t)
        flat = nn.functional.pad(x.reshape(b * ch, t), (0, n - t))
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        y = self.synthesize(self.log_mel(flat), cutoff.repeat_interleave(ch), n)
        return y[:, :t].reshape(b, ch, t)
