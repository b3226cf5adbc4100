"""``audio-upscaler upscale INPUT -o OUTPUT``: the main job."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from ..extenders import BACKENDS as RUNTIMES
from ..io_formats import FORMAT_NAMES
from .common import Progress, add_verbose, print_json

#: A DC offset (fraction of full scale, any channel) from which ``upscale`` says that the output
#: keeps it: -46 dBFS. The clips of the validation sets and the examples, which have none, measure
#: up to 0.0007 (their content's own mean over a few seconds).
DC_NOTE_LEVEL = 0.005


def add_parser(sub) -> None:
    p = sub.add_parser("upscale", help="restore the high band of a file and write it at a higher rate")
    p.add_argument("input", help="input audio file (any common format, or a video file)")
    p.add_argument("-o", "--output", help="output file (default: INPUT_upscaled.flac, or the --format's extension, "
                                           "next to the input)")
    add_upscale_options(p, format_default="from the extension")
    p.add_argument("--runtime", "--backend", dest="runtime", default="torch", choices=RUNTIMES,
                   help="runtime of neural models: torch, or onnxruntime for exports made with 'export' (no torch needed)")
    p.set_defaults(run=run)


def add_upscale_options(p, format_default: str) -> None:
    """The options ``upscale`` and ``batch`` share: model, rate, output format, processing, output."""
    p.add_argument("-r", "--rate", type=int, default=48_000, help="output sample rate in Hz (default 48000)")
    p.add_argument("-m", "--model", default="auto", help="auto (default), sbr, none, or a model name (see 'models')")
    p.add_argument("-f", "--format", choices=FORMAT_NAMES,
                   help=f"output format (default: {format_default}); m4a is AAC, alac is Apple Lossless in .m4a")
    p.add_argument("--bit-depth", type=int, choices=(16, 24, 32),
                   help="PCM bit depth (32 = float, WAV/AIFF only); with .m4a it means ALAC")
    p.add_argument("--bitrate", type=int, help="kbit/s for MP3 (CBR), Opus and AAC (.m4a)")
    p.add_argument("--vbr", type=float, metavar="Q", help="variable bitrate: MP3 quality 0 (best)-9, Vorbis quality 0-1")
    p.add_argument("--quality", default="vhq", choices=("vhq", "hq", "mq", "lq", "linear"), help="resampler quality")
    p.add_argument("--stereo", default="independent", choices=("independent", "mid-side"), help="stereo processing")
    p.add_argument("--normalize", type=float, metavar="DBFS", help="peak-normalize to this level, e.g. -1 (default: keep the level)")
    p.add_argument("--no-limiter", action="store_true", help="do not limit peaks (the output may clip)")
    p.add_argument("--remove-dc", action="store_true", help="remove DC offset from the input")
    p.add_argument("--cutoff", type=float, metavar="HZ", help="override the measured cutoff of the input")
    p.add_argument("--air", action="store_true", help="also invent content above 24 kHz (high target rates)")
    p.add_argument("--codec-check", action="store_true",
                   help="restoration models: re-encode the output with the input file's codec and bitrate and turn "
                        "down what that codec would have kept (more faithful to the original, about 2x slower)")
    p.add_argument("--source-codec", metavar="CODEC:KBPS",
                   help="the lossy codec a WAV/FLAC input was decoded from, e.g. mp3:128 (implies --codec-check)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    add_verbose(p)


def upscaler_options(args) -> dict:
    """``Upscaler`` keyword arguments from the options of :func:`add_upscale_options`."""
    return {
        "model": args.model, "target_rate": args.rate, "quality": args.quality, "stereo": args.stereo,
        "normalize_dbfs": args.normalize, "limiter": not args.no_limiter, "remove_dc": args.remove_dc,
        "air": args.air, "cutoff_hz": args.cutoff, "codec_check": args.codec_check, "source_codec": args.source_codec,
    }


def output_format(args, output: str):
    """The :class:`~audio_upscaler.io.OutputFormat` the options ask for (``output`` gives the default)."""
    from ..io import output_format_for

    return output_format_for(output, format=args.format, bit_depth=args.bit_depth, bitrate_kbps=args.bitrate, vbr=args.vbr)


def default_output(input_path: str, format: str | None = None) -> str:
    """``INPUT_upscaled.EXT`` next to the input; ``EXT`` is the format's (``io_formats.extension_for``)."""
    from ..io_formats import extension_for

    path = Path(input_path)
    return str(path.with_name(f"{path.stem}_upscaled.{extension_for(format or 'flac')}"))


def output_path(args) -> str:
    """The output file the options ask for; refuses an empty ``-o`` and a ``--format`` that
    contradicts the output's audio extension (FLAC data in ``x.wav``)."""
    from ..errors import UpscalerError
    from ..io_formats import EXTENSIONS, extension_for

    if args.output is None:
        return default_output(args.input, args.format)
    if not args.output:
        raise UpscalerError("the output file name (-o) is empty")
    suffix = Path(args.output).suffix.lower()
    meant = EXTENSIONS.get(suffix)
    if args.format and meant and meant != extension_for(args.format) and not (meant == "ogg" and args.format == "opus"):
        raise UpscalerError(
            f"--format {args.format} does not match the output's extension '{suffix}' ({meant}); "
            f"name the output .{args.format}, or leave out --format")
    return args.output


def run(args) -> int:
    from ..pipeline import SILENCE_PEAK_DBFS, Upscaler

    output = output_path(args)
    fmt = output_format(args, output)
    upscaler = Upscaler(**upscaler_options(args), backend=args.runtime)
    quiet = args.quiet or args.json

    def on_plan(plan) -> None:
        from ..models.registry import shadowing_user_folder

        if not quiet:
            user = shadowing_user_folder(plan.model)
            print(
                f"{args.input}: {plan.input_rate} Hz, {plan.channels} ch, {plan.duration_s:.1f} s; "
                f"{plan.cutoff_summary()} -> model '{plan.model}' ({plan.model_reason})"
                + (f" [weights from {user}, not the shipped ones]" if user else ""),
                file=sys.stderr,
            )

    progress = Progress("upscaling", unit_scale=args.rate, quiet=quiet)
    try:
        result = upscaler.upscale_file(args.input, output, fmt=fmt, overwrite=args.overwrite, progress=progress, on_plan=on_plan)
    finally:
        progress.close()
    if args.json:
        print_json(result.to_dict())
    elif not quiet:
        print(f"wrote {output} ({result.output_rate} Hz, {result.realtime_factor:.1f}x real time)", file=sys.stderr)
    if result.clipped_samples and not args.quiet:
        print(f"note: {result.clipped_samples} samples went beyond full scale and were clipped"
              + (" (the limiter is off: --no-limiter)" if args.no_limiter else ""), file=sys.stderr)
    if result.normalize_skipped and not args.quiet:
        print(f"note: normalization skipped: the output peak is under {SILENCE_PEAK_DBFS:g} dBFS "
              "(silence or near-silence)", file=sys.stderr)
    dc = max((abs(v) for v in getattr(result.report, "dc_offset", None) or []), default=0.0)
    if dc >= DC_NOTE_LEVEL and not args.remove_dc and not args.quiet:
        print(f"note: the input has a DC offset of {dc:.4f} of full scale ({20 * math.log10(dc):.0f} dBFS), kept in "
              "the output; --remove-dc removes it", file=sys.stderr)
    return 0
