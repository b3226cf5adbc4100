"""Sample-value degradations: bit-depth reduction, additive noise, gain, mild clipping.

None of them limits the band (``cutoff_hz`` stays at Nyquist). Random noise (dither, additive
noise) comes from a seed stored in the parameters, so ``apply`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UpscalerError
from .base import Degradation, as_audio, new_seed, uniform

NOISE_COLORS = ("white", "pink")


@dataclass(frozen=True)
class QuantizeParams:
    """Round to ``bits``-bit integer PCM (step ``2 / 2**bits``), optionally with TPDF dither."""

    bits: int
    dither: bool = False
    seed: int = 0


@dataclass(frozen=True)
class NoiseParams:
    """Add ``color`` noise (white or pink, independent per channel) at ``snr_db`` to the signal."""

    snr_db: float
    color: str = "white"
    seed: int = 0


@dataclass(frozen=True)
class GainParams:
    gain_db: float


@dataclass(frozen=True)
class ClipParams:
    """Hard-clip at the level that ``fraction`` of all samples exceed in magnitude."""

    fraction: float


def quantize(x: np.ndarray, params: QuantizeParams) -> np.ndarray:
    """``[channels, time]`` rounded to the ``params.bits`` grid; values stay within [-1, 1)."""
    if not 2 <= params.bits <= 24:
        raise UpscalerError(f"bit depth must be within 2-24, got {params.bits}")
    step = 2.0 ** (1 - params.bits)
    x = as_audio(x).astype(np.float64)
    if params.dither:  # triangular PDF, +-1 LSB: the difference of two uniform variables
        rng = np.random.default_rng(params.seed)
        x = x + (rng.random(x.shape) - rng.random(x.shape)) * step
    return np.clip(np.round(x / step) * step, -1.0, 1.0 - step).astype(np.float32)


def colored_noise(shape: tuple[int, int], color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise ``[channels, time]``: white, or pink (power falling 3 dB per octave)."""
    noise = rng.standard_normal(shape)
    if color == "pink":
        spectrum = np.fft.rfft(noise, axis=-1)
        freqs = np.fft.rfftfreq(shape[1])
        spectrum[:, 1:] /= np.sqrt(freqs[1:] / freqs[1])
        spectrum[:, 0] = 0
        noise = np.fft.irfft(spectrum, n=shape[1], axis=-1)
    elif color != "white":
        raise UpscalerError(f"unknown noise colour {color!r}; choose one of {', '.join(NOISE_COLORS)}")
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def add_noise(x: np.ndarray, params: NoiseParams) -> np.ndarray:
    """Add noise so that ``10 log10(sum x^2 / sum noise^2) == snr_db`` over the whole signal."""
    x = as_audio(x)
    power = float(np.mean(x.astype(np.float64) ** 2))
    if power == 0.0 or x.shape[1] < 2:
        return x.copy()
    noise = colored_noise(x.shape, params.color, np.random.default_rng(params.seed))
    return (x + noise * np.sqrt(power / 10 ** (params.snr_db / 10))).astype(np.float32)


class Quantize(Degradation):
    """Bit-depth reduction to a depth drawn from ``bits``; dithered with ``dither_probability``."""

    def __init__(self, bits: tuple[int, int] = (8, 16), dither_probability: float = 0.5):
        self.bits = bits
        self.dither_probability = dither_probability

    def sample(self, rng: np.random.Generator, sample_rate: int) -> QuantizeParams:
        bits = int(rng.integers(self.bits[0], self.bits[1] + 1))
        return QuantizeParams(bits, bool(rng.random() < self.dither_probability), new_seed(rng))

    def apply(self, samples: np.ndarray, sample_rate: int, params: QuantizeParams) -> np.ndarray:
        return quantize(samples, params)

    def __repr__(self) -> str:
        return f"Quantize(bits={self.bits}, dither_probability={self.dither_probability})"


class AddNoise(Degradation):
    """Additive noise at an SNR (dB) drawn from ``snr_db``, colour drawn from ``colors``."""

    def __init__(self, snr_db: tuple[float, float] = (20.0, 50.0), colors: tuple[str, ...] = NOISE_COLORS):
        self.snr_db = snr_db
        self.colors = tuple(colors)

    def sample(self, rng: np.random.Generator, sample_rate: int) -> NoiseParams:
        return NoiseParams(uniform(rng, self.snr_db), str(rng.choice(self.colors)), new_seed(rng))

    def apply(self, samples: np.ndarray, sample_rate: int, params: NoiseParams) -> np.ndarray:
        return add_noise(samples, params)

    def __repr__(self) -> str:
        return f"AddNoise(snr_db={self.snr_db}, colors={self.colors})"


class Gain(Degradation):
    """Multiply by a gain (dB) drawn from ``gain_db``; no clipping (float)."""

    def __init__(self, gain_db: tuple[float, float] = (-18.0, 0.0)):
        self.gain_db = gain_db

    def sample(self, rng: np.random.Generator, sample_rate: int) -> GainParams:
        return GainParams(uniform(rng, self.gain_db))

    def apply(self, samples: np.ndarray, sample_rate: int, params: GainParams) -> np.ndarray:
        return (as_audio(samples) * np.float32(10 ** (params.gain_db / 20))).astype(np.float32)

    def __repr__(self) -> str:
        return f"Gain(gain_db={self.gain_db})"


class Clip(Degradation):
    """Mild hard clipping: a ``fraction`` (drawn from the range) of samples hit the clip level."""

    def __init__(self, fraction: tuple[float, float] = (0.001, 0.01)):
        self.fraction = fraction

    def sample(self, rng: np.random.Generator, sample_rate: int) -> ClipParams:
        return ClipParams(uniform(rng, self.fraction))

    def apply(self, samples: np.ndarray, sample_rate: int, params: ClipParams) -> np.ndarray:
        x = as_audio(samples)
        if not 0.0 <= params.fraction < 1.0:
            raise UpscalerError(f"clip fraction must be within [0, 1), got {params.fraction}")
        if x.size == 0:
            return x.copy()
        level = float(np.quantile(np.abs(x), 1.0 - params.fraction))
        return np.clip(x, -level, level) if level > 0 else x.copy()

    def __repr__(self) -> str:
        return f"Clip(fraction={self.fraction})"
