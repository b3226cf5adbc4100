"""``audio-upscaler export MODEL --format onnx|torchscript [--quantize int8] [--prune 0.5] -o OUT``:
export a model, check it against PyTorch, and report size, speed and quality."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UpscalerError
from .common import add_verbose, print_json

QUANTIZE = {"int8": "dynamic", "int8-static": "static"}


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or TorchScript (optionally int8 or pruned), checked against PyTorch")
    p.add_argument("model", help="installed model name, or a model folder (model.safetensors + config.json)")
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"), help="output format (default onnx)")
    p.add_argument("--quantize", choices=tuple(QUANTIZE),
                   help="int8: int8 weights (dynamic); int8-static: int8 weights and activations calibrated on the check clips")
    p.add_argument("--prune", type=float, metavar="SPARSITY", help="first zero this fraction (0-1) of the weights")
    p.add_argument("--prune-method", default="magnitude", choices=("magnitude", "random"), help="which weights to zero")
    p.add_argument("--fine-tune-steps", type=int, default=0, metavar="N",
                   help="after pruning, N steps pulling the output back towards the unpruned model's")
    p.add_argument("--clip", action="append", default=[], metavar="FILE",
                   help="audio file for the checks and calibration (repeatable; default: a synthesized clip)")
    p.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    p.add_argument("--force", action="store_true", help="try ONNX even when the family does not declare support")
    p.add_argument("--no-speed", action="store_true", help="skip the x-real-time measurements")
    p.add_argument("-o", "--output", help="output folder (default: MODEL's folder in the user models folder, /<format>[-int8])")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an export already in the -o folder (the default folder is always refreshed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..export.job import default_subdir, export_model
    from ..export.manifest import MANIFEST_FILE
    from ..models import registry
    from ..models.base import UpscalerModel

    quantize = QUANTIZE.get(args.quantize)
    if args.output == "":
        raise UpscalerError("the output folder (-o) is empty")
    if args.fine_tune_steps < 0:
        raise UpscalerError(f"--fine-tune-steps must be 0 or more, got {args.fine_tune_steps}")
    folder = Path(args.model)
    if folder.is_dir():
        model, root, source = UpscalerModel.load(folder), folder, folder
    else:  # source: the folder the weights load from (shipped, or the user's), fingerprinted in export.json
        source, root = registry.model_path(args.model), registry.user_dir() / args.model
        model = registry.load_model(args.model)
    out = Path(args.output) if args.output else root / default_subdir(args.format, quantize)
    if args.output and (out / MANIFEST_FILE).is_file() and not args.overwrite:
        raise UpscalerError(f"{out} already holds an export; pass --overwrite to replace it")
    report = export_model(model, out, fmt=args.format, quantize=quantize, sparsity=args.prune or 0.0,
                          prune_method=args.prune_method, fine_tune_steps=args.fine_tune_steps, clip_files=args.clip,
                          opset=args.opset, force=args.force, speed_seconds=0.0 if args.no_speed else 4.0,
                          source=source)
    if args.json:
        print_json({"output": str(out), **report})
    else:
        print(summary(report, out), file=sys.stderr)
    return 0


def summary(report: dict, out: Path) -> str:
    """A few human-readable lines from an export report."""
    lines = [f"exported {report['family']} to {out} ({report['format']}, {report['bytes'] / 1e6:.2f} MB); "
             f"max abs error vs PyTorch {report['max_abs_error']:.1e}"]
    if "pruning" in report:
        p = report["pruning"]
        lines.append(f"pruned ({p['method']}) to {100 * p['sparsity']:.0f}% zeros: compressed weights "
                     f"{p['compressed_bytes_before'] / 1e6:.2f} -> {p['compressed_bytes_after'] / 1e6:.2f} MB, "
                     f"LSD {p['lsd_before']:.3f} -> {p['lsd_after']:.3f} (vs the unpruned output {p['lsd_vs_unpruned']:.3f})")
    if "int8" in report:
        q = report["int8"]
        lines.append(f"int8 ({q['mode']}): {q['bytes_fp32'] / 1e6:.2f} -> {q['bytes_int8'] / 1e6:.2f} MB, "
                     f"LSD {q['lsd_fp32']:.3f} -> {q['lsd_int8']:.3f} (vs the fp32 output {q['lsd_vs_fp32']:.3f})")
    if "x_real_time" in report:
        lines.append("x real time: " + ", ".join(f"{k} {v:g}" for k, v in report["x_real_time"].items()))
    return "\n".join(lines)
