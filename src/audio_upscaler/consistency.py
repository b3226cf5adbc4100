"""Codec consistency: a restoration is re-encoded with the source's codec, and what the codec
would have kept is taken back.

A restoration model fills the spectral holes of decoded lossy audio. Some of its fills are wrong:
in the gaps between the sparse partials of tonal music it predicts content 20-40 dB louder than
the original had there. The decoded input tells which: had the original been that loud in such
a bin, the encoder would have kept it (it was above the masking threshold), and the decoded audio
would show it. So the restored audio is encoded and decoded again with the source's codec and
bitrate (:func:`audio_upscaler.codecs.roundtrip`); every bin that the restoration made louder
than the decoded input and that comes back from this round trip more than ``THRESHOLD_DB``
louder than the decoded input is turned down by ``STEP_DB``, and the check repeats
``ITERATIONS`` times. A correct fill of a real hole stays under the masking threshold, so the
codec removes it again and it is left alone; the band above the codec's low-pass never comes
back from the round trip and is left alone too.

Measured (``restore``, 44.1 kHz, the fixture's music, decoded-MP3 LSD ratio, benchmark method
``restore+check``): 128 kbps 0.646x -> 0.594x, 64 kbps 0.567x -> 0.559x; on 16 corpus validation
clips the SI-SDR lost to the decoded input shrinks at every codec tried (MP3 128 kbps: -0.67 ->
-0.41 dB music, -0.42 -> -0.07 dB speech; AAC 128 kbps speech -0.63 -> -0.05 dB, measured before
``fill_phase_db`` was set on the model; the restore
model card has the table). The round trip must use the source's own codec and a bitrate
no higher than its own (a higher one keeps more, so real hole fills look wrong; see the restore
model card), hence :func:`source_codec_of` and :func:`parse_source_codec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UpscalerError

#: A bin that comes back from the round trip this much louder (dB) than the decoded input counts
#: as kept by the codec, i.e. as louder than the original was.
THRESHOLD_DB = 6.0
#: How far (dB) such a bin is turned down per pass.
STEP_DB = 10.0
ITERATIONS = 2
#: STFT length at 44.1/48 kHz (doubled per octave of rate above) and its hop as a fraction of it.
N_FFT_48K = 1024
HOP_FRACTION = 4
#: A bin counts as filled when the restoration is louder than the decoded input by more than this
#: factor (kept bins may differ from the decoded ones by rounding).
FILLED_MARGIN = 1.0001
#: Round-trip levels this far under a full-scale sine's STFT peak are resampler and decoder debris.
FLOOR_DB = -100.0
#: LAME's algorithm quality (0 best - 9) of the check's MP3 round trips: 5 encodes 3x as fast as
#: the 2 the project's MP3 tasks use and checked nearly alike (restore+check on the 20 clips of
#: both validation sets at 64 / 128 kbps: mean decoded-MP3 LSD ratio and SI-SDR within 0.001 and
#: 0.003 dB of quality 2's; the benchmark's rows moved by up to 0.008, 128 kbps fixture speech
#: 0.546x -> 0.554x, music 0.590x -> 0.592x; 7 lost 0.003 more on 128 kbps music).
MP3_CHECK_QUALITY = 5
#: MP3's bitrate ladder (kbps): a VBR file's mean bitrate is rounded down onto it.
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


@dataclass(frozen=True)
class SourceCodec:
    """The lossy codec (``mp3``, ``aac``, ``opus``, ``vorbis``) and bitrate (kbps) the input was
    decoded from, and the rate (Hz) it was coded at (``None``: the rate of the audio checked)."""

    codec: str
    bitrate_kbps: int
    sample_rate: int | None = None

    def __str__(self) -> str:
        return f"{self.codec} {self.bitrate_kbps} kbps"


def parse_source_codec(text: str) -> SourceCodec:
    """``"mp3:128"`` -> ``SourceCodec("mp3", 128)``; raises :class:`UpscalerError` on anything else."""
    from . import codecs

    codec, _, kbps_text = str(text).strip().lower().partition(":")
    try:
        kbps = int(kbps_text)
    except ValueError:
        raise UpscalerError(f"source codec must look like mp3:128 (codec:kbps), got {text!r}") from None
    setting = codecs.codec_setting(codec, kbps)  # validates the codec and its bitrate range
    return SourceCodec(setting.codec, _usable_bitrate(setting.codec, kbps))


def source_codec_of(codec: str | None, bitrate_kbps: int | None, rate: int) -> SourceCodec | None:
    """The :class:`SourceCodec` of a lossy file of ``codec`` at ``rate`` Hz and (mean) bitrate
    ``bitrate_kbps`` (as :class:`~audio_upscaler.analysis.Report` gives them), or ``None`` when
    the project cannot re-encode ``codec`` or no bitrate is known."""
    from . import codecs

    if codec not in codecs.CODECS or not bitrate_kbps:
        return None
    lo, hi = codecs.BITRATE_LIMITS[codec]
    return SourceCodec(codec, _usable_bitrate(codec, min(max(int(bitrate_kbps), lo), hi)), int(rate))


def _usable_bitrate(codec: str, kbps: int) -> int:
    """An MP3 bitrate off the ladder (a VBR mean) goes down to the next ladder step: a lower rate
    only makes the check more lenient."""
    if codec != "mp3":
        return int(kbps)
    return max((b for b in MP3_BITRATES if b <= kbps), default=int(kbps))


def codec_consistent(restored: np.ndarray, decoded: np.ndarray, sample_rate: int, source: SourceCodec,
                     iterations: int | None = None) -> np.ndarray:
    """Turn down what ``source``'s codec would have kept of the restoration (module docstring).

    Args:
        restored: float32 ``[channels, time]``, the restoration model's output.
        decoded: float32 ``[channels, time]``, the decoded input it came from, same rate and shape.
        sample_rate: Hz of both.
        source: the codec, bitrate and coding rate the input was decoded from; the round trip runs
            at that rate, and nothing above its Nyquist frequency is touched.
        iterations: passes of encode, decode and turn down (default ``ITERATIONS``).

    Returns:
        float32 ``[channels, time]``.
    """
    if restored.shape != decoded.shape:
        raise ValueError(f"shapes differ: {restored.shape} vs {decoded.shape}")
    if restored.shape[1] == 0:
        return restored
    from . import codecs
    from .dsp.resample import resample
    from .dsp.spectral import hann, istft, stft

    coding_rate = source.sample_rate or sample_rate
    n_fft = N_FFT_48K * max(1, round(sample_rate / 48_000))
    hop = n_fft // HOP_FRACTION
    length = restored.shape[1]

    def round_trip(x: np.ndarray) -> np.ndarray:
        coded = codecs.roundtrip(resample(x, sample_rate, coding_rate), coding_rate, source.codec, source.bitrate_kbps,
                                 mp3_quality=MP3_CHECK_QUALITY)
        back = resample(coded, coding_rate, sample_rate)[:, :length]
        return np.pad(back, ((0, 0), (0, length - back.shape[1])))

    restored_spec = stft(restored, n_fft, hop)
    decoded_mag = np.abs(stft(decoded, n_fft, hop))
    floor = float(np.sum(hann(n_fft))) / 2 * 10 ** (FLOOR_DB / 20)
    kept_limit = np.maximum(decoded_mag * np.float32(10 ** (THRESHOLD_DB / 20)), np.float32(floor))
    kept_limit[..., np.fft.rfftfreq(n_fft, 1 / sample_rate) >= coding_rate / 2] = np.inf
    step = np.float32(10 ** (-STEP_DB / 20))
    out = restored.astype(np.float32)
    for _ in range(ITERATIONS if iterations is None else iterations):
        again = np.abs(stft(round_trip(out), n_fft, hop))
        too_loud = (np.abs(restored_spec) > decoded_mag * np.float32(FILLED_MARGIN)) & (again > kept_limit)
        if not too_loud.any():
            break
        restored_spec = np.where(too_loud, restored_spec * step, restored_spec)
        out = istft(restored_spec, n_fft, hop, length)
    return out
