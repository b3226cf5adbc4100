"""Helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..textio import to_json


def add_verbose(parser) -> None:
    """Accept ``-v/--verbose`` after the sub-command too."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")


def print_json(obj) -> None:
    """Print strict JSON (non-finite numbers as ``null``)."""
    print(to_json(obj, indent=2))


class Progress:
    """A terminal progress bar that appears only for work longer than about a second."""

    def __init__(self, description: str, unit_scale: float = 1.0, quiet: bool = False):
        self._bar = None
        self._description = description
        self._scale = unit_scale
        self._quiet = quiet

    def __call__(self, done: int, total: int) -> None:
        if self._quiet:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=round(total / self._scale, 1), desc=self._description, unit="s", delay=1.0, leave=False,
                file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}]",
            )
        self._bar.n = round(done / self._scale, 1)
        self._bar.update(0)  # redraws at most every mininterval

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
