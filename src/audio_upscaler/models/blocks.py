"""Building blocks shared by the model families.

Every block maps ``[batch, channels, frames_or_samples]`` tensors; conditioning vectors are
``[batch, cond_dim]``. The STFT helpers are modules with explicit ``n_fft``/``hop`` and a
:meth:`STFT.valid_length` padding rule; :class:`RealSTFT`/:class:`RealISTFT` are the same
transforms on (real, imag) pairs, which switch to DFT-basis convolutions for ONNX export
(:func:`conv_stft`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F


class CutoffEmbedding(nn.Module):
    """Cutoff frequency (Hz) -> conditioning vector ``[batch, dim]``.

    The cutoff is normalized by ``nyquist_hz`` to ``[0, 1]``, expanded into ``n_freqs``
    sine/cosine pairs and passed through a small MLP.
    """

    def __init__(self, dim: int, nyquist_hz: float = 24_000.0, n_freqs: int = 16):
        super().__init__()
        self.nyquist_hz = float(nyquist_hz)
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float32) / 2, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs + 1, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``cutoff_hz [batch]`` -> ``[batch, dim]``."""
        r = (cutoff_hz.float() / self.nyquist_hz).clamp(0.0, 1.0)[:, None]
        angles = r * self.freqs
        return self.mlp(torch.cat([r, angles.sin(), angles.cos()], dim=1))


class FiLM(nn.Module):
    """Feature-wise affine modulation ``x * (1 + scale) + shift`` from a conditioning vector.

    Initialized to the identity (zero scale and shift).
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]``, ``cond [B, cond_dim]`` -> ``[B, C, T]``."""
        scale, shift = self.proj(cond)[:, :, None].chunk(2, dim=1)
        return x * (1.0 + scale) + shift


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T]``."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXt1d(nn.Module):
    """ConvNeXt block over time (Vocos style): depthwise conv -> LayerNorm (FiLM-conditioned when
    ``cond_dim``) -> pointwise expand -> GELU -> pointwise project -> layer scale -> residual.

    Non-causal; widens the receptive field by ``kernel_size - 1`` steps.
    """

    def __init__(self, dim: int, mult: float = 3.0, kernel_size: int = 7, cond_dim: int | None = None,
                 layer_scale: float = 1e-2):
        super().__init__()
        hidden = int(dim * mult)
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = ChannelLayerNorm(dim)
        self.film = FiLM(cond_dim, dim) if cond_dim else None
        self.pw1 = nn.Conv1d(dim, hidden, 1)
        self.pw2 = nn.Conv1d(hidden, dim, 1)
        self.gamma = nn.Parameter(torch.full((dim, 1), float(layer_scale)))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, dim, T]``, ``cond [B, cond_dim]`` -> ``[B, dim, T]``."""
        h = self.norm(self.dwconv(x))
        if self.film is not None:
            h = self.film(h, cond)
        return x + self.gamma * self.pw2(F.gelu(self.pw1(h)))


class GatedResBlock(nn.Module):
    """conv -> LayerNorm over channels -> GELU -> conv -> sigmoid gate -> residual, on ``[B, C, T]``.

    The norm is per time step (no statistics over time), so the receptive field stays bounded.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        pad = dilation * (kernel_size // 2)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=pad, dilation=dilation)
        self.norm = ChannelLayerNorm(channels)
        self.conv2 = nn.Conv1d(channels, 2 * channels, kernel_size, padding=pad, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.conv2(F.gelu(self.norm(self.conv1(x)))).chunk(2, dim=1)
        return x + value * torch.sigmoid(gate)


class AdaIN(nn.Module):
    """Adaptive instance norm over a bounded window, on ``[B, C, T]`` with ``cond [B, cond_dim]``.

    Each channel is normalized by its mean and standard deviation over a centred window of
    ``window`` steps (average pooling, stride 1; near the ends only the steps present count).
    The style then rescales and shifts it: per channel, a learned map of the local statistics
    (mean, log std) gives ``x * (1 + scale) + shift``, followed by :class:`FiLM` from ``cond``
    (e.g. a cutoff embedding). Both start at zero, i.e. as a plain local normalization.

    No statistics span the whole time axis: an output step depends on the input steps within
    ``2 * (window // 2)`` on each side (:meth:`reach`; the mean, then the variance around it),
    so chunked processing with that much context is exact.
    """

    def __init__(self, channels: int, cond_dim: int, window: int = 9, eps: float = 1e-5):
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"AdaIN window must be a positive odd number of steps, got {window}")
        self.window, self.eps = int(window), float(eps)
        # Per channel, (scale, shift) = weight @ (mean, log std) + bias; elementwise, which is far
        # faster on a CPU than a grouped 1x1 conv. Axes: [scale|shift, mean|log std, C, 1].
        self.style_weight = nn.Parameter(torch.zeros(2, 2, channels, 1))
        self.style_bias = nn.Parameter(torch.zeros(2, channels, 1))
        self.film = FiLM(cond_dim, channels)

    def reach(self) -> int:
        """Steps on each side of an output step that can influence it."""
        return 2 * (self.window // 2)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool1d(x, self.window, stride=1, padding=self.window // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]``, ``cond [B, cond_dim]`` -> ``[B, C, T]``."""
        mean = self._pool(x)
        std = (self._pool((x - mean).square()) + self.eps).sqrt()
        log_std = std.log()
        w, b = self.style_weight, self.style_bias
        scale = w[0, 0] * mean + w[0, 1] * log_std + b[0]
        shift = w[1, 0] * mean + w[1, 1] * log_std + b[1]
        return self.film((x - mean) / std * (1.0 + scale) + shift, cond)


class NoiseInjection(nn.Module):
    """Add per-channel scaled Gaussian noise in training mode only (inference is deterministic).

    The scale starts at zero and is learned.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x + self.weight * torch.randn_like(x)


class DepthwiseSeparableConv1d(nn.Module):
    """Depthwise conv (one filter per channel) followed by a pointwise 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, padding: int | None = None):
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2 if padding is None else padding
        self.depthwise = nn.Conv1d(in_channels, in_channels, kernel_size, stride, pad, dilation, groups=in_channels)
        self.pointwise = nn.Conv1d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class STFT(nn.Module):
    """Complex STFT ``[N, T] -> [N, n_fft // 2 + 1, T // hop + 1]`` (periodic Hann, centred frames,
    zero padding at the ends), for ``T`` a multiple of ``hop`` (see :meth:`valid_length`).

    Frame ``m`` is centred on sample ``m * hop``, so two signals whose starts differ by a multiple
    of ``hop`` see frames at the same absolute positions (what chunked processing relies on).
    """

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        if n_fft % hop:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop})")
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def valid_length(self, n: int) -> int:
        """Smallest length ``>= n`` that is a multiple of ``hop``."""
        return -(-int(n) // self.hop) * self.hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)


class ISTFT(nn.Module):
    """Inverse of :class:`STFT`: ``[N, bins, frames]`` complex -> ``[N, length]`` real."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)


def dft_basis(like: torch.Tensor, n_fft: int, inverse: bool) -> torch.Tensor:
    """Windowed real-DFT basis ``[2 * bins, 1, n_fft]`` (cosine rows, then sine rows), float32 on
    ``like``'s device, periodic Hann window.

    Forward: ``re_k = sum_n w[n] x[n] cos(2 pi k n / N)``, ``im_k = -sum_n w[n] x[n] sin(...)``
    (``torch.stft``'s convention). Inverse: the one-sided ``irfft`` (DC and Nyquist counted once,
    their imaginary parts ignored) followed by the synthesis window, as in ``torch.istft``.
    Computed in float64 from exact integer angle indices ``k * n mod N``. The indices are built
    from ``like`` (the input) on purpose: a tracer then records these few operations instead of
    storing ``2 * bins * n_fft`` floats in an exported graph (onnxruntime folds them at load).
    """
    index = like.new_ones(n_fft, dtype=torch.float64).cumsum(0) - 1.0  # 0 .. n_fft - 1, exact
    k, n = index[: n_fft // 2 + 1, None], index[None, :]
    m = torch.remainder(k * n, n_fft)  # integers below 2**53: exact, so cos/sin see small angles
    angle = m * (2.0 * math.pi / n_fft)
    inner = (torch.remainder(2.0 * m, n_fft) != 0).double()  # 0 at angles 0 and pi, where the sine is exactly 0
    cos, sin = angle.cos(), -angle.sin() * inner
    if inverse:
        once = (torch.remainder(2.0 * k, n_fft) == 0).double()  # DC and Nyquist count once, the rest twice
        weight = (2.0 - once) / n_fft
        cos, sin = cos * weight, sin * weight
    window = 0.5 - 0.5 * (n * (2.0 * math.pi / n_fft)).cos()
    return (torch.cat([cos, sin]) * window)[:, None, :].float()


class RealSTFT(nn.Module):
    """:class:`STFT` on real tensors: ``[N, T] -> (real, imag)``, each ``[N, n_fft // 2 + 1, T // hop + 1]``.

    Computed with ``torch.stft`` (fast), or, while :attr:`conv` is set (see :func:`conv_stft`),
    as a strided convolution with the windowed DFT basis: same frames and values to float32
    rounding, but traceable and exportable to ONNX (no complex numbers, no FFT operator). The
    basis (:func:`dft_basis`) is computed on the fly, so checkpoints do not change.
    """

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.fft = STFT(n_fft, hop)
        self.n_fft, self.hop = self.fft.n_fft, self.fft.hop
        self.conv = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [N, T]`` -> ``(real, imag)`` ``[N, bins, frames]``."""
        if not self.conv:
            spec = self.fft(x)
            return spec.real, spec.imag
        half = self.n_fft // 2
        basis = dft_basis(x, self.n_fft, inverse=False)
        spec = F.conv1d(F.pad(x[:, None], (half, half)), basis, stride=self.hop)
        return spec[:, : self.n_fft // 2 + 1], spec[:, self.n_fft // 2 + 1 :]


class RealISTFT(nn.Module):
    """:class:`ISTFT` from real tensors: ``(real, imag)`` ``[N, bins, frames]`` -> ``[N, length]``,
    ``length <= (frames - 1) * hop``.

    Computed with ``torch.istft``, or, while :attr:`conv` is set, as a transposed convolution
    (overlap-add) with the inverse windowed DFT basis divided by the overlap-added squared
    window: the same samples to float32 rounding, and exportable to ONNX.
    """

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.fft = ISTFT(n_fft, hop)
        self.n_fft, self.hop = self.fft.n_fft, self.fft.hop
        self.conv = False
        self.register_buffer("window_sq", torch.hann_window(self.n_fft).square()[None, None], persistent=False)

    def forward(self, real: torch.Tensor, imag: torch.Tensor, length: int) -> torch.Tensor:
        """``real, imag [N, bins, frames]`` -> ``[N, length]`` samples."""
        if not self.conv:
            return self.fft(torch.complex(real, imag), length)
        basis = dft_basis(real, self.n_fft, inverse=True)
        frames = F.conv_transpose1d(torch.cat([real, imag], dim=1), basis, stride=self.hop)
        envelope = F.conv_transpose1d(torch.ones_like(real[:1, :1]), self.window_sq, stride=self.hop)
        start = self.n_fft // 2  # crop before dividing: the envelope is zero at the very ends
        return frames[:, 0, start : start + length] / envelope[:, 0, start : start + length]


@contextmanager
def conv_stft(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every :class:`RealSTFT`/:class:`RealISTFT` in ``model`` uses its DFT
    convolution (for tracing and ONNX export); the previous setting is restored afterwards."""
    modules = [m for m in model.modules() if isinstance(m, (RealSTFT, RealISTFT))]
    previous = [m.conv for m in modules]
    for m in modules:
        m.conv = True
    try:
        yield model
    finally:
        for m, conv in zip(modules, previous):
            m.conv = conv


class ISTFTHead(nn.Module):
    """Vocos-style Fourier head: features ``[N, dim, frames]`` -> waveform ``[N, length]``.

    A pointwise conv predicts, per STFT bin, a log-magnitude (clamped at ``max_log_amp``) and a
    phase angle; ``exp(log_amp) * exp(i * phase)`` is inverted by :class:`ISTFT`. Frame ``m`` is
    centred on sample ``m * hop`` (the :class:`STFT` grid), so ``length`` is at most
    ``(frames - 1) * hop``. Non-causal: each output sample mixes the frames within ``n_fft / 2``.
    ``init_log_amp`` (optional) sets the initial log-magnitude bias, e.g. a low value so an
    untrained head outputs near-silence instead of loud noise.
    """

    def __init__(self, dim: int, n_fft: int, hop: int, max_log_amp: float = 8.0,
                 init_log_amp: float | None = None):
        super().__init__()
        self.bins = n_fft // 2 + 1
        self.max_log_amp = float(max_log_amp)
        self.proj = nn.Conv1d(dim, 2 * self.bins, 1)
        if init_log_amp is not None:
            with torch.no_grad():
                self.proj.bias[: self.bins].fill_(float(init_log_amp))
        self.istft = ISTFT(n_fft, hop)

    def spectrum(self, h: torch.Tensor) -> torch.Tensor:
        """``h [N, dim, frames]`` -> complex spectrum ``[N, n_fft // 2 + 1, frames]``."""
        log_amp, phase = self.proj(h).chunk(2, dim=1)
        return torch.polar(log_amp.clamp(max=self.max_log_amp).exp(), phase)

    def forward(self, h: torch.Tensor, length: int) -> torch.Tensor:
        """``h [N, dim, frames]`` -> ``[N, length]`` samples."""
        return self.istft(self.spectrum(h), length)


def copy_up_bins(cutoff_hz: torch.Tensor, n_fft: int, hop: int, sample_rate: int) -> torch.Tensor:
    """Spectral copy-up map ``[N, n_fft // 2 + 1]`` (long) for ``cutoff_hz [N]``: the bin each bin
    takes its content from.

    Bins below ``kc`` (the first bin at or above the cutoff) map to themselves; bin ``k >= kc``
    maps to ``kc - s + (k - kc) mod s``: the top ``s`` bins below the cutoff repeated upwards, with
    ``s`` the multiple of ``n_fft / hop`` nearest below ``kc / 2`` (at least one). A shift by a
    multiple of ``n_fft / hop`` bins advances every frame's phase by a whole number of turns, so
    copied phases stay coherent from frame to frame.
    """
    bins = n_fft // 2 + 1
    q = n_fft // hop
    kc = torch.ceil(cutoff_hz * (n_fft / sample_rate)).long().clamp(1, bins)[:, None]
    s = torch.div(kc, 2 * q, rounding_mode="floor").clamp_min(1) * q
    k = torch.arange(bins, device=cutoff_hz.device)[None, :]
    return torch.where(k < kc, k, kc - s + torch.remainder(k - kc, s)).clamp(0, bins - 1)
