"""Discriminators for adversarial training: multi-resolution spectrogram (MRD, UnivNet/Vocos),
multi-period (MPD, HiFi-GAN) and a mel-spectrogram PatchGAN (pix2pix style, AudioSR-GAN seed),
a factory by name and a combination of several.

Every discriminator maps a waveform ``[B, C, T]`` (or ``[B, T]``) to a list with one
:class:`DiscriminatorOutput` ``(logits, features)`` per sub-discriminator. Channels are folded
into the batch (``N = B * C``): ``logits`` is ``[N, patches]`` (one score per patch),
``features`` the hidden activations ``[N, channels, H, W]`` after each conv layer (for feature
matching). Feed the lists to :class:`audio_upscaler.losses.AdversarialLoss` and
:func:`audio_upscaler.losses.feature_matching_loss`.

Configuration is plain data: ``build_discriminator("mrd", channels=64)`` or, for several,
``CombinedDiscriminator(["mpd", {"name": "mrd", "channels": 64}])``; every discriminator's
``config`` dict rebuilds it with ``build_discriminator(**config)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from ..errors import UpscalerError
from ..losses import RESOLUTIONS, LogMelSpectrogram, stft_magnitude


class DiscriminatorOutput(NamedTuple):
    """One sub-discriminator's answer: ``logits [N, patches]`` and hidden ``features``."""

    logits: torch.Tensor
    features: list[torch.Tensor]


def _fold(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, T]`` or ``[B, T]`` -> ``[B * C, T]``."""
    return x.reshape(-1, x.shape[-1])


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UpscalerError(message)


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


class ConvStack2d(nn.Module):
    """Weight-normalized 2-D convs, each followed by leaky ReLU, then a 1-channel output conv.

    ``layers``: ``(out_channels, kernel (h, w), stride (h, w))`` per hidden layer. Padding is
    ``kernel // 2`` (odd kernels), so any input of at least 1 x 1 works.
    ``[N, 1, H, W] -> DiscriminatorOutput(logits [N, H' * W'], features)``.
    """

    def __init__(self, layers: Sequence[tuple], post_kernel, slope: float):
        super().__init__()
        convs, in_channels = [], 1
        for out_channels, kernel, stride in layers:
            convs.append(self._conv(in_channels, out_channels, kernel, stride))
            in_channels = out_channels
        self.convs = nn.ModuleList(convs)
        self.post = self._conv(in_channels, 1, post_kernel, 1)
        self.slope = float(slope)

    @staticmethod
    def _conv(in_channels: int, out_channels: int, kernel, stride) -> nn.Module:
        kernel, stride = _pair(kernel), _pair(stride)
        _check(kernel[0] % 2 == 1 and kernel[1] % 2 == 1, f"discriminator kernel sizes must be odd, got {kernel}")
        padding = (kernel[0] // 2, kernel[1] // 2)
        return weight_norm(nn.Conv2d(in_channels, int(out_channels), kernel, stride, padding))

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
            features.append(x)
        return DiscriminatorOutput(self.post(x).flatten(1), features)


class Discriminator(nn.Module):
    """Base class: ``forward(x [B, C, T]) -> list[DiscriminatorOutput]``.

    ``config`` holds the registry ``name`` and the constructor arguments as plain (JSON/YAML) data.
    """

    name = ""

    def __init__(self, **config):
        super().__init__()
        self.config = {"name": self.name, **config}


class MultiResolutionDiscriminator(Discriminator):
    """MRD (UnivNet, Vocos): one 2-D conv stack per STFT resolution over the magnitude
    spectrogram ``[N, 1, n_fft // 2 + 1 bins, frames]`` (Hann window, computed in float32).

    ``resolutions``: ``(n_fft, hop)`` pairs; ``channels``: width of every conv layer.
    """

    name = "mrd"

    def __init__(self, resolutions: Sequence[Sequence[int]] = RESOLUTIONS, channels: int = 32, slope: float = 0.1):
        resolutions = [(int(n_fft), int(hop)) for n_fft, hop in resolutions]
        _check(bool(resolutions) and all(n >= 8 and 1 <= h <= n for n, h in resolutions),
               f"MRD resolutions must be (n_fft >= 8, 1 <= hop <= n_fft) pairs, got {resolutions}")
        _check(int(channels) >= 1, f"MRD channels must be positive, got {channels}")
        super().__init__(resolutions=[list(r) for r in resolutions], channels=int(channels), slope=float(slope))
        self.resolutions = resolutions
        c = int(channels)
        layers = [(c, (7, 5), (2, 2)), (c, (5, 3), (2, 1)), (c, (5, 3), (2, 2)), (c, 3, (2, 1)), (c, 3, (2, 2))]
        self.stacks = nn.ModuleList(ConvStack2d(layers, 3, slope) for _ in resolutions)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        x = _fold(x)
        outputs = []
        with torch.autocast(x.device.type, enabled=False):
            for (n_fft, hop), stack in zip(self.resolutions, self.stacks):
                outputs.append(stack(stft_magnitude(x.float(), n_fft, hop)[:, None]))
        return outputs


class MultiPeriodDiscriminator(Discriminator):
    """MPD (HiFi-GAN): per period ``p`` the waveform is padded (reflect) to a multiple of ``p`` and
    viewed as ``[N, 1, T / p, p]``; ``(kernel_size, 1)`` convs with stride ``(stride, 1)`` widen to
    ``channels``, then one stride-1 layer at the last width and a ``(3, 1)`` output conv.

    HiFi-GAN's own widths are ``(32, 128, 512, 1024)`` (about 41 M parameters for five periods).
    """

    name = "mpd"

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), channels: Sequence[int] = (32, 64, 128, 256),
                 kernel_size: int = 5, stride: int = 3, slope: float = 0.1):
        periods, channels = [int(p) for p in periods], [int(c) for c in channels]
        _check(bool(periods) and min(periods) >= 1, f"MPD periods must be positive integers, got {periods}")
        _check(bool(channels) and min(channels) >= 1, f"MPD channels must be positive, got {channels}")
        super().__init__(periods=periods, channels=channels, kernel_size=int(kernel_size), stride=int(stride),
                         slope=float(slope))
        self.periods = periods
        k = (int(kernel_size), 1)
        layers = [(c, k, (int(stride), 1)) for c in channels] + [(channels[-1], k, 1)]
        self.stacks = nn.ModuleList(ConvStack2d(layers, (3, 1), slope) for _ in periods)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        x = _fold(x)
        outputs = []
        for period, stack in zip(self.periods, self.stacks):
            pad = -x.shape[-1] % period
            mode = "reflect" if pad < x.shape[-1] else "constant"
            y = F.pad(x[:, None], (0, pad), mode=mode) if pad else x[:, None]
            outputs.append(stack(y.reshape(y.shape[0], 1, -1, period)))
        return outputs


class PatchGANDiscriminator(Discriminator):
    """PatchGAN over a mel spectrogram ``[N, 1, n_mels, frames]``: ``kernel_size`` convs with
    stride 2 for every width in ``channels`` but the last, stride 1 for the last, and a 1-channel
    output conv: one realism score per spectro-temporal patch.

    ``input="waveform"``: ``forward`` takes ``[B, C, T]`` audio at ``sample_rate`` and computes
    the log-mel spectrogram itself (:class:`audio_upscaler.losses.LogMelSpectrogram`).
    ``input="mel"``: ``forward`` takes mel spectrograms ``[B, n_mels, frames]`` or
    ``[B, C, n_mels, frames]`` as the generator produces them (log-mel recommended).
    Weight norm replaces pix2pix's batch norm (no statistics shared between real and fake batches).
    """

    name = "patchgan"

    def __init__(self, input: str = "waveform", sample_rate: int = 48_000, n_fft: int = 2048, hop: int = 512,
                 n_mels: int = 80, channels: Sequence[int] = (32, 64, 128, 256), kernel_size: int = 3,
                 slope: float = 0.2):
        channels = [int(c) for c in channels]
        _check(input in ("waveform", "mel"), f"PatchGAN input must be 'waveform' or 'mel', got {input!r}")
        _check(bool(channels) and min(channels) >= 1, f"PatchGAN channels must be positive, got {channels}")
        super().__init__(input=input, sample_rate=int(sample_rate), n_fft=int(n_fft), hop=int(hop),
                         n_mels=int(n_mels), channels=channels, kernel_size=int(kernel_size), slope=float(slope))
        self.input, self.n_mels = input, int(n_mels)
        self.log_mel = LogMelSpectrogram(sample_rate, n_fft, hop, n_mels) if input == "waveform" else None
        strides = [2] * (len(channels) - 1) + [1]
        self.stack = ConvStack2d([(c, kernel_size, s) for c, s in zip(channels, strides)], kernel_size, slope)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        if self.log_mel is not None:
            with torch.autocast(x.device.type, enabled=False):
                mel = self.log_mel(x.float())
        else:
            if x.shape[-2] != self.n_mels:
                raise ValueError(f"expected {self.n_mels} mel bands, got input of shape {tuple(x.shape)}")
            mel = x.reshape(-1, *x.shape[-2:])
        return [self.stack(mel[:, None])]


class CombinedDiscriminator(Discriminator):
    """Several discriminators on the same input; outputs are concatenated in the given order.

    ``discriminators``: names (``"mpd"``) or dicts with a ``name`` and that discriminator's
    arguments (``{"name": "mrd", "channels": 64}``).
    """

    name = "combined"

    def __init__(self, discriminators: Sequence[str | Mapping] = ("mpd", "mrd")):
        members = []
        for spec in discriminators:
            if isinstance(spec, str):
                members.append(build_discriminator(spec))
            else:
                _check(isinstance(spec, Mapping) and "name" in spec,
                       f"each discriminator must be a name or a mapping with a 'name', got {spec!r}")
                members.append(build_discriminator(**spec))
        _check(bool(members), "CombinedDiscriminator needs at least one discriminator")
        super().__init__(discriminators=[m.config for m in members])
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> list[DiscriminatorOutput]:
        return [output for member in self.members for output in member(x)]


DISCRIMINATORS: dict[str, type[Discriminator]] = {
    cls.name: cls for cls in (MultiResolutionDiscriminator, MultiPeriodDiscriminator, PatchGANDiscriminator,
                              CombinedDiscriminator)
}


def build_discriminator(name: str, **config) -> Discriminator:
    """Build the discriminator registered as ``name`` (see :data:`DISCRIMINATORS`) from plain data."""
    if name not in DISCRIMINATORS:
        raise UpscalerError(f"unknown discriminator '{name}' (choose from {', '.join(DISCRIMINATORS)})")
    cls = DISCRIMINATORS[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise UpscalerError(f"unknown option(s) for discriminator '{name}': {', '.join(unknown)} "
                            f"(allowed: {', '.join(sorted(allowed))})")
    return cls(**config)
