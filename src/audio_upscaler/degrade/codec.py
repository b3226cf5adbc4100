"""Lossy-codec degradation: a real encode + decode (see :mod:`audio_upscaler.codecs`).

Encoders low-pass their input at a bitrate-dependent frequency (LAME at 128 kbps: about 17 kHz).
That band limit is measured once per setting on white noise (``codec_cutoff_hz``) and cached,
so the chain can report the cutoff the decoded audio really has.

``coding_rates`` codes each example at a rate drawn from a list (resampled there and back with
soxr), as a 44.1 kHz MP3 reaches a 48 kHz model through the pipeline's resampler: MP3, AAC and
Vorbis frames, scale-factor bands and low-pass filters depend on the coding rate, so a restoration
model trained only on 48 kHz coding meets unfamiliar artifacts in most real files (44.1 kHz).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from scipy import signal

from .. import codecs
from ..errors import UpscalerError
from .base import Degradation, as_audio, fit_length
from .filters import resample

#: bitrates drawn from (the MP3 bitrate ladder; other codecs accept any of them)
BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_VBR_QUALITIES = {"mp3": 9, "vorbis": 10}
_EDGE_DROP_DB = 20.0


@dataclass(frozen=True)
class CodecParams:
    """One codec setting; exactly one of ``bitrate_kbps`` / ``vbr_quality`` (mp3/vorbis) is set.
    ``coding_rate`` (Hz): the rate the audio is coded at; ``None``: the audio's own rate."""

    codec: str
    bitrate_kbps: int | None = None
    vbr_quality: float | None = None
    coding_rate: int | None = None


def band_edge_hz(samples: np.ndarray, sample_rate: int, drop_db: float = _EDGE_DROP_DB) -> float:
    """Highest frequency whose averaged level is within ``drop_db`` of the 300 Hz - 3 kHz level.

    Meant for white-noise probes: ``[channels, time]`` in, Hz out (at most Nyquist).
    """
    freqs, power = signal.welch(samples, sample_rate, nperseg=1024, axis=-1)
    level = np.convolve(power.mean(0), np.ones(5) / 5, mode="same")
    reference = np.median(level[(freqs >= 300) & (freqs <= 3000)])
    inside = np.nonzero(level >= reference * 10 ** (-drop_db / 10))[0]
    return float(min(freqs[inside[-1]], sample_rate / 2)) if inside.size else 0.0


def codec_cutoff_hz(params: CodecParams, sample_rate: int, channels: int = 1) -> float:
    """Band edge (Hz, -20 dB) that ``params`` leave on one second of white noise.

    Measured with the same channel count as the audio (LAME's low-pass depends on it; more than
    two channels are coded one by one, like mono), then cached.
    """
    return _measured_cutoff_hz(params, sample_rate, 2 if channels == 2 else 1)


@functools.lru_cache(maxsize=512)
def _measured_cutoff_hz(params: CodecParams, sample_rate: int, channels: int) -> float:
    probe = np.random.default_rng(99).standard_normal((channels, sample_rate)).astype(np.float32)
    decoded = codecs.roundtrip(0.1 * probe, sample_rate, params.codec, params.bitrate_kbps,
                               params.vbr_quality)
    return band_edge_hz(decoded, sample_rate)


class Codec(Degradation):
    """Encode + decode with a codec drawn from ``codecs`` at a bitrate within ``bitrate_kbps``.

    With probability ``vbr_probability`` mp3/vorbis use a random VBR quality instead. With
    ``coding_rates`` (Hz) each example is coded at one of them (see the module docstring).
    """

    def __init__(self, codec_names: tuple[str, ...] = codecs.CODECS,
                 bitrate_kbps: tuple[int, int] = (32, 320), vbr_probability: float = 0.0,
                 coding_rates: tuple[int, ...] | None = None):
        unknown = set(codec_names) - set(codecs.CODECS)
        if unknown or not codec_names:
            raise UpscalerError(f"unknown codecs {sorted(unknown)}; choose from {', '.join(codecs.CODECS)}")
        self.bitrates = tuple(b for b in BITRATES_KBPS if bitrate_kbps[0] <= b <= bitrate_kbps[1])
        if not self.bitrates:
            raise UpscalerError(f"no standard bitrate within {bitrate_kbps} kbps")
        if coding_rates is not None and (not coding_rates or any(int(r) < 8000 for r in coding_rates)):
            raise UpscalerError(f"codec coding_rates must be a list of rates of at least 8000 Hz, got {coding_rates}")
        self.codec_names = tuple(codec_names)
        self.vbr_probability = vbr_probability
        self.coding_rates = None if coding_rates is None else tuple(int(r) for r in coding_rates)

    def sample(self, rng: np.random.Generator, sample_rate: int) -> CodecParams:
        codec = str(rng.choice(self.codec_names))
        if codec in _VBR_QUALITIES and rng.random() < self.vbr_probability:
            params = CodecParams(codec, vbr_quality=float(rng.integers(0, _VBR_QUALITIES[codec] + 1)))
        else:
            params = CodecParams(codec, bitrate_kbps=int(rng.choice(self.bitrates)))
        if self.coding_rates is None:
            return params
        return replace(params, coding_rate=int(rng.choice(self.coding_rates)))

    def apply(self, samples: np.ndarray, sample_rate: int, params: CodecParams) -> np.ndarray:
        x = as_audio(samples)
        rate = params.coding_rate or sample_rate
        if rate == sample_rate:
            return codecs.roundtrip(x, rate, params.codec, params.bitrate_kbps, params.vbr_quality)
        coded = codecs.roundtrip(resample(x, sample_rate, rate), rate, params.codec, params.bitrate_kbps,
                                 params.vbr_quality)
        return fit_length(resample(coded, rate, sample_rate), x.shape[1])

    def cutoff_hz(self, params: CodecParams, sample_rate: int, channels: int = 1) -> float:
        rate = params.coding_rate or sample_rate
        return min(codec_cutoff_hz(replace(params, coding_rate=None), rate, channels), sample_rate / 2)

    def __repr__(self) -> str:
        return (f"Codec({self.codec_names}, bitrates={self.bitrates}, "
                f"vbr_probability={self.vbr_probability}, coding_rates={self.coding_rates})")
