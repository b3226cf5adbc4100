"""``audio-upscaler batch IN_DIR -o OUT_DIR``: upscale a whole folder, locally or on a Ray cluster.

Takes the options of ``upscale``.  One failing file never stops the batch: each is listed with
its reason on stderr and in ``OUT_DIR/batch-summary.json``, and the exit code is then 2.
Re-running the same command skips finished files and redoes unfinished ones.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..errors import UpscalerError
from ..io_formats import extension_for
from .common import print_json
from .upscale import RUNTIMES, add_upscale_options, output_format, upscaler_options


def add_parser(sub) -> None:
    from ..batch import BACKENDS

    p = sub.add_parser("batch", help="upscale every audio file of a folder (resumable; local processes or a Ray cluster)")
    p.add_argument("in_dir", metavar="IN_DIR", help="folder of input files")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="output folder; the input tree is mirrored there")
    p.add_argument("--recursive", action="store_true", help="also process sub-folders")
    p.add_argument("--pattern", help="only file names matching this glob, e.g. '*.mp3' (default: every audio extension)")
    p.add_argument("-j", "--jobs", type=int, help="files processed at once (default: by CPU cores and memory, "
                   "or the cluster's CPUs with Ray)")
    p.add_argument("--backend", choices=BACKENDS, help="local processes (default) or Ray tasks")
    p.add_argument("--runtime", default="torch", choices=RUNTIMES,
                   help="runtime of neural models: torch, or onnxruntime for exports made with 'export'")
    p.add_argument("--ray-address", metavar="auto|HOST:PORT", help="Ray cluster to run on (implies --backend ray; "
                   "default: $RAY_ADDRESS, else a new local Ray instance)")
    add_upscale_options(p, format_default="flac")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..batch import run_batch

    backend = args.backend or ("ray" if args.ray_address else "local")
    if args.ray_address and backend != "ray":
        raise UpscalerError("--ray-address needs the Ray backend (--backend ray)")
    fmt = output_format(args, f"out.{extension_for(args.format or 'flac')}")
    quiet = args.quiet or args.json
    bar = BatchProgress(quiet)
    try:
        summary = run_batch(
            args.in_dir, args.output, {**upscaler_options(args), "backend": args.runtime}, fmt, pattern=args.pattern, recursive=args.recursive,
            jobs=args.jobs, backend=backend, ray_address=args.ray_address, overwrite=args.overwrite,
            on_start=bar.start, on_result=bar.update,
        )
    finally:
        bar.close()
    if args.json:
        print_json(summary.to_dict())
    totals, *failures = summary.lines()
    for line in failures if quiet else [totals, *failures]:
        print(line, file=sys.stderr)
    return 2 if failures else 0


class BatchProgress:
    """Files done of files to do, with files/s and the time left, on stderr."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._bar: tqdm | None = None
        self._failed = 0

    def start(self, to_run: int, skipped: int) -> None:
        if self._quiet:
            return
        desc = f"batch ({skipped} already done)" if skipped else "batch"
        self._bar = tqdm(total=to_run, desc=desc, unit="file", file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self, result) -> None:
        if self._bar is None:
            return
        if result.status == "failed":
            self._failed += 1
            self._bar.set_postfix(failed=self._failed, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
