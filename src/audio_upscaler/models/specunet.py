"""Families ``specunet`` and ``hybrid``: the seeds' SpectralUNet and their magnitude/phase fusion.

``specunet`` follows the seeds' "Spectral Recovery Network" (seeds 000 and 001): a 2-D U-Net on
the log-magnitude STFT (n_fft 1024, hop 256, periodic Hann) of the DSP-resampled input. Three
planes ``[N, 3, bins, frames]`` (scaled log-magnitude, bin frequency, soft "above the cutoff"
mask) are embedded in patches of ``freq_patch`` bins, then a U-Net of residual blocks
(3x3 conv -> per-position channel LayerNorm -> cutoff FiLM -> GELU -> 3x3 conv) runs on them:
the encoder halves the *frequency* axis ``depth`` times with strided ``(4, 1)`` convs (widths
``channels * (level + 1)``), the decoder doubles it back (1x1 conv + bin shuffle) and adds the
skip; a bin-shuffle head gives one value per bin. With the defaults the bottleneck position
spans 64 bins, so a bin far above the cutoff sees the top of the band below it. The time axis
is never resampled, so frames keep their hop grid. No BatchNorm: statistics are per position.

The head is a residual on the input log-magnitude, applied through a soft mask over the bin
axis (a sigmoid of ``(f - cutoff) / mask_width_hz``): below the cutoff the output keeps the
input's magnitude, so the training loss acts on (and the model learns) only the band above it.
There the residual starts from ``max(input, 1e-4)``: the input's stopband lies below the
losses' magnitude floor, where log-magnitude gradients vanish and training would stall.

Phase when used alone ("the input's phase extended"): bins above the cutoff copy the phase of
the bin ``s`` bins lower, where ``s`` is a multiple of ``n_fft / hop`` close to half the cutoff
bin, repeating the top octave below the cutoff upwards (SBR-style "copy-up" patching; the
magnitude stays the network's). Shifting
a signal by ``s`` bins multiplies STFT frame ``m`` by ``exp(2j*pi*s*m*hop/n_fft)``, which is 1
when ``s`` is a multiple of ``n_fft / hop``: the copied phase is exactly that of the frequency-
shifted input band, coherent from frame to frame. So transients stay aligned with the low band
and steady partials stay steady; random per-bin phase smears attacks and sounds noisy/phasey.
Measured as the training loss of the true magnitude with each phase rule (harmonic tone with
noise bursts, cutoff 8 kHz): this rule 0.59, the same copy with a non-coherent shift 0.66,
random phase 0.61, a shift of the whole band below the cutoff 0.64, the input's own phase 1.84.

``hybrid`` is the seeds' fusion: magnitude from the spectral U-Net, phase from the waveform U-Net
(family ``waveunet``, built as a submodule from the registry), inverted with the iSTFT. Below the
cutoff the input's own phase is used (the waveform model would only approximate it there), so
only the high band's phase comes from the waveform model.

Geometry: frames sit on a ``hop`` grid anchored at the input start (``alignment() == hop``).
Each conv block reaches 2 frames each side in time; ``2 * depth + 1`` blocks reach
``frames = 2 * (2 * depth + 1)`` frames, and each frame spans ``n_fft`` samples for analysis and
again for overlap-add, so a chunk needs ``frames * hop + n_fft`` samples of context on each side
(a multiple of ``hop``). The hybrid aligns to ``lcm(hop, waveunet alignment)`` and needs
``max(specunet context, waveunet context + n_fft)``, rounded up to its alignment. Within
``n_fft / 2`` of the very ends of one call the iSTFT sees fewer frames (the pipeline supplies
context there). No statistics are pooled over time, so outputs do not depend on batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscalerError
from . import registry
from .base import UpscalerModel
from .blocks import ISTFT, STFT, CutoffEmbedding, FiLM, copy_up_bins
from .registry import register

LOG_AMP_FLOOR = 1e-5
LOG_AMP_MAX = 8.0  # exp(8) ~ 3000 in STFT magnitude: far above any full-scale signal
HEAD_INIT_SCALE = 0.1  # shrink the head's initial weights: an untrained model is close to the identity
BLOCK_INIT_SCALE = 0.1  # shrink each block's last conv: the residual stack starts near the identity
# The high band starts from max(input, 1e-4): the input's stopband (near LOG_AMP_FLOOR) lies below
# the training losses' magnitude floor, where log-magnitude gradients vanish and training stalls.
HIGH_BAND_FLOOR = math.log(1e-4)
LOG_AMP_SCALE = 0.25  # log-magnitudes span about [-11.5, 6]; scaled to about unit range for the convs


@dataclass
class SpecUNetConfig:
    """Constructor settings of :class:`SpecUNet` (YAML: ``configs/specunet.yaml``)."""

    sample_rate: int = 48_000
    n_fft: int = 1024
    hop: int = 256
    freq_patch: int = 4  # bins per position of the top U-Net level (patch embedding on the bin axis)
    channels: int = 16  # width of the top level; level l has channels * (l + 1)
    depth: int = 4  # frequency halvings below the top level
    cond_dim: int = 32
    mask_width_hz: float = 100.0  # width of the soft low/high mask on the bin axis


class _Block2d(nn.Module):
    """Residual ``3x3 conv -> channel LayerNorm -> cutoff FiLM -> GELU -> 3x3 conv`` on ``[N, C, F, T]``.

    The norm is per (bin, frame) position (no statistics over time or batch). Tensors are kept in
    ``torch.channels_last`` memory format, where the LayerNorm over channels needs no copy.
    Reaches 2 frames each side in time.
    """

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.LayerNorm(channels, elementwise_affine=False)  # FiLM supplies the affine
        self.film = FiLM(cond_dim, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        with torch.no_grad():  # each block starts close to the identity (stable deep residual stack)
            self.conv2.weight.mul_(BLOCK_INIT_SCALE)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x [N, C, F, T]``, ``cond [N, cond_dim]`` -> ``[N, C, F, T]``."""
        h = self.norm(self.conv1(x).permute(0, 2, 3, 1))  # [N, F, T, C]
        scale, shift = self.film.proj(cond)[:, None, None, :].chunk(2, dim=-1)
        h = F.gelu(torch.addcmul(shift, h, 1.0 + scale)).permute(0, 3, 1, 2)
        return x + self.conv2(h)


class _FreqUpsample(nn.Module):
    """Multiply the bin axis by ``factor``: ``[N, in_ch, F, T] -> [N, out_ch, factor * F, T]``.

    A 1x1 conv to ``factor * out_ch`` channels, then each group of channels becomes ``factor``
    neighbouring bins (what a ``(factor, 1)`` transposed conv computes, several times faster on CPU).
    """

    def __init__(self, in_ch: int, out_ch: int, factor: int):
        super().__init__()
        self.factor, self.out_ch = factor, out_ch
        self.proj = nn.Conv2d(in_ch, factor * out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, f, t = x.shape
        h = self.proj(x).view(n, self.out_ch, self.factor, f, t).transpose(2, 3)
        return h.reshape(n, self.out_ch, f * self.factor, t)


def _unit_phasor(spec: torch.Tensor) -> torch.Tensor:
    """``spec / |spec|`` with a finite gradient (near-silent bins shrink towards 0)."""
    return spec / (spec.real.square() + spec.imag.square() + LOG_AMP_FLOOR**2).sqrt()


def _per_item(cutoff_hz: torch.Tensor | float, batch: int, channels: int, device) -> torch.Tensor:
    """Cutoff (scalar or ``[B]``) -> ``[B * channels]`` float32, one entry per folded channel."""
    cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=device).reshape(-1).expand(batch)
    return cutoff.repeat_interleave(channels)


@register("specunet")
class SpecUNet(UpscalerModel):
    """2-D U-Net on the log-magnitude STFT (frequency-only down/up-sampling); ``[B, C, T] -> [B, C, T]``."""

    config_class = SpecUNetConfig
    description = "spectrogram 2-D U-Net on log-magnitude, input phase copied up (seeds' SpectralUNet)"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = False  # torch.stft/istft export is not wired up yet
    tune_space = {"channels": [8, 16, 32], "depth": {"low": 3, "high": 5}}
    tiny_config = dict(n_fft=256, hop=64, freq_patch=2, channels=8, depth=2, cond_dim=8)

    def __init__(self, config: SpecUNetConfig):
        super().__init__(config)
        c = config
        if c.depth < 0 or c.channels < 1 or c.freq_patch < 1:
            raise UpscalerError("specunet needs depth >= 0, channels >= 1 and freq_patch >= 1")
        bins = c.n_fft // 2 + 1
        self.stft = STFT(c.n_fft, c.hop)
        self.istft = ISTFT(c.n_fft, c.hop)
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.register_buffer("freqs", torch.arange(bins, dtype=torch.float32) * (c.sample_rate / c.n_fft),
                             persistent=False)
        widths = [c.channels * (level + 1) for level in range(c.depth + 1)]
        self.stem = nn.Conv2d(3, widths[0], (c.freq_patch, 1), stride=(c.freq_patch, 1))
        self.encoder = nn.ModuleList(_Block2d(widths[i], c.cond_dim) for i in range(c.depth))
        self.down = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], (4, 1), stride=(2, 1), padding=(1, 0)) for i in range(c.depth)
        )
        self.bottleneck = _Block2d(widths[-1], c.cond_dim)
        self.up = nn.ModuleList(_FreqUpsample(widths[i + 1], widths[i], 2) for i in range(c.depth))
        self.decoder = nn.ModuleList(_Block2d(widths[i], c.cond_dim) for i in range(c.depth))
        self.head = _FreqUpsample(widths[0], 1, c.freq_patch)
        with torch.no_grad():  # start close to "output = input": a small initial residual
            self.head.proj.weight.mul_(HEAD_INIT_SCALE)
            self.head.proj.bias.zero_()

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return self.config.hop

    def reach_frames(self) -> int:
        """Frames each side that one output frame depends on: 2 per block, ``2 * depth + 1`` blocks."""
        return 2 * (2 * self.config.depth + 1)

    def context_samples(self) -> int:
        return self.reach_frames() * self.config.hop + self.config.n_fft

    def receptive_field(self) -> int:
        return 2 * self.context_samples() + 1

    # ------------------------------------------------------------------ parts (also used by the hybrid)

    def high_mask(self, cutoff: torch.Tensor) -> torch.Tensor:
        """Soft mask ``[N, bins, 1]``: about 0 below ``cutoff [N]`` (Hz), about 1 above it."""
        return torch.sigmoid((self.freqs[None, :] - cutoff[:, None]) / self.config.mask_width_hz)[:, :, None]

    def cutoff_bin(self, cutoff: torch.Tensor) -> torch.Tensor:
        """First bin at or above ``cutoff [N]`` (Hz) -> ``[N]`` long, within ``[1, bins]``."""
        bins = self.freqs.numel()
        return torch.ceil(cutoff * (self.config.n_fft / self.config.sample_rate)).long().clamp(1, bins)

    def log_magnitude(self, spec: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
        """Input STFT ``[N, bins, frames]`` (complex) and ``cutoff [N]`` (Hz) -> log-magnitude
        ``[N, bins, frames]``: the input's below the cutoff (soft mask), the U-Net's prediction above.
        """
        c = self.config
        log_mag = spec.abs().clamp_min(LOG_AMP_FLOOR).log()
        n, bins, frames = log_mag.shape
        mask = self.high_mask(cutoff)
        position = (self.freqs / (c.sample_rate / 2))[None, :, None]
        planes = [log_mag * LOG_AMP_SCALE, position.expand(n, bins, frames), mask.expand(n, bins, frames)]
        feats = torch.stack(planes, dim=1)  # [N, 3, bins, frames]
        step = c.freq_patch * 2**c.depth
        feats = F.pad(feats, (0, 0, 0, -(-bins // step) * step - bins))

        cond = self.cutoff_embed(cutoff)
        h = self.stem(feats.contiguous(memory_format=torch.channels_last))
        skips = []
        for level in range(c.depth):
            h = self.encoder[level](h, cond)
            skips.append(h)
            h = self.down[level](h)
        h = self.bottleneck(h, cond)
        for level in reversed(range(c.depth)):
            h = self.decoder[level](self.up[level](h) + skips[level], cond)
        residual = self.head(h)[:, 0, :bins]
        high = log_mag.clamp_min(HIGH_BAND_FLOOR) + residual
        return torch.lerp(log_mag, high, mask).clamp(max=LOG_AMP_MAX)

    def source_bins(self, cutoff: torch.Tensor) -> torch.Tensor:
        """Copy-up map ``[N, bins]`` (long): the bin whose phase each bin takes, for ``cutoff [N]`` (Hz).

        Bins below ``kc`` (the first bin at or above the cutoff) map to themselves; bin ``k >= kc``
        maps to ``kc - s + (k - kc) mod s``: the top ``s`` bins below the cutoff repeated upwards,
        with ``s`` the multiple of ``n_fft / hop`` nearest below ``kc / 2`` (at least one), so that
        the copy is frame-to-frame coherent (see the module doc).
        """
        c = self.config
        return copy_up_bins(cutoff, c.n_fft, c.hop, c.sample_rate)

    def extend_phase(self, phasor: torch.Tensor, cutoff: torch.Tensor) -> torch.Tensor:
        """Unit phasors ``[N, bins, frames]`` -> the same with the bins above ``cutoff [N]`` (Hz)
        taken from :meth:`source_bins`."""
        return phasor.gather(1, self.source_bins(cutoff)[:, :, None].expand_as(phasor))

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        n = self.valid_length(t)
        flat = F.pad(x.reshape(b * ch, t), (0, n - t))
        cutoff = _per_item(cutoff_hz, b, ch, x.device)
        spec = self.stft(flat)
        log_mag = self.log_magnitude(spec, cutoff)
        phasor = self.extend_phase(_unit_phasor(spec), cutoff)
        y = self.istft(log_mag.exp() * phasor, length=n)
        return y[:, :t].reshape(b, ch, t)


# ---------------------------------------------------------------------- hybrid


@dataclass
class HybridConfig:
    """Constructor settings of :class:`Hybrid` (YAML: ``configs/hybrid.yaml``).

    ``spec`` and ``wave`` hold overrides of the ``specunet`` and ``waveunet`` config defaults
    (plain JSON values); both sub-models run at ``sample_rate``.
    """

    sample_rate: int = 48_000
    spec: dict = field(default_factory=dict)
    wave: dict = field(default_factory=dict)


class _HybridTiny:
    """``Hybrid.tiny_config``, computed on access so the ``waveunet`` family is looked up lazily."""

    def __get__(self, obj, owner) -> dict:
        return {"spec": dict(SpecUNet.tiny_config), "wave": dict(registry.get_class("waveunet").tiny_config)}


def _sub_config(family: str, overrides: dict, sample_rate: int):
    if not isinstance(overrides, dict):
        raise UpscalerError(f"hybrid: '{family}' settings must be a mapping, not {type(overrides).__name__}")
    rate = overrides.get("sample_rate", sample_rate)
    if rate != sample_rate:
        raise UpscalerError(f"hybrid: '{family}' sample_rate {rate} differs from the hybrid's {sample_rate}")
    return registry.make_config(family, **{**overrides, "sample_rate": sample_rate})


@register("hybrid")
class Hybrid(UpscalerModel):
    """Spectral U-Net magnitude + waveform U-Net phase, fused by the iSTFT; ``[B, C, T] -> [B, C, T]``."""

    config_class = HybridConfig
    description = "fusion: spectral U-Net magnitude with waveform U-Net phase (seeds' hybrid)"
    supports_streaming = True  # bounded receptive field when both parts have one
    supports_onnx = False
    tiny_config = _HybridTiny()
    tune_space = {"spec.channels": [8, 16, 32], "wave.base_channels": [16, 32, 64]}

    def __init__(self, config: HybridConfig):
        super().__init__(config)
        self.spec = SpecUNet(_sub_config("specunet", config.spec, config.sample_rate))
        self.wave = registry.get_class("waveunet")(_sub_config("waveunet", config.wave, config.sample_rate))

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return math.lcm(self.spec.alignment(), self.wave.alignment())

    def context_samples(self) -> int:
        """Enough for the spectral path and for the STFT frames of the waveform model's output."""
        need = max(self.spec.context_samples(), self.wave.context_samples() + self.spec.config.n_fft)
        a = self.alignment()
        return -(-need // a) * a

    def receptive_field(self) -> int:
        return 2 * self.context_samples() + 1

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        n = self.valid_length(t)
        x = F.pad(x, (0, n - t))
        cutoff_b = _per_item(cutoff_hz, b, 1, x.device)  # [B] for the waveform model
        cutoff = cutoff_b.repeat_interleave(ch)  # [B * C] for the folded spectra
        spec_in = self.spec.stft(x.reshape(b * ch, n))
        spec_wave = self.spec.stft(self.wave(x, cutoff_b).reshape(b * ch, n))
        log_mag = self.spec.log_magnitude(spec_in, cutoff)
        k = torch.arange(spec_in.shape[1], device=x.device)[None, :, None]
        above = k >= self.spec.cutoff_bin(cutoff)[:, None, None]
        phasor = torch.where(above, _unit_phasor(spec_wave), _unit_phasor(spec_in))
        y = self.spec.istft(log_mag.exp() * phasor, length=n)
        return y[:, :t].reshape(b, ch, t)


__all__ = ["Hybrid", "HybridConfig", "SpecUNet", "SpecUNetConfig"]
