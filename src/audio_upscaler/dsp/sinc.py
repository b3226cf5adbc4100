"""Differentiable Kaiser-windowed-sinc resampler (torch) for training and GPU use.

Zero delay and exactly :func:`audio_upscaler.dsp.resample.output_length` samples, like the
soxr path it is tested against. Tensors are ``[batch, channels, time]``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .resample import output_length


class SincResampler(torch.nn.Module):
    """Differentiable Kaiser-windowed-sinc resampler for any rational ratio (polyphase, zero delay).

    The ratio ``sr_out / sr_in`` is reduced to ``L / M``. Output sample ``j = q * L + p`` sits at
    input time ``j * M / L``; phase ``p`` has its own kernel and all phases run as one
    ``conv1d`` with stride ``M`` and ``L`` output channels. The low-pass cuts at ``rolloff`` of
    the lower Nyquist frequency; its Kaiser window is sized (``scipy.signal.kaiserord``) for
    ``attenuation_db`` over a transition of ``transition`` (fraction of that Nyquist) centred on
    the cut, so by default the pass band is flat to 0.9 and the stop band starts at 1.0 of it.

    Memory of the kernel is ``L * (M + 2 * half_width)`` floats (about 40 k for 44.1 -> 48 kHz).
    """

    def __init__(self, sr_in: int, sr_out: int, rolloff: float = 0.95, transition: float = 0.1,
                 attenuation_db: float = 80.0) -> None:
        super().__init__()
        if not 0 < transition / 2 < rolloff <= 1.0:
            raise ValueError("need 0 < transition / 2 < rolloff <= 1")
        self.sr_in, self.sr_out = int(sr_in), int(sr_out)
        g = math.gcd(self.sr_in, self.sr_out)
        self.up, self.down = self.sr_out // g, self.sr_in // g
        kernel, self.pad = _sinc_kernels(self.up, self.down, rolloff, transition, attenuation_db)
        self.register_buffer("kernel", torch.from_numpy(kernel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sr_in`` -> ``[B, C, output_length(T)]`` at ``sr_out``."""
        b, c, t = x.shape
        if self.up == self.down:
            return x
        n_out = output_length(t, self.sr_in, self.sr_out)
        frames = -(-n_out // self.up)  # conv outputs per phase
        k = self.kernel.shape[-1]
        right = (frames - 1) * self.down + k - self.pad - t
        flat = x.reshape(b * c, 1, t)
        flat = F.pad(flat, (self.pad, max(right, 0)))[..., : (frames - 1) * self.down + k]
        y = F.conv1d(flat, self.kernel.to(x.dtype), stride=self.down)  # [B*C, L, frames]
        y = y.transpose(1, 2).reshape(b, c, frames * self.up)
        return y[..., :n_out]


@lru_cache(maxsize=32)
def _sinc_kernels(up: int, down: int, rolloff: float, transition: float, attenuation_db: float):
    """Polyphase kernels ``[up, 1, down + 2 * pad]`` (float32) and the left padding ``pad``.

    Kernel of phase ``p`` at tap ``i`` is ``h(p * down / up - (i - pad))``, ``h`` the windowed sinc
    in input-sample units.
    """
    from scipy.signal import kaiser_beta, kaiserord

    numtaps, _ = kaiserord(attenuation_db, transition)
    beta = kaiser_beta(attenuation_db)
    scale = min(1.0, up / down)  # lower Nyquist relative to the input Nyquist
    cutoff = rolloff * scale  # in cycles per input sample, times two
    half_width = numtaps / 2 / scale  # input samples
    pad = math.ceil(half_width)
    offsets = np.arange(up)[:, None] * down / up  # [up, 1] fractional positions
    taps = np.arange(-pad, down + pad)[None, :]  # [1, K]
    t = offsets - taps
    inside = np.abs(t) <= half_width
    window = np.i0(beta * np.sqrt(np.clip(1 - (t / half_width) ** 2, 0, None))) / np.i0(beta)
    h = cutoff * np.sinc(cutoff * t) * window * inside
    return h[:, None, :].astype(np.float32), pad
