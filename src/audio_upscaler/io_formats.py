"""Formats and codec back ends behind :mod:`audio_upscaler.io`.

- Output formats: which container an extension means, how an :class:`OutputFormat` maps onto
  libsndfile's ``format``/``subtype``/``compression_level``, which sample rates and channel
  counts each format can store, and how float samples and tags are stored.
- Input: :class:`AudioInfo`, codec/bit-depth/tag naming, and the two decoders (libsndfile via
  ``soundfile``; FFmpeg via PyAV, imported only when needed) that yield float32
  ``[channels, n]`` chunks for :class:`audio_upscaler.io.AudioReader`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import UpscalerError
from .m4a import AAC_MAX_CHANNELS, AAC_RATES
from .m4a import MAX_CHANNELS as M4A_MAX_CHANNELS

MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 8
#: Float samples beyond this magnitude (+120 dBFS) only come from corrupt files; their squares
#: would overflow float32 in the spectral stages, so reading (and the pipeline) refuse them.
MAX_SAMPLE_VALUE = 1e6

EXTENSIONS = {
    ".wav": "wav", ".wave": "wav", ".flac": "flac", ".aif": "aiff", ".aiff": "aiff", ".aifc": "aiff",
    ".mp3": "mp3", ".ogg": "ogg", ".oga": "ogg", ".opus": "opus", ".m4a": "m4a",
}
CONTAINERS = ("wav", "flac", "aiff", "mp3", "ogg", "opus", "m4a")
#: ``--format`` names that are not container names, and the container each writes.
FORMAT_ALIASES = {"alac": "m4a"}  # Apple Lossless in an M4A file
FORMAT_NAMES = CONTAINERS + tuple(FORMAT_ALIASES)
LOSSLESS = ("wav", "flac", "aiff")  # PCM containers written by libsndfile (M4A holds ALAC or AAC)

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates libsndfile's Opus encoder accepts
VORBIS_MAX_RATE = 192_000  # libvorbis has no encoder setup above ~200 kHz (libsndfile crashes)
FLAC_MAX_RATE = 655_350
#: Largest data chunk a WAV or AIFF header can describe (32-bit sizes, less room for the header), bytes.
RIFF_DATA_LIMIT = 0xFFFFFFFF - (1 << 16)
#: A WAV expected to fill more than this share of :data:`RIFF_DATA_LIMIT` is written as RF64
#: (64-bit sizes), leaving room for a length that was only estimated.
RF64_MARGIN = 0.9

DEFAULT_MP3_KBPS = 320
DEFAULT_OPUS_KBPS_PER_CHANNEL = 96
#: What libopus (through libsndfile) gives at most, kbit/s: 256 per channel, 510 for stereo.
#: Asking for more gives the same file, so more is refused (5.1-7.1 files top out somewhat
#: lower: libopus gives their LFE channel less).
OPUS_MIN_KBPS, OPUS_MAX_KBPS_PER_CHANNEL, OPUS_MAX_KBPS_STEREO = 6, 256, 510
DEFAULT_VORBIS_QUALITY = 0.7
#: Most channels per output container where fewer than MAX_CHANNELS. libvorbis codes the 6th of 6
#: or 8 channels and libopus the last of 6-8 as an LFE channel (measured: a 770 Hz tone there
#: decoded to correlation 0.01-0.04), which would silently ruin channels that are not an LFE; and
#: libsndfile hands them over in WAV order, where 5.1's LFE is the 4th, so even real 5.1 lost its
#: back-right channel. ALAC: see :mod:`audio_upscaler.m4a`.
CHANNEL_LIMITS = {"mp3": 2, "ogg": 5, "opus": 5, "m4a": M4A_MAX_CHANNELS}
#: AAC (M4A) bitrates, kbit/s per channel: 128 is the iTunes Plus 256 kbit/s stereo; FFmpeg's
#: encoder can spend at most about 6144 bits per channel and 1024-sample frame (288 at 48 kHz).
DEFAULT_AAC_KBPS_PER_CHANNEL, AAC_MIN_KBPS, AAC_MAX_KBPS_PER_CHANNEL = 128, 16, 256

# Tag keys kept when reading and written when the format allows (libsndfile's string types).
TAG_KEYS = ("title", "artist", "album", "date", "genre", "tracknumber", "comment", "copyright", "license")
TAG_ALIASES = {"track": "tracknumber", "year": "date", "tyer": "date", "tdrc": "date", "description": "comment"}

# libsndfile's MP3 (LAME) encoder maps compression level c in [0, 1] linearly onto a CBR bitrate
# range that depends on the MPEG version implied by the sample rate: (minimum rate, top, bottom).
_MP3_BITRATE_RANGES = ((32_000, 320, 32), (16_000, 160, 8), (0, 64, 8))
_MAX_LEVEL = 0.999  # libsndfile's MP3 encoder rejects exactly 1.0
CHUNK_FRAMES = 65_536  # frames libsndfile decodes per call
_SF_MALFORMED = 3  # libsndfile error code: "Supported file format but file is malformed"


def check_rate(sample_rate: int, what: str = "sample rate") -> None:
    """Raise :class:`UpscalerError` unless ``sample_rate`` Hz lies in ``MIN_RATE``-``MAX_RATE``."""
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise UpscalerError(f"{what} {sample_rate} Hz is outside the supported {MIN_RATE}-{MAX_RATE} Hz")


@dataclass(frozen=True)
class OutputFormat:
    """How to encode an output file.

    Attributes:
        container: ``wav | flac | aiff | mp3 | ogg | opus | m4a`` (``ogg`` is OGG Vorbis; ``m4a``
            holds ALAC when a bit depth is set, else AAC: :mod:`audio_upscaler.m4a`).
        bit_depth: 16 or 24 (integer PCM) or 32 (32-bit float, WAV/AIFF only) for lossless
            containers and ALAC; ``None`` for lossy ones.
        bitrate_kbps: total bitrate in kbit/s for MP3 CBR, Opus and AAC (``None``: format default,
            320 kbit/s for MP3, 96 kbit/s per channel for Opus, 128 per channel for AAC).
        vbr: MP3 variable bitrate (LAME ``-V quality``) instead of CBR.
        quality: MP3 VBR quality 0 (best) .. 9, or OGG Vorbis quality 0 .. 1 (1 = best).
    """

    container: str
    bit_depth: int | None = None
    bitrate_kbps: int | None = None
    vbr: bool = False
    quality: float | None = None

    @property
    def is_integer_pcm(self) -> bool:
        """True for 16/24-bit integer output (WAV, FLAC, AIFF, ALAC)."""
        return (self.container in LOSSLESS or self.container == "m4a") and self.bit_depth in (16, 24)

    @property
    def is_lossless(self) -> bool:
        """True for PCM containers and ALAC."""
        return self.container in LOSSLESS or (self.container == "m4a" and self.bit_depth is not None)

    @property
    def is_float(self) -> bool:
        """True for 32-bit float output (WAV, AIFF), which stores values beyond +-1.0."""
        return self.container in LOSSLESS and self.bit_depth == 32

    def validate_rate(self, sample_rate: int) -> None:
        """Raise :class:`UpscalerError` if this format cannot store ``sample_rate`` Hz."""
        check_rate(sample_rate)
        if self.container == "mp3" and sample_rate not in MP3_RATES:
            raise UpscalerError(
                f"MP3 cannot store {sample_rate} Hz: it supports only {_khz(MP3_RATES)} kHz (at most 48 kHz); "
                "use FLAC or WAV for higher rates"
            )
        if self.container == "opus" and sample_rate not in OPUS_RATES:
            raise UpscalerError(
                f"Opus files can only be written at {_khz(OPUS_RATES)} kHz, not {sample_rate} Hz; "
                "use -r 48000 or another format"
            )
        if self.container == "ogg" and sample_rate > VORBIS_MAX_RATE:
            raise UpscalerError(
                f"OGG Vorbis supports at most {VORBIS_MAX_RATE} Hz, not {sample_rate} Hz; use FLAC or WAV"
            )
        if self.container == "flac" and sample_rate > FLAC_MAX_RATE:
            raise UpscalerError(f"FLAC supports at most {FLAC_MAX_RATE} Hz, not {sample_rate} Hz; use WAV")
        if self.container == "m4a" and self.bit_depth is None and sample_rate not in AAC_RATES:
            raise UpscalerError(
                f"AAC cannot store {sample_rate} Hz: it supports only {_khz(AAC_RATES)} kHz (at most 96 kHz); "
                "use --format alac (Apple Lossless in .m4a) or FLAC for other rates")

    def validate_channels(self, channels: int) -> None:
        """Raise :class:`UpscalerError` if this format cannot store ``channels`` channels
        (or, for Opus, carry the requested bitrate for that many channels)."""
        aac = self.container == "m4a" and self.bit_depth is None
        limit = AAC_MAX_CHANNELS if aac else CHANNEL_LIMITS.get(self.container, MAX_CHANNELS)
        if not 1 <= channels <= limit:
            name = "AAC" if aac else "ALAC" if self.container == "m4a" else self.container.upper()
            lfe = " (with more, the encoder codes one channel as a low-frequency LFE channel, keeping only its lowest ~120 Hz)"
            raise UpscalerError(f"{name} output supports 1-{limit} channels, not {channels}"
                                + (lfe if aac or self.container in ("ogg", "opus") else "")
                                + ("; use FLAC or WAV" if self.container != "mp3" else ""))
        if aac:
            kbps = self.aac_kbps(channels)
            if not AAC_MIN_KBPS <= kbps <= AAC_MAX_KBPS_PER_CHANNEL * channels:
                raise UpscalerError(
                    f"AAC bitrate (kbit/s) for {channels} channel{'s' * (channels > 1)} must be between "
                    f"{AAC_MIN_KBPS} and {AAC_MAX_KBPS_PER_CHANNEL * channels}, not {kbps}")
        if self.container == "opus" and self.bitrate_kbps is not None:
            top = opus_max_kbps(channels)
            if self.bitrate_kbps > top:
                raise UpscalerError(
                    f"Opus bitrate (kbit/s) for {channels} channel{'s' * (channels > 1)} must be between "
                    f"{OPUS_MIN_KBPS} and {top}, not {self.bitrate_kbps} (libopus gives no more)")

    def aac_kbps(self, channels: int) -> int:
        """AAC's total bitrate for ``channels`` channels, kbit/s (the default: 128 per channel)."""
        return self.bitrate_kbps or DEFAULT_AAC_KBPS_PER_CHANNEL * channels

    def data_bytes(self, frames: int, channels: int) -> int | None:
        """Bytes of sample data ``frames`` take in a lossless file (``None`` for lossy formats)."""
        return frames * channels * (self.bit_depth // 8) if self.container in LOSSLESS else None

    def soundfile_params(self, sample_rate: int, channels: int, frames: int | None = None) -> dict:
        """Keyword arguments for ``soundfile.SoundFile(..., mode="w")``.

        ``frames``: the expected length; a WAV too long for its 32-bit header is written as RF64
        (the 64-bit WAV that readers of long broadcast and archive files expect).
        """
        if self.container in LOSSLESS:
            subtype = "FLOAT" if self.bit_depth == 32 else f"PCM_{self.bit_depth}"
            container = self.container.upper()
            if self.container == "wav" and frames and self.data_bytes(frames, channels) > RF64_MARGIN * RIFF_DATA_LIMIT:
                container = "RF64"
            return {"format": container, "subtype": subtype}
        if self.container == "mp3":
            if self.vbr:  # libsndfile: LAME VBR quality = 10 * compression level
                return {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "VARIABLE",
                        "compression_level": _level((self.quality or 0.0) / 10)}
            top, bottom = next((t, b) for lo, t, b in _MP3_BITRATE_RANGES if sample_rate >= lo)
            kbps = self.bitrate_kbps or DEFAULT_MP3_KBPS
            return {"format": "MP3", "subtype": "MPEG_LAYER_III", "bitrate_mode": "CONSTANT",
                    "compression_level": _level((top - kbps) / (top - bottom))}
        if self.container == "ogg":  # libsndfile: Vorbis quality = 1 - compression level
            quality = DEFAULT_VORBIS_QUALITY if self.quality is None else self.quality
            return {"format": "OGG", "subtype": "VORBIS", "compression_level": _level(1 - quality)}
        # Opus: libsndfile maps level c to 6 + (1 - c) * 250 kbit/s per channel.
        per_channel = (self.bitrate_kbps / channels) if self.bitrate_kbps else DEFAULT_OPUS_KBPS_PER_CHANNEL
        return {"format": "OGG", "subtype": "OPUS", "compression_level": _level(1 - (per_channel - 6) / 250)}


def output_format_for(
    path: str | Path,
    format: str | None = None,
    bit_depth: int | None = None,
    bitrate_kbps: int | None = None,
    vbr: bool | float | None = False,
    quality: float | None = None,
) -> OutputFormat:
    """Pick and validate the output format from the extension of ``path`` or ``format``.

    ``vbr`` may also be a number: it is then the VBR quality (the CLI's ``--vbr Q``), i.e.
    MP3 quality 0 (best) .. 9, or OGG Vorbis quality 0 .. 1.  Defaults: 24-bit for WAV/FLAC/AIFF,
    MP3 CBR 320 kbit/s, Vorbis quality 0.7, Opus 96 kbit/s per channel, AAC 128 kbit/s per
    channel. An ``.m4a`` file holds AAC unless ``format`` is ``alac`` or a bit depth (16/24) is
    given: then Apple Lossless (24-bit unless told).
    """
    container = _container(path, format)
    if container == "m4a" and (bit_depth is not None or (format or "").lower().lstrip(".") == "alac"):
        if bitrate_kbps is not None or vbr or quality is not None:
            raise UpscalerError("bitrate/VBR settings apply to AAC, not to ALAC (lossless)")
        bit_depth = 24 if bit_depth is None else bit_depth
        if bit_depth not in (16, 24):
            raise UpscalerError(f"ALAC supports bit depths 16, 24, not {bit_depth}")
        return OutputFormat("m4a", bit_depth)
    if vbr is not None and not isinstance(vbr, bool):
        quality, vbr = float(vbr), True
    vbr = bool(vbr)
    lossy_options = bitrate_kbps is not None or vbr or quality is not None
    if container in LOSSLESS:
        if lossy_options:
            raise UpscalerError(f"bitrate/VBR settings apply to MP3, OGG, Opus and AAC (.m4a), not {container.upper()}")
        allowed = (16, 24) if container == "flac" else (16, 24, 32)
        bit_depth = 24 if bit_depth is None else bit_depth
        if bit_depth not in allowed:
            raise UpscalerError(
                f"{container.upper()} supports bit depths {', '.join(map(str, allowed))}, not {bit_depth}"
                + ("; use WAV or AIFF for 32-bit float" if container == "flac" else "")
            )
        return OutputFormat(container, bit_depth)
    if bit_depth is not None:
        raise UpscalerError(f"a bit depth applies to WAV, FLAC, AIFF and ALAC, not {container.upper()}")
    if container == "mp3":
        return _mp3_format(bitrate_kbps, vbr, quality)
    if container == "ogg":
        if bitrate_kbps is not None:
            raise UpscalerError("OGG Vorbis is set by a quality (--vbr 0-1), not a bitrate")
        quality = DEFAULT_VORBIS_QUALITY if quality is None else quality
        _check_range("OGG Vorbis quality", quality, 0, 1)
        return OutputFormat("ogg", vbr=True, quality=quality)
    if container == "m4a":
        if vbr or quality is not None:
            raise UpscalerError("AAC is set by a bitrate (--bitrate), not a VBR quality")
        if bitrate_kbps is not None:  # the limit for the actual channel count: OutputFormat.validate_channels
            _check_range("AAC bitrate (kbit/s)", bitrate_kbps, AAC_MIN_KBPS, AAC_MAX_KBPS_PER_CHANNEL * AAC_MAX_CHANNELS)
        return OutputFormat("m4a", bitrate_kbps=bitrate_kbps)
    if vbr or quality is not None:
        raise UpscalerError("Opus is set by a bitrate (--bitrate), not a VBR quality")
    if bitrate_kbps is not None:  # the limit for the actual channel count: OutputFormat.validate_channels
        _check_range("Opus bitrate (kbit/s)", bitrate_kbps, OPUS_MIN_KBPS, opus_max_kbps(MAX_CHANNELS))
    return OutputFormat("opus", bitrate_kbps=bitrate_kbps)


def opus_max_kbps(channels: int) -> int:
    """Highest Opus bitrate (kbit/s) that still changes the file for ``channels`` channels."""
    return OPUS_MAX_KBPS_STEREO if channels == 2 else OPUS_MAX_KBPS_PER_CHANNEL * channels


def _mp3_format(bitrate_kbps: int | None, vbr: bool, quality: float | None) -> OutputFormat:
    if vbr and bitrate_kbps is not None:
        raise UpscalerError("choose either a constant bitrate (--bitrate) or VBR (--vbr) for MP3, not both")
    if vbr:
        quality = 0.0 if quality is None else quality
        _check_range("MP3 VBR quality", quality, 0, 9)
        return OutputFormat("mp3", vbr=True, quality=quality)
    if quality is not None:
        raise UpscalerError("an MP3 quality needs VBR mode (--vbr Q)")
    bitrate_kbps = DEFAULT_MP3_KBPS if bitrate_kbps is None else bitrate_kbps
    _check_range("MP3 bitrate (kbit/s)", bitrate_kbps, 8, 320)
    return OutputFormat("mp3", bitrate_kbps=bitrate_kbps)


def _container(path: str | Path, format: str | None) -> str:
    if format is not None:
        name = format.lower().lstrip(".")
        if name not in FORMAT_NAMES:
            raise UpscalerError(f"unknown output format '{format}'; use one of: {', '.join(FORMAT_NAMES)}")
        return extension_for(name)
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UpscalerError(
            f"cannot tell the output format of '{Path(path).name}' from its extension; "
            f"use one of {', '.join(EXTENSIONS)} or pass --format"
        )
    return EXTENSIONS[suffix]


def extension_for(format: str) -> str:
    """The container of a ``--format`` name, which is also its file extension (no dot): the
    name itself, or the container of an alias (``alac`` -> ``m4a``)."""
    return FORMAT_ALIASES.get(format, format)


def _check_range(what: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise UpscalerError(f"{what} must be between {low} and {high}, not {value}")


def _level(value: float) -> float:
    return min(max(float(value), 0.0), _MAX_LEVEL)


def _khz(rates: tuple[int, ...]) -> str:
    return ", ".join(f"{r / 1000:g}" for r in rates)


# ---- naming of what was read ------------------------------------------------------------------

_SF_CODECS = {"MPEG_LAYER_III": "mp3", "MPEG_LAYER_II": "mp2", "MPEG_LAYER_I": "mp1", "VORBIS": "vorbis", "OPUS": "opus"}
_AV_LOSSLESS = ("alac", "flac", "wavpack", "tta", "ape", "mlp", "truehd", "wmalossless")
#: Lossy codecs the ``restore`` model was trained on (names as :func:`av_codec` / :func:`soundfile_codec` give them).
RESTORABLE_CODECS = ("mp3", "aac", "opus", "vorbis")


def soundfile_codec(format: str, subtype: str) -> str:
    """Codec name for a libsndfile ``format``/``subtype``: ``pcm_16``, ``float``, ``flac``, ``mp3`` ..."""
    if format == "FLAC":
        return "flac"
    if subtype.startswith("ALAC"):
        return "alac"
    return _SF_CODECS.get(subtype, subtype.lower())


def soundfile_bit_depth(subtype: str) -> int | None:
    """Bits per sample of an integer PCM/ALAC libsndfile subtype, else ``None`` (float, lossy)."""
    match = re.fullmatch(r"(?:PCM|ALAC)_[SU]?(\d+)", subtype)
    return int(match.group(1)) if match else None


def av_codec(name: str) -> str:
    """FFmpeg decoder name with implementation suffixes removed (``mp3float`` -> ``mp3``)."""
    return {"mp3float": "mp3", "aac_fixed": "aac"}.get(name, name)


def lossy_bitrate_kbps(path: str | Path) -> int | None:
    """Mean bitrate (kbps) of a file's first audio stream as its container records it (a VBR
    file's mean), or ``None`` where none is recorded or FFmpeg cannot open the file."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            bits = stream.bit_rate or stream.codec_context.bit_rate or container.bit_rate
    except (av.error.FFmpegError, IndexError):
        return None
    return int(round(bits / 1000)) if bits else None


def av_bit_depth(codec: str, sample_format: str) -> int | None:
    """Bit depth of a lossless FFmpeg stream, ``None`` for lossy codecs.

    PCM codecs name it (``pcm_s24le`` -> 24); other lossless decoders output ``s16`` for 16-bit
    sources and ``s32`` for deeper ones, which we report as 24 (by far the most common).
    """
    match = re.fullmatch(r"pcm_[suf](\d+)(?:le|be)?(?:_planar)?", codec)
    if match:
        return None if codec.startswith("pcm_f") else int(match.group(1))
    if codec in _AV_LOSSLESS:
        return 16 if sample_format.startswith("s16") else 24
    return None


def normalize_tags(raw: dict) -> dict[str, str]:
    """Lower-case known tag keys (with aliases such as ``track`` -> ``tracknumber``), drop others."""
    tags: dict[str, str] = {}
    for key, value in raw.items():
        key = TAG_ALIASES.get(str(key).lower(), str(key).lower())
        value = str(value).strip()
        if key in TAG_KEYS and value and key not in tags:
            tags[key] = value
    return tags


def sf_name(path: str | Path) -> str | bytes:
    """The name to give libsndfile (``soundfile``) for ``path``.

    On POSIX that is the file name's bytes (``os.fsencode``): a name that is not valid UTF-8
    (an old Latin-1 ``caf\\xe9.wav``) reaches Python as a str with surrogate escapes, which
    ``soundfile`` would encode strictly and fail on.  Windows names stay text (``soundfile``
    opens them through libsndfile's wide-character API).  PyAV needs nothing of the kind: it
    ``os.fsencode``-s a str name itself (and would take bytes for a file object).
    """
    return os.fspath(path) if sys.platform == "win32" else os.fsencode(path)


# ---- decoders: libsndfile first, FFmpeg (PyAV) for everything else ------------------------------

@dataclass
class AudioInfo:
    """What a file holds, known after opening it (no full decode).

    ``frames``/``duration`` come from the header: exact for PCM/FLAC, usually exact for
    MP3/Vorbis/Opus, ``None`` frames (and an estimated duration) for files decoded by FFmpeg.
    ``bit_depth`` is 16/24/32 for integer PCM and lossless codecs, ``None`` for float and lossy.
    """

    path: Path
    container: str
    codec: str
    sample_rate: int
    channels: int
    frames: int | None
    duration: float | None
    bit_depth: int | None
    tags: dict[str, str] = field(default_factory=dict)


class SoundfileSource:
    """libsndfile decoder.  ``chunks()`` yields float32 ``[channels, <= CHUNK_FRAMES]``."""

    errors: tuple[type[Exception], ...] = (sf.SoundFileError,)

    def __init__(self, path: Path) -> None:
        self._file = f = sf.SoundFile(sf_name(path))
        self.expected_frames = f.frames
        self.lossless = f.subtype.startswith(("PCM", "ALAC", "FLOAT", "DOUBLE"))
        try:
            self.info = AudioInfo(
                path, f.format.lower(), soundfile_codec(f.format, f.subtype), f.samplerate, f.channels,
                f.frames, f.frames / f.samplerate if f.samplerate else None, soundfile_bit_depth(f.subtype),
                normalize_tags(f.copy_metadata()),
            )
        except BaseException:
            f.close()
            raise

    def header_problem(self) -> str | None:
        """Why libsndfile's parse log says the file is cut short, or ``None``."""
        log = self._file.extra_info
        pattern = r"^\s*(?:data|SSND) *: *(\d+) *\(should be (\d+)\)"  # WAV / AIFF audio chunk sizes
        for claimed, actual in re.findall(pattern, log, re.MULTILINE):
            # 0 and 0xFFFFFFFF mark streamed WAVs whose writer never knew the length: not truncated.
            if int(actual) < int(claimed) < 0x7FFFFFFF:
                return f"the header promises {claimed} bytes of audio but only {actual} are present"
        if "File ended unexpectedly" in log:
            return "the Ogg stream ends without its end-of-stream marker"
        return None

    def chunks(self) -> Iterator[np.ndarray]:
        while len(data := self._file.read(CHUNK_FRAMES, dtype="float32", always_2d=True)):
            yield data.T

    def close(self) -> None:
        self._file.close()


class PyAVSource:
    """FFmpeg decoder for what libsndfile cannot open (first audio stream of any container)."""

    lossless = True
    expected_frames = None  # FFmpeg headers only estimate the length

    def __init__(self, path: Path) -> None:
        import av

        self.errors = (av.error.FFmpegError,)
        self._container = av.open(str(path), metadata_errors="ignore")
        try:
            if not self._container.streams.audio:
                raise UpscalerError(f"{path}: not an audio file (it has no audio stream)")
            self._stream = stream = self._container.streams.audio[0]
            ctx = stream.codec_context
            # No decoder for the codec, or a format FFmpeg guessed from the file name only.
            if ctx is None or ctx.sample_rate <= 0 or ctx.channels <= 0:
                raise UpscalerError(f"{path}: not an audio file, or an audio format that cannot be decoded")
            names = self._container.format.name.split(",")
            suffix = path.suffix.lower().lstrip(".")
            duration = (
                float(stream.duration * stream.time_base) if stream.duration
                else self._container.duration / av.time_base if self._container.duration else None
            )
            codec = av_codec(ctx.name)
            self.info = AudioInfo(
                path, suffix if suffix in names else names[0], codec, ctx.sample_rate, ctx.channels, None,
                duration, av_bit_depth(codec, ctx.format.name if ctx.format else ""),
                normalize_tags({**stream.metadata, **self._container.metadata}),
            )
        except BaseException:
            self._container.close()
            raise

    def chunks(self) -> Iterator[np.ndarray]:
        rate, channels = self.info.sample_rate, self.info.channels
        end = self._end_pts()
        for frame in self._container.decode(self._stream):
            if frame.sample_rate != rate or frame.layout.nb_channels != channels:
                raise UpscalerError(
                    f"{self.info.path}: the audio format changes mid-stream "
                    f"({rate} Hz/{channels} ch -> {frame.sample_rate} Hz/{frame.layout.nb_channels} ch)"
                )
            samples = frame_samples(frame.to_ndarray(), frame.format.is_planar, channels)
            if end is not None and frame.pts is not None:  # drop the encoder's padding after the edit list's end
                samples = samples[:, : max(0, round((end - frame.pts) * frame.time_base * rate))]
            yield samples

    def _end_pts(self) -> int | None:
        """Where an MP4/MOV audio track ends by its edit list (stream time base), else ``None``.

        An AAC encoder pads the last frame; the edit list records the real length (FFmpeg drops the
        priming samples at the start by it, but not the padding at the end: an M4A of 96,000
        samples decoded to 96,256)."""
        stream = self._stream
        if not {"mov", "mp4"} & set(self._container.format.name.split(",")) or not stream.duration:
            return None
        return (stream.start_time or 0) + stream.duration

    def header_problem(self) -> str | None:
        return None

    def close(self) -> None:
        self._container.close()


def frame_samples(array: np.ndarray, planar: bool, channels: int) -> np.ndarray:
    """FFmpeg frame data (planar ``[C, n]`` or packed ``[1, n * C]``, any sample type) -> float32 ``[C, n]``.

    Integers are scaled by ``2 ** (bits - 1)`` like libsndfile does, so both decoders agree.
    """
    if not planar:
        array = array.reshape(-1, channels).T
    if array.dtype.kind == "u":  # 8-bit audio is unsigned, centred on 128
        return (array.astype(np.float32) - 128) / 128
    if array.dtype.kind == "i":
        return array.astype(np.float32) / np.float32(2 ** (8 * array.dtype.itemsize - 1))
    return array.astype(np.float32)


def open_source(path: Path) -> SoundfileSource | PyAVSource:
    """Open ``path`` with libsndfile, else with FFmpeg; :class:`UpscalerError` if neither can."""
    try:
        return SoundfileSource(path)
    except sf.SoundFileError as exc:
        sf_error = exc
    import av

    try:
        return PyAVSource(path)
    except av.error.FFmpegError as exc:
        if getattr(sf_error, "code", None) == _SF_MALFORMED:
            raise UpscalerError(f"{path}: the file is corrupt or truncated ({sf_error.error_string})") from exc
        raise UpscalerError(f"{path}: not an audio file, or an audio format that cannot be decoded") from exc


# ---- encoding ---------------------------------------------------------------------------------

def encode_samples(block: np.ndarray, fmt: OutputFormat) -> np.ndarray:
    """Float ``[C, n]`` -> what libsndfile stores exactly: int16 / int32 (24-bit in the top bits) / float32."""
    if fmt.is_float:
        return block.astype(np.float32, copy=False)
    if not fmt.is_integer_pcm:
        return np.clip(block, -1.0, 1.0).astype(np.float32)
    scale = 2.0 ** (fmt.bit_depth - 1)
    steps = np.clip(np.round(block.astype(np.float64) * scale), -scale, scale - 1)
    return steps.astype(np.int16) if fmt.bit_depth == 16 else steps.astype(np.int32) << 8


def write_tags(file: sf.SoundFile, tags: dict[str, str]) -> None:
    """Store the tags the format has room for through libsndfile; others are skipped silently.

    Not for MP3: libsndfile (LAME) writes MP3 tags as Latin-1, often as an ID3v1 tag that
    readers decode as UTF-8 (mojibake, or an error in FFmpeg); MP3 gets :func:`id3v2_tag`.
    """
    for key in TAG_KEYS:
        if key in tags:
            with contextlib.suppress(sf.SoundFileError):
                setattr(file, key, tags[key])


#: ID3v2.4 frame of each tag key (``license`` has no text frame and is not written).
ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC", "genre": "TCON",
              "tracknumber": "TRCK", "comment": "COMM", "copyright": "TCOP"}


def id3v2_tag(tags: dict[str, str]) -> bytes:
    """An ID3v2.4 tag with UTF-8 text frames for ``tags`` (``b""`` if none applies), to put in
    front of MP3 data; libsndfile (mpg123) and FFmpeg read every character back."""
    frames = b""
    for key, frame_id in ID3_FRAMES.items():
        if key not in tags:
            continue
        text = tags[key].replace("\0", "").encode("utf-8", "replace")
        # 3 = UTF-8; a comment also has a language and an (empty, NUL-terminated) description.
        body = b"\x03" + (b"eng\x00" if frame_id == "COMM" else b"") + text
        frames += frame_id.encode("ascii") + _syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + _syncsafe(len(frames)) + frames if frames else b""


def _syncsafe(n: int) -> bytes:
    """ID3v2.4 sizes: 28 bits in four bytes of 7 bits each."""
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))
