"""Sample peak, true peak, RMS, DC offset and clipping of a stream, in flat memory."""

from __future__ import annotations

import numpy as np
import soxr

CLIP_LEVEL = 0.999


def to_db(value: float) -> float:
    """20 log10 of a linear level; ``-inf`` for 0."""
    return float(20 * np.log10(value)) if value > 0 else float("-inf")


class LevelMeter:
    """Sample-domain statistics of blocks ``[channels, n]`` (full scale 1.0).

    Clipping: a sample is *clipped* when ``|x| >= CLIP_LEVEL`` (0.999 of full scale, so
    values over 1.0 in float files count too) **and** at least one neighbour on the same
    channel is as well, i.e. it belongs to a flat-topped run of two or more samples.  A
    single sample touching full scale is a legitimate peak, not clipping.  ``clip_runs``
    counts those runs.  The decision for the last sample of a block waits for the next
    block, so any split into blocks gives the same counts.
    """

    def __init__(self, channels: int):
        self.channels = int(channels)
        self.frames = 0
        self.peak = 0.0
        self._sum = np.zeros(self.channels)
        self._sum_sq = np.zeros(self.channels)
        self._tail = np.zeros((self.channels, 2), bool)  # clip mask of the last two samples
        self._clipped = 0
        self._runs = 0

    def update(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.shape[1] == 0:
            return
        x = block.astype(np.float64)
        magnitude = np.abs(block)
        self.frames += block.shape[1]
        self.peak = max(self.peak, float(magnitude.max()))
        self._sum += x.sum(axis=1)
        self._sum_sq += np.einsum("ij,ij->i", x, x)
        mask = np.concatenate([self._tail, magnitude >= CLIP_LEVEL], axis=1)
        self._count_clips(mask)
        self._tail = mask[:, -2:]

    def _count_clips(self, mask: np.ndarray) -> None:
        """Decide every sample of ``mask [channels, m]`` except the first and last."""
        before, here, after = mask[:, :-2], mask[:, 1:-1], mask[:, 2:]
        self._clipped += int(np.count_nonzero(here & (before | after)))
        self._runs += int(np.count_nonzero(here & after & ~before))

    def _with_end(self) -> tuple[int, int]:
        """(clipped, runs) once the stream ends after the samples seen so far."""
        end = np.concatenate([self._tail, np.zeros((self.channels, 1), bool)], axis=1)
        before, here, after = end[:, 0], end[:, 1], end[:, 2]
        return self._clipped + int(np.count_nonzero(here & (before | after))), self._runs

    @property
    def clipped_samples(self) -> int:
        return self._with_end()[0]

    @property
    def clip_runs(self) -> int:
        return self._with_end()[1]

    @property
    def rms(self) -> float:
        """RMS over all channels (a full-scale sine gives 0.707, i.e. -3.01 dBFS)."""
        return float(np.sqrt(self._sum_sq.sum() / (self.frames * self.channels))) if self.frames else 0.0

    @property
    def dc_offset(self) -> list[float]:
        """Mean value of each channel (fraction of full scale)."""
        return [float(v) for v in (self._sum / self.frames if self.frames else self._sum)]


def true_peak_oversampling(sample_rate: int) -> int:
    """Oversampling factor for true peak: 4x below 96 kHz, 2x below 192 kHz, else 1x."""
    return 4 if sample_rate < 96_000 else 2 if sample_rate < 192_000 else 1


class TruePeakMeter:
    """Inter-sample peak (BS.1770-4 Annex 2 style) of blocks ``[channels, n]``.

    The stream is oversampled with soxr's streaming resampler (HQ), whose state carries the
    context between blocks; the result is never below the sample peak.
    """

    def __init__(self, sample_rate: int, channels: int):
        factor = true_peak_oversampling(sample_rate)
        self._stream = (
            soxr.ResampleStream(sample_rate, sample_rate * factor, channels, dtype="float32", quality="HQ")
            if factor > 1 else None
        )
        self._channels = channels
        self._peak = 0.0
        self._done = False

    def update(self, block: np.ndarray) -> None:
        self._track(np.asarray(block, np.float32))
        if self._stream is not None:
            self._track(self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32)))

    def _track(self, x: np.ndarray) -> None:
        if x.size:
            self._peak = max(self._peak, float(x.max()), float(-x.min()))

    def finish(self) -> float:
        """Flush the resampler and return the true peak (linear)."""
        if self._stream is not None and not self._done:
            self._track(self._stream.resample_chunk(np.zeros((0, self._channels), np.float32), last=True))
        self._done = True
        return self._peak
