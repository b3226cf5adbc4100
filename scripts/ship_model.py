"""Ship a training run's best checkpoint inside the package as model NAME.

    python scripts/ship_model.py RUN_DIR NAME

Writes ``src/audio_upscaler/models/weights/NAME/`` (fp16 safetensors, config.json, MODEL_CARD.md
with the run's validation figures) and records its SHA-256 in ``weights/SHA256SUMS``, which the
registry checks before loading shipped weights. Commit it only when it measurably beats the
weights it replaces (run ``audio-upscaler benchmark`` and add the figures to the model card).
"""

from __future__ import annotations

import argparse

from audio_upscaler.models.base import WEIGHTS_FILE
from audio_upscaler.models.registry import CHECKSUMS, SHIPPED_DIR, shipped_digests
from audio_upscaler.train.export import export_run, sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    args = parser.parse_args()
    out = export_run(args.run_dir, SHIPPED_DIR / args.name, half=True, overwrite=True)
    digests = shipped_digests()
    digests[f"{args.name}/{WEIGHTS_FILE}"] = sha256(out / WEIGHTS_FILE)
    (SHIPPED_DIR / CHECKSUMS).write_text("".join(f"{d}  {p}\n" for p, d in sorted(digests.items())))
    size = (out / WEIGHTS_FILE).stat().st_size / 1e6
    print(f"shipped {out} ({size:.1f} MB); checksum recorded in {SHIPPED_DIR / CHECKSUMS}")


if __name__ == "__main__":
    main()
