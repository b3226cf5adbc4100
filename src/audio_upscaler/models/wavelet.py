"""Family ``wavelet``: wavelet U-Net after upscalemp3_v2 (itself from Parrotfish, a DWT Wave-U-Net).

A 1-D U-Net whose down- and up-sampling are fixed discrete wavelet transforms (PyWavelets' filter
taps, ``db4`` by default: 8 taps, orthogonal, so the inverse is exact) instead of strided or
transposed convolutions. The DWT splits every channel into its approximation (low half-band) and
detail (high half-band) coefficients at half the rate, ``[N, C, T] -> [N, 2C, T/2]``; the inverse
DWT maps ``[N, 2C, T/2] -> [N, C, T]``.

- Level 1: the signal's own two sub-bands (one DWT of the input) -> stem convolution + FiLM.
- Encoder level ``l = 1 .. levels - 1``: ConvNeXt blocks on the features of that level's
  sub-bands, kept as the skip; then DWT and a pointwise convolution mixing the sub-bands into
  level ``l + 1``'s channels (``channels * 2**(l-1)``, at most ``max_channels``).
- Bottleneck at level ``levels`` (``sample_rate / 2**levels``): more ConvNeXt blocks.
- Decoder level ``l``: pointwise convolution, inverse DWT, gated skip connection
  (``concat(dec * sigmoid(g_d(dec)), skip * sigmoid(g_s(skip)))`` -> pointwise projection, as in
  upscalemp3_v2), ConvNeXt blocks.
- Output: a head predicts the two level-1 sub-bands of a residual; the inverse DWT brings it to the
  sample rate and ``y = x + residual_scale * tanh(residual)``.

Every ConvNeXt block's per-position LayerNorm is FiLM-modulated by the cutoff embedding; nothing
pools over time. The default size (about 0.44 M parameters) works mostly at 1/2 to 1/8 of the
sample rate, with a receptive field of about 0.14 s at 44.1 kHz.

Geometry: level-``l`` features sit on a grid of ``2**l`` samples anchored at the input start, so
:meth:`~WaveletUNet.alignment` is ``2**levels``. Every layer zero-pads at the ends of one call (no
periodic wrap-around), so each output sample depends on a bounded window of input: a DWT or
inverse DWT between levels ``l - 1`` and ``l`` reaches ``reach * 2**(l-1)`` samples (``reach`` = 4
for db4), a kernel-``k`` block at level ``l`` reaches ``(k // 2) * 2**l``, and their sum along the
deepest path is the half-width of :meth:`~WaveletUNet.receptive_field`. The input is zero-extended
by one alignment step (at least ``reach``) on each side, so the level-1 DWT of the signal and the
inverse DWT of the residual keep every coefficient up to the very ends of a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscalerError
from .base import UpscalerModel
from .blocks import ConvNeXt1d, CutoffEmbedding, FiLM
from .registry import register

if TYPE_CHECKING:
    import pywt


def _filter_bank(name: str) -> pywt.Wavelet:
    """The orthogonal PyWavelets wavelet called ``name`` (user error otherwise)."""
    import pywt  # imported here: loading the model registry (every family) must not need it

    try:
        wavelet = pywt.Wavelet(name)
    except ValueError as exc:
        raise UpscalerError(f"unknown wavelet '{name}' (see pywt.wavelist(kind='discrete'))") from exc
    if not wavelet.orthogonal:
        raise UpscalerError(f"wavelet '{name}' is not orthogonal; the wavelet U-Net needs an exact inverse")
    return wavelet


class _WaveletLevel(nn.Module):
    """One DWT level per channel with zero padding, and its inverse.

    :meth:`down` maps ``[N, C, T]`` (``T`` even) to ``[N, 2C, T/2]`` with channel ``2c`` the
    approximation and ``2c + 1`` the detail of input channel ``c``; coefficient ``k`` equals
    ``pywt.dwt(x, name, mode="zero")[.][k + shift]``. :meth:`up` is the synthesis (exact inverse
    wherever no coefficient fell outside the call). Both reach :attr:`reach` input positions to
    either side.
    """

    def __init__(self, name: str):
        super().__init__()
        wavelet = _filter_bank(name)
        taps = wavelet.dec_len
        # pywt: a[j] = sum_m dec_lo[m] x[2j + 1 - m]; keep coefficient k = a[k + shift] centred on 2k.
        self.shift = round((taps - 3) / 4)
        self.pad_left, self.pad_right = taps - 2 - 2 * self.shift, 2 * self.shift + 1
        self.reach = max(self.pad_left, self.pad_right)
        dec = torch.tensor([wavelet.dec_lo, wavelet.dec_hi], dtype=torch.float32)
        rec = torch.tensor([wavelet.rec_lo, wavelet.rec_hi], dtype=torch.float32)
        self.register_buffer("analysis", dec.flip(-1)[:, None, :], persistent=False)  # [2 bands, 1, taps]
        # Synthesis in polyphase form (a transposed convolution is very slow on the CPU): output
        # phase r at 2j + r is a correlation of both bands with every other tap, reversed.
        phases = torch.stack([rec[:, r::2].flip(-1) for r in (0, 1)])  # [2 phases, 2 bands, taps / 2]
        self.register_buffer("synthesis", phases, persistent=False)
        self.synthesis_pad = (self.shift, taps // 2 - 1 - self.shift)

    def down(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T]`` -> ``[N, 2C, T/2]`` (approximation/detail interleaved per channel)."""
        c = x.shape[1]
        padded = F.pad(x, (self.pad_left, self.pad_right))
        return F.conv1d(padded, self.analysis.repeat(c, 1, 1), stride=2, groups=c)

    def up(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 2C, T/2]`` -> ``[N, C, T]``."""
        n, c2, t2 = x.shape
        phases = F.conv1d(F.pad(x, self.synthesis_pad), self.synthesis.repeat(c2 // 2, 1, 1), groups=c2 // 2)
        return phases.reshape(n, c2 // 2, 2, t2).transpose(2, 3).reshape(n, c2 // 2, 2 * t2)


class _GatedSkip(nn.Module):
    """Merge decoder features with an encoder skip, each scaled by its own sigmoid gate:
    ``[N, C, T]`` twice -> ``[N, C, T]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.gates = nn.Conv1d(2 * channels, 2 * channels, 1, groups=2)  # g_d on dec, g_s on skip
        self.proj = nn.Conv1d(2 * channels, channels, 1)

    def forward(self, dec: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        both = torch.cat([dec, skip], dim=1)
        return self.proj(both * torch.sigmoid(self.gates(both)))


@dataclass
class WaveletUNetConfig:
    """Constructor settings of :class:`WaveletUNet` (YAML: ``configs/wavelet.yaml``)."""

    sample_rate: int = 44_100
    wavelet: str = "db4"
    levels: int = 7  # DWT levels, the input's own included; alignment = 2**levels
    channels: int = 16  # at level 1 (half the sample rate); doubles per level up to max_channels
    max_channels: int = 64
    blocks: int = 1  # ConvNeXt blocks per encoder level and per decoder level
    bottleneck_blocks: int = 2
    kernel_size: int = 9
    mult: float = 2.0
    cond_dim: int = 64
    residual_scale: float = 1.0  # bound of |y - x| (tanh output)


@register("wavelet")
class WaveletUNet(UpscalerModel):
    """Wavelet U-Net with gated skips and a tanh residual output; ``[B, C, T] -> [B, C, T]``."""

    config_class = WaveletUNetConfig
    description = "wavelet (db4 DWT) U-Net with gated skips, tanh residual (codec artifacts at 44.1 kHz)"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = False  # not exported yet
    tune_space = {"channels": [8, 16, 32], "levels": {"low": 5, "high": 8}, "kernel_size": [5, 9]}
    tiny_config = dict(levels=3, channels=16, max_channels=32, bottleneck_blocks=1, cond_dim=16)

    def __init__(self, config: WaveletUNetConfig):
        super().__init__(config)
        c = config
        if c.levels < 1 or c.kernel_size % 2 == 0:
            raise UpscalerError("the wavelet U-Net needs levels >= 1 and an odd kernel_size")
        # widths[l - 1]: channels at level l = 1 .. levels (level l runs at sample_rate / 2**l).
        widths = [min(c.channels * 2**level, c.max_channels) for level in range(c.levels)]
        self.wavelet = _WaveletLevel(c.wavelet)
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.stem = nn.Conv1d(2, widths[0], c.kernel_size, padding=c.kernel_size // 2)
        self.stem_film = FiLM(c.cond_dim, widths[0])

        def stack(width: int, count: int) -> nn.ModuleList:
            return nn.ModuleList(ConvNeXt1d(width, c.mult, c.kernel_size, cond_dim=c.cond_dim) for _ in range(count))

        inner = range(c.levels - 1)  # levels with a skip connection, each followed by one more DWT
        self.encoders = nn.ModuleList(stack(widths[i], c.blocks) for i in inner)
        self.downs = nn.ModuleList(nn.Conv1d(2 * widths[i], widths[i + 1], 1) for i in inner)
        self.bottleneck = stack(widths[-1], c.bottleneck_blocks)
        self.ups = nn.ModuleList(nn.Conv1d(widths[i + 1], 2 * widths[i], 1) for i in inner)
        self.skips = nn.ModuleList(_GatedSkip(widths[i]) for i in inner)
        self.decoders = nn.ModuleList(stack(widths[i], c.blocks) for i in inner)
        self.head = nn.Conv1d(widths[0], 2, c.kernel_size, padding=c.kernel_size // 2)
        with torch.no_grad():  # start near y = x, with the tanh far from saturation
            self.head.weight.mul_(0.1)

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return 2**self.config.levels

    def margin(self) -> int:
        """Zeros added on each side of the input: a multiple of the alignment (so the grid stays
        anchored) and at least the filter reach (so no level-1 coefficient falls outside the call)."""
        return self.valid_length(self.wavelet.reach)

    def _reach(self) -> int:
        """Farthest input sample (either side) that one output sample depends on."""
        c = self.config
        half = c.kernel_size // 2
        convs = 2 * half * 2  # stem and head, at level 1
        convs += sum(2 * c.blocks * half * 2**level for level in range(1, c.levels))  # encoder + decoder
        convs += c.bottleneck_blocks * half * 2**c.levels
        transforms = 2 * self.wavelet.reach * (2**c.levels - 1)  # DWT and inverse, every level
        return convs + transforms

    def receptive_field(self) -> int:
        return 2 * self._reach() + 1

    def context_samples(self) -> int:
        """The reach rounded up to the alignment, so a chunk with this context stays on the grid."""
        return self.valid_length(self._reach())

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        margin = self.margin()
        flat = x.reshape(b * ch, 1, t)
        padded = F.pad(flat, (margin, margin + self.valid_length(t) - t))
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        cond = self.cutoff_embed(cutoff.repeat_interleave(ch))

        h = self.stem_film(self.stem(self.wavelet.down(padded)), cond)
        skips = []
        for blocks, down in zip(self.encoders, self.downs):
            for block in blocks:
                h = block(h, cond)
            skips.append(h)
            h = down(self.wavelet.down(h))
        for block in self.bottleneck:
            h = block(h, cond)
        for level in reversed(range(self.config.levels - 1)):
            h = self.skips[level](self.wavelet.up(self.ups[level](h)), skips[level])
            for block in self.decoders[level]:
                h = block(h, cond)
        residual = torch.tanh(self.wavelet.up(self.head(h)))[..., margin : margin + t]
        return x + self.config.residual_scale * residual.reshape(b, ch, t)
