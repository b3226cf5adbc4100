"""Replace the benchmark table in a shipped model's card (weights unchanged).

    python scripts/refresh_card_benchmark.py NAME BENCH.json --note "..."

For a pipeline change (analysis, resampling) that changes the figures of weights that are not
retrained: the ``## Benchmark`` section of ``weights/NAME/MODEL_CARD.md`` is rewritten from the
rows of ``audio-upscaler benchmark ... --json`` (same format as ``ship_model.py --benchmark``);
the rest of the card stays as it is.
"""

from __future__ import annotations

import argparse
import json
import re

from ship_model import benchmark_table

from audio_upscaler.models.registry import SHIPPED_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("benchmark", help="JSON rows of `audio-upscaler benchmark --json`")
    parser.add_argument("--note", required=True, help="a line about the benchmark (data, date, machine)")
    args = parser.parse_args()
    card = SHIPPED_DIR / args.name / "MODEL_CARD.md"
    text = card.read_text()
    section = re.search(r"\n## Benchmark\n.*?(?=\n## |\Z)", text, flags=re.S)
    if section is None:
        raise SystemExit(f"{card} has no '## Benchmark' section")
    table = benchmark_table(json.loads(open(args.benchmark).read()), args.note).rstrip("\n") + "\n"
    card.write_text(text[: section.start()] + table + text[section.end():])
    print(f"rewrote the benchmark table of {card}")


if __name__ == "__main__":
    main()
