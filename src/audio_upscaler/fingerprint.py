"""Where a band limit came from: lossy codec, resampling, telephone band or a gentle filter.

Cues, all cheap and measured in one pass:

* **the wall**: codecs (MP3/AAC/Opus low-pass) and resamplers cut with a steep wall; analog
  or gentle filters roll off (``CutoffEstimate.steep``).
* **where the wall is**: resamplers put it at 93-101 % of the Nyquist frequency of a standard
  source rate (soxr: 95 %); encoders at bitrate-dependent frequencies (LAME: about 11, 16.5,
  18.7, 20 kHz for 64/128/192/320 kbps; FFmpeg AAC: about 12, 17, 19.5 kHz for 64/128/192);
  Opus at 20.0 kHz (its full band ends there; only checked at 48 kHz, the rate Opus
  decodes at, because LAME 320 kbps also cuts near 20 kHz at 44.1 kHz).
* **spectral holes**: an MP3 encoder short of bits zeroes whole scale-factor bands for a
  granule, so short-frame spectra below the cutoff show bins far (``HOLE_DEPTH_DB``) below
  their neighbourhood.  For noise-like content that happens to ~0.1 % of bins by chance; a
  hole fraction of ``HOLE_FRACTION`` or more marks a lossy encode (MP3 up to ~128 kbps).
  Sparse tonal music fakes them, though: the gaps between the partials of a lossless
  recording of a soft ensemble whose spectrum fades early are holes to this count (1-22 % of
  the bins under a gentle roll-off on the corpus's music21 renders).
* **hole persistence**: a codec's holes last: the share of hole bins that are holes in the next
  short frame too is 0.24-0.83 for LAME, 0.10-0.77 for Vorbis and 0.01-0.71 for FFmpeg AAC (at
  32-96 kbps on 33 corpus validation clips), but 0-0.67 for the gaps of speech and music
  resampled without loss, and under ``HOLE_PERSISTENCE`` for 10 of the 28 such files whose holes
  passed ``HOLE_FRACTION`` (against 1 of 252 coded files). Holes that flicker like that are not
  taken for a codec's.
* **hole width**: a zeroed scale-factor band spans several bins of the short frames (a run of
  1.05-3.2 bins on average, median 1.8-1.9, for the codecs above with 1-5 % holes), a gap between
  partials one (resampled speech and music: 1.00-1.60, median 1.10). Holes in runs shorter than
  ``HOLE_RUN_BINS`` on average are not a codec's either (21 of 30 lossless resampled files that
  passed the two tests above, 2 of 169 coded ones). Holes above ``CLEAR_HOLE_FRACTION`` count
  whatever their persistence and width (no lossless resampled file came near it: at most 3.2 %).
* **a resampler's wall above a steep edge**: the content of a file upsampled from a low rate
  may itself stop steeply below the resampler's wall (a soundfont's samples, a recording's own
  band), at a frequency no resampler explains, which reads as an encoder's low-pass. When such an
  edge shows no codec's holes and a steep wall above it sits where a resampler puts one, the file
  reads as resampled from that rate: 34 of 34 such lossless files in the measurements above,
  against none of 192 coded ones (47 of those have a wall there too, an encoder's low-pass at a
  resampler-like position, but all 47 show a codec's holes).
* **a steep wall above a gentle roll-off** (:func:`audio_upscaler.bandwidth.codec_wall`): an
  encoder or a resampler cuts with its own wall even where the music fades far below it (or
  where a codec's wide transition reads as gentle). Such a wall is the band limit, and the rules
  below apply to it as to a steep cutoff; without one a gentle roll-off is no band limit and no
  codec, whatever holes it shows.

Rules, in order: full band, or a gentle roll-off with no steep wall above it -> no codec; a
gentle roll-off under a steep wall -> the rules for that wall; a wall at 20.0 kHz in 48 kHz
audio -> Opus; below 44.1 kHz, a steep fall that ends at the file's own band edge without a
codec's holes -> no codec (``EDGE_RULE_MAX_RATE``); a codec's holes (:func:`codec_holes`), or a steep wall from 4 to 24 kHz that no
resampler explains (neither at it nor just above it) -> MP3/AAC (lossy); such a wall above 24 kHz
-> no codec (``CODEC_MAX_WALL_HZ``); a wall at or below 4 kHz -> telephone band; otherwise -> resampled from that standard rate.

Ambiguities (documented, not hidden): a steep wall at a standard Nyquist without holes reads
as "resampled" although an encoder may have put it there (MP3 >= 160 kbps, AAC, Vorbis and
Opus rarely leave holes; e.g. AAC 64 kbps at 48 kHz cuts at 12.0 kHz = Nyquist of 24 kHz, and
Vorbis 64 kbps near 15.2 kHz = 95 % of 16 kHz); a brick-wall filter at a non-standard
frequency reads as an encoder's low-pass; Opus resampled to 44.1 kHz reads as MP3/AAC;
sparse tonal content near the cutoff can fake holes.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import rfft
from scipy.ndimage import uniform_filter1d

from .bandwidth import FULL_BAND_FRACTION, CutoffEstimate, spectrum_fft_size

HOLE_DEPTH_DB = 30.0
HOLE_FRACTION = 0.01
HOLE_NEIGHBOURHOOD_BINS = 17  # about 1.5 kHz at 44.1/48 kHz
HOLE_PERSISTENCE = 0.1  # holes are a codec's only if at least this share lasts into the next frame
HOLE_RUN_BINS = 1.2  # ... and if their runs of adjacent hole bins are at least this long on average
CLEAR_HOLE_FRACTION = 0.05  # a hole share that means a codec whatever the two above say
ACTIVE_POWER = 1e-12  # neighbourhood power per bin (about -120 dBFS) below which nothing counts
STANDARD_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
RESAMPLER_WALL = (0.93, 1.01)  # wall position as a fraction of the source's Nyquist
OPUS_WALL_HZ = (19_800.0, 20_200.0)
#: Content that stops below this (Hz) is a tone or a sparse signal (a test tone, a bass line
#: alone), not a recording whose band was cut: no codec or source rate is read from it, and
#: ``auto`` does not extend it.
SPARSE_MAX_HZ = 2_000.0
TELEPHONE_MAX_HZ = 4_050.0
#: Lossy encoders low-pass at or below the Nyquist frequency of 48 kHz audio (LAME, FFmpeg AAC,
#: Vorbis and Opus stop at 20-22 kHz at every rate): a steep wall higher up (a hi-res recording's
#: own anti-aliasing filter, a 76.8 kHz source) is no encoder's low-pass unless a codec's holes say so.
CODEC_MAX_WALL_HZ = 24_000.0
#: Below this rate, a steep fall whose bottom (``CutoffEstimate.top_hz``) reaches the file's own
#: band edge (``FULL_BAND_FRACTION`` of its Nyquist frequency, where a resampler to that rate puts
#: its wall) is the top of content resampled to that rate, not an encoder's low-pass, unless a
#: codec's holes say so: 10 of 64 corpus validation clips resampled to 11.025 and 16 kHz (speech
#: whose top quarter octave falls more than 6 dB, choral music) read as MP3/AAC without it. At 44.1
#: kHz and above LAME's 320 kbps low-pass (20.5 kHz) would pass the same test.
EDGE_RULE_MAX_RATE = 44_100


def reaches_band_edge(top_hz: float, sample_rate: int) -> bool:
    """Whether content whose deep point is ``top_hz`` (``CutoffEstimate.top_hz``) reaches the band
    edge of a low-rate file (under ``EDGE_RULE_MAX_RATE``): the file's rate is its band limit."""
    return sample_rate < EDGE_RULE_MAX_RATE and top_hz >= FULL_BAND_FRACTION * sample_rate / 2


class HoleCounter:
    """Per-bin counts of spectral holes in short frames (about 11 ms at 44.1/48 kHz).

    Fed with mono blocks ``[n]``; keeps ``holes`` and ``active`` counts ``[n_fft // 2 + 1]``, for
    persistence ``followed`` (holes with a next frame) and ``repeated`` (holes in it too), and for
    width ``starts`` (holes whose lower neighbour bin is not one: the first bin of a run).
    """

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self.n_fft = max(64, spectrum_fft_size(self.sample_rate) // 8)
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self._norm = float(np.sum(self._window.astype(np.float64) ** 2))
        self._pending = np.zeros(0, np.float32)
        self.holes = np.zeros(self.n_fft // 2 + 1, np.int64)
        self.active = np.zeros(self.n_fft // 2 + 1, np.int64)
        self.followed = np.zeros(self.n_fft // 2 + 1, np.int64)
        self.repeated = np.zeros(self.n_fft // 2 + 1, np.int64)
        self.starts = np.zeros(self.n_fft // 2 + 1, np.int64)
        self._last: np.ndarray | None = None  # the previous frame's holes [bins]

    def update(self, mono: np.ndarray) -> None:
        buf = np.concatenate([self._pending, np.asarray(mono, np.float32)])
        count = buf.size // self.n_fft
        self._pending = buf[count * self.n_fft :]
        if count == 0:
            return
        spec = rfft(buf[: count * self.n_fft].reshape(count, self.n_fft) * self._window, axis=-1)
        power = (spec.real**2 + spec.imag**2) / self._norm
        ref = uniform_filter1d(power, HOLE_NEIGHBOURHOOD_BINS, axis=1, mode="nearest")
        active = ref > ACTIVE_POWER
        holes = (power < ref * 10 ** (-HOLE_DEPTH_DB / 10)) & active
        self.holes += holes.sum(axis=0)
        self.active += active.sum(axis=0)
        chain = holes if self._last is None else np.concatenate([self._last[None], holes])
        self.followed += chain[:-1].sum(axis=0)
        self.repeated += (chain[:-1] & chain[1:]).sum(axis=0)
        self.starts[0] += holes[:, 0].sum()
        self.starts[1:] += (holes[:, 1:] & ~holes[:, :-1]).sum(axis=0)
        self._last = holes[-1]

    def _band(self, low_hz: float, high_hz: float) -> np.ndarray:
        """Mask ``[bins]`` of the bins from ``low_hz`` to ``high_hz``."""
        freqs = np.arange(self.holes.size) * self.sample_rate / self.n_fft
        return (freqs >= low_hz) & (freqs <= high_hz)

    @staticmethod
    def _below(cutoff_hz: float) -> tuple[float, float]:
        """The band (Hz) just under a cutoff that every ``*_below`` figure uses."""
        return 0.6 * cutoff_hz, cutoff_hz - 300.0

    def fraction(self, low_hz: float, high_hz: float) -> float:
        """Share of active bins between ``low_hz`` and ``high_hz`` that were holes."""
        band = self._band(low_hz, high_hz)
        active = self.active[band].sum()
        return float(self.holes[band].sum() / active) if active else 0.0

    def fraction_below(self, cutoff_hz: float) -> float:
        """Hole share in the band just under a cutoff: 0.6 x cutoff up to cutoff - 300 Hz."""
        return self.fraction(*self._below(cutoff_hz))

    def persistence_below(self, cutoff_hz: float) -> float:
        """Share of the holes in the band of :meth:`fraction_below` that are holes in the next
        frame too (0 when there are none)."""
        band = self._band(*self._below(cutoff_hz))
        followed = self.followed[band].sum()
        return float(self.repeated[band].sum() / followed) if followed else 0.0

    def run_bins_below(self, cutoff_hz: float) -> float:
        """Mean length (bins) of the runs of adjacent holes in that band (0 when there are none)."""
        band = self._band(*self._below(cutoff_hz))
        starts = self.starts[band].sum()
        return float(self.holes[band].sum() / starts) if starts else 0.0


def source_rate(cutoff_hz: float, sample_rate: int) -> int | None:
    """The standard rate below ``sample_rate`` whose Nyquist explains a wall at ``cutoff_hz``."""
    lo, hi = RESAMPLER_WALL
    fits = [r for r in STANDARD_RATES if r < sample_rate and lo * r / 2 <= cutoff_hz <= hi * r / 2]
    return min(fits, key=lambda r: abs(cutoff_hz / (r / 2) - 0.96)) if fits else None


def codec_holes(fraction: float, persistence: float = 1.0, run_bins: float = 2.0) -> bool:
    """Whether holes (:class:`HoleCounter` figures under the cutoff) look like a codec's: enough
    of them, and, under ``CLEAR_HOLE_FRACTION``, lasting and wider than single bins."""
    if fraction >= CLEAR_HOLE_FRACTION:
        return True
    return fraction >= HOLE_FRACTION and persistence >= HOLE_PERSISTENCE and run_bins >= HOLE_RUN_BINS


def classify(est: CutoffEstimate, sample_rate: int, hole_fraction: float,
             wall_hz: float | None = None, hole_persistence: float = 1.0,
             hole_run_bins: float = 2.0, resampler_wall_hz: float | None = None) -> tuple[str | None, bool, str]:
    """``(codec_guess, lossy_fingerprint, verdict)`` for a cutoff estimate.

    ``wall_hz``: a steep wall (an encoder's or a resampler's) found above a gentle cutoff (Hz), or
    ``None``; a gentle cutoff is classified as a steep one at that wall would be.
    ``hole_persistence``, ``hole_run_bins``: :meth:`HoleCounter.persistence_below` and
    :meth:`HoleCounter.run_bins_below` (see :func:`codec_holes`).
    ``resampler_wall_hz``: a steep wall above a steep cutoff where a resampler would put one (the
    content of a file upsampled from that rate stops below its band limit), or ``None``: such a
    cutoff reads as resampled, not as an encoder's low-pass, unless the holes are a codec's.
    ``codec_guess`` is ``None`` (full band, silent or gentle roll-off), ``"opus"``,
    ``"mp3/aac"``, ``"telephone band"`` or ``"resampled from N Hz"``.
    """
    khz = f"{est.hz / 1000:.1f} kHz"
    if est.full_band:
        return None, False, f"full band: content reaches {khz} (Nyquist {sample_rate / 2000:.1f} kHz)"
    if not est.steep:
        if wall_hz is None:
            return None, False, f"content fades out above {khz}: gentle roll-off (dark source or soft filter), no band limit"
        guess, lossy, verdict = classify(CutoffEstimate(wall_hz, [wall_hz], False, True), sample_rate, hole_fraction,
                                         hole_persistence=hole_persistence, hole_run_bins=hole_run_bins)
        return guess, lossy, f"content fades out above {khz} under a steep wall at {verdict.removeprefix('content stops at ')}"
    if est.hz < SPARSE_MAX_HZ:
        return None, False, f"content stops at {khz}: a tone or a sparse signal, not a band-limited recording"
    if reaches_band_edge(est.top_hz, sample_rate) and not codec_holes(hole_fraction, hole_persistence, hole_run_bins):
        return None, False, (f"content reaches {est.top_hz / 1000:.1f} kHz, the band edge of its "
                             f"{sample_rate / 1000:g} kHz rate, falling from {khz}: band-limited by its sample rate")
    rate = source_rate(est.hz, sample_rate)
    under = ""
    if rate is None and resampler_wall_hz is not None:
        rate = source_rate(resampler_wall_hz, sample_rate)
        under = f" under a resampler's wall at {resampler_wall_hz / 1000:.1f} kHz" if rate else ""
    if sample_rate == 48_000 and OPUS_WALL_HZ[0] <= est.hz <= OPUS_WALL_HZ[1]:
        return "opus", True, f"content stops at {khz}: probably Opus-encoded"
    if codec_holes(hole_fraction, hole_persistence, hole_run_bins) or (
            rate is None and TELEPHONE_MAX_HZ < est.hz <= CODEC_MAX_WALL_HZ):
        also = f" or upsampled from {rate / 1000:g} kHz" if rate else ""
        return "mp3/aac", True, f"content stops at {khz}: probably MP3/AAC-encoded{also}"
    if rate is None and est.hz > CODEC_MAX_WALL_HZ:
        return None, False, (f"content stops at {khz}: a steep low-pass above the audio band "
                             "(a hi-res recording's own filter; lossy codecs stop by 24 kHz)")
    if est.hz <= TELEPHONE_MAX_HZ:
        return "telephone band", False, f"content stops at {khz}: narrow-band speech or telephone audio (8 kHz source)"
    return (
        f"resampled from {rate} Hz", False,
        f"content stops at {khz}{under}: probably upsampled from {rate / 1000:g} kHz (or MP3/AAC-encoded)",
    )
