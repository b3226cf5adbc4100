"""SNR against LSD when a model's generated band is scaled by a gain: how far apart the two bars are.

For each clip of the validation fixture and each band-extension task, the model's output is split
into the plain resampled input (``none``) and the band the model adds; that band is scaled by each
gain and the result scored against the clean reference.  Prints, per task and clip set, the mean
LSD as a ratio to sinc's and the SNR change against sinc (dB).  A band with the right spectrum but
unrelated phase adds its own energy to the error, so SNR falls as the band gets louder while LSD
improves; the table shows which gain, if any, meets both bars.

    python scripts/snr_vs_lsd.py [--model default] [--tasks bwe_8k_48k,bwe_16k_48k] [--gains 1,0.7,0.5,0.35,0.25]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from audio_upscaler.bench import artifacts
from audio_upscaler.metrics.lsd import lsd
from audio_upscaler.metrics.waveform import snr
from audio_upscaler.pipeline import Upscaler
from check_artifacts import load_clips

ROOT = Path(__file__).resolve().parents[1]


def scaled_band_scores(model: Upscaler, plain: Upscaler, clean: np.ndarray, task: str,
                       gains: list[float]) -> np.ndarray:
    """``[gains, 2]``: LSD / sinc's LSD and SNR - sinc's SNR (dB) for ``clean [channels, T]`` at 48 kHz."""
    check = artifacts.band_limited(clean, task)
    base = artifacts.run(plain, check)
    band = artifacts.run(model, check) - base
    ref = check.reference
    base_lsd, base_snr = lsd(ref, base, artifacts.RATE).lsd, snr(ref, base)
    return np.array([(lsd(ref, base + g * band, artifacts.RATE).lsd / base_lsd, snr(ref, base + g * band) - base_snr)
                     for g in gains])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--tasks", default="bwe_8k_48k,bwe_16k_48k")
    parser.add_argument("--gains", default="1,0.7,0.5,0.35,0.25")
    parser.add_argument("--clips", type=Path, default=ROOT / "tests" / "data" / "validation")
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.split(",")]
    model, plain = Upscaler(model=args.model), Upscaler(model="none")
    print("| task | set | " + " | ".join(f"gain {g:g}: LSD/sinc, dSNR" for g in gains) + " |")
    print("|---|---|" + "---|" * len(gains))
    for task in args.tasks.split(","):
        for kind in ("speech", "music"):
            clips = load_clips(args.clips / kind)
            scores = np.mean([scaled_band_scores(model, plain, x, task, gains) for x in clips.values()], axis=0)
            cells = " | ".join(f"{r:.3f}, {d:+.2f} dB" for r, d in scores)
            print(f"| {task} | {kind} | {cells} |")


if __name__ == "__main__":
    main()
