"""``Upscaler``: the one object that owns the flow load -> analyze -> resample -> extend -> merge
-> finish -> save. The CLI, web UI, batch jobs and streaming all call it.

Everything runs on a stream of blocks ``[channels, n]``: the file is decoded block by block,
resampled with a streaming soxr resampler, extended chunk by chunk (with context and
cross-fade, see :mod:`audio_upscaler.chunking`), finished (gain, limiter, dither) and encoded
block by block, so memory does not grow with the length of the file.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .audio import Audio
from .bandwidth import FULL_BAND_FRACTION
from .chunking import process_chunked
from .consistency import SourceCodec, codec_consistent, parse_source_codec, source_codec_of
from .errors import UpscalerError
from .extenders import BACKENDS, BandExtender, KeptLowBand, choose_extender, get_extender, with_air
from .fingerprint import SPARSE_MAX_HZ as MIN_EXTEND_HZ, reaches_band_edge
from .io_formats import RESTORABLE_CODECS, sf_name
from .typecheck import finite_number

#: Content above this frequency is not invented unless ``air=True`` (Hz).
AIR_LIMIT_HZ = 24_000.0
#: Below this input rate even a file whose content reaches its Nyquist frequency is extended.
FULL_BAND_MIN_RATE = 44_100
#: ``auto`` extends no content that stops below ``MIN_EXTEND_HZ`` (the models are trained on
#: cutoffs from 2 kHz up, and such content is a tone or a sparse signal, see
#: :data:`audio_upscaler.fingerprint.SPARSE_MAX_HZ`); ``--cutoff`` may go down to this (Hz).
MIN_USER_CUTOFF_HZ = 1_000.0
#: ``normalize_dbfs`` leaves an output whose peak is under this alone (dBFS; a 16-bit LSB is -90).
SILENCE_PEAK_DBFS = -100.0
#: Where the (resampled) input is exactly zero, an extender's output under this level is its
#: residue (the default model leaves about -138 dBFS on zeros, a band merge's rounding -180 dBFS),
#: not content: it is set to zero, so digital silence stays digital silence through dither (dBFS).
RESIDUE_DBFS = -120.0
STEREO_MODES = ("independent", "mid-side")
MIN_RATE, MAX_RATE = 8_000, 768_000
BLOCK_FRAMES = 65_536
#: Limiter ceilings: lossless output may peak just under full scale; lossy encoders overshoot.
LOSSLESS_CEILING_DBFS = -0.1
LOSSY_CEILING_DBFS = -1.0
#: A restoration model keeps the decoded band below the cutoff (and restores only above it) for a
#: source of one of these codecs coded at this bitrate (kbps) or more: MP3 at 256 and 320 kbps
#: leaves 0.1-3 % of the bins under its cutoff as holes and the model's fills between them were
#: mostly false (10 music clips of the two validation sets: decoded-MP3 LSD ratio 0.668 -> 0.648
#: and 0.660 -> 0.639, SI-SDR -0.61 -> -0.34 and -1.10 -> -0.71 dB with the band kept; at 320
#: kbps one chorale lost 3.4 dB SI-SDR, 3.2 of them under the cutoff). AAC at 256 / 320 and Opus at
#: 256 kbps: kept was as good or slightly better on both measures (music LSD ratio 1.043 -> 1.033,
#: 0.757 -> 0.744). Not Vorbis: it leaves holes at 256 kbps too, and keeping cost music LSD
#: (0.699x -> 0.845x).
KEEP_DECODED_KBPS = {"mp3": 256, "aac": 256, "opus": 256}

ProgressFn = Callable[[int, int], None]


class Plan(NamedTuple):
    """What :meth:`Upscaler._plan` chose: the extender, why, the cutoff (Hz) the model is
    conditioned on and the frequency (Hz) below which the input is kept as it is: the cutoff, or a
    low-rate input's Nyquist frequency when its content reaches it."""

    model: str
    reason: str
    cutoff_hz: float
    keep_below_hz: float


@dataclass
class UpscaleResult:
    """What one upscale did (rates in Hz, times in seconds)."""

    input_rate: int
    output_rate: int
    channels: int
    duration_s: float
    cutoff_hz: float
    model: str
    model_reason: str
    elapsed_s: float
    output_path: str | None = None
    report: object | None = None
    clipped_samples: int = 0  # written beyond full scale and clipped (possible only without the limiter)
    normalize_skipped: bool = False  # normalization was asked for, but the output peak is under SILENCE_PEAK_DBFS
    keep_below_hz: float | None = None  # the input is kept as it is below this (Hz); None: below the cutoff

    @property
    def content_cutoff_hz(self) -> float:
        """Where the input's content ends (Hz), as analysis measured it."""
        return self.report.cutoff_hz if self.report is not None else self.cutoff_hz

    @property
    def model_cutoff_hz(self) -> float | None:
        """The cutoff (Hz) the model was conditioned on when it differs from where the content
        ends (a codec's wall above a fade, a gentle fade kept, ``--cutoff``), else ``None``."""
        differs = abs(self.cutoff_hz - self.content_cutoff_hz) >= 50 and self.model != "none"
        return self.cutoff_hz if differs else None

    def cutoff_summary(self) -> str:
        """Where the input's content ends and, when it differs, the cutoff the model got:
        ``content fades out above 7.0 kHz`` / ``content stops at 16.3 kHz (model conditioned on 16.5 kHz)``."""
        report = self.report
        fades = report is not None and not (report.steep_cutoff or report.full_band)
        edge = self.keep_below_hz
        if edge is not None and edge > self.cutoff_hz + 50 and self.model != "none":  # kept above the model's cutoff
            text = f"content falls from {self.content_cutoff_hz / 1000:.1f} kHz to its {edge / 1000:.1f} kHz band edge"
        else:
            text = f"content {'fades out above' if fades else 'stops at'} {self.content_cutoff_hz / 1000:.1f} kHz"
        if self.model_cutoff_hz is not None:
            text += f" (model conditioned on {self.model_cutoff_hz / 1000:.1f} kHz)"
        return text

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio processed per second of wall time."""
        return self.duration_s / max(self.elapsed_s, 1e-9)

    def to_dict(self) -> dict:
        return {
            "input_rate": self.input_rate,
            "output_rate": self.output_rate,
            "channels": self.channels,
            "duration_s": round(self.duration_s, 3),
            "cutoff_hz": round(self.cutoff_hz, 1),
            "model": self.model,
            "model_reason": self.model_reason,
            "elapsed_s": round(self.elapsed_s, 3),
            "realtime_factor": round(self.realtime_factor, 2),
            "output_path": self.output_path,
            "clipped_samples": self.clipped_samples,
            "normalize_skipped": self.normalize_skipped,
            "keep_below_hz": None if self.keep_below_hz is None else round(self.keep_below_hz, 1),
        }


class Upscaler:
    """Upscale audio files or in-memory :class:`Audio`.

    Args:
        model: ``auto`` (choose by analysis), ``sbr``, ``none`` or a neural model name.
        target_rate: output sample rate in Hz (any integer rate from 8 kHz to 768 kHz).
        quality: resampler quality, ``vhq|hq|mq|lq|linear``.
        stereo: ``independent`` (each channel alone) or ``mid-side`` (the two channels of a stereo
            input as M/S; input of any other channel count is processed independently).
        normalize_dbfs: peak-normalize the output to this level; ``None`` keeps the input level.
        limiter: run a look-ahead peak limiter so the output never clips.
        remove_dc: high-pass the input at 5 Hz before processing.
        air: allow invented content above 24 kHz when the target rate permits it.
        cutoff_hz: override the measured cutoff of the input (Hz).
        chunk_seconds: length of the chunks the band extender sees.
        codec_check: check a restoration model's fills against the source's codec: the output
            is re-encoded with it and what the codec would have kept is turned down
            (:mod:`audio_upscaler.consistency`; more faithful, about 2x the processing time).
            A lossy file's codec and bitrate are read from it.
        source_codec: the lossy codec and bitrate the input was decoded from (``"mp3:128"`` or a
            :class:`~audio_upscaler.consistency.SourceCodec`), for input that does not say so
            itself (a WAV decoded from an MP3, in-memory audio); implies ``codec_check``.
        seed: seed of the dither noise (the output is reproducible).
        backend: ``torch`` (PyTorch checkpoints) or ``onnxruntime`` (models exported with
            ``audio-upscaler export``; this path never imports torch).
    """

    def __init__(
        self,
        model: str = "auto",
        target_rate: int = 48_000,
        *,
        quality: str = "vhq",
        stereo: str = "independent",
        normalize_dbfs: float | None = None,
        limiter: bool = True,
        remove_dc: bool = False,
        air: bool = False,
        cutoff_hz: float | None = None,
        chunk_seconds: float = 8.0,
        seed: int = 0,
        backend: str = "torch",
        codec_check: bool = False,
        source_codec: str | SourceCodec | None = None,
    ) -> None:
        if not MIN_RATE <= finite_number(target_rate, "target rate") <= MAX_RATE:
            raise UpscalerError(f"target rate {target_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
        if float(target_rate) != int(float(target_rate)):  # 48000.5 was cut to 48000 without a word
            raise UpscalerError(f"target rate must be a whole number of Hz, got {target_rate}")
        normalize_dbfs = None if normalize_dbfs is None else finite_number(normalize_dbfs, "normalize level")
        cutoff_hz = None if cutoff_hz is None else finite_number(cutoff_hz, "cutoff")
        if not finite_number(chunk_seconds, "chunk length") > 0:
            raise UpscalerError(f"chunk length must be above 0 seconds, got {chunk_seconds}")
        if backend not in BACKENDS:
            raise UpscalerError(f"backend must be one of {', '.join(BACKENDS)}")
        if stereo not in STEREO_MODES:
            raise UpscalerError(f"stereo mode must be one of {', '.join(STEREO_MODES)}")
        if normalize_dbfs is not None and not -60.0 <= normalize_dbfs <= 0.0:
            raise UpscalerError("normalize level must be between -60 and 0 dBFS")
        if cutoff_hz is not None and cutoff_hz < MIN_USER_CUTOFF_HZ:
            raise UpscalerError(f"cutoff must be a frequency of at least {MIN_USER_CUTOFF_HZ:.0f} Hz, got {cutoff_hz}")
        from .dsp.resample import QUALITIES

        if quality not in QUALITIES:
            raise UpscalerError(f"resampler quality must be one of {', '.join(QUALITIES)}")
        self.model = model
        self.target_rate = int(target_rate)
        self.quality = quality
        self.stereo = stereo
        self.normalize_dbfs = normalize_dbfs
        self.limiter = limiter
        self.remove_dc = remove_dc
        self.air = air
        self.cutoff_hz = cutoff_hz
        self.chunk_seconds = chunk_seconds
        self.seed = seed
        self.backend = backend
        self.source_codec = (parse_source_codec(source_codec) if isinstance(source_codec, str)
                             else source_codec)
        self.codec_check = bool(codec_check or self.source_codec)
        self._extenders: dict[str, BandExtender | None] = {}
        if model != "auto":
            self._extender(model)  # fail fast on an unknown name

    # ------------------------------------------------------------------ public API

    def upscale(self, audio: Audio) -> Audio:
        """Upscale in memory; returns float32 :class:`Audio` at the target rate."""
        from .analysis import analyze

        self._check_rates(audio.sample_rate)
        if audio.frames == 0:
            raise UpscalerError("the audio contains no samples")
        report = analyze(audio)  # checks the rate and the shape too
        self._output_length(audio.frames, audio.sample_rate, "the audio")
        plan = self._plan(report)
        name = plan.model
        blocks = (audio.samples[:, i : i + BLOCK_FRAMES] for i in range(0, audio.frames, BLOCK_FRAMES))
        kept = self._decoded_band_kept(name, self.source_codec)
        source = None if kept else self._check_source(name, None, audio.sample_rate)
        processed = list(self._process(blocks, audio.sample_rate, audio.channels, plan, source, bool(kept)))
        out = np.concatenate(processed, axis=1) if processed else np.zeros((audio.channels, 0), np.float32)
        gain = self._normalize_gain(float(np.max(np.abs(out), initial=0.0)))
        out = np.concatenate(list(self._finish([out], self.target_rate, audio.channels, gain, LOSSLESS_CEILING_DBFS)), axis=1)
        return Audio(out, self.target_rate, dict(audio.tags), None, "float")

    def upscale_file(
        self,
        input_path: str | os.PathLike,
        output_path: str | os.PathLike,
        *,
        fmt=None,
        overwrite: bool = False,
        progress: ProgressFn | None = None,
        on_plan: Callable[[UpscaleResult], None] | None = None,
    ) -> UpscaleResult:
        """Upscale a file into another file, atomically.

        Args:
            fmt: an :class:`audio_upscaler.io.OutputFormat`; default from the extension.
            progress: called as ``progress(done_frames, total_frames)`` of output.
            on_plan: called once analysis has chosen the model, before processing.
        """
        from . import io
        from .analysis import analyze

        started = time.perf_counter()
        info = io.probe(input_path)
        self._check_rates(info.sample_rate)
        fmt = fmt or io.output_format_for(output_path)
        fmt.validate_rate(self.target_rate)
        fmt.validate_channels(info.channels)  # before any work (with --normalize, the writer opens after a whole pass)
        output_path = io.check_output_path(output_path, input_path, overwrite)

        report = analyze(input_path)
        total = self._output_length(report.frames, info.sample_rate, str(input_path))
        plan = self._plan(report)
        name, reason, cutoff = plan.model, plan.reason, plan.cutoff_hz
        file_source = source_codec_of(report.codec, report.bitrate_kbps, info.sample_rate)
        kept = self._decoded_band_kept(name, self.source_codec or file_source)
        source = None if kept else self._check_source(name, file_source, info.sample_rate)
        if kept:
            reason += (f"; {kept}: the decoded band is kept and only the band above the cutoff restored"
                       + (" (no codec check: nothing under the cutoff is filled)" if self.codec_check else ""))
        elif source is not None:
            reason += f"; fills checked by re-encoding as {source}"
        elif self.codec_check and self._restores(name):
            reason += "; no codec check: the source's codec and bitrate are unknown (give --source-codec)"
        elif self.codec_check and name != "none":
            reason += f"; no codec check: it checks restoration models, and '{name}' keeps the input's band"
        if self.stereo == "mid-side" and info.channels != 2 and name != "none":
            reason += f"; --stereo mid-side needs 2 channels, this input has {info.channels}: each is processed alone"
        result = UpscaleResult(
            info.sample_rate, self.target_rate, info.channels, report.duration, cutoff, name, reason, 0.0,
            str(output_path), report, keep_below_hz=plan.keep_below_hz,
        )
        if on_plan:
            on_plan(result)
        ceiling = LOSSLESS_CEILING_DBFS if fmt.is_lossless else LOSSY_CEILING_DBFS
        with io.open_reader(input_path) as reader:
            processed = self._process(reader.blocks(BLOCK_FRAMES), info.sample_rate, info.channels, plan, source,
                                      bool(kept))
            processed = _report_progress(processed, total, progress)
            if self.normalize_dbfs is None:
                result.clipped_samples = self._write(
                    output_path, fmt, info, self._finish(processed, self.target_rate, info.channels, 1.0, ceiling),
                    overwrite, total)
            else:
                result.clipped_samples, result.normalize_skipped = self._write_normalized(
                    output_path, fmt, info, processed, ceiling, overwrite, total)
        result.elapsed_s = time.perf_counter() - started
        return result

    # ------------------------------------------------------------------ planning

    def _check_rates(self, input_rate: int) -> None:
        check_rates(input_rate, self.target_rate, self.cutoff_hz)

    def _output_length(self, frames: int, input_rate: int, what: str) -> int:
        """Output samples at the target rate of ``frames`` input samples at ``input_rate`` (``what``
        they are, for the error); :class:`UpscalerError` when that is none (a few samples resampled
        down to a lower target rate), rather than an empty file."""
        from .dsp.resample import output_length

        total = output_length(frames, input_rate, self.target_rate)
        if total == 0:
            raise UpscalerError(f"{what} is too short for {self.target_rate} Hz: {frames} samples at {input_rate} Hz "
                                "make no sample at that rate")
        return total

    def _plan(self, report) -> Plan:
        """Choose the model and the cutoffs from the analysis report."""
        cutoff = float(self.cutoff_hz or report.cutoff_hz)
        lossy = bool(getattr(report, "lossy_fingerprint", False))
        # A gentle roll-off with no steep wall above it is where the content fades (a dark
        # recording, a soft filter), not a band limit: everything in it is kept, and the band limit
        # is the input's own Nyquist edge (see the README, "Dark music").
        wall = getattr(report, "codec_wall_hz", None)
        fades = (self.cutoff_hz is None and not report.full_band and not wall
                 and not getattr(report, "steep_cutoff", True))
        if fades:
            cutoff = FULL_BAND_FRACTION * report.sample_rate / 2
        # A file full band for its own rate is still band-limited when that rate is low (8 kHz speech).
        full_band = (report.full_band or fades) and self.cutoff_hz is None and report.sample_rate >= FULL_BAND_MIN_RATE
        # The file's own codec says it is lossy even where its spectrum shows no fingerprint (a
        # 24 kHz MP3 is full band for its rate); a fade with no band limit stays a fade.
        coded = not lossy and not fades and getattr(report, "codec", None) in RESTORABLE_CODECS
        why = f"lossy codec ({report.codec} file)" if coded else "lossy-codec fingerprint found"
        if self.source_codec is not None and not lossy and not fades:  # the user says it was decoded from a lossy file
            coded, why = True, f"decoded from {self.source_codec}, says --source-codec"
        # A low-rate file whose content reaches its own band edge is band-limited by its rate: speech
        # resampled to 8 kHz may fall more than the knee's 6 dB over its top quarter octave, so its
        # cutoff reads 3.4 kHz while its content runs to 4 kHz, and a full-band one reads 3.8 kHz,
        # where its resampler's roll-off starts, while it still has content (phase and all) to the
        # band edge too. All of it is kept: the model is still conditioned on the measured cutoff and
        # only its band above the Nyquist frequency is used (README, "Band-preserving merge").
        at_edge = (self.cutoff_hz is None and not (lossy or coded or fades or wall)
                   and reaches_band_edge(getattr(report, "content_top_hz", 0.0), report.sample_rate))
        name, reason = choose_extender(self.model, full_band, lossy or coded, self.backend, why)
        if at_edge and name != "none":
            reason += "; its content reaches the input's band edge: all of it kept"
        if fades:
            faded = f"a gentle fade from {report.cutoff_hz / 1000:.1f} kHz, not a band limit (dark source or soft filter)"
            reason = (f"{faded}: resampling only; --cutoff sets where to extend from" if name == "none"
                      else f"{reason}; {faded}: kept up to {cutoff / 1000:.1f} kHz")
        if self.model == "auto" and name != "none" and self.cutoff_hz is None and cutoff < MIN_EXTEND_HZ:
            name, reason = "none", (f"content ends under {MIN_EXTEND_HZ / 1000:.0f} kHz, so a tone or a sparse signal rather "
                                    "than a band-limited recording; resampling only; --cutoff sets where to extend from")
        if self.model == "auto" and report.peak_dbfs == -np.inf:
            name, reason = "none", "digital silence: nothing to extend; resampling only"
        limit = self.target_rate / 2 if self.air else min(AIR_LIMIT_HZ, self.target_rate / 2)
        kept_to = report.sample_rate / 2 if at_edge else cutoff
        if name != "none" and kept_to >= 0.98 * limit:
            name, reason = "none", f"content already reaches {kept_to / 1000:.1f} kHz; resampling only"
        if self.cutoff_hz is None and wall and name != "none":
            # The band limit is the steep wall (an encoder's, a resampler's) above where the content
            # itself fades or stops (a dark recording, a soundfont's samples): what lies under it is
            # kept or repaired, not replaced.
            cutoff, reason = wall, f"{reason}; a steep wall lies above where the content ends"
        return Plan(name, reason + downsampling_note(report.sample_rate, self.target_rate), cutoff,
                    kept_to if at_edge else cutoff)

    def _restores(self, name: str) -> bool:
        """Whether model ``name`` restores the whole band (a codec-restoration model)."""
        extender = self._extender(name)
        return extender is not None and not extender.keeps_low_band

    def _decoded_band_kept(self, name: str, source: SourceCodec | None) -> str:
        """Why restoration model ``name`` keeps the decoded band below the cutoff of an input
        decoded from ``source`` (``None``: unknown; ``KEEP_DECODED_KBPS``); ``""`` when it restores
        the whole band (or ``name`` keeps the band anyway)."""
        if not self._restores(name):
            return ""
        if source is not None and source.bitrate_kbps >= KEEP_DECODED_KBPS.get(source.codec, math.inf):
            return f"the source ({source}) leaves no codec holes worth filling"
        return ""

    def _check_source(self, name: str, file_source: SourceCodec | None, input_rate: int) -> SourceCodec | None:
        """The codec a restoration by model ``name`` is checked against: ``source_codec`` if given,
        else what the file says (``file_source``), coded at ``input_rate`` unless it says otherwise;
        ``None`` when no check is asked for, none is known, or ``name`` keeps the low band."""
        source = self.source_codec or file_source
        if not (self.codec_check and source is not None and self._restores(name)):
            return None
        return source if source.sample_rate else replace(source, sample_rate=int(input_rate))

    def _extender(self, name: str) -> BandExtender | None:
        if name not in self._extenders:
            self._extenders[name] = get_extender(name, self.backend)
        return self._extenders[name]

    # ------------------------------------------------------------------ processing

    def _process(
        self, blocks: Iterable[np.ndarray], input_rate: int, channels: int, plan: Plan,
        source: SourceCodec | None = None, keep_low_band: bool = False,
    ) -> Iterator[np.ndarray]:
        """Resample and extend a block stream as ``plan`` says; yields ``[channels, n]`` at the
        target rate (``source``: the codec a restoration is checked against; ``keep_low_band``: a
        restoration model's output is used above the cutoff only, :meth:`_decoded_band_kept`)."""
        resampled = self._resample(blocks, input_rate, channels)
        extender = self._extender(plan.model)
        if keep_low_band and extender is not None and not extender.keeps_low_band:
            extender = KeptLowBand(extender)
        if self.air:
            extender = with_air(extender, self.target_rate)
        if extender is None:
            yield from resampled
            return
        sr = self.target_rate
        window_fn, merge_ctx = self.band_stage(extender, plan.cutoff_hz, channels, source, plan.keep_below_hz)
        context = extender.context_samples(sr) + merge_ctx
        align = extender.alignment(sr)
        hop = -(-max(int(self.chunk_seconds * sr), 4 * context) // align) * align  # round up to the grid
        fade = min(2 * context, int(0.02 * sr))
        yield from process_chunked(window_fn, resampled, channels, hop, context, fade)

    def band_stage(self, extender: BandExtender, cutoff: float, channels: int,
                   source: SourceCodec | None = None,
                   keep_below: float | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
        """The per-window step ``[channels, n] -> [channels, n]`` at the target rate (extend from
        ``cutoff`` Hz, then keep the input below ``keep_below`` Hz, by default the cutoff; a
        restoration is checked against ``source``'s codec) and the context in samples its band
        merges need on each side (on top of ``extender.context_samples``). Shared with
        :mod:`audio_upscaler.streaming`."""
        from .dsp.bands import merge_context

        sr = self.target_rate
        keep_below = cutoff if keep_below is None else keep_below
        air_limit = None if self.air or sr / 2 <= AIR_LIMIT_HZ else AIR_LIMIT_HZ
        context = merge_context(sr, keep_below) + (merge_context(sr, air_limit) if air_limit else 0)
        return self._window_fn(extender, cutoff, keep_below, air_limit, channels, source), context

    def _resample(self, blocks: Iterable[np.ndarray], input_rate: int, channels: int) -> Iterator[np.ndarray]:
        from .dsp.finish import DCBlocker
        from .dsp.resample import StreamResampler

        dc = DCBlocker(input_rate, channels) if self.remove_dc else None
        resampler = StreamResampler(input_rate, self.target_rate, channels, self.quality)
        for block in blocks:
            if dc is not None:
                block = dc.process(block)
            out = resampler.process(block)
            if out.shape[1]:
                yield out
        out = resampler.flush()
        if out.shape[1]:
            yield out

    def _window_fn(self, extender: BandExtender, cutoff: float, keep_below: float, air_limit: float | None,
                   channels: int, source: SourceCodec | None):
        from .dsp.bands import merge_bands

        sr = self.target_rate
        mid_side = self.stereo == "mid-side" and channels == 2

        def process(window: np.ndarray) -> np.ndarray:
            x = _to_mid_side(window) if mid_side else window
            predicted = extender.extend(x, sr, cutoff)
            merged = merge_bands(x, predicted, sr, keep_below) if extender.keeps_low_band else predicted
            if air_limit:
                merged = merge_bands(merged, x, sr, air_limit)
            out = _from_mid_side(merged) if mid_side else merged
            out = codec_consistent(out, window, sr, source) if source is not None else out
            return _silence_kept(out, window)

        return process

    # ------------------------------------------------------------------ finishing and writing

    def _normalize_gain(self, peak: float) -> float:
        """Gain that brings ``peak`` (linear) to ``normalize_dbfs``; 1 when not asked for or when
        the output is silence (a peak under ``SILENCE_PEAK_DBFS``: rounding noise or a model's
        residue, which normalizing would raise by 100 dB or more into audible noise)."""
        if self.normalize_dbfs is None or _too_quiet_to_normalize(peak):
            return 1.0
        from .dsp.finish import peak_normalize_gain

        return peak_normalize_gain(peak, self.normalize_dbfs)

    def _finish(
        self, blocks: Iterable[np.ndarray], sample_rate: int, channels: int, gain: float, ceiling_dbfs: float
    ) -> Iterator[np.ndarray]:
        """Apply gain and the limiter (its delay removed) to a block stream."""
        if gain != 1.0:
            blocks = (b * np.float32(gain) for b in blocks)
        if not self.limiter:
            yield from blocks
            return
        from .dsp.finish import Limiter

        limiter = Limiter(sample_rate, channels, ceiling_dbfs=ceiling_dbfs)
        to_drop = limiter.delay
        for out in _chain_flush(blocks, limiter):
            if to_drop:
                cut = min(to_drop, out.shape[1])
                out, to_drop = out[:, cut:], to_drop - cut
            if out.shape[1]:
                yield out

    def _write(self, path: Path, fmt, info, blocks: Iterable[np.ndarray], overwrite: bool, frames: int | None) -> int:
        """Encode ``blocks`` to ``path``; ``frames`` is the expected length (picks RF64 for long WAV).
        Returns how many samples were clipped at full scale."""
        from . import io
        from .dsp.finish import tpdf_dither

        rng = np.random.default_rng(self.seed)
        dither_bits = fmt.bit_depth if fmt.is_integer_pcm else None  # 16/24-bit integer PCM
        with io.open_writer(path, self.target_rate, info.channels, fmt, tags=info.tags, overwrite=overwrite,
                            frames=frames) as writer:
            for block in blocks:
                writer.write(tpdf_dither(block, dither_bits, rng) if dither_bits else block)
        return writer.clipped_samples

    def _write_normalized(self, path: Path, fmt, info, processed: Iterable[np.ndarray], ceiling: float, overwrite: bool,
                          frames: int | None) -> tuple[int, bool]:
        """Two passes with flat memory: float temp file next to the output, then scale and encode.
        ``frames``: the expected length (the first pass then gives the exact one). Returns the
        number of clipped samples (:meth:`_write`) and whether normalization was skipped (the
        output is silence, :meth:`_normalize_gain`)."""
        import soundfile as sf

        fd, tmp = tempfile.mkstemp(prefix=".upscale-", suffix=".rf64", dir=Path(path).parent)
        os.close(fd)
        try:
            peak = 0.0
            with sf.SoundFile(sf_name(tmp), "w", self.target_rate, info.channels, subtype="FLOAT", format="RF64") as f:
                for block in processed:
                    peak = max(peak, float(np.max(np.abs(block), initial=0.0)))
                    f.write(block.T)
            gain = self._normalize_gain(peak)
            with sf.SoundFile(sf_name(tmp)) as f:
                frames = f.frames
                blocks = (b.T.astype(np.float32) for b in f.blocks(BLOCK_FRAMES, always_2d=True))
                clipped = self._write(path, fmt, info,
                                      self._finish(blocks, self.target_rate, info.channels, gain, ceiling),
                                      overwrite, frames)
            return clipped, _too_quiet_to_normalize(peak)
        except OSError as exc:
            raise UpscalerError(f"cannot write temporary file next to {path}: {exc.strerror or exc}") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)


def _too_quiet_to_normalize(peak: float) -> bool:
    """Whether a linear output ``peak`` lies under ``SILENCE_PEAK_DBFS`` (normalizing leaves it alone)."""
    return peak <= 10 ** (SILENCE_PEAK_DBFS / 20)


def _chain_flush(blocks: Iterable[np.ndarray], stage) -> Iterator[np.ndarray]:
    """Run a stateful ``process``/``flush`` stage over a block stream."""
    for block in blocks:
        yield stage.process(block)
    yield stage.flush()


def check_rates(input_rate: int, target_rate: int, cutoff_hz: float | None) -> None:
    """:class:`UpscalerError` unless a cutoff given by the user (Hz) lies below the input's and the
    target's Nyquist frequencies (offline and streaming alike). A target rate below the input rate
    is allowed: the input is resampled down first (:func:`downsampling_note`)."""
    nyquist = min(input_rate, target_rate) / 2
    if cutoff_hz is not None and cutoff_hz >= nyquist:
        which = "input's" if input_rate <= target_rate else "target rate's"
        raise UpscalerError(f"cutoff {cutoff_hz:.6g} Hz is not below the {which} Nyquist frequency "
                            f"{nyquist:.0f} Hz: nothing above it to extend")


def downsampling_note(input_rate: int, target_rate: int) -> str:
    """``""``, or the plan's note that the input is resampled down to a lower target rate."""
    if target_rate >= input_rate:
        return ""
    return (f"; the target rate {target_rate} Hz is below the input's {input_rate} Hz: "
            f"resampled down, content above {target_rate / 2000:.4g} kHz is dropped")


def _report_progress(blocks: Iterable[np.ndarray], total: int, progress: ProgressFn | None) -> Iterator[np.ndarray]:
    done = 0
    for block in blocks:
        done += block.shape[1]
        if progress:
            progress(min(done, total), total)
        yield block


def _silence_kept(out: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``out`` with exact zeros where ``window`` (the input, same shape) is exactly zero and ``out``
    holds only an extender's residue (under ``RESIDUE_DBFS``); pointwise, so chunks and streams
    get the same samples. The resampler keeps digital silence exact, so this only ever acts in a
    dead channel or a silent stretch (a content's extension fading into it stays until it is that low)."""
    residue = (window == 0) & (np.abs(out) < np.float32(10 ** (RESIDUE_DBFS / 20)))
    return np.where(residue, np.float32(0), out).astype(np.float32, copy=False) if residue.any() else out


def _to_mid_side(x: np.ndarray) -> np.ndarray:
    """``[2, T]`` left/right -> mid/side."""
    return np.stack([(x[0] + x[1]) * 0.5, (x[0] - x[1]) * 0.5])


def _from_mid_side(x: np.ndarray) -> np.ndarray:
    """``[2, T]`` mid/side -> left/right."""
    return np.stack([x[0] + x[1], x[0] - x[1]])
