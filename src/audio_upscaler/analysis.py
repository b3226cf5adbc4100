"""Measure audio: format, levels, loudness, clipping, DC offset and effective bandwidth.

``analyze(path_or_audio)`` streams the input block by block through a
:class:`StreamingAnalyzer`, whose memory does not grow with the length of the input, and
returns a :class:`Report`.  The parts live in their own modules: :mod:`.levels` (peak, true
peak, RMS, DC, clipping), :mod:`.loudness` (BS.1770-4), :mod:`.bandwidth` (the cutoff) and
:mod:`.fingerprint` (codec guess and verdict).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from .audio import Audio
from .bandwidth import CutoffEstimate, SpectrumAccumulator, codec_wall, cutoff_from_power, estimate_cutoff
from .errors import UpscalerError
from .fingerprint import HoleCounter, classify, codec_holes, source_rate
from .io_formats import MAX_CHANNELS, MAX_SAMPLE_VALUE, check_rate
from .levels import CLIP_LEVEL, LevelMeter, TruePeakMeter, to_db
from .loudness import LoudnessMeter

__all__ = ["CutoffEstimate", "Report", "StreamingAnalyzer", "analyze", "estimate_cutoff"]

#: Shorter input has too few samples for a spectrum that says anything about its bandwidth.
MIN_MEASURE_SECONDS = 0.005
BLOCK_FRAMES = 1 << 16


#: A codec's wall counts (``Report.codec_wall_hz``) from this ratio above the measured cutoff. On the
#: corpus's validation music (MP3 64/128 kbps), conditioning `restore` on walls 5-6x above the
#: cutoff (dark pieces read as cut at 3-7 kHz) took LSD from 1.9-2.4 to 0.87-1.08 (the decoded MP3:
#: 0.89-1.47); on walls 1.1-1.25x above it, mostly from 0.56-0.84 to 1.00-1.28: the cutoff measured
#: there is the codec's edge, and the model does better conditioned on it.
CODEC_WALL_MIN_RATIO = 2.0
#: Under a *gentle* roll-off's cutoff (the 20 dB point) a codec's wall counts from this ratio of it
#: up: an encoder's low-pass with a wide transition (LAME at 64 kbps) reads as gentle with its wall
#: at the cutoff, and a dark piece fades far below the wall. On 11 corpus music clips as MP3s whose
#: cutoff reads gentle and which have a wall 1.06-2x above it, `restore` conditioned on the wall
#: beat it conditioned on the cutoff on 10 (LSD 0.83-1.30 against 0.86-2.11; the decoded MP3s
#: 0.53-1.67).
GENTLE_WALL_MIN_RATIO = 0.9
#: Above a steep cutoff with no codec's holes, a resampler's wall is looked for from this ratio of
#: it up (see :func:`audio_upscaler.fingerprint.classify`, ``resampler_wall_hz``), for sources up to
#: ``RESAMPLER_WALL_MAX_SOURCE`` Hz: higher up, a steep edge under a resampler's wall is usually an
#: encoder's low-pass in a file resampled after coding (AAC at 192 kbps cuts at 19-20 kHz, under the
#: wall of a 44.1 kHz file resampled to 48 kHz).
RESAMPLER_WALL_MIN_RATIO = 1.02
RESAMPLER_WALL_MAX_SOURCE = 24_000


@dataclass
class Report:
    """What :func:`analyze` found.  Levels are in dB (``-inf`` for silence), frequencies in Hz.

    Attributes:
        sample_rate, channels, frames: format of the input; ``duration`` in seconds.
        bit_depth, codec: of the source file when known (``None`` otherwise); ``bitrate_kbps``:
            a lossy file's mean bitrate as its container records it.
        peak_dbfs: highest sample magnitude; ``true_peak_dbtp``: highest 4x-oversampled one.
        rms_dbfs: RMS over all channels (a full-scale sine is -3.01 dBFS).
        loudness_lufs: integrated loudness, ITU-R BS.1770-4 (``-inf`` if nothing passes the gates).
        clipped_samples, clip_runs: samples in flat runs of 2+ at ``|x| >= 0.999``, and those runs.
        dc_offset: mean of each channel (fraction of full scale).
        cutoff_hz, channel_cutoffs_hz, full_band, steep_cutoff: effective bandwidth
            (see :mod:`audio_upscaler.bandwidth`).
        spectral_holes: share of short-frame bins just below the cutoff that are holes.
        hole_persistence: share of those holes that are holes in the next frame too (a codec's
            last; the gaps between partials of lossless tonal content often flicker).
        hole_run_bins: mean length (bins) of their runs of adjacent bins (a codec zeroes bands
            several bins wide; a gap between partials is one bin). See :func:`fingerprint.codec_holes`.
        lossy_fingerprint: a codec's steep wall and/or spectral holes were found.
        codec_guess: ``None``, ``"opus"``, ``"mp3/aac"``, ``"telephone band"`` or
            ``"resampled from N Hz"``; ``verdict``: one sentence.
        codec_wall_hz: a steep wall (an encoder's or a resampler's) above the cutoff
            (:func:`audio_upscaler.bandwidth.codec_wall`): from 0.9x a gentle cutoff up, with a
            lossy fingerprint at least an octave above a steep one, or without one a resampler's
            wall just above a steep one (``RESAMPLER_WALL_MIN_RATIO``). The cutoff is then where the
            content itself fades or stops (a dark recording, a soundfont's samples) and the wall is
            the band limit; else ``None``.
        content_top_hz: where the content has fallen 20 dB under its trend (``bandwidth``'s
            ``top_hz``): the top of a steep wall, at or above ``cutoff_hz``.
    """

    sample_rate: int
    channels: int
    frames: int
    duration: float
    bit_depth: int | None
    codec: str | None
    peak_dbfs: float
    true_peak_dbtp: float
    rms_dbfs: float
    loudness_lufs: float
    clipped_samples: int
    clip_runs: int
    dc_offset: list[float]
    cutoff_hz: float
    channel_cutoffs_hz: list[float]
    full_band: bool
    steep_cutoff: bool
    spectral_holes: float
    lossy_fingerprint: bool
    codec_guess: str | None
    verdict: str
    codec_wall_hz: float | None = None
    hole_persistence: float = 0.0
    hole_run_bins: float = 0.0
    bitrate_kbps: int | None = None
    content_top_hz: float = 0.0

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict; non-finite numbers (silence) become ``None``."""
        return {key: _json_value(value) for key, value in asdict(self).items()}

    def summary_lines(self) -> list[str]:
        """A short human-readable description, one item per line."""
        depth = f"{self.bit_depth}-bit " if self.bit_depth else ""
        minutes, seconds = divmod(self.duration, 60)
        channels = ", ".join(f"{hz / 1000:.1f}" for hz in self.channel_cutoffs_hz)
        clipping = (
            f"{self.clipped_samples} samples in {self.clip_runs} runs at |x| >= {CLIP_LEVEL}"
            if self.clipped_samples else "none"
        )
        return [
            f"format     {self.sample_rate} Hz, {self.channels} ch, {depth}{self.codec or 'unknown codec'}"
            + (f" {self.bitrate_kbps} kbps" if self.bitrate_kbps else "") + ", "
            f"{int(minutes)}:{seconds:05.2f}",
            f"levels     peak {self.peak_dbfs:.2f} dBFS, true peak {self.true_peak_dbtp:+.2f} dBTP, "
            f"RMS {self.rms_dbfs:.2f} dBFS",
            f"loudness   {self.loudness_lufs:.1f} LUFS (integrated)",
            f"clipping   {clipping}",
            "DC offset  " + ", ".join(f"{v:+.5f}" for v in self.dc_offset),
            ("bandwidth  none (digital silence)" if self.peak_dbfs == -math.inf else
             f"bandwidth  {self.cutoff_hz / 1000:.1f} kHz (channels: {channels} kHz)")
            + (", steep wall" if self.steep_cutoff else "")
            + (f", codec wall at {self.codec_wall_hz / 1000:.1f} kHz" if self.codec_wall_hz else "")
            + (f", spectral holes {100 * self.spectral_holes:.1f} % ({100 * self.hole_persistence:.0f} % lasting"
               f" into the next frame, {self.hole_run_bins:.1f} bins wide)" if not self.full_band else ""),
            f"verdict    {self.verdict}",
        ]


def _json_value(value):
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


class StreamingAnalyzer:
    """Accumulates every measurement over blocks ``[channels, n]`` (float, full scale 1.0).

    Memory stays flat: a few frames of buffers and fixed-size spectra/histograms.
    Call :meth:`update` for each block, then :meth:`report` once at the end.
    """

    def __init__(self, sample_rate: int, channels: int):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._levels = LevelMeter(self.channels)
        self._true_peak = TruePeakMeter(self.sample_rate, self.channels)
        self._loudness = LoudnessMeter(self.sample_rate, self.channels)
        self._spectrum = SpectrumAccumulator(self.sample_rate, self.channels)
        self._holes = HoleCounter(self.sample_rate)
        self._report: Report | None = None

    def update(self, block: np.ndarray) -> None:
        """Add samples ``[channels, n]``."""
        if self._report is not None:
            raise RuntimeError("StreamingAnalyzer.update() called after report()")
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a block [{self.channels}, n], got shape {block.shape}")
        if block.shape[1] == 0:
            return
        self._levels.update(block)
        self._true_peak.update(block)
        self._loudness.update(block)
        self._spectrum.update(block)
        self._holes.update(block.mean(axis=0))

    def report(self, bit_depth: int | None = None, codec: str | None = None, **_info) -> Report:
        """The finished :class:`Report`.  Other keyword arguments (e.g. the remaining fields
        of an ``AudioInfo``) are accepted and ignored.  Later calls return the same report."""
        if self._report is None:
            self._report = self._build(bit_depth, codec)
        return self._report

    def _build(self, bit_depth: int | None, codec: str | None) -> Report:
        levels = self._levels
        power = self._spectrum.power()
        cutoff = cutoff_from_power(power, self.sample_rate)
        too_short = 0 < levels.frames < MIN_MEASURE_SECONDS * self.sample_rate
        if too_short:  # a few samples' spectrum says nothing about a band limit
            nyquist = self.sample_rate / 2
            cutoff = CutoffEstimate(nyquist, [nyquist] * self.channels, True, False)
        holes = 0.0 if cutoff.full_band else self._holes.fraction_below(cutoff.hz)
        persistence = 0.0 if cutoff.full_band else self._holes.persistence_below(cutoff.hz)
        run_bins = 0.0 if cutoff.full_band else self._holes.run_bins_below(cutoff.hz)
        # codec_wall gives the highest wall above where it starts, so one search from just above a
        # steep cutoff serves both uses: a codec's wall counts from an octave up, a resampler's
        # from just above it.
        start = RESAMPLER_WALL_MIN_RATIO if cutoff.steep else GENTLE_WALL_MIN_RATIO
        above = None if cutoff.full_band else codec_wall(power, self.sample_rate, start * cutoff.hz)
        wall = above if above is not None and (not cutoff.steep or above > CODEC_WALL_MIN_RATIO * cutoff.hz) else None
        resampler_wall = None
        if above is not None and cutoff.steep and not codec_holes(holes, persistence, run_bins):
            source = source_rate(above, self.sample_rate)
            resampler_wall = above if source and source <= RESAMPLER_WALL_MAX_SOURCE else None
        guess, lossy, verdict = classify(cutoff, self.sample_rate, holes, wall, persistence, run_bins, resampler_wall)
        if levels.peak == 0:
            verdict = "silent: no content to analyse"
        elif too_short:
            verdict = (f"too short to measure ({levels.frames} samples, under {MIN_MEASURE_SECONDS * 1000:g} ms): "
                       "taken as full band")
        return Report(
            sample_rate=self.sample_rate, channels=self.channels, frames=levels.frames,
            duration=levels.frames / self.sample_rate, bit_depth=bit_depth, codec=codec,
            peak_dbfs=to_db(levels.peak), true_peak_dbtp=to_db(self._true_peak.finish()),
            rms_dbfs=to_db(levels.rms), loudness_lufs=self._loudness.integrated(),
            clipped_samples=levels.clipped_samples, clip_runs=levels.clip_runs, dc_offset=levels.dc_offset,
            cutoff_hz=cutoff.hz, channel_cutoffs_hz=cutoff.per_channel_hz, full_band=cutoff.full_band,
            steep_cutoff=cutoff.steep, spectral_holes=holes, lossy_fingerprint=lossy, codec_guess=guess,
            verdict=verdict, codec_wall_hz=wall if lossy or not cutoff.steep else resampler_wall, hole_persistence=persistence,
            hole_run_bins=run_bins, content_top_hz=cutoff.top_hz,
        )


def analyze(source: str | os.PathLike | Audio, block_frames: int = BLOCK_FRAMES) -> Report:
    """Analyse a file (streamed in blocks of ``block_frames``) or an in-memory :class:`Audio`.

    Raises :class:`audio_upscaler.errors.UpscalerError` for files that cannot be read.
    """
    if isinstance(source, Audio):  # files are checked when read
        check_rate(source.sample_rate)
        if not 1 <= source.channels <= MAX_CHANNELS:  # a [time, channels] array reads as thousands of channels
            raise UpscalerError(f"{source.channels} channels are not supported (at most {MAX_CHANNELS}); samples are "
                                f"[channels, time], got shape {source.samples.shape}")
        if not (np.abs(source.samples) <= MAX_SAMPLE_VALUE).all():
            raise UpscalerError(f"the audio contains NaN, infinite or absurd sample values (beyond +-{MAX_SAMPLE_VALUE:g})")
        analyzer = StreamingAnalyzer(source.sample_rate, source.channels)
        for start in range(0, source.frames, block_frames):
            analyzer.update(source.samples[:, start : start + block_frames])
        return analyzer.report(bit_depth=source.bit_depth, codec=source.codec)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"analyze() takes a path or an Audio, not {type(source).__name__}")
    from .io import open_reader  # io pulls in PyAV: load it only for files
    from .io_formats import RESTORABLE_CODECS, lossy_bitrate_kbps

    with open_reader(source) as reader:
        info = reader.info
        analyzer = StreamingAnalyzer(info.sample_rate, info.channels)
        for block in reader.blocks(block_frames):
            analyzer.update(block)
    report = analyzer.report(bit_depth=info.bit_depth, codec=info.codec)
    if info.codec in RESTORABLE_CODECS:
        report.bitrate_kbps = lossy_bitrate_kbps(source)
    return report
