"""Ship a training run's best checkpoint inside the package as model NAME.

    python scripts/ship_model.py RUN_DIR NAME [--latest] [--benchmark BENCH.json]

Writes ``src/audio_upscaler/models/weights/NAME/`` (fp16 safetensors, config.json, MODEL_CARD.md
with the run's validation figures) and records its SHA-256 in ``weights/SHA256SUMS``, which the
registry checks before loading shipped weights. Commit it only when it measurably beats the
weights it replaces: run ``audio-upscaler benchmark ... --json > BENCH.json`` with the candidate
installed and pass ``--benchmark BENCH.json`` to append its table to the model card; other
sections (the artifact checks of ``scripts/check_artifacts.py``, listening notes, history) are
appended from markdown files with ``--append FILE``.
"""

from __future__ import annotations

import argparse
import json

from audio_upscaler.models.base import WEIGHTS_FILE
from audio_upscaler.models.registry import CHECKSUMS, SHIPPED_DIR, sha256, shipped_digests
from audio_upscaler.train.export import export_run


def benchmark_table(rows: list[dict], note: str, title: str = "Benchmark") -> str:
    """Markdown section ``## title`` with a table of benchmark rows (every task, set and method)."""
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["", f"## {title}", "", note, "",
             "| task | set | method | clips | LSD | LSD-HF | LSD-LF | SNR dB | SI-SDR dB | PESQ | x RT | LSD / sinc |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['set']} | {r['method']} | {r['clips']} | {fmt(r['lsd'])} | {fmt(r['lsd_hf'])} | "
                     f"{fmt(r['lsd_lf'])} | {fmt(r['snr'])} | {fmt(r['si_sdr'])} | {fmt(r['pesq_wb'])} | "
                     f"{fmt(r['realtime_factor'])} | {r['lsd_ratio_to_sinc']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--benchmark", help="JSON rows of `audio-upscaler benchmark --json` to add to the card")
    parser.add_argument("--note", default="", help="a line about the benchmark (data, date, machine)")
    parser.add_argument("--latest", action="store_true",
                        help="ship the run's last checkpoint instead of its best_model (as `train --export --latest`)")
    parser.add_argument("--append", action="append", default=[], metavar="FILE",
                        help="a markdown file to append to the model card (repeatable)")
    args = parser.parse_args()
    out = export_run(args.run_dir, SHIPPED_DIR / args.name, half=True, overwrite=True, latest=args.latest)
    if args.benchmark:
        with open(out / "MODEL_CARD.md", "a") as card:
            card.write(benchmark_table(json.loads(open(args.benchmark).read()), args.note))
    for extra in args.append:
        with open(out / "MODEL_CARD.md", "a") as card:
            card.write("\n" + open(extra).read())
    digests = shipped_digests()
    digests[f"{args.name}/{WEIGHTS_FILE}"] = sha256(out / WEIGHTS_FILE)
    (SHIPPED_DIR / CHECKSUMS).write_text("".join(f"{d}  {p}\n" for p, d in sorted(digests.items())))
    size = (out / WEIGHTS_FILE).stat().st_size / 1e6
    print(f"shipped {out} ({size:.1f} MB); checksum recorded in {SHIPPED_DIR / CHECKSUMS}")


if __name__ == "__main__":
    main()
