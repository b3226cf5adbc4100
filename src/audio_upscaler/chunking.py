"""Run a stateless ``[channels, time] -> [channels, time]`` function over an audio stream.

The stream is cut into windows of ``hop`` samples, each processed together with ``context``
samples on both sides (zeros beyond the ends of the stream) which are then discarded.
Neighbouring windows overlap by ``fade`` samples around each boundary and are cross-faded
linearly there, so a function whose receptive field exceeds the context still joins without a
click. When the function's receptive field fits inside the context, the output away from the
fade regions is identical to processing the whole stream at once.

Memory is bounded by one window (``hop + 2 * context`` samples), whatever the stream length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

WindowFn = Callable[[np.ndarray], np.ndarray]


class OverlapChunker:
    """Push blocks in, get finished output blocks out; output length equals input length.

    Args:
        fn: processes ``[channels, hop + 2 * context]`` into the same shape.
        channels: number of channels of the stream.
        hop: samples of new output per window.
        context: samples of extra input on each side of a window.
        fade: cross-fade length at each window boundary (``fade <= 2 * context``, even).
    """

    def __init__(self, fn: WindowFn, channels: int, hop: int, context: int, fade: int = 0):
        if hop <= 0 or context < 0:
            raise ValueError("hop must be positive and context non-negative")
        fade = min(int(fade), 2 * context, hop) // 2 * 2
        self.fn = fn
        self.channels = channels
        self.hop = int(hop)
        self.context = int(context)
        self.half_fade = fade // 2
        # Input buffer starts at absolute index -context with zero padding.
        self._buf = np.zeros((channels, self.context), dtype=np.float32)
        self._buf_start = -self.context
        self._received = 0
        self._window = 0  # index of the next window to process
        self._emitted = 0  # absolute index of the next output sample
        self._tail: np.ndarray | None = None  # fading-out part of the last window

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add ``[channels, n]`` input samples; return the output that is now final."""
        block = np.asarray(block, dtype=np.float32)
        if block.shape[1]:
            self._buf = np.concatenate([self._buf, block], axis=1)
            self._received += block.shape[1]
        out = []
        while self._window_end(self._window) <= self._received:
            out.append(self._process_window(final=False))
        return self._join(out)

    def finish(self) -> np.ndarray:
        """Process what is left (zero padding past the end) and return the remaining output."""
        out = []
        while self._emitted < self._received:
            out.append(self._process_window(final=True))
        self._tail = None
        return self._join(out)

    def _window_end(self, i: int) -> int:
        return (i + 1) * self.hop + self.context

    def _process_window(self, final: bool) -> np.ndarray:
        i, h, k, half = self._window, self.hop, self.context, self.half_fade
        start = i * h - k
        length = h + 2 * k
        offset = start - self._buf_start
        window = self._buf[:, offset : offset + length]
        if window.shape[1] < length:  # only at the end of the stream
            pad = np.zeros((self.channels, length - window.shape[1]), dtype=np.float32)
            window = np.concatenate([window, pad], axis=1)
        processed = np.asarray(self.fn(window), dtype=np.float32)
        if processed.shape != window.shape:
            raise RuntimeError(f"window function changed shape {window.shape} -> {processed.shape}")

        # Output region owned by this window: [i*h - half, (i+1)*h + half) in absolute samples.
        seg_start = max(i * h - half, 0)
        seg = processed[:, seg_start - start : (i + 1) * h + half - start]
        if self._tail is not None and half:
            fade_in = (np.arange(2 * half, dtype=np.float32) + 0.5) / (2 * half)
            seg = seg.copy()
            seg[:, : 2 * half] = seg[:, : 2 * half] * fade_in + self._tail * (1.0 - fade_in)
        last = final and (i + 1) * h >= self._received
        emit_end = self._received if last else (i + 1) * h - half
        result = seg[:, : emit_end - seg_start]
        self._tail = None if last else seg[:, emit_end - seg_start : emit_end - seg_start + 2 * half]
        self._emitted = emit_end
        self._window += 1
        # Drop input that no later window needs.
        keep_from = self._window * h - k
        self._buf = self._buf[:, keep_from - self._buf_start :]
        self._buf_start = keep_from
        return result

    def _join(self, parts: list[np.ndarray]) -> np.ndarray:
        if not parts:
            return np.zeros((self.channels, 0), dtype=np.float32)
        return np.concatenate(parts, axis=1)


def process_chunked(
    fn: WindowFn,
    blocks: Iterable[np.ndarray],
    channels: int,
    hop: int,
    context: int,
    fade: int = 0,
) -> Iterator[np.ndarray]:
    """Generator form of :class:`OverlapChunker` over an iterable of ``[channels, n]`` blocks."""
    chunker = OverlapChunker(fn, channels, hop, context, fade)
    for block in blocks:
        out = chunker.push(block)
        if out.shape[1]:
            yield out
    out = chunker.finish()
    if out.shape[1]:
        yield out
