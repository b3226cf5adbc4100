"""Replace the benchmark table in a shipped model's card (weights unchanged).

    python scripts/refresh_card_benchmark.py NAME BENCH.json --note "..." [--title "Benchmark ..."]

For a pipeline change (analysis, resampling) that changes the figures of weights that are not
retrained: the ``## Benchmark`` section (or ``## TITLE``) of ``weights/NAME/MODEL_CARD.md`` is
rewritten from the rows of ``audio-upscaler benchmark ... --json`` (same format as ``ship_model.py
--benchmark``); a card without that section gets it after the ``## Benchmark`` section. The rest of
the card stays as it is.
"""

from __future__ import annotations

import argparse
import json
import re

from ship_model import benchmark_table

from audio_upscaler.models.registry import SHIPPED_DIR


def _section(text: str, title: str) -> range | None:
    """Character span of the ``## title`` section (up to the next ``## `` heading), or None."""
    found = re.search(rf"\n## {re.escape(title)}\n.*?(?=\n## |\Z)", text, flags=re.S)
    return None if found is None else range(found.start(), found.end())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("benchmark", help="JSON rows of `audio-upscaler benchmark --json`")
    parser.add_argument("--note", required=True, help="a line about the benchmark (data, date, machine)")
    parser.add_argument("--title", default="Benchmark", help="the section's title (default: Benchmark)")
    args = parser.parse_args()
    card = SHIPPED_DIR / args.name / "MODEL_CARD.md"
    text = card.read_text()
    table = benchmark_table(json.loads(open(args.benchmark).read()), args.note, args.title).rstrip("\n") + "\n"
    section = _section(text, args.title)
    if section is None:
        after = _section(text, "Benchmark")
        if after is None:
            raise SystemExit(f"{card} has no '## Benchmark' section")
        section = range(after.stop, after.stop)  # an empty span: inserted there
    card.write_text(text[: section.start] + table + text[section.stop:])
    print(f"rewrote the benchmark table of {card}")


if __name__ == "__main__":
    main()
