"""Artifact checks that LSD and SNR miss: tonal "birdies", buzzing in silence, seams at chunk
edges, stereo image shifts and level changes, measured on an upscaler's output.

Each check runs the real pipeline (:class:`~audio_upscaler.pipeline.Upscaler`) on a test signal
built from clean clips ``[channels, time]`` at 48 kHz and returns plain figures (dB, counts);
``scripts/check_artifacts.py`` prints them for a model next to the ``sbr`` baseline and draws
spectrograms to look at. The checks:

* **silence**: digital silence between phrases must stay digital silence, and a quiet noise
  floor (-60 dBFS) must not get a generated band louder than the clean noise has there.
* **tonal peaks** ("birdies"): narrow peaks in the long-term spectrum above the cutoff, more than
  ``PEAK_DB`` over their neighbourhood, that the clean reference does not have at that frequency
  and that are louder there than the reference.
* **chunk seams**: the output processed in 1-second chunks against one-piece processing.
* **stereo**: dual-mono input must stay dual-mono; a source panned 6 dB left must keep its
  6 dB level difference in the generated band.
* **level**: the band below the cutoff and the integrated loudness keep their level.

Every check takes a benchmark ``task``: a resampling task (default ``bwe_8k_48k``) feeds the
pipeline the low-rate signal, a codec task (``mp3_64k``, for ``restore``) the decoded audio at the
task's rate (44.1 kHz, like a real MP3 file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ..audio import Audio
from ..degrade import apply_task
from ..degrade.tasks import TASKS
from ..dsp.resample import resample
from ..levels import to_db
from ..loudness import LoudnessMeter

RATE = 48_000
#: A long-term spectrum bin standing this far (dB) above its neighbourhood is a tonal peak.
PEAK_DB = 12.0
#: Neighbourhood of the tonal-peak test (Hz).
PEAK_SPAN_HZ = 200.0
#: Welch segment for long-term spectra (5.9 Hz bins at 48 kHz).
WELCH_SEGMENT = 8192
QUIET_NOISE_DBFS = -60.0


@dataclass
class CheckInput:
    """A band-limited test input: ``low`` at ``input_rate`` and the clean ``reference`` at 48 kHz."""

    low: np.ndarray
    input_rate: int
    cutoff_hz: float
    reference: np.ndarray


DEFAULT_TASK = "bwe_8k_48k"


def band_limited(clean: np.ndarray, task: str = DEFAULT_TASK) -> CheckInput:
    """Degrade clean 48 kHz audio ``[channels, time]`` with benchmark task ``task`` (see the module
    docstring); the reference stays at 48 kHz."""
    spec = TASKS[task]
    if spec.codec is None:
        out = apply_task(task, clean, RATE)
        return CheckInput(out.low_rate_input, spec.input_rate, out.cutoff_hz, clean)
    rate = spec.reference_rate
    out = apply_task(task, resample(clean, RATE, rate), rate)
    return CheckInput(out.degraded, rate, out.cutoff_hz, clean)


def run(upscaler, check: CheckInput) -> np.ndarray:
    """The upscaler's output for ``check``, trimmed to the reference's length: ``[channels, time]``."""
    out = upscaler.upscale(Audio(check.low, check.input_rate)).samples
    return out[:, : check.reference.shape[1]]


def level_dbfs(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (``-inf`` for silence or no samples)."""
    return to_db(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0)


def band_level_db(x: np.ndarray, low_hz: float, high_hz: float) -> float:
    """RMS level (dBFS) of ``x [channels, time]`` between ``low_hz`` and ``high_hz`` (FFT band)."""
    spec = np.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / RATE)
    spec[..., (freqs < low_hz) | (freqs >= high_hz)] = 0
    return level_dbfs(np.fft.irfft(spec, n=x.shape[-1], axis=-1))


def silence_test_signal(clean: np.ndarray) -> np.ndarray:
    """``clean``, 1 s of digital silence, 1 s of white noise at ``QUIET_NOISE_DBFS``, ``clean``."""
    noise = np.random.default_rng(0).standard_normal((clean.shape[0], RATE)) * 10 ** (QUIET_NOISE_DBFS / 20)
    return np.concatenate([clean, np.zeros_like(noise), noise, clean], axis=1).astype(np.float32)


def silence_check(upscaler, clean: np.ndarray, task: str = DEFAULT_TASK) -> dict:
    """Phrase, 1 s digital silence, 1 s quiet noise (the input's band only), phrase again.

    Returns the output level in the silent second (dBFS; ``-inf`` when exactly zero) and, for the
    quiet (white) noise, the generated band's level minus the clean reference's level in that
    band (dB; buzz or hiss that the model adds to a noise floor shows as a large positive value).
    """
    second = RATE
    padded = silence_test_signal(clean)
    check = band_limited(padded, task)
    out = run(upscaler, check)
    n = clean.shape[1]
    margin = RATE // 10  # the phrases' own tails and the filters' reach
    silent = out[:, n + margin: n + second - margin]
    noisy = out[:, n + second + margin: n + 2 * second - margin]
    truth = padded[:, n + second + margin: n + 2 * second - margin]
    band = (check.cutoff_hz * 1.05, RATE / 2)
    return {"silence_dbfs": level_dbfs(silent),
            "quiet_noise_band_vs_reference_db": band_level_db(noisy, *band) - band_level_db(truth, *band)}


def long_term_db(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectrum of the channel mean: ``(freqs [bins] Hz, power [bins] dB)``."""
    freqs, power = signal.welch(x.mean(axis=0), RATE, nperseg=WELCH_SEGMENT)
    return freqs, 10 * np.log10(power + 1e-20)


def tonal_peaks(x: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Frequencies (Hz) between ``low_hz`` and ``high_hz`` where the long-term spectrum stands
    ``PEAK_DB`` above the median of its ``PEAK_SPAN_HZ`` neighbourhood."""
    freqs, db = long_term_db(x)
    span = int(PEAK_SPAN_HZ / (freqs[1] - freqs[0])) | 1
    excess = db - signal.medfilt(db, span)
    band = (freqs >= low_hz) & (freqs < high_hz)
    local_max = np.r_[False, (db[1:-1] >= db[:-2]) & (db[1:-1] >= db[2:]), False]
    return freqs[band & local_max & (excess > PEAK_DB)]


def birdie_check(output: np.ndarray, reference: np.ndarray, cutoff_hz: float) -> dict:
    """Tonal peaks of ``output`` above the cutoff, and how many of them the reference lacks: no
    reference peak within 3 bins, and the output louder than the reference in that bin (a peak
    that only stands out because the output is quieter than the reference around it adds no tone)."""
    top = 0.98 * RATE / 2
    ours, theirs = tonal_peaks(output, cutoff_hz * 1.05, top), tonal_peaks(reference, cutoff_hz * 1.05, top)
    freqs, our_db = long_term_db(output)
    their_db = long_term_db(reference)[1]
    tolerance = 3 * RATE / WELCH_SEGMENT
    at = lambda f: int(np.argmin(np.abs(freqs - f)))  # noqa: E731
    extra = [f for f in ours if (theirs.size == 0 or np.min(np.abs(theirs - f)) > tolerance)
             and our_db[at(f)] > their_db[at(f)]]
    return {"tonal_peaks": int(ours.size), "reference_peaks": int(theirs.size), "extra_peaks": len(extra)}


def seam_check(make_upscaler, clean: np.ndarray, task: str = DEFAULT_TASK) -> dict:
    """Largest difference (dBFS) between 1-second chunks and one-piece processing."""
    check = band_limited(clean, task)
    chunked = run(make_upscaler(chunk_seconds=1.0), check)
    whole = run(make_upscaler(chunk_seconds=clean.shape[1] / RATE + 1.0), check)  # one chunk
    return {"chunk_seam_max_dbfs": to_db(float(np.max(np.abs(chunked - whole))))}


def stereo_check(upscaler, mono: np.ndarray, task: str = DEFAULT_TASK) -> dict:
    """Dual-mono stays dual-mono (largest L-R difference, dBFS); a source panned 6.02 dB left
    keeps its level difference in the generated band (error in dB). The generated band's level
    (dBFS, both channels) and the clean reference's in the same band say whether that error
    lies in an audible band: many clips have next to nothing above a codec's cutoff."""
    dual = run(upscaler, band_limited(np.repeat(mono[:1], 2, axis=0), task))
    panned_in = np.concatenate([mono[:1], 0.5 * mono[:1]])
    check = band_limited(panned_in, task)
    out = run(upscaler, check)
    band = (check.cutoff_hz * 1.05, RATE / 2)
    left, right = (band_level_db(out[i : i + 1], *band) for i in (0, 1))
    return {"dual_mono_lr_max_dbfs": to_db(float(np.max(np.abs(dual[0] - dual[1])))),
            "panned_ild_error_db": (left - right) - 20 * np.log10(2.0),
            "panned_band_dbfs": band_level_db(out, *band),
            "panned_reference_band_dbfs": band_level_db(check.reference, *band)}


def loudness_lufs(x: np.ndarray) -> float:
    meter = LoudnessMeter(RATE, x.shape[0])
    meter.update(x)
    return meter.integrated()


def level_check(upscaler, clean: np.ndarray, task: str = DEFAULT_TASK) -> dict:
    """Level change of the kept band (dB) and of the integrated loudness (LU), output vs the
    plainly resampled input, and the kept band's level against the clean reference's (dB; a
    codec's decoded output is often a little quieter than what was encoded)."""
    from ..pipeline import Upscaler

    check = band_limited(clean, task)
    out = run(upscaler, check)
    plain = run(Upscaler("none", RATE, limiter=False), check)
    below = 0.9 * check.cutoff_hz
    return {"kept_band_change_db": band_level_db(out, 0, below) - band_level_db(plain, 0, below),
            "kept_band_vs_reference_db": band_level_db(out, 0, below) - band_level_db(check.reference, 0, below),
            "loudness_change_lu": loudness_lufs(out) - loudness_lufs(plain)}


def make_upscaler(method: str, task: str = DEFAULT_TASK, **options):
    """The pipeline for a benchmark method name (a model name, or ``MODEL+check``: with the codec
    check against ``task``'s codec) at 48 kHz, without the limiter."""
    from . import runner

    return runner.make_upscaler(method, task, RATE, limiter=False, **options)


def check_model(model: str, clips: dict[str, np.ndarray], task: str = DEFAULT_TASK) -> dict:
    """Every check for ``model`` (a benchmark method name, see :func:`make_upscaler`) on mono clean
    clips ``{name: [1, T]}`` at 48 kHz degraded by ``task``; the birdie check runs per clip, the
    others on the first clip (silence, seams and level on the clips joined)."""

    def make(**kw):
        return make_upscaler(model, task, **kw)

    joined = np.concatenate(list(clips.values()), axis=1)
    first = next(iter(clips.values()))
    report = {"model": model, **silence_check(make(), first, task), **seam_check(make, joined, task),
              **stereo_check(make(), first, task), **level_check(make(), joined, task), "birdies": {}}
    for name, clean in clips.items():
        check = band_limited(clean, task)
        report["birdies"][name] = birdie_check(run(make(), check), clean, check.cutoff_hz)
    return report
