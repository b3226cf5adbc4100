"""Band limits: low-pass filters of several shapes, and down-sampling then up-sampling.

Real band-limited audio comes with many filter shapes, so a model must not learn one. The
zero-phase IIR shapes (``butter``, ``cheby1``, ``cheby2``, ``ellip``) run forwards and backwards
(``sosfiltfilt``), so they add no delay; each is designed so that the applied (squared)
response is exactly -3 dB at the requested cutoff, whatever its type and order. ``brickwall``
zeroes FFT bins above the cutoff. ``soxr`` and ``poly`` use the anti-aliasing filters of the
soxr resampler (very high quality) and of ``scipy.signal.resample_poly`` (Kaiser window, which
lets some aliasing through) by resampling down to twice the cutoff and back up; both keep the
delay at zero. For those two the cutoff is the intermediate Nyquist frequency; their -3 dB
points lie at about 0.95 (soxr) and 0.93 (poly) of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import soxr
from scipy import optimize, signal

from ..errors import UpscalerError
from .base import Degradation, as_audio, fit_length, uniform

IIR_SHAPES = ("butter", "cheby1", "cheby2", "ellip")
SHAPES = ("brickwall", *IIR_SHAPES, "soxr", "poly")
RESAMPLE_METHODS = ("soxr", "poly")
LOW_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000)

#: order ranges drawn per IIR type (cheby2/ellip need a few poles for a useful stopband)
_ORDERS = {"butter": (2, 12), "cheby1": (2, 10), "cheby2": (4, 12), "ellip": (3, 10)}
_MAX_DENOMINATOR = 1000


@dataclass(frozen=True)
class LowPassParams:
    """``cutoff_hz``: -3 dB point (IIR, brickwall) or intermediate Nyquist (soxr, poly).

    ``order`` is used by IIR shapes, ``ripple_db`` (pass-band ripple) by cheby1/ellip and
    ``atten_db`` (stop-band attenuation) by cheby2/ellip.
    """

    cutoff_hz: float
    shape: str = "butter"
    order: int = 8
    ripple_db: float = 0.5
    atten_db: float = 60.0


@dataclass(frozen=True)
class ResampleParams:
    """Down-sample to ``rate`` Hz with ``method`` (``soxr`` or ``poly``), then back up."""

    rate: float
    method: str = "soxr"


def resample(x: np.ndarray, rate_in: float, rate_out: float, method: str = "soxr") -> np.ndarray:
    """Resample ``[channels, time]`` with soxr (VHQ) or ``resample_poly``; zero delay.

    ``poly`` needs a rational ratio: it uses the closest fraction with a denominator up to 1000.
    """
    if method == "soxr":
        y = soxr.resample(np.ascontiguousarray(x.T), rate_in, rate_out, quality="VHQ").T
    elif method == "poly":
        ratio = Fraction(rate_out / rate_in).limit_denominator(_MAX_DENOMINATOR)
        y = signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    else:
        raise UpscalerError(f"unknown resampling method {method!r}; choose soxr or poly")
    return np.ascontiguousarray(y, dtype=np.float32)


def down_up(x: np.ndarray, sample_rate: int, low_rate: float, method: str) -> np.ndarray:
    """Resample to ``low_rate`` and back to ``sample_rate``: same shape, content below ``low_rate/2``."""
    if method == "poly":
        low_rate = poly_rate(low_rate, sample_rate)  # so the way back is the exact inverse ratio
    low = resample(x, sample_rate, low_rate, method)
    return fit_length(resample(low, low_rate, sample_rate, method), x.shape[1])


def poly_rate(rate: float, sample_rate: int) -> float:
    """The rate ``poly`` resampling really produces for a requested ``rate`` (ratio rounding)."""
    ratio = Fraction(rate / sample_rate).limit_denominator(_MAX_DENOMINATOR)
    return float(sample_rate * ratio)


def _design(shape: str, order: int, ripple_db: float, atten_db: float, wn: float) -> np.ndarray:
    return signal.iirfilter(order, wn, rp=ripple_db, rs=atten_db, btype="lowpass", ftype=shape,
                            output="sos")


def _zero_phase_edge(sos: np.ndarray) -> float:
    """Normalized frequency (1 = Nyquist) where the forward-backward response falls to -3 dB."""
    w, h = signal.sosfreqz(sos, worN=4096)
    gain_db = 40.0 * np.log10(np.maximum(np.abs(h), 1e-12))  # |H|^2 applied -> power |H|^4
    i = int(np.argmax(gain_db < -3.0))
    if i == 0:
        return 1.0
    frac = (-3.0 - gain_db[i - 1]) / (gain_db[i] - gain_db[i - 1])
    return float((w[i - 1] + frac * (w[i] - w[i - 1])) / np.pi)


@functools.lru_cache(maxsize=1024)
def zero_phase_lowpass(shape: str, order: int, ripple_db: float, atten_db: float,
                       cutoff: float) -> np.ndarray:
    """Second-order sections whose ``sosfiltfilt`` response is -3 dB at ``cutoff`` (1 = Nyquist)."""
    def miss(wn: float) -> float:
        return _zero_phase_edge(_design(shape, order, ripple_db, atten_db, wn)) - cutoff

    wn = optimize.brentq(miss, 1e-4, 0.9999, xtol=1e-7)
    return _design(shape, order, ripple_db, atten_db, wn)


def lowpass(x: np.ndarray, sample_rate: int, params: LowPassParams) -> np.ndarray:
    """Apply a zero-delay low-pass to ``[channels, time]``; see :class:`LowPassParams`."""
    x = as_audio(x)
    if not 0 < params.cutoff_hz < sample_rate / 2:
        raise UpscalerError(f"low-pass cutoff {params.cutoff_hz} Hz must lie between 0 and "
                            f"the Nyquist frequency {sample_rate / 2} Hz")
    if params.shape == "brickwall":
        spectrum = np.fft.rfft(x, axis=-1)
        spectrum[:, np.fft.rfftfreq(x.shape[1], 1 / sample_rate) > params.cutoff_hz] = 0
        return np.fft.irfft(spectrum, n=x.shape[1], axis=-1).astype(np.float32)
    if params.shape in RESAMPLE_METHODS:
        return down_up(x, sample_rate, 2 * params.cutoff_hz, params.shape)
    if params.shape not in IIR_SHAPES:
        raise UpscalerError(f"unknown filter shape {params.shape!r}; choose one of {', '.join(SHAPES)}")
    sos = zero_phase_lowpass(params.shape, params.order, params.ripple_db, params.atten_db,
                             params.cutoff_hz / (sample_rate / 2))
    padlen = min(3 * (2 * len(sos) + 1), x.shape[1] - 1)
    if padlen < 1:
        return x.copy()
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen).astype(np.float32)


class LowPass(Degradation):
    """Low-pass at a cutoff drawn from ``cutoff_hz`` (Hz), with a shape drawn from ``shapes``."""

    def __init__(self, cutoff_hz: tuple[float, float] = (4000.0, 12000.0),
                 shapes: tuple[str, ...] = SHAPES):
        unknown = set(shapes) - set(SHAPES)
        if unknown or not shapes:
            raise UpscalerError(f"unknown filter shapes {sorted(unknown)}; choose from {', '.join(SHAPES)}")
        self.cutoff_range = cutoff_hz
        self.shapes = tuple(shapes)

    def sample(self, rng: np.random.Generator, sample_rate: int) -> LowPassParams:
        low, high = self.cutoff_range[0], min(self.cutoff_range[1], 0.45 * sample_rate)
        if low > high:
            raise UpscalerError(f"a {sample_rate} Hz signal has no room for cutoffs from {low} Hz")
        shape = str(rng.choice(self.shapes))
        cutoff = uniform(rng, (low, high))
        if shape == "poly":
            cutoff = poly_rate(2 * cutoff, sample_rate) / 2
        if shape not in IIR_SHAPES:
            return LowPassParams(cutoff, shape, order=0)
        low_order, high_order = _ORDERS[shape]
        return LowPassParams(cutoff, shape, order=int(rng.integers(low_order, high_order + 1)),
                             ripple_db=uniform(rng, (0.1, 1.0)), atten_db=uniform(rng, (40.0, 80.0)))

    def apply(self, samples: np.ndarray, sample_rate: int, params: LowPassParams) -> np.ndarray:
        return lowpass(samples, sample_rate, params)

    def cutoff_hz(self, params: LowPassParams, sample_rate: int, channels: int = 1) -> float:
        if params.shape == "poly":
            return poly_rate(2 * params.cutoff_hz, sample_rate) / 2
        return float(params.cutoff_hz)

    def __repr__(self) -> str:
        return f"LowPass(cutoff_hz={self.cutoff_range}, shapes={self.shapes})"


class Resample(Degradation):
    """Down-sample to a rate drawn from ``rates`` (below the signal's rate), then back up."""

    def __init__(self, rates: tuple[float, ...] = LOW_RATES,
                 methods: tuple[str, ...] = RESAMPLE_METHODS):
        if not rates or not methods or set(methods) - set(RESAMPLE_METHODS):
            raise UpscalerError(f"resampling needs rates and methods from {', '.join(RESAMPLE_METHODS)}")
        self.rates = tuple(rates)
        self.methods = tuple(methods)

    def sample(self, rng: np.random.Generator, sample_rate: int) -> ResampleParams:
        rates = [r for r in self.rates if r < sample_rate]
        if not rates:
            raise UpscalerError(f"no down-sampling rate below {sample_rate} Hz among {self.rates}")
        return ResampleParams(rate=float(rng.choice(rates)), method=str(rng.choice(self.methods)))

    def downsample(self, samples: np.ndarray, sample_rate: int, params: ResampleParams) -> np.ndarray:
        """The low-rate signal itself, ``[channels, T * rate / sample_rate]``."""
        return resample(self._checked(samples, sample_rate, params), sample_rate, params.rate,
                        params.method)

    def upsample(self, low: np.ndarray, sample_rate: int, params: ResampleParams,
                 length: int) -> np.ndarray:
        """The low-rate signal back at ``sample_rate``, cut or padded to ``[channels, length]``."""
        return fit_length(resample(as_audio(low), params.rate, sample_rate, params.method), length)

    def apply(self, samples: np.ndarray, sample_rate: int, params: ResampleParams) -> np.ndarray:
        low = self.downsample(samples, sample_rate, params)
        return self.upsample(low, sample_rate, params, np.shape(samples)[1])

    @staticmethod
    def _checked(samples: np.ndarray, sample_rate: int, params: ResampleParams) -> np.ndarray:
        if not 0 < params.rate < sample_rate:
            raise UpscalerError(f"cannot down-sample {sample_rate} Hz audio to {params.rate} Hz")
        return as_audio(samples)

    def cutoff_hz(self, params: ResampleParams, sample_rate: int, channels: int = 1) -> float:
        return float(params.rate) / 2

    def __repr__(self) -> str:
        return f"Resample(rates={self.rates}, methods={self.methods})"
