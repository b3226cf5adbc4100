"""``audio-upscaler data``: build the training corpus, write degraded/clean pairs, inspect.

    audio-upscaler data build-corpus --out DATA_DIR [--hours-music 10] [--sources ...] [--cache DIR] [--jobs N]
    audio-upscaler data make-pairs IN_DIR OUT_DIR --task bwe_8k_48k
    audio-upscaler data inspect FILE_OR_CORPUS [--json]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from .common import add_verbose, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="training data: build the corpus, make degraded/clean pairs, inspect")
    add_verbose(p)
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    b = actions.add_parser("build-corpus", help="build the open training corpus (DESIGN.md section 6 sources)")
    b.add_argument("--out", required=True, help="corpus folder (created; an existing build is completed)")
    b.add_argument("--hours-music", type=float, default=10.0, help="hours of rendered scores (default 10)")
    b.add_argument("--hours-drums", type=float, default=1.0, help="hours of drum-only grooves (default 1)")
    b.add_argument("--sources", default="all",
                   help="comma-separated: music,drums,sonic-pi,klettres,hedgewars,fillets (default all)")
    b.add_argument("--cache", help="download/unpack cache (default ~/.cache/audio-upscaler/debian)")
    b.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    b.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    b.add_argument("--validation-fraction", type=float, default=0.1,
                   help="share of source items held out for validation (default 0.1)")
    b.add_argument("--drum-mix", type=float, default=0.3, help="share of pieces with drums mixed in (default 0.3)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_verbose(b)
    b.set_defaults(run=run_build)

    m = actions.add_parser("make-pairs", help="write degraded/clean pairs of a benchmark task")
    m.add_argument("input", help="folder of audio files, corpus folder or manifest.jsonl")
    m.add_argument("output", help="output folder (clean/, degraded/, low_rate/, pairs.jsonl)")
    m.add_argument("--task", required=True, help="degradation preset, e.g. bwe_8k_48k, mp3_128k, speech_8k_22k")
    m.add_argument("--split", choices=("train", "validation"), help="corpus split to use (default: all)")
    m.add_argument("--kind", choices=("speech", "music"), help="corpus kind to use (default: all; speech for speech_* tasks)")
    m.add_argument("--max-seconds", type=float, help="keep only the first seconds of each file")
    m.add_argument("--seed", type=int, default=0, help="degradation seed (default 0)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_verbose(m)
    m.set_defaults(run=run_pairs)

    i = actions.add_parser("inspect", help="properties and bandwidth of a file, or statistics of a corpus")
    i.add_argument("file", help="audio file, corpus folder or manifest.jsonl")
    i.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(i)
    i.set_defaults(run=run_inspect)


def run_build(args) -> int:
    from ..train.corpus.build import SOURCES, BuildConfig, build_corpus

    sources = SOURCES if args.sources == "all" else tuple(s.strip() for s in args.sources.split(",") if s.strip())
    config = BuildConfig(out=Path(args.out), cache=Path(args.cache) if args.cache else None, sources=sources,
                         hours_music=args.hours_music, hours_drums=args.hours_drums, drum_mix=args.drum_mix,
                         validation_fraction=args.validation_fraction, seed=args.seed, jobs=args.jobs,
                         quiet=args.quiet)
    summary = build_corpus(config)
    if not args.quiet:
        print(f"{len(summary.entries)} files in {args.out} ({summary.ran} jobs run, {summary.skipped} already "
              f"done, {summary.failed} failed, {summary.seconds:.0f} s)")
        for group, hours in summary.hours().items():
            print(f"  {group:32s} {hours:8.2f} h")
    return 0


def run_pairs(args) -> int:
    from ..train.corpus.pairs import make_pairs

    with tqdm(desc="pairs", unit="file", disable=args.quiet, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        def skip(path: Path, reason: str) -> None:
            skipped.append(path)
            bar.write(f"warning: skipped {path}: {reason}", file=sys.stderr)

        skipped: list[Path] = []
        records = make_pairs(args.input, args.output, args.task, seed=args.seed, split=args.split,
                             kind=args.kind, max_seconds=args.max_seconds, progress=progress, on_skip=skip)
    if not args.quiet:
        pairs, files = len(records), len(skipped)
        print(f"{pairs} pair{'s' * (pairs != 1)} in {args.output} (task {args.task}), "
              f"{files} file{'s' * (files != 1)} skipped")
    return 0


def run_inspect(args) -> int:
    from ..train.corpus.manifest import MANIFEST_NAME, read_manifest, summarize

    path = Path(args.file)
    if path.is_dir() or path.suffix == ".jsonl":
        summary = summarize(read_manifest(path if path.suffix == ".jsonl" else path / MANIFEST_NAME))
        if args.json:
            print_json(summary)
        else:
            print("\n".join(_summary_lines(summary)))
        return 0
    from ..analysis import analyze

    report = analyze(path)
    if args.json:
        print_json(report.to_dict())
    else:
        print("\n".join(report.summary_lines()))
    return 0


def _summary_lines(summary: dict) -> list[str]:
    lines = [f"{summary['files']} files, {summary['hours']:.2f} h"]
    for group, s in summary["by_kind_subset_split"].items():
        lines.append(f"  {group:28s} {s['hours']:8.2f} h  {s['files']:6d} files  {s['items']:5d} items")
    lines.append("sources (hours, train/validation items):")
    for source, s in summary["by_source"].items():
        lines.append(f"  {source:36s} {s['hours']:8.2f} h  {s['train_items']:5d} / {s['validation_items']}")
    for kind, (p10, p50, p90) in summary["bandwidth_hz_p10_p50_p90"].items():
        lines.append(f"bandwidth of {kind}: 10% below {p10} Hz, median {p50} Hz, 90% below {p90} Hz")
    conflicts = summary["split_conflicts"]
    lines.append(f"split conflicts: {', '.join(conflicts) if conflicts else 'none'}")
    return lines
