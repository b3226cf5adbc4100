"""``audio-upscaler`` command line: thin sub-commands over the library.

Exit codes: 0 success, 2 a problem with the input or the request (one line on stderr),
1 an internal error (traceback only with ``--verbose``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from .. import __version__
from ..errors import UpscalerError

#: Sub-command name -> module (in this package) with ``add_parser(subparsers)`` and ``run(args)``.
COMMANDS = {
    "upscale": "upscale",
    "analyze": "analyze",
    "doctor": "doctor",
    "data": "data",
    "models": "models",
    "evaluate": "evaluate",
    "benchmark": "benchmark",
    "train": "train",
    "tune": "tune",
    "batch": "batch",
    "ui": "ui",
    "stream": "stream",
    "export": "export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-upscaler",
        description="Restore the missing high frequencies of band-limited audio.",
    )
    parser.add_argument("--version", action="version", version=f"audio-upscaler {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        import_module(f"{__name__}.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    verbose = args.verbose
    try:
        return int(args.run(args) or 0)
    except UpscalerError as exc:
        if verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal bug: say so, keep the traceback for --verbose
        if verbose:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
