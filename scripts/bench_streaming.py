"""Streaming speed on this CPU: PyTorch eager vs onnxruntime (fp32) vs onnxruntime int8, for
10, 20 and 50 ms blocks, measured in one run.

For each runtime and block size it streams a synthesized clip through
:class:`audio_upscaler.streaming.StreamingUpscaler` and reports the real-time factor (audio
seconds per wall second, whole stream), the worst and the 99th-percentile time of one
``feed`` call against the block's duration, and the latency. A stream keeps up when the worst
block time stays below the block duration.

    python scripts/bench_streaming.py                      # apnet at its default size
    python scripts/bench_streaming.py --model default      # installed weights
    python scripts/bench_streaming.py --family edge --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audio_upscaler.export.common import check_clips
from audio_upscaler.export.onnx import export_onnx
from audio_upscaler.export.onnx_backend import OnnxExtender, OnnxModel
from audio_upscaler.export.quantize import quantize_onnx
from audio_upscaler.models import registry
from audio_upscaler.models.base import ModelExtender, UpscalerModel
from audio_upscaler.streaming import StreamingUpscaler

BLOCKS_MS = (10, 20, 50)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="installed model name or model folder (default: a fresh --family model)")
    p.add_argument("--family", default="apnet", help="family built at its default size when no --model (default apnet)")
    p.add_argument("--input-rate", type=int, default=16_000, help="stream input rate in Hz (default 16000)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the streamed clip (default 10 s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for torch and onnxruntime (default 1: windows are small, and on a busy CPU "
                        "more threads mostly wait on each other)")
    p.add_argument("--quality", default="vhq", help="resampler quality (default vhq)")
    p.add_argument("--int8", default="static", choices=("static", "dynamic"), help="int8 mode (default static)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p.parse_args(argv)


def load(args) -> UpscalerModel:
    if args.model:
        folder = Path(args.model)
        return UpscalerModel.load(folder) if folder.is_dir() else registry.load_model(args.model)
    torch.manual_seed(0)
    return registry.build(args.family).eval()  # speed does not depend on the weights' values


def runtimes(model: UpscalerModel, workdir: Path, threads: int, int8: str) -> dict:
    """``name -> band extender`` for eager PyTorch, onnxruntime fp32 and onnxruntime int8."""
    rate = model.sample_rate or 48_000
    export_onnx(model, workdir / "fp32", force=True)
    quantize_onnx(workdir / "fp32", workdir / "int8", int8, check_clips(rate))
    return {
        "pytorch": ModelExtender(model, model.family),
        "onnxruntime": OnnxExtender(OnnxModel(workdir / "fp32", threads), "onnx"),
        f"onnxruntime-int8-{int8}": OnnxExtender(OnnxModel(workdir / "int8", threads), "int8"),
    }


def bench(extender, x: np.ndarray, input_rate: int, rate: int, block: int, quality: str) -> dict:
    streamer = StreamingUpscaler(extender, input_rate, rate, block, cutoff_hz=0.45 * input_rate, quality=quality)
    times = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, x.shape[1] - block + 1, block):
            t0 = time.perf_counter()
            streamer.feed(x[:, i : i + block])
            times.append(time.perf_counter() - t0)
        streamer.flush()
    total = time.perf_counter() - start
    block_ms = 1000 * block / input_rate
    worst = 1000 * max(times)
    return {
        "block_ms": round(block_ms, 1),
        "x_real_time": round(x.shape[1] / input_rate / total, 1),
        "worst_block_ms": round(worst, 2),
        "p99_block_ms": round(1000 * float(np.percentile(times, 99)), 2),
        "keeps_up": worst < block_ms,
        "latency_ms": round(1000 * streamer.latency_seconds, 1),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args)
    rate = model.sample_rate or 48_000
    x = check_clips(args.input_rate, seconds=args.seconds, cutoffs_hz=(0.45 * args.input_rate,))[0].degraded
    results = {"model": args.model or f"{model.family} (default size, untrained)", "parameters": model.num_parameters(),
               "input_rate": args.input_rate, "output_rate": rate, "threads": args.threads, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extender in runtimes(model, Path(tmp), args.threads, args.int8).items():
            runs = []
            for ms in BLOCKS_MS:
                block = args.input_rate * ms // 1000
                bench(extender, x[:, : 2 * block], args.input_rate, rate, block, args.quality)  # warm-up
                runs.append(bench(extender, x, args.input_rate, rate, block, args.quality))
            results["runs"][name] = runs
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


def print_table(results: dict) -> None:
    print(f"{results['model']}: {results['parameters']:,} parameters, {results['input_rate']} -> "
          f"{results['output_rate']} Hz, {results['threads']} threads")
    print(f"{'runtime':<26} {'block':>7} {'x real time':>12} {'worst block':>12} {'p99 block':>10} {'keeps up':>9} {'latency':>9}")
    for name, runs in results["runs"].items():
        for r in runs:
            print(f"{name:<26} {r['block_ms']:>5} ms {r['x_real_time']:>12} {r['worst_block_ms']:>9} ms "
                  f"{r['p99_block_ms']:>7} ms {'yes' if r['keeps_up'] else 'NO':>9} {r['latency_ms']:>6} ms")


if __name__ == "__main__":
    sys.exit(main())
