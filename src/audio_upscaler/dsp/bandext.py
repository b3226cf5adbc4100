"""Non-neural band extension: spectral band replication (SBR).

The fallback when no neural model is wanted, and the baseline every model must beat. Per STFT
frame (periodic Hann, hop a quarter of the frame, about 20 ms frames):

1. Fit a line to the log power of the top octave below the cutoff against log frequency
   (dB per octave), frame by frame. The slope is averaged over neighbouring frames; the level
   stays per frame, so transients keep their shape in the new band.
2. Whiten that octave by its fitted line and copy it upward again and again until the Nyquist
   frequency (every shift is a multiple of ``n_fft / hop`` bins, so phases stay coherent from
   frame to frame). Optionally mix in harmonics made by ``|x|`` of the same octave
   (``harmonic_excitation``), whitened the same way.
3. Give the copies the fitted envelope continued from the band edge with the fitted slope
   (never rising) minus ``decay_db_per_octave``, so they never exceed the edge level.

The result is ``base`` plus the synthesized band (bins at and above the cutoff), same length,
zero delay; :func:`audio_upscaler.dsp.bands.merge_bands` then keeps only the band above the cutoff.

Chunked processing: frames sit on a grid of :meth:`SpectralBandReplication.alignment` samples
from the start of the array. Chunk windows whose starts differ by multiples of it, with
:meth:`SpectralBandReplication.context_samples` of context on each side, give exactly the one-shot
output in their centre.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..errors import UpscalerError
from .spectral import istft, stft

_OVERLAP = 4  # n_fft / hop
_POWER_FLOOR = 1e-12  # added to |X|^2 before the logarithm (silence stays silent)


class SpectralBandReplication:
    """Spectral band replication of the top octave below the cutoff.

    Args:
        decay_db_per_octave: extra fall of the synthesized envelope beyond the fitted slope.
        smoothing_frames: the slope is averaged over ``2 * smoothing_frames + 1`` frames.
        harmonic_excitation: share (0..1) of ``|x|``-made harmonics in the synthesized band.
        frame_seconds: STFT frame length (rounded to a power of two in samples).
        edge_margin: fraction of the cutoff left out at the top of the analysed octave (the
            input's own roll-off lives there).
        min_slope_db: floor of the synthesized slope (dB per octave).
    """

    def __init__(self, decay_db_per_octave: float = 3.0, smoothing_frames: int = 2,
                 harmonic_excitation: float = 0.0, frame_seconds: float = 0.02,
                 edge_margin: float = 0.08, min_slope_db: float = -30.0) -> None:
        if not 0.0 <= harmonic_excitation <= 1.0:
            raise ValueError("harmonic_excitation must be between 0 and 1")
        self.decay_db_per_octave = float(decay_db_per_octave)
        self.smoothing_frames = int(smoothing_frames)
        self.harmonic_excitation = float(harmonic_excitation)
        self.frame_seconds = float(frame_seconds)
        self.edge_margin = float(edge_margin)
        self.min_slope_db = float(min_slope_db)

    def n_fft(self, sample_rate: int) -> int:
        """STFT frame length in samples at ``sample_rate``."""
        return max(128, 2 ** round(math.log2(self.frame_seconds * sample_rate)))

    def alignment(self, sample_rate: int) -> int:
        """Frame hop: chunk windows must start at multiples of it (relative to each other)."""
        return self.n_fft(sample_rate) // _OVERLAP

    def context_samples(self, sample_rate: int) -> int:
        """Samples of context needed on each side of a chunk (a multiple of :meth:`alignment`)."""
        return self.n_fft(sample_rate) + self.smoothing_frames * self.alignment(sample_rate)

    def extend(self, base: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
        """``base`` float32 ``[C, T]`` band-limited at ``cutoff_hz`` -> full-band ``[C, T]``."""
        base = np.asarray(base, dtype=np.float32)
        if base.ndim != 2:
            raise ValueError(f"audio must be [channels, time], got shape {base.shape}")
        if not cutoff_hz > 0:
            raise UpscalerError(f"cutoff must be a positive frequency, got {cutoff_hz} Hz")
        n_fft, hop = self.n_fft(sample_rate), self.alignment(sample_rate)
        bands = _Bands.plan(n_fft, sample_rate, cutoff_hz, self.edge_margin)
        if bands is None or base.shape[1] == 0:
            return base.copy()
        spec = stft(base, n_fft, hop)  # [C, M, bins]
        slope, level = _fit_line(_db(spec[..., bands.fit]), bands.log_f[bands.fit])  # [C, M] each
        new = np.zeros_like(spec)
        fine = self._fine_structure(spec, bands, slope, level)
        new[..., bands.first :] = fine * self._envelope(bands, slope, level)
        return base + istft(new, n_fft, hop, base.shape[1])

    def _fine_structure(self, spec: np.ndarray, b: "_Bands", slope: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Source octave divided by its fitted line, tiled over the new bins ``[C, M, bins - first]``."""
        src = spec[..., b.fit]
        flat = src / _amplitude(level[..., None] + slope[..., None] * b.log_f[None, None, b.fit])
        fine = flat[..., b.tile]
        if self.harmonic_excitation:
            fine = (1 - self.harmonic_excitation) * fine + self.harmonic_excitation * _harmonics(spec, b)
        return fine

    def _envelope(self, b: "_Bands", slope: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Amplitude of the new bins ``[C, M, bins - first]``: edge level, then a falling line."""
        top = b.log_f[b.fit][-1]
        edge = level + slope * top  # fitted level (dB) at the top of the analysed octave, per frame
        if self.smoothing_frames:
            slope = uniform_filter1d(slope, 2 * self.smoothing_frames + 1, axis=-1, mode="nearest")
        slope = np.clip(np.minimum(slope, 0.0) - self.decay_db_per_octave, self.min_slope_db, 0.0)
        octaves = b.log_f[b.first :] - top
        return _amplitude(edge[..., None] + slope[..., None] * octaves[None, None, :])


class _Bands:
    """Bin layout for one (n_fft, rate, cutoff): analysed octave, first new bin, tiling indices."""

    def __init__(self, fit: slice, first: int, tile: np.ndarray, log_f: np.ndarray):
        self.fit, self.first, self.tile, self.log_f = fit, first, tile, log_f

    @classmethod
    def plan(cls, n_fft: int, sample_rate: int, cutoff_hz: float, margin: float) -> "_Bands | None":
        """``None`` when there is nothing to fill (cutoff at Nyquist) or too few bins to copy."""
        bins = n_fft // 2 + 1
        df = sample_rate / n_fft
        first = math.ceil(cutoff_hz / df)
        lo, hi = math.ceil(cutoff_hz / 2 / df), math.floor(cutoff_hz * (1 - margin) / df)
        # Copied bins [src_lo, src_hi): every shift first - src_lo + k * width is a multiple of
        # the overlap, which keeps the phases of the copies coherent across frames.
        src_hi = hi - (hi - first) % _OVERLAP
        width = (src_hi - lo) // _OVERLAP * _OVERLAP
        if first >= bins - 1 or width < _OVERLAP:
            return None
        src_lo = src_hi - width
        offsets = (np.arange(first, bins) - first) % width
        log_f = np.log2(np.maximum(np.arange(bins), 0.5) * df).astype(np.float32)
        return cls(slice(lo, hi), first, (src_lo - lo + offsets).astype(np.intp), log_f)


def _db(spec: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.abs(spec) ** 2 + _POWER_FLOOR)


def _amplitude(db: np.ndarray) -> np.ndarray:
    return (10 ** (db / 20)).astype(np.float32)


def _fit_line(db: np.ndarray, log_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line ``db ~ level + slope * log_f`` over the last axis; ``[...]`` each."""
    x = log_f - log_f.mean()
    slope = (db * x).sum(-1) / (x**2).sum()
    level = db.mean(-1) - slope * log_f.mean()
    return slope.astype(np.float32), level.astype(np.float32)


def _harmonics(spec: np.ndarray, b: _Bands) -> np.ndarray:
    """Whitened spectrum of ``|x|`` of the analysed octave, on the new bins ``[C, M, bins - first]``."""
    n_fft = 2 * (spec.shape[-1] - 1)
    band = np.zeros_like(spec)
    band[..., b.fit] = spec[..., b.fit]
    # |window * x| == window * |x|: the rectified band, framed like the STFT.
    rect = np.fft.rfft(np.abs(np.fft.irfft(band, n=n_fft, axis=-1)), axis=-1)[..., b.first :]
    log_f = b.log_f[b.first :]
    slope, level = _fit_line(_db(rect), log_f)
    return (rect / _amplitude(level[..., None] + slope[..., None] * log_f[None, None, :])).astype(np.complex64)
