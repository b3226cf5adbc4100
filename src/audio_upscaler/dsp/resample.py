"""Sample-rate conversion: soxr for inference, linear interpolation as a cheap option, and a
differentiable torch windowed-sinc resampler for training (:mod:`.sinc`, kept apart so the
inference path never imports torch).

All resamplers here have zero delay (output sample ``j`` sits at input time ``j * sr_in / sr_out``)
and produce exactly :func:`output_length` samples, so lengths agree everywhere in the project.
Audio arrays are float32 ``[channels, time]``; torch tensors are ``[batch, channels, time]``.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from ..errors import UpscalerError

#: Quality names accepted by :func:`resample` and :class:`StreamResampler`.
QUALITIES = ("vhq", "hq", "mq", "lq", "linear")
_SOXR_QUALITY = {"vhq": "VHQ", "hq": "HQ", "mq": "MQ", "lq": "LQ"}


def output_length(n_in: int, sr_in: int, sr_out: int) -> int:
    """Samples produced from ``n_in`` input samples: ``round(n_in * sr_out / sr_in)``, halves up.

    This is soxr's own rule, computed in exact integer arithmetic.
    """
    return (int(n_in) * int(sr_out) + int(sr_in) // 2) // int(sr_in)


def _check(sr_in: int, sr_out: int, quality: str) -> None:
    if quality not in QUALITIES:
        raise UpscalerError(f"resampler quality must be one of {', '.join(QUALITIES)}, not '{quality}'")
    if int(sr_in) <= 0 or int(sr_out) <= 0:
        raise UpscalerError(f"sample rates must be positive, got {sr_in} and {sr_out} Hz")


def _as_audio(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"audio must be [channels, time], got shape {x.shape}")
    return x


def resample(x: np.ndarray, sr_in: int, sr_out: int, quality: str = "vhq") -> np.ndarray:
    """Resample ``x`` float32 ``[C, T]`` from ``sr_in`` to ``sr_out`` Hz -> ``[C, output_length(T)]``.

    ``quality`` is a soxr preset (``vhq|hq|mq|lq``) or ``linear`` (interpolation, no anti-aliasing).
    """
    _check(sr_in, sr_out, quality)
    x = _as_audio(x)
    if sr_in == sr_out:
        return x.copy()
    if quality == "linear":
        n_out = output_length(x.shape[1], sr_in, sr_out)
        return _linear(x, 0, np.arange(n_out, dtype=np.int64), sr_in, sr_out, x.shape[1])
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), np.float32)
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality=_SOXR_QUALITY[quality])
    return np.ascontiguousarray(y.T, dtype=np.float32)


def _linear(buf: np.ndarray, buf_start: int, j: np.ndarray, sr_in: int, sr_out: int, n_total: int) -> np.ndarray:
    """Linear interpolation at output indices ``j`` from ``buf`` (input samples from ``buf_start``).

    Input positions past the last sample ``n_total - 1`` take its value (as ``np.interp`` does).
    """
    g = math.gcd(int(sr_in), int(sr_out))
    a, b = int(sr_in) // g, int(sr_out) // g
    num = j * a
    i0 = num // b
    frac = ((num - i0 * b) / b).astype(np.float32)
    last = n_total - 1 - buf_start
    lo = np.minimum(i0 - buf_start, last)
    hi = np.minimum(i0 + 1 - buf_start, last)
    return (buf[:, lo] * (1 - frac) + buf[:, hi] * frac).astype(np.float32)


class StreamResampler:
    """Block-wise resampling whose concatenated output equals :func:`resample` of the whole.

    Call :meth:`process` with ``[channels, n]`` float32 blocks of any size, then :meth:`flush`
    once; the total output has exactly ``output_length(total_in, sr_in, sr_out)`` samples.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int, quality: str = "vhq") -> None:
        _check(sr_in, sr_out, quality)
        self.sr_in, self.sr_out, self.channels, self.quality = int(sr_in), int(sr_out), int(channels), quality
        self._stream = None
        if sr_in != sr_out and quality != "linear":
            self._stream = soxr.ResampleStream(
                self.sr_in, self.sr_out, self.channels, dtype="float32", quality=_SOXR_QUALITY[quality]
            )
        self._received = 0  # input samples seen
        self._emitted = 0  # output samples produced
        self._tail = np.zeros((self.channels, 0), np.float32)  # linear: input from _tail_start on
        self._tail_start = 0
        self._flushed = False

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next ``[channels, n]`` block; returns the output that is ready."""
        return self._run(block, last=False)

    def flush(self) -> np.ndarray:
        """Return the rest of the output (call once, after the last block)."""
        return self._run(np.zeros((self.channels, 0), np.float32), last=True)

    def _run(self, block: np.ndarray, last: bool) -> np.ndarray:
        if self._flushed:
            raise RuntimeError("StreamResampler was already flushed")
        self._flushed = last
        block = _as_audio(block)
        if block.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {block.shape[0]}")
        self._received += block.shape[1]
        if self.sr_in == self.sr_out:
            return block.copy()
        if self._stream is not None:
            y = self._stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
            return np.ascontiguousarray(y.T, dtype=np.float32)
        return self._linear_step(block, last)

    def _linear_step(self, block: np.ndarray, last: bool) -> np.ndarray:
        self._tail = np.concatenate([self._tail, block], axis=1)
        n = self._received
        end = output_length(n, self.sr_in, self.sr_out)
        if not last:  # only outputs whose right-hand input sample has arrived
            end = min(end, _linear_ready(n, self.sr_in, self.sr_out))
        j = np.arange(self._emitted, max(end, self._emitted), dtype=np.int64)
        out = _linear(self._tail, self._tail_start, j, self.sr_in, self.sr_out, n)
        self._emitted = max(end, self._emitted)
        keep = min(self._emitted * self.sr_in // self.sr_out, max(n - 1, 0))  # first input still needed
        self._tail = self._tail[:, keep - self._tail_start :]
        self._tail_start = keep
        return out


def _linear_ready(n: int, sr_in: int, sr_out: int) -> int:
    """Outputs ``j`` whose interpolation needs inputs below ``n`` only: ``j * sr_in < (n - 1) * sr_out``."""
    return max(-(-(n - 1) * sr_out // sr_in), 0)
