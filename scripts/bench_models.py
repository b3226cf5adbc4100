"""Speed table of every model family at its default size, next to soxr on the same audio.

For each registered family: parameters, MACs per second of audio at the family's rate (counted
by ``torch.utils.flop_counter``; MACs = FLOPs / 2, convolutions and matrix products only), and
x-real-time of one forward pass over 10 s of mono audio (best of ``--repeats``), measured in
this run together with soxr resampling the same 10 s from 16 kHz to the family's rate.

    python scripts/bench_models.py [--seconds 10] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audio_upscaler.dsp.resample import resample
from audio_upscaler.models import registry


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def macs_per_second(model, rate: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(1, 1, rate) * 0.1
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, torch.tensor([8000.0]))
    return counter.get_total_flops() / 2


def measure(family: str, seconds: float, repeats: int) -> dict:
    model = registry.build(family).eval()
    rate = model.sample_rate or 48_000
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, int(seconds * rate))).astype(np.float32) * 0.1)
    cutoff = torch.tensor([8000.0])
    with torch.inference_mode():
        model(x[..., : rate // 2], cutoff)  # warm-up
        elapsed = best_time(lambda: model(x, cutoff), repeats)
    low = np.random.default_rng(1).standard_normal((1, int(seconds * 16_000))).astype(np.float32) * 0.1
    soxr = best_time(lambda: resample(low, 16_000, rate), repeats)
    return {"family": family, "parameters": model.num_parameters(), "sample_rate": rate,
            "gmacs_per_second": macs_per_second(model, rate) / 1e9, "x_real_time": seconds / elapsed,
            "soxr_x_real_time": seconds / soxr, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", nargs="*", help="default: every registered family")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(f, args.seconds, args.repeats) for f in (args.families or registry.families())]
    print(f"{args.seconds:g} s of mono audio, {args.threads} threads, best of {args.repeats}")
    print(f"{'family':<10} {'params':>9} {'rate':>6} {'GMAC/s audio':>13} {'x real time':>12} {'soxr x RT':>10}")
    for r in rows:
        print(f"{r['family']:<10} {r['parameters'] / 1e6:8.2f}M {r['sample_rate']:>6} {r['gmacs_per_second']:13.2f} "
              f"{r['x_real_time']:12.1f} {r['soxr_x_real_time']:10.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
