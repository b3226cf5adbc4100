"""Read any audio file, write WAV/FLAC/AIFF/MP3/OGG/Opus, atomically.

Reading goes through libsndfile (``soundfile``: WAV, FLAC, AIFF, OGG Vorbis/Opus, MP3) and falls
back to FFmpeg (PyAV: AAC/M4A, ALAC, WMA, audio inside MP4/MKV/WebM/MOV ...) when libsndfile
cannot open the file.  Both are decoded incrementally, so :class:`AudioReader` keeps only about
one block in memory whatever the file length.  Samples come out as float32 ``[channels, time]``
at nominal full scale +-1.0.

Writing goes to a hidden temporary file in the destination folder that is renamed over the
output only when everything was written (:class:`AudioWriter`), so a failure never leaves a
partial output file.  Every problem a user can cause raises a one-line
:class:`~audio_upscaler.errors.UpscalerError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import Audio
from . import io_formats
from .errors import UpscalerError
from .m4a import M4AEncoder
from .textio import fsync_path
from .io_formats import (
    CHUNK_FRAMES, MAX_CHANNELS, MAX_RATE, MAX_SAMPLE_VALUE, MIN_RATE, AudioInfo, OutputFormat, PyAVSource,
    SoundfileSource, encode_samples, id3v2_tag, normalize_tags, open_source, output_format_for, sf_name, write_tags,
)

__all__ = [
    "AudioInfo", "AudioReader", "AudioWriter", "OutputFormat", "check_output_path", "open_reader",
    "open_writer", "output_format_for", "probe", "read_audio", "write_audio",
]

_LOSSY_SLACK = 4096  # frames a lossy stream may fall short of its header's (estimated) length


# ---- reading ----------------------------------------------------------------------------------

class AudioReader:
    """Decodes a file block by block; create it with :func:`open_reader`.

    ``read(frames)`` returns float32 ``[channels, n]`` with ``n == frames`` except at the end of
    the file (``n == 0`` at EOF).  NaN/Inf samples and files shorter than their header raise
    :class:`UpscalerError` when the reader gets there.
    """

    def __init__(self, source: SoundfileSource | PyAVSource) -> None:
        self._source = source
        self.info: AudioInfo = source.info
        self._chunks = source.chunks()
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._decoded = 0
        self._eof = False
        while self._decoded == 0 and self._pull():  # proves the file decodes and holds samples
            pass
        if self._decoded == 0:
            raise UpscalerError(f"{self.info.path}: contains no audio samples")

    def read(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames as float32 ``[channels, n]``, ``n < frames`` only at the end."""
        if frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames}")
        while self._buffered < frames and self._pull():
            pass
        if not self._buffer:
            return np.zeros((self.info.channels, 0), np.float32)
        data = np.concatenate(self._buffer, axis=1) if len(self._buffer) > 1 else self._buffer[0]
        rest = data[:, frames:]
        self._buffer = [rest] if rest.shape[1] else []
        self._buffered = rest.shape[1]
        return np.ascontiguousarray(data[:, :frames])

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Yield float32 ``[channels, frames]`` blocks (the last one may be shorter) until EOF."""
        while (block := self.read(frames)).shape[1]:
            yield block

    def _pull(self) -> bool:
        """Decode one more chunk into the buffer; ``False`` at EOF."""
        if self._eof:
            return False
        path = self.info.path
        try:
            chunk = next(self._chunks, None)
        except self._source.errors as exc:
            raise UpscalerError(f"{path}: cannot decode, the file is corrupt or truncated ({exc})") from exc
        if chunk is None:
            self._eof = True
            self._check_complete()
            return False
        sane = (np.abs(chunk) <= MAX_SAMPLE_VALUE).all(axis=0)  # False for NaN and Inf too
        if not sane.all():
            at = int(np.argmin(sane))
            seconds = (self._decoded + at) / self.info.sample_rate
            if not np.isfinite(chunk[:, at]).all():
                raise UpscalerError(f"{path}: contains NaN or infinite sample values (at {seconds:.3f} s)")
            raise UpscalerError(
                f"{path}: contains sample values far beyond full scale ({np.abs(chunk[:, at]).max():.3g} "
                f"at {seconds:.3f} s); the file is corrupt"
            )
        if chunk.shape[1]:
            self._buffer.append(chunk)
            self._buffered += chunk.shape[1]
            self._decoded += chunk.shape[1]
        return True

    def _check_complete(self) -> None:
        if problem := self._source.header_problem():  # libsndfile logs some problems only at EOF
            raise UpscalerError(f"{self.info.path}: the file is truncated: {problem}")
        expected = self._source.expected_frames
        if expected is None:
            return
        slack = 0 if self._source.lossless else max(_LOSSY_SLACK, expected // 100)
        if self._decoded + slack < expected:
            raise UpscalerError(
                f"{self.info.path}: the file is truncated: its header promises {expected} frames "
                f"but only {self._decoded} could be decoded"
            )

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_reader(path: str | Path) -> AudioReader:
    """Open ``path`` for streaming; raises :class:`UpscalerError` for anything a user can fix."""
    path = _check_input_path(path)
    source = open_source(path)
    try:
        info = source.info
        if problem := source.header_problem():
            raise UpscalerError(f"{path}: the file is truncated: {problem}")
        if not MIN_RATE <= info.sample_rate <= MAX_RATE:
            raise UpscalerError(
                f"{path}: sample rate {info.sample_rate} Hz is not supported (must be {MIN_RATE}-{MAX_RATE} Hz)"
            )
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise UpscalerError(f"{path}: {info.channels} channels are not supported (at most {MAX_CHANNELS})")
        return AudioReader(source)
    except BaseException:
        source.close()
        raise


def probe(path: str | Path) -> AudioInfo:
    """Format, rate, channels, length, bit depth and tags of ``path`` (decodes one block only)."""
    with open_reader(path) as reader:
        return reader.info


def read_audio(path: str | Path) -> Audio:
    """Decode the whole file into an :class:`Audio` (float32 ``[channels, time]``)."""
    with open_reader(path) as reader:
        blocks = list(reader.blocks(CHUNK_FRAMES))
    info = reader.info
    return Audio(np.concatenate(blocks, axis=1), info.sample_rate, dict(info.tags), info.bit_depth, info.codec)


def _check_input_path(path: str | Path) -> Path:
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UpscalerError(f"{path}: file not found") from None
    except OSError as exc:
        raise UpscalerError(f"{path}: cannot read: {exc.strerror}") from None
    if path.is_dir():
        raise UpscalerError(f"{path}: is a directory, not an audio file")
    if size == 0:
        raise UpscalerError(f"{path}: the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise UpscalerError(f"{path}: cannot read: permission denied")
    return path


# ---- writing ----------------------------------------------------------------------------------

def check_output_path(output: str | Path, input: str | Path | None = None, overwrite: bool = False) -> Path:
    """Return the path to write for ``output`` if it may be written, else raise :class:`UpscalerError`.

    A symlink is followed: the file written is its target (the link stays).  Refuses: a name
    too long for the file system, a directory, an existing device, FIFO or socket, a missing or
    unwritable folder, the input file itself (also through symlinks/hard links), and an
    existing file unless ``overwrite``.
    """
    if not str(output):
        raise UpscalerError("the output file name is empty")
    given = Path(output)
    try:
        _check_name_length(given)
        out = Path(os.path.realpath(given)) if given.is_symlink() else given
        _check_name_length(out)
        folder = out.parent
        if out.is_dir():
            raise UpscalerError(f"{given}: is a directory; give an output file name")
        if out.exists() and not stat.S_ISREG(out.stat().st_mode):
            raise UpscalerError(f"{given}: is not a regular file (a device, FIFO or socket); give an output file name")
        if not folder.is_dir():
            raise UpscalerError(f"{given}: the output folder '{folder}' does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UpscalerError(f"{given}: permission denied: cannot write to the folder '{folder}'")
        if input is not None and _same_file(out, Path(input)):
            raise UpscalerError(f"{given}: the output would overwrite the input file; choose another output name")
        exists = os.path.lexists(given) or os.path.lexists(out)
    except OSError as exc:  # e.g. a path longer than the system allows, a symlink loop
        raise _write_error(given, exc) from None
    if exists and not overwrite:
        raise UpscalerError(f"{given}: exists; pass --overwrite to replace it")
    return out


def _check_name_length(path: Path) -> None:
    size, limit = len(os.fsencode(path.name)), _name_max(path.parent)
    if size > limit:
        raise UpscalerError(f"{path}: the file name is too long ({size} bytes; the file system allows {limit})")


def _name_max(folder: Path) -> int:
    """Longest file name (bytes) the file system of ``folder`` allows (255 where it cannot say)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def temp_stem(path: Path) -> str:
    """The ``NAME`` of the writers' temporary files for ``path`` (``.NAME.<8 hex>.tmp``): its
    file name, shortened so that the whole temporary name fits the file system's limit."""
    room = _name_max(path.parent) - len("..01234567.tmp")
    name = path.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return name


def _temp_name(path: Path) -> Path:
    """A fresh hidden temporary name next to ``path`` (see :func:`temp_stem`)."""
    return path.with_name(f".{temp_stem(path)}.{secrets.token_hex(4)}.tmp")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class AudioWriter:
    """Streams blocks into a hidden temporary file next to ``path``; create with :func:`open_writer`.

    As a context manager it commits (renames the temporary file onto ``path``) on a clean exit
    and deletes the temporary file when an exception escapes.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, fmt: OutputFormat,
                 tags: dict | None = None, overwrite: bool = False, frames: int | None = None) -> None:
        self.path = check_output_path(path, overwrite=overwrite)
        fmt.validate_rate(sample_rate)
        fmt.validate_channels(channels)
        self.fmt, self.sample_rate, self.channels = fmt, int(sample_rate), int(channels)
        self._overwrite = overwrite
        # libsndfile gets the format explicitly, so the temporary name needs no audio extension.
        self._tmp = _temp_name(self.path)
        self._file: sf.SoundFile | M4AEncoder | None = None
        self._id3 = b""  # an ID3v2 tag to put in front of MP3 data
        self._open = True
        #: Samples written beyond full scale and clipped (every format but 32-bit float clips).
        self.clipped_samples = 0
        try:
            os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            tags = normalize_tags(tags or {})
            self._byte_limit, self._bytes = None, 0
            if fmt.container == "m4a":  # FFmpeg's MP4 muxer (libsndfile has none); it writes the tags
                self._file = M4AEncoder(self._tmp, self.sample_rate, self.channels, fmt.bit_depth,
                                        fmt.aac_kbps(self.channels), tags)
            else:
                params = fmt.soundfile_params(self.sample_rate, self.channels, frames)
                self._file = sf.SoundFile(sf_name(self._tmp), "w", self.sample_rate, self.channels, **params)
                # WAV/AIFF headers hold 32-bit sizes: past the limit libsndfile would write a file
                # that reads back cut at 4 GiB, so such a file fails cleanly instead.
                if params["format"] in ("WAV", "AIFF"):
                    self._byte_limit = io_formats.RIFF_DATA_LIMIT
                if fmt.container == "mp3":  # tagged on commit: libsndfile's MP3 tags lose non-Latin-1 text
                    self._id3 = id3v2_tag(tags)
                else:
                    write_tags(self._file, tags)
        except (OSError, sf.SoundFileError) as exc:
            raise self._fail(exc) from exc
        except BaseException:  # interrupted (Ctrl-C, SIGTERM) while opening: no temporary file left
            self.abort()
            raise

    def write(self, block: np.ndarray) -> None:
        """Append float ``[channels, n]`` samples (full scale +-1.0).

        Values are clipped to [-1, 1] unless the output is 32-bit float; integer PCM is rounded
        to the nearest step (add dither beforehand if wanted).
        """
        if not self._open:
            raise ValueError("the writer is already closed")
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] block, got shape {block.shape}")
        if not np.isfinite(block).all():
            raise ValueError("cannot write NaN or infinite samples")
        if self._byte_limit is not None:
            self._bytes += self.fmt.data_bytes(block.shape[1], self.channels)
            if self._bytes > self._byte_limit:
                self.abort()
                raise UpscalerError(
                    f"cannot write {self.path}: the audio is longer than a {self.fmt.container.upper()} file can "
                    "hold (4 GiB); write FLAC, or WAV when the length is known in advance (it becomes RF64)")
        if not self.fmt.is_float:
            self.clipped_samples += int(np.count_nonzero(np.abs(block) > 1.0))
        try:
            samples = encode_samples(block, self.fmt)
            self._file.write(samples if self.fmt.container == "m4a" else np.ascontiguousarray(samples.T))
        except (OSError, sf.SoundFileError) as exc:
            raise self._fail(exc) from exc

    def commit(self) -> Path:
        """Finish the file and move it onto ``path``; returns ``path``."""
        if not self._open:
            raise ValueError("the writer is already closed")
        try:
            self._file.close()
            if self._id3:
                self._prepend(self._id3)
            if not self._overwrite and os.path.lexists(self.path):
                raise FileExistsError(errno.EEXIST, "exists", str(self.path))
            fsync_path(self._tmp)  # the data is on disk before the name points at it
            os.replace(self._tmp, self.path)
        except (OSError, sf.SoundFileError) as exc:
            raise self._fail(exc) from exc
        self._open = False
        return self.path

    def _prepend(self, header: bytes) -> None:
        """Put ``header`` in front of the finished temporary file (through a second one)."""
        tagged = _temp_name(self.path)
        try:
            with open(tagged, "xb") as out, open(self._tmp, "rb") as data:
                out.write(header)
                shutil.copyfileobj(data, out, 1 << 20)
            os.replace(tagged, self._tmp)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tagged)
            raise

    def abort(self) -> None:
        """Discard everything written; leaves no file behind.  Safe to call more than once."""
        self._open = False
        if self._file is not None:
            with contextlib.suppress(OSError, sf.SoundFileError):
                getattr(self._file, "abort", self._file.close)()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def _fail(self, exc: BaseException) -> UpscalerError:
        error = _write_error(self.path, exc)  # before abort(): that frees the space we ran out of
        self.abort()
        return error

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def open_writer(path: str | Path, sample_rate: int, channels: int, fmt: OutputFormat,
                tags: dict | None = None, overwrite: bool = False, frames: int | None = None) -> AudioWriter:
    """Start writing ``path`` atomically; see :class:`AudioWriter`.  ``frames``: the expected
    length, if known (a WAV longer than its 32-bit header allows is then written as RF64)."""
    return AudioWriter(path, sample_rate, channels, fmt, tags, overwrite, frames)


def write_audio(path: str | Path, audio: Audio, fmt: OutputFormat | None = None, overwrite: bool = False) -> Path:
    """Write ``audio`` (with its tags) to ``path``; the format defaults to the extension's."""
    fmt = fmt or output_format_for(path)
    with open_writer(path, audio.sample_rate, audio.channels, fmt, audio.tags, overwrite, audio.frames) as writer:
        for start in range(0, audio.frames, CHUNK_FRAMES):
            writer.write(audio.samples[:, start : start + CHUNK_FRAMES])
    return writer.path


def _write_error(path: Path, exc: BaseException) -> UpscalerError:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or (isinstance(exc, sf.SoundFileError) and _nearly_full(path.parent)):
        return UpscalerError(f"{path}: cannot write: disk full (no space left on device)")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UpscalerError(f"{path}: cannot write: permission denied")
    if code == errno.EEXIST:
        return UpscalerError(f"{path}: exists; pass --overwrite to replace it")
    if code == errno.ENAMETOOLONG:
        return UpscalerError(f"{path}: cannot write: the file name or path is too long")
    return UpscalerError(f"{path}: cannot write: {exc}")


def _nearly_full(folder: Path) -> bool:
    """libsndfile reports a failed write only as "System error", so look at the free space."""
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False
