"""``audio-upscaler doctor``: system check and recommended settings."""

from __future__ import annotations

from .common import add_verbose, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check Python, torch, device, memory and codecs")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..hardware import get_system_info

    info = get_system_info()
    if args.json:
        print_json(info.to_dict())
    else:
        print("\n".join(info.summary_lines()))
    return 0
