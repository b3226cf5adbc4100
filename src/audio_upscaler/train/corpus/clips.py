"""Audio helpers shared by the corpus sources: read, trim, normalize, pack, measure, write.

All arrays are float32 ``[channels, time]`` at full scale +-1.0; rates are Hz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ...audio import Audio
from ...io import output_format_for, write_audio
from ...io_formats import sf_name
from ...loudness import LoudnessMeter

TARGET_LUFS = -20.0
PEAK_CEILING_DBFS = -1.0
SILENCE_BELOW_PEAK_DB = 50.0  # frames this far below the loudest frame count as silence
_FRAME_SECONDS = 0.01
_MARGIN_SECONDS = 0.03
_FADE_SECONDS = 0.005


@dataclass
class Written:
    """What ``finish`` wrote: path relative to the corpus folder and measured properties."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    bandwidth_hz: float


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file (WAV/FLAC/AIFF/OGG): ``([channels, T] float32, rate)``."""
    data, rate = sf.read(sf_name(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels: ``[C, T] -> [1, T]``."""
    return x.mean(axis=0, keepdims=True, dtype=np.float32)


def resample(x: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """soxr (very high quality) resampling of ``[C, T]``; returns ``x`` when the rates agree."""
    if rate == new_rate:
        return x
    return np.ascontiguousarray(soxr.resample(x.T, rate, new_rate, quality="VHQ").T, dtype=np.float32)


def trim_silence(x: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``SILENCE_BELOW_PEAK_DB`` under the loudest
    10 ms frame, keeping a 30 ms margin and 5 ms fades; all-silent input gives ``[C, 0]``."""
    frame = max(1, round(_FRAME_SECONDS * rate))
    n = x.shape[1] // frame
    if n == 0:
        return x[:, :0]
    power = (x[:, : n * frame].reshape(x.shape[0], n, frame) ** 2).mean(axis=(0, 2))
    if power.max() <= 1e-12:
        return x[:, :0]
    active = np.flatnonzero(power >= power.max() * 10 ** (-SILENCE_BELOW_PEAK_DB / 10))
    margin = round(_MARGIN_SECONDS * rate)
    start = max(0, active[0] * frame - margin)
    stop = min(x.shape[1], (active[-1] + 1) * frame + margin)
    y = x[:, start:stop].copy()
    fade = min(round(_FADE_SECONDS * rate), y.shape[1] // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        y[:, :fade] *= ramp
        y[:, -fade:] *= ramp[::-1]
    return y


def loudness_lufs(x: np.ndarray, rate: int) -> float:
    """Integrated loudness (BS.1770); for clips under 400 ms, the K-free mean-square level."""
    meter = LoudnessMeter(rate, x.shape[0])
    meter.update(x)
    value = meter.integrated()
    if np.isfinite(value):
        return value
    mean_square = float((x.astype(np.float64) ** 2).mean()) if x.size else 0.0
    return -0.691 + 10 * np.log10(mean_square * x.shape[0]) if mean_square > 0 else float("-inf")


def normalize_loudness(x: np.ndarray, rate: int, target_lufs: float = TARGET_LUFS,
                       ceiling_dbfs: float = PEAK_CEILING_DBFS) -> np.ndarray:
    """Scale to ``target_lufs``, or less so that the sample peak stays at ``ceiling_dbfs``."""
    level = loudness_lufs(x, rate)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if not np.isfinite(level) or peak == 0.0:
        return x
    gain_db = min(target_lufs - level, ceiling_dbfs - 20 * np.log10(peak))
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def plan_packs(lengths: list[int], rate: int, rng: np.random.Generator,
               seconds: tuple[float, float] = (3.0, 6.0),
               gap_seconds: tuple[float, float] = (0.1, 0.35)) -> list[list[int]]:
    """Group consecutive clips (given by their lengths in samples) into packs.

    Each pack aims at a length drawn from ``seconds`` (counting the longest gap between
    clips) and closes only once it holds ``seconds[0]``; a remainder shorter than
    ``seconds[0]`` joins the previous pack. Returns lists of clip indices.
    """
    packs: list[list[int]] = []
    current: list[int] = []
    length = 0
    target = rng.uniform(*seconds) * rate
    for index, n in enumerate(lengths):
        if current and length + n > target and length >= seconds[0] * rate:
            packs.append(current)
            current, length, target = [], 0, rng.uniform(*seconds) * rate
        current.append(index)
        length += n + round(gap_seconds[1] * rate)
    if current:
        if packs and sum(lengths[i] for i in current) < seconds[0] * rate:
            packs[-1].extend(current)
        else:
            packs.append(current)
    return packs


def join_clips(clips: list[np.ndarray], rate: int, rng: np.random.Generator,
               gap_seconds: tuple[float, float] = (0.1, 0.35)) -> np.ndarray:
    """Concatenate ``[C, n]`` clips with silent gaps drawn from ``gap_seconds``."""
    parts = [clips[0]]
    for clip in clips[1:]:
        parts.append(np.zeros((clip.shape[0], round(rng.uniform(*gap_seconds) * rate)), np.float32))
        parts.append(clip)
    return np.concatenate(parts, axis=1)


def measure_bandwidth(x: np.ndarray, rate: int) -> float:
    """Effective bandwidth in Hz (``audio_upscaler.analysis.estimate_cutoff``)."""
    from ...analysis import estimate_cutoff

    return float(estimate_cutoff(x, rate).hz)


def write_flac(path: Path, x: np.ndarray, rate: int) -> None:
    """Write ``x [channels, time]`` as 24-bit FLAC atomically (through :func:`audio_upscaler.io.write_audio`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_audio(path, Audio(x, rate), output_format_for(path, bit_depth=24), overwrite=True)


def finish(x: np.ndarray, rate: int, root: Path, relative: str, trim: bool = True) -> Written | None:
    """Trim, loudness-normalize, write ``root/relative`` as 24-bit FLAC and measure it.

    Returns ``None`` (nothing written) when the audio is silent or shorter than 0.5 s.
    """
    if trim:
        x = trim_silence(x, rate)
    if x.shape[1] < rate // 2:
        return None
    x = normalize_loudness(x, rate)
    write_flac(root / relative, x, rate)
    return Written(relative, round(x.shape[1] / rate, 3), rate, x.shape[0],
                   round(measure_bandwidth(x, rate), 1))
