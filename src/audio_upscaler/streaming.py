"""``StreamingUpscaler``: upscale audio as it arrives, block by block, with a fixed latency.

The stages are those of the offline :class:`~audio_upscaler.pipeline.Upscaler`, each carrying
its state from block to block:

1. optional DC blocker, then the streaming soxr resampler (:class:`~.dsp.resample.StreamResampler`);
2. windows of ``hop`` new samples at the target rate, each with ``past`` samples of history
   before it and ``lookahead`` samples after it, passed through :meth:`Upscaler.band_stage`
   (band extension + band merge, the very function the offline chunker calls);
3. optional look-ahead peak limiter (:class:`~.dsp.finish.Limiter`);
4. an output queue that starts with ``latency_samples`` zeros.

Why not the offline :class:`~.chunking.OverlapChunker`: its context is symmetric, while a
stream only has to wait for the *future* context; a causal model (``edge`` with
``causal=True``) needs far less look-ahead than history. The windows use the offline chunker's
sample grid (their starts are ``past`` = the offline context before a multiple of the alignment),
so for a model whose receptive field fits its reported context the output equals the offline
output sample for sample, up to float rounding.

Cost: every window runs the model over ``past + hop + lookahead`` samples, so with small blocks a
model with a long context recomputes much of it per block (e.g. apnet at 48 kHz: ~12 k samples
per 10 ms block); a causal model or a larger ``hop`` is cheaper. ``scripts/bench_streaming.py``
measures it.

Latency (output samples at the target rate) = the resampler's delay + one hop of buffering +
the model's look-ahead + the band merge's FIR half-length (+ the limiter's look-ahead). The
resampler part depends on how soxr buffers, so it is measured once at construction by running
the stages' sample *counts* (soxr's output count does not depend on the signal) for blocks of
``block_size``; the result is exact, not an estimate. :meth:`feed` with ``block_size`` samples
always returns the output for exactly that much input time; other sizes work too, but may be
answered late (never with a gap: the output only ever depends on the input's timing through
the fixed latency).

``output[j]`` of the stream is the offline output at ``j - latency_samples``; after
:meth:`flush` the stream has produced exactly ``latency_samples + output_length(input)`` samples.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from .dsp.resample import StreamResampler, output_length
from .errors import UpscalerError
from .extenders import BandExtender, lookahead_samples, with_air
from .io_formats import MAX_CHANNELS, MAX_SAMPLE_VALUE, check_rate
from .typecheck import finite_number

#: Input seconds the latency measurement runs for (covers soxr's start-up and a steady stretch).
MEASURE_SECONDS = 2.0
#: Largest block a stream takes (seconds of input): streaming is for short blocks.
MAX_BLOCK_SECONDS = 10.0


class StreamingUpscaler:
    """Block-in, block-out upscaler with a fixed latency.

    Args:
        model: an :class:`~audio_upscaler.models.base.UpscalerModel`, a band extender (e.g. an
            :class:`~audio_upscaler.export.onnx_backend.OnnxExtender`), or a name as for
            :class:`Upscaler` (``auto``, ``sbr``, ``none`` or an installed model).
        input_rate, target_rate: sample rates in Hz (a lower target rate resamples down, as offline).
        block_size: input samples per :meth:`feed` call.
        channels: number of channels of the stream.
        cutoff_hz: where the input's content ends (Hz); default ``input_rate / 2``.
        quality, stereo, air, remove_dc, backend: as for :class:`~audio_upscaler.pipeline.Upscaler`.
        limiter: run the peak limiter (ceiling -0.1 dBFS) as the offline pipeline does.
        hop: new output samples per model window (default: one block's worth), rounded up to the
            model's alignment. Each window recomputes the model over ``past + hop + lookahead``
            samples, so a larger hop costs less CPU per second of audio but adds latency and makes
            the per-block cost uneven (one window every few blocks).
    """

    def __init__(self, model: Any, input_rate: int, target_rate: int, block_size: int, *, channels: int = 1,
                 cutoff_hz: float | None = None, quality: str = "vhq", stereo: str = "independent",
                 air: bool = False, remove_dc: bool = False, limiter: bool = True, backend: str = "torch",
                 hop: int | None = None):
        from .pipeline import AIR_LIMIT_HZ, LOSSLESS_CEILING_DBFS, Upscaler, check_rates, downsampling_note

        whole = lambda value, what: int(finite_number(value, what))  # noqa: E731
        block_size, channels = whole(block_size, "block size"), whole(channels, "channels")
        input_rate, target_rate = whole(input_rate, "input rate"), whole(target_rate, "target rate")
        hop = None if hop is None else whole(hop, "hop")
        cutoff_hz = None if cutoff_hz is None else finite_number(cutoff_hz, "cutoff")
        if block_size < 1:
            raise UpscalerError(f"block size must be at least 1 sample, got {block_size}")
        if block_size > MAX_BLOCK_SECONDS * input_rate > 0:  # the latency probe feeds 16 such blocks
            raise UpscalerError(f"block size {block_size} is over {MAX_BLOCK_SECONDS:g} s of input; "
                                "for whole files use the offline pipeline (audio-upscaler upscale)")
        if not 1 <= channels <= MAX_CHANNELS:
            raise UpscalerError(f"channels must be between 1 and {MAX_CHANNELS}, got {channels}")
        check_rate(input_rate, "input rate")
        check_rates(input_rate, target_rate, cutoff_hz)  # as the offline pipeline
        if hop is not None and hop < 1:  # a hop of 0 or less never advances: the stream would hang
            raise UpscalerError(f"hop must be at least 1 sample, got {hop}")
        self.input_rate, self.target_rate = input_rate, target_rate
        self.block_size, self.channels = block_size, channels
        self.cutoff_hz = float(self.input_rate / 2 if cutoff_hz is None else cutoff_hz)
        upscaler = Upscaler("none", self.target_rate, quality=quality, stereo=stereo, air=air, cutoff_hz=self.cutoff_hz,
                            backend=backend)
        self.name, self.reason, extender = _resolve(model, backend)
        if air:
            extender = with_air(extender, self.target_rate)
        limit = self.target_rate / 2 if air else min(AIR_LIMIT_HZ, self.target_rate / 2)
        if extender is not None and self.cutoff_hz >= 0.98 * limit:  # nothing to add (as the pipeline)
            self.name, self.reason, extender = "none", "the cutoff leaves nothing to add", None
        self.reason += downsampling_note(input_rate, target_rate)

        sr = self.target_rate
        if extender is None:
            self._fn, self.past, self.lookahead, align = None, 0, 0, 1
        else:
            self._fn, merge = upscaler.band_stage(extender, self.cutoff_hz, self.channels)
            self.past = extender.context_samples(sr) + merge  # the offline context: same sample grid
            self.lookahead = lookahead_samples(extender, sr) + merge
            align = extender.alignment(sr)
        self.hop = -(-int(hop or math.ceil(self.block_size * sr / self.input_rate)) // align) * align

        from .dsp.finish import DCBlocker, Limiter

        self._dc = DCBlocker(self.input_rate, self.channels) if remove_dc else None
        self._resampler = StreamResampler(self.input_rate, sr, self.channels, quality)
        self._limiter = Limiter(sr, self.channels, ceiling_dbfs=LOSSLESS_CEILING_DBFS) if limiter else None
        self.latency_samples = self._measure_latency(quality) + (self._limiter.delay if self._limiter else 0)

        self._buf = np.zeros((self.channels, self.past), np.float32)  # resampled input from _buf_start
        self._buf_start = -self.past
        self._resampled = 0  # resampled samples received
        self._done = 0  # start of the next window's own region
        self._received = 0  # input samples fed
        self._emitted = 0  # output samples returned
        self._queue: deque[np.ndarray] = deque([np.zeros((self.channels, self._pipeline_latency), np.float32)])
        self._queued = self._pipeline_latency
        self._flushed = False

    # ------------------------------------------------------------------ public API

    @property
    def latency_seconds(self) -> float:
        return self.latency_samples / self.target_rate

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Process input ``[channels, n]`` float32; returns the output ``[channels, m]`` now due:
        ``m = output_length(total input) - total output`` (a block of ``block_size`` input samples
        gives ``block_size * target_rate / input_rate`` samples, to within one)."""
        if self._flushed:
            raise UpscalerError("the stream was already flushed")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise UpscalerError(f"expected a [{self.channels}, n] block, got shape {block.shape}")
        if not (np.abs(block) <= MAX_SAMPLE_VALUE).all():  # one NaN would turn the rest of the stream into NaN
            raise UpscalerError(f"the block contains NaN, infinite or absurd sample values (beyond +-{MAX_SAMPLE_VALUE:g})")
        self._received += block.shape[1]
        if self._dc is not None:
            block = self._dc.process(block)
        self._stage(self._resampler.process(block), final=False)
        due = output_length(self._received, self.input_rate, self.target_rate) - self._emitted
        return self._pop(min(due, self._queued))

    def flush(self) -> np.ndarray:
        """End the stream: returns the rest of the output (the last ``latency_samples`` and more)."""
        if self._flushed:
            raise UpscalerError("the stream was already flushed")
        self._flushed = True
        self._stage(self._resampler.flush(), final=True)
        if self._limiter is not None:
            self._push(self._limiter.flush())
        return self._pop(self._queued)

    # ------------------------------------------------------------------ stages

    @property
    def _pipeline_latency(self) -> int:
        return self.latency_samples - (self._limiter.delay if self._limiter else 0)

    def _stage(self, resampled: np.ndarray, final: bool) -> None:
        """Window the resampled samples through the band stage and queue what is finished."""
        if self._fn is None:
            self._resampled += resampled.shape[1]
            self._push(self._limit(resampled))
            return
        if resampled.shape[1]:
            self._buf = np.concatenate([self._buf, resampled], axis=1)
            self._resampled += resampled.shape[1]
        while self._done + self.hop + self.lookahead <= self._resampled or (final and self._done < self._resampled):
            self._push(self._limit(self._window()))

    def _window(self) -> np.ndarray:
        start = self._done - self.past - self._buf_start
        length = self.past + self.hop + self.lookahead
        window = self._buf[:, start : start + length]
        if window.shape[1] < length:  # end of the stream: zeros after it, as offline
            window = np.pad(window, ((0, 0), (0, length - window.shape[1])))
        out = np.asarray(self._fn(window), np.float32)[:, self.past : self.past + self.hop]
        out = out[:, : self._resampled - self._done]  # the last window may reach past the end
        self._done += self.hop
        keep = self._done - self.past
        self._buf = self._buf[:, keep - self._buf_start :]
        self._buf_start = keep
        return out

    def _limit(self, block: np.ndarray) -> np.ndarray:
        return self._limiter.process(block) if self._limiter is not None and block.shape[1] else block

    def _push(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self._queue.append(block)
            self._queued += block.shape[1]

    def _pop(self, n: int) -> np.ndarray:
        parts, need = [], n
        while need > 0:
            head = self._queue.popleft()
            if head.shape[1] > need:
                self._queue.appendleft(head[:, need:])
                head = head[:, :need]
            parts.append(head)
            need -= head.shape[1]
        self._queued -= n
        self._emitted += n
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)

    def _measure_latency(self, quality: str) -> int:
        """Largest shortfall of finished output behind the input for ``block_size`` blocks: run
        the stages' sample counts (a mono resampler fed zeros; soxr's counts ignore the values)."""
        resampler = StreamResampler(self.input_rate, self.target_rate, 1, quality)
        zeros = np.zeros((1, self.block_size), np.float32)
        received = resampled = done = worst = 0
        for _ in range(max(16, math.ceil(MEASURE_SECONDS * self.input_rate / self.block_size))):
            received += self.block_size
            resampled += resampler.process(zeros).shape[1]
            if self._fn is None:
                done = resampled
            while done + self.hop + self.lookahead <= resampled:
                done += self.hop
            worst = max(worst, output_length(received, self.input_rate, self.target_rate) - done)
        return worst


def _resolve(model: Any, backend: str) -> tuple[str, str, BandExtender | None]:
    """``(name, reason, extender)`` for a model object, an extender or a name (extender ``None``:
    resampling only; ``reason``: why that model, with any note on it, as the offline plan says)."""
    if isinstance(model, str):
        from .extenders import choose_extender, get_extender

        name, reason = choose_extender(model, full_band=False, lossy=False, backend=backend)
        return name, reason, get_extender(name, backend)
    if hasattr(model, "extend"):
        return getattr(model, "name", type(model).__name__), "given as an extender", model
    from .models.base import ModelExtender, UpscalerModel

    if not isinstance(model, UpscalerModel):
        raise UpscalerError(f"cannot stream through a {type(model).__name__}; pass a model, an extender or a name")
    return model.family, "given as a model", ModelExtender(model, model.family)
