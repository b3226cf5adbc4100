"""``audio-upscaler analyze FILE``: properties, levels and effective bandwidth of a file."""

from __future__ import annotations

from .common import add_verbose, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="measure a file: rate, levels, loudness, effective bandwidth")
    p.add_argument("file", help="audio file to analyze")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..analysis import analyze

    report = analyze(args.file)
    if args.json:
        print_json(report.to_dict())
    else:
        print("\n".join(report.summary_lines()))
    return 0
