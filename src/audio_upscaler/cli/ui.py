"""``audio-upscaler ui``: serve the web UI (localhost unless told otherwise)."""

from __future__ import annotations

import ipaddress
import sys

from .common import add_verbose

LOCAL_HOSTS = ("localhost",)


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="start the web UI (Studio, Batch, Model Lab, Benchmark)",
                       description="Serve the Gradio web UI. It listens on 127.0.0.1 only, unless --host names "
                                   "another address and --allow-remote is given.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than localhost (anyone who reaches it can use the UI)")
    p.add_argument("--root", action="append", default=[], metavar="DIR",
                   help="folder the Batch, Benchmark and Model Lab tabs may read (repeat for several)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted file in MiB (default 200)")
    p.add_argument("--max-duration", type=float, default=1800.0, metavar="S",
                   help="longest accepted audio in seconds (default 1800)")
    p.add_argument("--max-jobs", type=int, default=2, help="upscale/batch/benchmark jobs at once (default 2)")
    p.add_argument("--runs-dir", default="runs", help="training runs folder for Model Lab (default runs)")
    p.add_argument("--work-dir", help="parent of the per-session folders (default: a temporary folder)")
    add_verbose(p)
    p.set_defaults(run=run)


def is_local(host: str) -> bool:
    """True for loopback addresses and ``localhost``."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    from pathlib import Path

    from ..errors import UpscalerError
    from ..ui.settings import UISettings

    if not is_local(args.host):
        if not args.allow_remote:
            raise UpscalerError(f"--host {args.host} exposes the UI to the network; add --allow-remote to do so")
        print(f"warning: listening on {args.host}:{args.port}: anyone who can reach it can upload files, "
              "run jobs and read the --root folders", file=sys.stderr)
    try:
        from ..ui.app import launch
    except ImportError as exc:
        raise UpscalerError(f"the web UI needs gradio: pip install 'audio-upscaler[ui]' ({exc})") from None
    settings = UISettings(roots=tuple(Path(r) for r in args.root), max_upload_mb=args.max_upload_mb,
                          max_duration_s=args.max_duration, max_jobs=args.max_jobs, runs_dir=Path(args.runs_dir),
                          work_dir=Path(args.work_dir) if args.work_dir else None)
    print(f"Audio Upscaler UI on http://{args.host}:{args.port} (Ctrl+C to stop)", file=sys.stderr)
    launch(settings, args.host, args.port, block=True)
    return 0
