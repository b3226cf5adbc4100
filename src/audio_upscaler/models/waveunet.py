"""Family ``waveunet``: waveform U-Net (the seeds' AudioSuperResNet).

A 1-D encoder-decoder on the DSP-resampled waveform at ``sample_rate`` (48 kHz), predicting a
residual that is added to the input (an untrained model is close to the identity):

- input conv (``1 -> base_channels``, full rate);
- encoder, one level per entry of ``strides``: a strided conv (kernel ``2 * stride``) down to
  ``base_channels * channel_growth ** i`` channels (32 -> 64 -> 128 -> 256 by default), then
  gated residual blocks (:class:`~.blocks.GatedResBlock`, conv -> LayerNorm -> GELU -> conv ->
  sigmoid gate -> residual) with ``encoder_dilations``;
- decoder, deepest level first (the deepest level acts as the bottleneck): add the encoder's
  output of that level (skip connection; none at the deepest), gated residual blocks with
  ``decoder_dilations``, learned noise injection (training only), AdaIN whose statistics are
  pooled over ``adain_window`` steps and whose style also carries the cutoff embedding (FiLM),
  then a transposed conv (kernel ``2 * stride``) up to the next level's rate and channels;
- add the input conv's features (skip), GELU, output conv (``base_channels -> 1``) = residual.

The seeds' blocks used BatchNorm and AdaIN from global statistics; here every norm is per time
step (LayerNorm over channels) or pooled over a fixed window, so the receptive field is bounded
and chunked output equals whole-signal output.

Geometry: :meth:`~WaveUNet.alignment` is the product of the strides (the coarsest grid; 64 by
default), and inputs are zero-padded at the end to a multiple of it. The receptive field is
computed from the layer geometry (:func:`receptive_span`): each layer adds its kernel reach, in
samples, at its own rate; every skip path is contained in the path through the bottleneck,
which therefore bounds it. The bound is exact over the grid phases (the tests compare it with
the gradient's support): by default 4167 samples (87 ms), i.e. 2083 on each side, so
:meth:`~WaveUNet.context_samples` is 2112 (rounded up to the alignment). The dependence fades
fast towards the edges of that span. The input and output layers run at the full sample rate
and the first level at half of it (about 4.1 GMAC per second of 48 kHz audio by default), so
this family is much slower than the frame-domain ``apnet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscalerError
from .base import UpscalerModel
from .blocks import AdaIN, CutoffEmbedding, GatedResBlock, NoiseInjection
from .registry import register

OUTPUT_INIT_SCALE = 1e-3  # shrink the output conv's initial weights: the untrained residual is ~-60 dB


@dataclass
class WaveUNetConfig:
    """Constructor settings of :class:`WaveUNet` (YAML: ``configs/waveunet.yaml``)."""

    sample_rate: int = 48_000
    base_channels: int = 32
    num_layers: int = 4
    channel_growth: int = 2
    strides: list = field(default_factory=lambda: [2, 4, 4, 2])
    kernel_size: int = 3
    encoder_dilations: list = field(default_factory=lambda: [1])
    decoder_dilations: list = field(default_factory=lambda: [1, 3])
    adain_window: int = 9
    io_kernel: int = 7
    cond_dim: int = 64

    def channels(self) -> list[int]:
        """Channels of each level, shallowest first."""
        return [self.base_channels * self.channel_growth ** i for i in range(self.num_layers)]

    def check(self) -> None:
        """Raise :class:`UpscalerError` for inconsistent settings."""
        if self.num_layers < 1 or len(self.strides) != self.num_layers:
            raise UpscalerError(f"waveunet needs num_layers >= 1 and one stride per layer "
                                f"(num_layers={self.num_layers}, strides={self.strides})")
        if any(int(s) < 2 or int(s) % 2 for s in self.strides):
            raise UpscalerError(f"waveunet strides must be even and >= 2, got {self.strides}")
        if self.kernel_size % 2 == 0 or self.io_kernel % 2 == 0 or self.adain_window % 2 == 0:
            raise UpscalerError("waveunet kernel_size, io_kernel and adain_window must be odd")


def receptive_span(c: WaveUNetConfig) -> tuple[int, int]:
    """``(lo, hi)``: the input samples that can influence output sample ``t`` lie in
    ``[t + lo, t + hi]`` (``lo <= 0 <= hi``), for ``t`` anywhere on the stride grid.

    Follows the path through the bottleneck; each layer adds its reach in samples at its rate
    (``jump`` = samples per step). Strided and transposed convs are bounded over all phases.
    """
    lo = hi = 0
    jump = 1

    def add(left: int, right: int) -> None:
        nonlocal lo, hi
        lo, hi = lo - left * jump, hi + right * jump

    def blocks(dilations: list) -> None:  # a GatedResBlock has two dilated convs
        for d in dilations:
            add(2 * d * (c.kernel_size // 2), 2 * d * (c.kernel_size // 2))

    add(c.io_kernel // 2, c.io_kernel // 2)  # input conv
    for s in c.strides:  # down conv: kernel 2s, padding s/2 -> taps s*j - s/2 .. s*j + 3s/2 - 1
        add(s // 2, 3 * s // 2 - 1)
        jump *= s
        blocks(c.encoder_dilations)
    for s in reversed(c.strides):
        blocks(c.decoder_dilations)
        add(2 * (c.adain_window // 2), 2 * (c.adain_window // 2))  # AdaIN (see AdaIN.reach)
        jump //= s  # transposed conv: output o takes inputs i with o - 3s/2 + 1 <= s*i <= o + s/2
        add(3 * s // 2 - 1, s // 2)
    add(c.io_kernel // 2, c.io_kernel // 2)  # output conv
    return lo, hi


class _EncoderLevel(nn.Module):
    """Strided conv down (``[N, c_in, T] -> [N, c_out, T / stride]``), then gated residual blocks."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel_size: int, dilations: list):
        super().__init__()
        self.down = nn.Conv1d(c_in, c_out, 2 * stride, stride=stride, padding=stride // 2)
        self.blocks = nn.Sequential(*(GatedResBlock(c_out, kernel_size, d) for d in dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class _DecoderLevel(nn.Module):
    """Gated residual blocks, noise, AdaIN (cutoff-conditioned), then a transposed conv up:
    ``[N, c_in, T]`` -> ``[N, c_out, T * stride]``."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel_size: int, dilations: list,
                 cond_dim: int, adain_window: int):
        super().__init__()
        self.blocks = nn.Sequential(*(GatedResBlock(c_in, kernel_size, d) for d in dilations))
        self.noise = NoiseInjection(c_in)
        self.adain = AdaIN(c_in, cond_dim, adain_window)
        self.up = nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride, padding=stride // 2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.up(self.adain(self.noise(self.blocks(x)), cond))


@register("waveunet")
class WaveUNet(UpscalerModel):
    """Waveform U-Net predicting a residual; ``[B, C, T] -> [B, C, T]`` at ``sample_rate``."""

    config_class = WaveUNetConfig
    description = "waveform U-Net with gated residual blocks and windowed AdaIN (sample-rate, slow)"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = True  # plain convs, pooling, elementwise ops (torch.export traces it)
    # The seed's base_channels 16/32/64; depth is fixed by the stride list (one stride per layer).
    tune_space = {"base_channels": [16, 32, 64], "strides": [[2, 4, 4, 2], [4, 4, 4, 2], [2, 2, 4, 4]], "kernel_size": [3, 5]}
    tiny_config = dict(base_channels=16, num_layers=2, strides=[2, 4], encoder_dilations=[1],
                       decoder_dilations=[1], adain_window=5, io_kernel=5, cond_dim=16)

    def __init__(self, config: WaveUNetConfig):
        super().__init__(config)
        c = config
        c.check()
        widths = c.channels()
        outer = [c.base_channels] + widths[:-1]  # channels entering each level
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.input_conv = nn.Conv1d(1, c.base_channels, c.io_kernel, padding=c.io_kernel // 2)
        self.encoder = nn.ModuleList(
            _EncoderLevel(c_in, c_out, s, c.kernel_size, c.encoder_dilations)
            for c_in, c_out, s in zip(outer, widths, c.strides)
        )
        self.decoder = nn.ModuleList(
            _DecoderLevel(c_in, c_out, s, c.kernel_size, c.decoder_dilations, c.cond_dim, c.adain_window)
            for c_in, c_out, s in reversed(list(zip(widths, outer, c.strides)))
        )
        self.output_conv = nn.Conv1d(c.base_channels, 1, c.io_kernel, padding=c.io_kernel // 2)
        with torch.no_grad():
            self.output_conv.weight.mul_(OUTPUT_INIT_SCALE)
            self.output_conv.bias.zero_()

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return math.prod(int(s) for s in self.config.strides)

    def receptive_field(self) -> int:
        lo, hi = receptive_span(self.config)
        return hi - lo + 1

    def context_samples(self) -> int:
        """The larger side of :func:`receptive_span`, rounded up to a multiple of :meth:`alignment`
        (so a chunk cut ``context`` before an aligned start is itself aligned)."""
        lo, hi = receptive_span(self.config)
        a = self.alignment()
        return -(-max(-lo, hi) // a) * a

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``.

        Channels are processed independently; the input is zero-padded at the end to
        :meth:`valid_length` and the output cropped back to ``T``.
        """
        b, ch, t = x.shape
        n = self.valid_length(t)
        flat = F.pad(x.reshape(b * ch, 1, t), (0, n - t))
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        cond = self.cutoff_embed(cutoff.repeat_interleave(ch))

        top = self.input_conv(flat)
        skips, h = [], top
        for level in self.encoder:
            h = level(h)
            skips.append(h)
        for i, level in enumerate(self.decoder):
            if i:  # the deepest level's input is the encoder output itself
                h = h + skips[-1 - i]
            h = level(h, cond)
        residual = self.output_conv(F.gelu(h + top))
        return (flat + residual)[..., :t].reshape(b, ch, t)
