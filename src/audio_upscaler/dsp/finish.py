"""Finishing stages: level conversions, DC removal, a look-ahead peak limiter and TPDF dither.

Audio blocks are float32 ``[channels, n]`` at full scale +-1.0. The stateful stages
(:class:`DCBlocker`, :class:`Limiter`) carry their state between blocks, so processing a stream
block by block gives the same samples as processing it in one piece.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import butter, sosfilt


def db_to_gain(db):
    """Decibels -> linear amplitude gain (scalar or array)."""
    return 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)


def gain_to_db(gain):
    """Linear amplitude gain -> decibels; zero maps to -inf-like -400 dB (scalar or array)."""
    return 20.0 * np.log10(np.maximum(np.abs(np.asarray(gain, dtype=np.float64)), 1e-20))


def peak_normalize_gain(peak: float, target_dbfs: float) -> float:
    """Gain that brings a signal with sample peak ``peak`` to ``target_dbfs``; 1.0 for silence."""
    if peak <= 0.0:
        return 1.0
    return float(db_to_gain(target_dbfs)) / float(peak)


class DCBlocker:
    """Second-order Butterworth high-pass at ``cutoff_hz`` (default 5 Hz), stateful across blocks."""

    def __init__(self, sample_rate: int, channels: int, cutoff_hz: float = 5.0) -> None:
        self._sos = butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
        self._zi = np.zeros((self._sos.shape[0], channels, 2))

    def process(self, block: np.ndarray) -> np.ndarray:
        """Filter the next ``[channels, n]`` block; returns ``[channels, n]`` float32."""
        y, self._zi = sosfilt(self._sos, np.asarray(block, dtype=np.float64), axis=-1, zi=self._zi)
        return y.astype(np.float32)


class Limiter:
    """Look-ahead peak limiter, linked across channels (one gain for all keeps the stereo image).

    The gain that a sample needs, ``ceiling / peak`` (peak held with an exponential release),
    is reached by a linear ramp over the look-ahead before that sample leaves the delay line, so
    ``|out| <= ceiling`` always holds (a final clip guards against rounding only). A signal that
    never exceeds the ceiling passes unchanged, just delayed by :attr:`delay` samples.

    :meth:`process` returns as many samples as it receives (the first :attr:`delay` of the whole
    stream are the delay line's zeros); :meth:`flush` returns the last :attr:`delay` samples.
    """

    def __init__(self, sample_rate: int, channels: int, ceiling_dbfs: float = -0.3,
                 lookahead_ms: float = 1.5, release_ms: float = 50.0) -> None:
        ceiling = np.float32(db_to_gain(ceiling_dbfs))
        if ceiling > db_to_gain(ceiling_dbfs):  # float32 rounding must not lift the ceiling
            ceiling = np.nextafter(ceiling, np.float32(0))
        self.ceiling = ceiling
        self.channels = int(channels)
        self.delay = max(1, round(lookahead_ms * sample_rate / 1000))
        self._log_release = -1.0 / max(release_ms * sample_rate / 1000, 1e-9)  # log of per-sample decay
        self._log_env = -np.inf  # log of the held peak at the last sample
        self._x = np.zeros((self.channels, self.delay), np.float32)  # delay line
        self._need = np.ones(self.delay)  # last `delay` required gains
        self._held = np.ones(self.delay)  # last `delay` windowed-minimum gains

    def process(self, block: np.ndarray) -> np.ndarray:
        """Limit the next ``[channels, n]`` block; returns ``[channels, n]`` delayed output."""
        block = np.asarray(block, dtype=np.float32)
        n, d = block.shape[1], self.delay
        if n == 0:
            return block.copy()
        need = np.minimum(1.0, self.ceiling / np.maximum(self._peak_envelope(block), 1e-30))
        need = np.concatenate([self._need, need])
        held = minimum_filter1d(need, d + 1, origin=d // 2)[d:]  # min over the last d + 1 samples
        held = np.concatenate([self._held, held])
        gain = uniform_filter1d(held, d + 1, origin=d // 2)[d:]  # ramp: mean over the last d + 1
        self._need, self._held = need[-d:], held[-d:]
        line = np.concatenate([self._x, block], axis=1)
        self._x = line[:, -d:]
        out = (line[:, :n] * gain).astype(np.float32)  # float64 product: no rounding above the ceiling
        return np.clip(out, -self.ceiling, self.ceiling)

    def flush(self) -> np.ndarray:
        """Return the last :attr:`delay` samples still in the delay line."""
        return self.process(np.zeros((self.channels, self.delay), np.float32))

    def _peak_envelope(self, block: np.ndarray) -> np.ndarray:
        """Linked peak with exponential release: ``max_k<=n |x_k| * r**(n-k)`` per sample ``[n]``."""
        peak = np.max(np.abs(block), axis=0).astype(np.float64)
        with np.errstate(divide="ignore"):
            log_peak = np.log(peak)
        ramp = self._log_release * np.arange(block.shape[1])
        held = np.maximum.accumulate(log_peak - ramp) + ramp
        held = np.maximum(held, self._log_env + ramp + self._log_release)
        self._log_env = held[-1]
        return np.exp(held)


def tpdf_dither(x: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Add triangular (TPDF) dither spanning +-1 LSB of a ``bits``-bit integer format.

    One LSB is ``2 ** -(bits - 1)`` at full scale +-1.0; the dither's variance is ``LSB**2 / 6``.
    ``x`` is float ``[channels, n]``; returns float32 of the same shape (quantization is left to
    the writer). Samples that are exactly zero get none: digital silence (a leader, a gap between
    tracks, a dead channel) stays digital silence, as with the "auto-blank" of mastering dither;
    a zero sample quantizes without error, so it needs no dither. Nor does a block whose every
    sample already lies on the format's grid (an unprocessed 16- or 24-bit input written at its
    own rate, or at a greater bit depth): such a copy stays bit-exact. Processed audio never has a
    whole block on the grid.
    """
    if not 2 <= int(bits) <= 32:
        raise ValueError(f"bit depth must be between 2 and 32, got {bits}")
    lsb = 2.0 ** -(int(bits) - 1)
    x = np.asarray(x, dtype=np.float32)
    if _on_grid(x[:, ::GRID_PROBE_STEP], lsb) and _on_grid(x, lsb):  # the probe turns processed audio away cheaply
        return x
    noise = (rng.random(x.shape, dtype=np.float32) - rng.random(x.shape, dtype=np.float32)) * np.float32(lsb)
    return np.where(x == 0, np.float32(0), x + noise)


#: ``tpdf_dither`` looks at every this-many-th sample before checking a whole block for the grid.
GRID_PROBE_STEP = 97


def _on_grid(x: np.ndarray, lsb: float) -> bool:
    """Whether every sample of ``x`` is a whole number of ``lsb`` steps."""
    steps = x.astype(np.float64) / lsb
    return bool(np.array_equal(steps, np.round(steps)))
