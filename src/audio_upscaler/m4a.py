"""MP4 audio (``.m4a``) output through PyAV/FFmpeg: AAC (lossy) or ALAC (Apple Lossless).

libsndfile, which writes every other output format, has no MP4 muxer, so :class:`M4AEncoder`
encodes with FFmpeg's native ``aac`` or ``alac`` encoder into the ``ipod`` (M4A) muxer. Frames
carry sample-exact timestamps, so the AAC encoder's priming samples are recorded in the file's
edit list and a player (or this package's reader) starts at the first real sample.

Sample rates: AAC :data:`AAC_RATES` (at most 96 kHz); ALAC any rate the package writes. Channel
counts: ALAC 1-6 (mono to 5.1: PyAV 18 mishandles planar frames of 8 channels, and neither FFmpeg
encoder takes a 7-channel layout); AAC 1-5, because it codes the 4th of 6 channels as 5.1's LFE
channel, keeping only its lowest ~120 Hz (measured: a 550 Hz tone there decoded to nothing),
which would silently ruin 6 channels that are not 5.1.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
#: FFmpeg channel layouts by channel count (see the module docstring for why no more than 6).
LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1"}
MAX_CHANNELS = 6
AAC_MAX_CHANNELS = 5
#: Tag names of :mod:`audio_upscaler.io_formats` -> FFmpeg's MP4 metadata keys (``license`` has none).
TAG_NAMES = {"title": "title", "artist": "artist", "album": "album", "date": "date", "genre": "genre",
             "tracknumber": "track", "comment": "comment", "copyright": "copyright"}
#: numpy sample type -> FFmpeg planar sample format (int32 carries 24-bit samples in its top bits,
#: which FFmpeg's ALAC encoder stores as 24-bit).
SAMPLE_FORMATS = {np.dtype(np.int16): "s16p", np.dtype(np.int32): "s32p", np.dtype(np.float32): "fltp"}


class M4AEncoder:
    """Streams ``[channels, n]`` blocks into the M4A file ``path`` (created or truncated).

    Args:
        path: the file to write (any name the file system takes: it is opened by Python).
        sample_rate: Hz.
        channels: 1-6.
        bit_depth: 16 or 24 for ALAC; ``None`` for AAC.
        bitrate_kbps: AAC's total bitrate, kbit/s (ignored for ALAC).
        tags: ``{name: text}`` with the package's tag names (:data:`TAG_NAMES`; others are skipped).

    FFmpeg errors come out as ``OSError``.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int, bit_depth: int | None,
                 bitrate_kbps: int | None, tags: dict | None = None) -> None:
        import av

        self._av, self._rate, self._layout = av, int(sample_rate), LAYOUTS[int(channels)]
        self._format = "fltp" if bit_depth is None else {16: "s16p", 24: "s32p"}[bit_depth]
        self._written = 0
        self._file = open(path, "wb")  # noqa: SIM115 - owned until close() / abort()
        try:
            # the edit list counts in the movie time scale (default 1000 per second): at the sample
            # rate it holds the exact length, not the length rounded to a millisecond
            self._container = av.open(self._file, "w", format="ipod", options={"movie_timescale": str(self._rate)})
            self._stream = self._container.add_stream("aac" if bit_depth is None else "alac", rate=self._rate)
            self._stream.layout, self._stream.format = self._layout, self._format
            if bit_depth is None:
                self._stream.bit_rate = int(bitrate_kbps) * 1000
            for name, value in (tags or {}).items():
                if name in TAG_NAMES:
                    self._container.metadata[TAG_NAMES[name]] = str(value)
        except av.error.FFmpegError as exc:
            self.abort()
            raise OSError(str(exc)) from exc
        except BaseException:
            self.abort()
            raise

    def write(self, samples: np.ndarray) -> None:
        """Encode ``samples [channels, n]``: float32 within +-1.0 for AAC; int16 (16-bit) or int32
        with the 24-bit sample in its top bits (24-bit) for ALAC
        (:func:`audio_upscaler.io_formats.encode_samples` gives each)."""
        if SAMPLE_FORMATS.get(samples.dtype) != self._format:
            raise ValueError(f"expected {self._format} samples, got {samples.dtype}")
        if not samples.shape[1]:
            return
        frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=self._format, layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts, frame.time_base = self._written, Fraction(1, self._rate)
        self._written += samples.shape[1]
        self._mux(frame)

    def close(self) -> None:
        """Flush the encoder, write the MP4 index and close the file."""
        try:
            self._mux(None)
            self._container.close()
        finally:
            self._file.close()

    def abort(self) -> None:
        """Close without finishing the file (the caller deletes it). Safe to call more than once."""
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - a half-written container may fail to close; it is discarded
                pass
        self._file.close()

    def _mux(self, frame) -> None:
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except self._av.error.FFmpegError as exc:
            raise OSError(getattr(exc, "errno", None), str(exc)) from exc
