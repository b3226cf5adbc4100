"""Benchmark of the upscale pipeline (not a test): speed and peak memory of ``audio-upscaler upscale``.

Prints, measured in this run on this machine:
  * x real time of the file-to-file pipeline for a 10-minute 44.1 kHz file -> 48 kHz FLAC, stereo
    and mono, for plain resampling (``none``), band replication (``sbr``) and every installed
    neural model (``--models``), next to bare soxr on the same audio as the reference;
  * peak resident memory of each model on the 10-minute stereo file, and of a 60-minute stereo
    file -> 96 kHz FLAC (``sbr``), each run in a child process so that only the pipeline's memory
    is counted.

    python scripts/bench_dsp.py [--minutes 10] [--long-minutes 60] [--models none,sbr,default]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 44_100
BLOCK = RATE * 10


def make_band_limited_file(path: Path, minutes: float, cutoff_hz: float = 16_000, seed: int = 0,
                           channels: int = 2) -> None:
    """16-bit WAV of noise + decaying tones whose content stops at ``cutoff_hz``."""
    rng = np.random.default_rng(seed)
    from scipy.signal import butter, sosfilt

    sos = butter(10, cutoff_hz, fs=RATE, output="sos")
    zi = np.zeros((sos.shape[0], channels, 2))
    total = int(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, channels, subtype="PCM_16", format="RF64") as f:
        for start in range(0, total, BLOCK):
            n = min(BLOCK, total - start)
            t = (start + np.arange(n)) / RATE
            tone = 0.2 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * (t % 0.5))
            x = 0.05 * rng.standard_normal((channels, n)) + tone
            x, zi = sosfilt(sos, x, axis=-1, zi=zi)
            f.write(x.T.astype(np.float32))


def time_upscale(src: Path, dst: Path, model: str, rate: int) -> float:
    from audio_upscaler.pipeline import Upscaler

    start = time.perf_counter()
    Upscaler(model, rate).upscale_file(src, dst, overwrite=True)
    return time.perf_counter() - start


def time_soxr(src: Path, rate: int) -> float:
    start = time.perf_counter()
    with sf.SoundFile(src) as f:
        stream = soxr.ResampleStream(f.samplerate, rate, f.channels, dtype="float32", quality="VHQ")
        for block in f.blocks(BLOCK, dtype="float32"):
            stream.resample_chunk(block)
        stream.resample_chunk(np.zeros((0, f.channels), np.float32), last=True)
    return time.perf_counter() - start


def peak_rss_child(src: Path, dst: Path, rate: int, model: str = "sbr") -> tuple[float, float]:
    """Run one upscale in a child process; return (its peak RSS in MiB, seconds)."""
    code = (
        "import sys; from audio_upscaler.pipeline import Upscaler; "
        f"Upscaler({model!r}, {rate}).upscale_file(sys.argv[1], sys.argv[2], overwrite=True); "
        # VmHWM is this process's own peak (ru_maxrss would also count the parent's pre-exec peak)
        "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0])"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(src), str(dst)], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return int(done.stdout.split()[-1]) / 1024, seconds


def default_models() -> str:
    from audio_upscaler.models.registry import available_models

    return ",".join(["none", "sbr", *[m for m in ("default", "restore") if m in available_models()]])


def main() -> None:
    parser = argparse.ArgumentParser(description="DSP path speed and memory benchmark")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the temporary files")
    parser.add_argument("--models", default=None, help="comma-separated (default: none, sbr and installed default/restore)")
    args = parser.parse_args()
    models = (args.models or default_models()).split(",")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        seconds_audio = args.minutes * 60
        for channels, label in ((2, "stereo"), (1, "mono")):
            src = tmp / f"{label}.wav"
            make_band_limited_file(src, args.minutes, channels=channels)
            print(f"{args.minutes:g}-minute {label} 44.1 kHz file -> 48 kHz FLAC 24-bit")
            ref = time_soxr(src, 48_000)
            print(f"  soxr alone (reference)   {seconds_audio / ref:8.1f}x real time")
            for model in models:
                took = time_upscale(src, tmp / f"out_{model}.flac", model, 48_000)
                print(f"  pipeline --model {model:<7} {seconds_audio / took:8.1f}x real time  ({took / ref:.1f}x soxr's time)")
            if channels == 2:
                for model in models:
                    rss, _ = peak_rss_child(src, tmp / "mem.flac", 48_000, model)
                    print(f"  peak RSS --model {model:<7} {rss:8.0f} MiB (child process, {label})")
            src.unlink()

        if args.long_minutes <= 0:  # --long-minutes 0 skips the long-file memory run
            return
        long_src = tmp / "long.wav"
        make_band_limited_file(long_src, args.long_minutes, seed=1)
        rss, took = peak_rss_child(long_src, tmp / "long_out.flac", 96_000)
        print(f"{args.long_minutes:g}-minute stereo 44.1 kHz file -> 96 kHz FLAC (sbr)")
        print(f"  peak RSS {rss:8.0f} MiB   ({args.long_minutes * 60 / took:.1f}x real time)")


if __name__ == "__main__":
    main()
