"""Family ``edge``: lightweight depthwise-separable U-Net for phones and streaming.

Follows the edge-deployment seed (a "lightweight U-Net with depthwise separable convolutions",
base channels 32-64, depth 4, 0.5-2 M parameters, exported to ONNX/TFLite and int8-quantized).
To run far faster than real time it never works at the sample rate: the waveform ``[N, 1, T]``
is first *folded* into frames of ``fold`` samples (pixel-unshuffle: ``[N, fold, T / fold]``,
frame ``j`` holds samples ``j*fold .. j*fold + fold - 1`` as channels), and all layers run at
frame rate or below:

- stem: dense conv ``fold -> base_channels`` + FiLM from the cutoff embedding;
- ``depth`` encoder levels: residual blocks, then a dense stride-2 conv with kernel 2 (halves the
  frame rate; channels double up to ``max_channels``);
- bottleneck: residual blocks with dilations 1, 2, 4, ...;
- decoder: transposed conv (kernel = stride = 2) + skip sum, residual blocks;
- head: dense conv ``base_channels -> fold``, unfolded back to samples and added to the input
  (output = input + predicted residual; the head starts small so an untrained model is close to
  the identity).

A residual block is ``x + sep2(act(FiLM(sep1(x), cond)))`` where ``sep`` is a
:class:`~.blocks.DepthwiseSeparableConv1d` and ``act`` a LeakyReLU. Only plain Conv1d,
ConvTranspose1d, Linear, LeakyReLU/GELU, constant padding, reshape and transpose are used (no
complex numbers, no STFT, no norms over time, no data-dependent control flow besides padding
to :meth:`~EdgeUNet.valid_length`), so the model traces with ``torch.jit.trace`` (tested) and is
meant for ONNX export and int8 quantization (not exercised here: that is the export module's job).

Geometry: the coarsest frame spans ``alignment() = fold * 2**depth`` samples; chunks must start
on that grid. Every conv pads "same" (symmetric, non-causal) or left-only (``causal=True``; the
stride-2 convs then see the current and the previous frame). In causal mode an output sample
depends on input up to the end of its own fold frame only, so the look-ahead
(:meth:`~EdgeUNet.latency_samples`) is ``fold - 1`` samples. :meth:`~EdgeUNet.reach` bounds the
input samples before/after one output sample by propagating each conv's reach through the levels
(measured to be within a sample or two of the truth); :meth:`~EdgeUNet.receptive_field` is
their sum + 1 and :meth:`~EdgeUNet.context_samples` the larger side rounded up to the alignment.
Default size (48 kHz, fold 32, widths 32-64-128-256-256): 1.18 M parameters, about 200 M
multiply-adds per second of audio, alignment 512, reach 9599 samples each side (context 9728,
0.2 s); causal: reach 19167 before / 31 after (context 19456, latency 31 samples = 0.65 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UpscalerError
from .base import UpscalerModel
from .blocks import CutoffEmbedding, DepthwiseSeparableConv1d, FiLM
from .registry import register

#: Initial scale of the output head's weights (small: an untrained model is near the identity).
HEAD_INIT_SCALE = 3e-3
LEAKY_SLOPE = 0.1


@dataclass
class EdgeConfig:
    """Constructor settings of :class:`EdgeUNet` (YAML: ``configs/edge.yaml``)."""

    sample_rate: int = 48_000
    fold: int = 32  # samples per top-level frame (pixel-unshuffle factor)
    base_channels: int = 32  # channels at the top level; doubled per level up to max_channels
    max_channels: int = 256
    depth: int = 4  # number of stride-2 levels below the top one
    blocks: int = 1  # residual blocks per encoder and per decoder level (dilations 1, 2, 4, ...)
    bottleneck_blocks: int = 2  # residual blocks at the coarsest level (dilations 1, 2, 4, ...)
    kernel_size: int = 5  # depthwise kernel (odd)
    cond_dim: int = 32
    causal: bool = False


def _pads(kernel: int, dilation: int, causal: bool) -> tuple[int, int]:
    """(left, right) zero padding in frames that keeps the frame count of a stride-1 conv."""
    total = dilation * (kernel - 1)
    return (total, 0) if causal else (total // 2, total - total // 2)


class _FrameConv(nn.Module):
    """Stride-1 conv over frames ``[N, C_in, F] -> [N, C_out, F]``, padded "same" or causally.

    ``separable``: a :class:`DepthwiseSeparableConv1d`, else a dense ``nn.Conv1d``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, causal: bool, dilation: int = 1,
                 separable: bool = True):
        super().__init__()
        self.left, self.right = _pads(kernel, dilation, causal)
        inner = self.left if self.left == self.right else 0  # symmetric: let the conv pad itself
        self.pad = nn.Identity() if self.left == self.right else nn.ConstantPad1d((self.left, self.right), 0.0)
        if separable:
            self.conv = DepthwiseSeparableConv1d(c_in, c_out, kernel, dilation=dilation, padding=inner)
        else:
            self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=inner)

    def reach(self) -> tuple[int, int]:
        """Input frames (before, after) that one output frame depends on."""
        return self.left, self.right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class _ResBlock(nn.Module):
    """``x + sep2(act(FiLM(sep1(x), cond)))`` on ``[N, C, F]``; ``cond [N, cond_dim]``."""

    def __init__(self, channels: int, kernel: int, dilation: int, cond_dim: int, causal: bool):
        super().__init__()
        self.conv1 = _FrameConv(channels, channels, kernel, causal, dilation)
        self.film = FiLM(cond_dim, channels)
        self.conv2 = _FrameConv(channels, channels, kernel, causal)

    def reach(self) -> tuple[int, int]:
        (l1, r1), (l2, r2) = self.conv1.reach(), self.conv2.reach()
        return l1 + l2, r1 + r2

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.film(self.conv1(x), cond), LEAKY_SLOPE)
        return x + self.conv2(h)


def _sum_reach(reaches) -> tuple[int, int]:
    reaches = list(reaches)
    return sum(r[0] for r in reaches), sum(r[1] for r in reaches)


@register("edge")
class EdgeUNet(UpscalerModel):
    """Folded-waveform depthwise-separable U-Net (residual output); ``[B, C, T] -> [B, C, T]``."""

    config_class = EdgeConfig
    description = "edge U-Net: folded waveform, depthwise-separable convs (fast, causal option, ONNX/int8-friendly)"
    supports_streaming = True  # bounded receptive field; causal mode has only fold - 1 samples look-ahead
    supports_onnx = True
    tune_space = {"base_channels": [16, 32, 64], "depth": {"low": 3, "high": 5}, "kernel_size": [3, 5, 7]}
    tiny_config = dict(fold=8, base_channels=16, max_channels=32, depth=2, bottleneck_blocks=2, cond_dim=16)

    def __init__(self, config: EdgeConfig):
        super().__init__(config)
        c = config
        if c.kernel_size % 2 == 0 or min(c.fold, c.base_channels, c.max_channels, c.kernel_size) < 1 or c.depth < 0:
            raise UpscalerError(f"invalid edge config: kernel_size must be odd and sizes positive ({c})")
        widths = [min(c.base_channels * 2**level, c.max_channels) for level in range(c.depth + 1)]
        k, causal = c.kernel_size, c.causal

        def blocks(width: int, count: int) -> nn.ModuleList:
            return nn.ModuleList(_ResBlock(width, k, 2**i, c.cond_dim, causal) for i in range(count))

        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.stem = _FrameConv(c.fold, widths[0], k, causal, separable=False)
        self.stem_film = FiLM(c.cond_dim, widths[0])
        self.encoder = nn.ModuleList(blocks(w, c.blocks) for w in widths[:-1])
        self.down = nn.ModuleList(nn.Conv1d(a, b, 2, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.bottleneck = blocks(widths[-1], c.bottleneck_blocks)
        self.up = nn.ModuleList(nn.ConvTranspose1d(b, a, 2, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.decoder = nn.ModuleList(blocks(w, c.blocks) for w in widths[:-1])
        self.head = _FrameConv(widths[0], c.fold, k, causal, separable=False)
        with torch.no_grad():
            self.head.conv.weight.mul_(HEAD_INIT_SCALE)
            self.head.conv.bias.zero_()
        # Causal stride-2 convs see frames (2j - 1, 2j): coarse frame j never looks past fine frame 2j.
        self.down_pad = nn.ConstantPad1d((1, 0), 0.0) if causal else nn.Identity()

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return self.config.fold * 2**self.config.depth

    def reach(self) -> tuple[int, int]:
        """Upper bound of the input samples (before, after) one output sample depends on.

        Propagated from the coarsest level up: a fine frame ``f`` reads coarse frame ``f // 2``
        (transposed conv), which reads fine frames ``2j, 2j + 1`` (causal: ``2j - 1, 2j``), so a
        coarse reach ``(l, r)`` costs ``(2l + 1 + down_before, 2r + down_after)`` fine frames.
        """
        down_before, down_after = (1, 0) if self.config.causal else (0, 1)
        before, after = _sum_reach(b.reach() for b in self.bottleneck)
        for level in reversed(range(self.config.depth)):
            up = (2 * before + 1 + down_before, 2 * after + down_after)
            before, after = _sum_reach([*(b.reach() for b in self.encoder[level]), up,
                                        *(b.reach() for b in self.decoder[level])])
        before, after = _sum_reach([self.stem.reach(), (before, after), self.head.reach()])
        s = self.config.fold
        return before * s + s - 1, after * s + s - 1

    def receptive_field(self) -> int:
        before, after = self.reach()
        return before + after + 1

    def context_samples(self) -> int:
        a = self.alignment()
        return -(-max(self.reach()) // a) * a

    def latency_samples(self) -> int:
        """Causal: the look-ahead inside one fold frame (``fold - 1``); else the context."""
        return self.reach()[1] if self.config.causal else self.context_samples()

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        n = self.valid_length(t)
        flat = F.pad(x.reshape(b * ch, 1, t), (0, n - t))  # [N, 1, n]
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        cond = self.cutoff_embed(cutoff)[:, None].expand(b, ch, -1).reshape(b * ch, -1)

        s = self.config.fold
        frames = flat.reshape(b * ch, -1, s).transpose(1, 2)  # [N, fold, n / fold]
        h = self.stem_film(self.stem(frames), cond)
        skips = []
        for level, down in zip(self.encoder, self.down):
            for block in level:
                h = block(h, cond)
            skips.append(h)
            h = down(self.down_pad(h))
        for block in self.bottleneck:
            h = block(h, cond)
        for level, up, skip in zip(reversed(self.decoder), reversed(self.up), reversed(skips)):
            h = up(h) + skip
            for block in level:
                h = block(h, cond)
        residual = self.head(h).transpose(1, 2).reshape(b * ch, 1, n)
        return (flat + residual)[..., :t].reshape(b, ch, t)
