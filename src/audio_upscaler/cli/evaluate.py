"""``audio-upscaler evaluate --reference REF --estimate EST``: every metric for one pair of files."""

from __future__ import annotations

import math

from ..errors import UpscalerError
from .common import add_verbose, print_json

#: A length difference beyond the delay larger than this (seconds) is pointed out.
LENGTH_NOTE_SECONDS = 0.01
#: Rows of the text table: (metric key, label, unit / note, digits).
ROWS = (
    ("lsd", "LSD", "log10 power, lower is better", 3),
    ("lsd_hf", "LSD-HF", "above the input cutoff", 3),
    ("lsd_lf", "LSD-LF", "at or below the input cutoff", 3),
    ("lsd_ssr", "LSD (ssr_eval)", "", 3),
    ("snr", "SNR", "dB", 2),
    ("si_sdr", "SI-SDR", "dB", 2),
    ("sdr", "SDR", "dB", 2),
    ("spectral_convergence", "spectral convergence", "lower is better", 4),
    ("spectrogram_ssim", "spectrogram SSIM", "1 = identical", 4),
    ("centroid_distance_hz", "centroid distance", "Hz", 1),
    ("rolloff_distance_hz", "roll-off distance", "Hz", 1),
    ("mfcc_distance", "MFCC distance", "", 3),
    ("pesq_wb", "PESQ (wide band)", "MOS 1-4.64", 3),
    ("stoi", "STOI", "0-1", 4),
)


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score an estimate (e.g. an upscaled file) against a clean reference")
    p.add_argument("--reference", required=True, metavar="FILE", help="the clean reference")
    p.add_argument("--estimate", required=True, metavar="FILE",
                   help="the file to score (resampled to the reference's rate if needed)")
    p.add_argument("--input-cutoff", type=float, metavar="HZ",
                   help="band limit of the degraded input: splits LSD into LSD-HF / LSD-LF there")
    p.add_argument("--speech", action="store_true", help="also compute PESQ (wide band) and STOI")
    p.add_argument("--no-align", action="store_true", help="do not search for and remove a constant delay")
    p.add_argument("--max-delay", type=float, default=0.1, metavar="S", help="largest delay searched (default 0.1 s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..dsp.resample import resample
    from ..io import read_audio
    from ..metrics import evaluate_pair

    reference, estimate = read_audio(args.reference), read_audio(args.estimate)
    rate = reference.sample_rate
    if args.input_cutoff is not None and not 0 < args.input_cutoff < rate / 2:
        raise UpscalerError(f"--input-cutoff must lie between 0 and {rate / 2:g} Hz (the reference's Nyquist)")
    if not (math.isfinite(args.max_delay) and args.max_delay >= 0):
        raise UpscalerError("--max-delay must be a non-negative number of seconds")
    if estimate.channels != reference.channels:
        raise UpscalerError(f"the reference has {reference.channels} channels, the estimate {estimate.channels}")
    samples = estimate.samples
    if estimate.sample_rate != rate:
        samples = resample(samples, estimate.sample_rate, rate)
    metrics = evaluate_pair(reference.samples, samples, rate, input_cutoff_hz=args.input_cutoff,
                            align=not args.no_align, speech=args.speech, max_delay_s=args.max_delay)
    result = {
        "reference": _describe(args.reference, reference),
        "estimate": {**_describe(args.estimate, estimate), "resampled_to": rate if estimate.sample_rate != rate else None},
        "input_cutoff_hz": args.input_cutoff, "aligned": not args.no_align, "metrics": metrics,
    }
    if args.json:
        print_json(result)
    else:
        print("\n".join(summary_lines(result, args)))
    return 0


def _describe(path: str, audio) -> dict:
    return {"path": str(path), "sample_rate": audio.sample_rate, "channels": audio.channels,
            "duration_s": round(audio.duration, 4)}


def summary_lines(result: dict, args) -> list[str]:
    """The readable report: the two files, resampling and delay notes, then a metric table."""
    ref, est, metrics = result["reference"], result["estimate"], result["metrics"]
    lines = [f"{role:<10} {d['path']}: {d['sample_rate']} Hz, {d['channels']} ch, {d['duration_s']:.2f} s"
             for role, d in (("reference", ref), ("estimate", est))]
    if est["resampled_to"]:
        lines.append(f"note: the estimate was resampled from {est['sample_rate']} Hz to {ref['sample_rate']} Hz")
    lag = int(metrics["delay_samples"])
    if not result["aligned"]:
        lines.append("delay: not searched (--no-align); both cut to the shorter length")
    elif lag == 0:
        lines.append("delay: none found")
    else:
        direction = "lags" if lag > 0 else "leads"
        lines.append(f"delay: the estimate {direction} the reference by {abs(lag)} samples "
                     f"({abs(metrics['delay_ms']):.2f} ms); removed before scoring")
    rate = ref["sample_rate"]
    if result["aligned"] and lag and abs(lag) >= int(args.max_delay * rate):
        lines.append(f"note: that delay is the largest searched (--max-delay {args.max_delay:g} s); a larger real "
                     "delay would make every score below wrong: raise --max-delay")
    extra = abs(metrics["length_difference"]) - abs(lag)
    if extra > LENGTH_NOTE_SECONDS * rate:
        which = "shorter" if metrics["length_difference"] < 0 else "longer"
        lines.append(f"note: the estimate is {abs(metrics['length_difference']) / rate:.2f} s {which} than the "
                     "reference; only the part both cover is scored")
    lines.append("")
    for key, label, note, digits in ROWS:
        value = metrics[key]
        if math.isnan(value):
            text, note = "n/a", _why_missing(key, args)
        else:
            text = _number(value, digits)
        lines.append(f"{label:<22} {text:>12}  {note}".rstrip())
    return lines


def _number(value: float, digits: int) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _why_missing(key: str, args) -> str:
    if key in ("lsd_hf", "lsd_lf") and args.input_cutoff is None:
        return "needs --input-cutoff"
    if key in ("pesq_wb", "stoi") and not args.speech:
        return "needs --speech"
    return "cannot be computed for this pair"
