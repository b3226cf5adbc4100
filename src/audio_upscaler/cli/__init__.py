"""``audio-upscaler`` command line: thin sub-commands over the library.

Exit codes: 0 success, 2 a problem with the input or the request (one line on stderr),
1 an internal error (traceback only with ``--verbose``), 130 interrupted (Ctrl-C), 141 when
the reader of the output went away (``analyze FILE | head -3``: SIGPIPE), quietly.

SIGTERM and SIGHUP first unwind like Ctrl-C does, so the writers delete their temporary files;
then the process ends by the same signal, so its parent sees it terminated (a shell reports
143 / 129, ``subprocess`` a return code of -15 / -1).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
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


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP (a ``BaseException``, like ``KeyboardInterrupt``,
    so that no ``except Exception`` swallows it on the way out)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum, frame) -> None:
    for name in ("SIGTERM", "SIGHUP"):  # a second signal must not interrupt the clean-up
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Terminated(signum)


def _catch_termination() -> dict:
    """Make SIGTERM/SIGHUP raise :class:`Terminated`; returns the handlers to restore."""
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):  # no SIGHUP on Windows
            try:
                previous[name] = signal.signal(getattr(signal, name), _terminate)
            except ValueError:  # not the main thread: leave the signals alone
                break
    return previous


def _end_by_signal(signum: int) -> None:
    """End this process by ``signum`` with its default action, once the clean-up is done."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _silence_stdout() -> None:
    """The reader of stdout is gone: point stdout at devnull so that the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (e.g. captured)
        pass


def _stdout_takes_any_name() -> str | None:
    """Let stdout print file names that are not valid UTF-8.

    Python gives such a name (``b"caf\\xe9.wav"``) as a str with surrogate escapes; a stdout
    with the ``strict`` error handler (the usual one in a UTF-8 locale) raises
    ``UnicodeEncodeError`` on it.  ``surrogateescape`` writes the name's own bytes, as Python
    itself does in the C locale and as ``ls``/``find`` do.  Returns the handler to restore, or
    ``None`` where nothing was changed.  (stderr already uses ``backslashreplace``.)
    """
    stream = sys.stdout
    if getattr(stream, "errors", None) != "strict" or not hasattr(stream, "reconfigure"):
        return None
    try:
        stream.reconfigure(errors="surrogateescape")
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None
    return "strict"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    verbose = args.verbose
    previous = _catch_termination()
    stdout, stdout_errors = sys.stdout, _stdout_takes_any_name()
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 128 + 13  # as if killed by SIGPIPE
    except Terminated as exc:
        print(f"terminated ({exc})", file=sys.stderr)
        _end_by_signal(exc.signum)
        return 128 + exc.signum  # where the signal did not end the process
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
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), signal.SIG_DFL if handler is None else handler)
        if stdout_errors is not None:  # main() may run inside another program (tests, the UI)
            with contextlib.suppress(AttributeError, ValueError, OSError, io.UnsupportedOperation):
                stdout.reconfigure(errors=stdout_errors)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
