"""``audio-upscaler benchmark DATA_DIR``: quality and speed of methods on degraded clean clips."""

from __future__ import annotations

import math

from .common import add_verbose, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="degrade clean clips, upscale them with each method, score and time them")
    p.add_argument("data", metavar="DATA_DIR",
                   help="folder of clean audio (kind from speech/ or music/ folders or NAME.json), or a corpus manifest")
    p.add_argument("--tasks", help="comma-separated benchmark tasks, e.g. bwe_8k_48k,mp3_128k (default: all seven)")
    p.add_argument("--methods",
                   help="comma-separated methods: sinc (plain resampling), sbr, or model names (default: sinc,sbr)")
    p.add_argument("--out", default="report", help="report folder (default: report); re-running resumes")
    p.add_argument("--max-clips", type=int, metavar="N", help="use only the first N clips (speech and music interleaved)")
    p.add_argument("--seconds", type=float, metavar="S", help="cut every clip to its first S seconds")
    p.add_argument("--plots", type=int, default=2, metavar="N",
                   help="keep the audio of the first N clips of each task and plot their spectrograms (default 2)")
    p.add_argument("--split", default="validation", help="manifest split to use, or 'all' (default: validation)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the degradations (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--json", action="store_true", help="print the summary rows as JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..bench import DEFAULT_METHODS, DEFAULT_TASKS, run_benchmark

    tasks = _names(args.tasks) if args.tasks is not None else DEFAULT_TASKS
    methods = _names(args.methods) if args.methods is not None else DEFAULT_METHODS
    results = run_benchmark(
        args.data, tasks, methods, args.out, max_clips=args.max_clips,
        seconds=args.seconds, plot_clips=args.plots, split=None if args.split == "all" else args.split,
        seed=args.seed, progress=not (args.quiet or args.json),
    )
    if args.json:
        print_json(results["summary"])
    elif not args.quiet:
        print("\n".join(summary_lines(results, args.out)))
    items = results["items"]
    if items and all(item["status"] != "ok" for item in items):
        from ..errors import UpscalerError

        raise UpscalerError(f"all {len(items)} items failed, nothing was measured (reasons in {args.out}/README.md)")
    return 0


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def summary_lines(results: dict, out: str) -> list[str]:
    """Mean LSD, LSD-HF, ratio to sinc and speed per task and method (all clips), then where
    the report is and how many items failed."""
    from ..bench.report import overview_rows

    lines = [f"{'task':<15} {'method':<10} {'clips':>5} {'LSD':>6} {'LSD-HF':>7} {'/sinc':>6} {'x RT':>7}"]
    for row in overview_rows(results["summary"]):
        lines.append(f"{row['task']:<15} {row['method']:<10} {row['clips']:>5} {_f(row['lsd']):>6} "
                     f"{_f(row['lsd_hf']):>7} {_f(row['lsd_ratio_to_sinc']):>6} {_f(row['realtime_factor'], 1):>7}")
    failed = sum(item["status"] != "ok" for item in results["items"])
    lines.append(f"report: {out}/README.md, results.json, results.csv ({len(results['items'])} items, {failed} failed)")
    return lines


def _f(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"
