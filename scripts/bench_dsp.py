"""Benchmark of the DSP path (not a test): speed and peak memory of ``audio-upscaler upscale``.

Prints, measured in this run on this machine:
  * x real time of the file-to-file pipeline for a 10-minute stereo 44.1 kHz file -> 48 kHz,
    for plain resampling (``none``) and band replication (``sbr``), next to bare soxr on the
    same audio as the reference;
  * peak resident memory of a 60-minute stereo 44.1 kHz file -> 96 kHz FLAC (``sbr``), run in a
    child process so that only the pipeline's memory is counted.

    python scripts/bench_dsp.py [--minutes 10] [--long-minutes 60]
"""

from __future__ import annotations

import argparse
import resource
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


def make_band_limited_file(path: Path, minutes: float, cutoff_hz: float = 16_000, seed: int = 0) -> None:
    """Stereo 16-bit WAV of noise + decaying tones whose content stops at ``cutoff_hz``."""
    rng = np.random.default_rng(seed)
    from scipy.signal import butter, sosfilt

    sos = butter(10, cutoff_hz, fs=RATE, output="sos")
    zi = np.zeros((sos.shape[0], 2, 2))
    total = int(minutes * 60 * RATE)
    with sf.SoundFile(path, "w", RATE, 2, subtype="PCM_16", format="RF64") as f:
        for start in range(0, total, BLOCK):
            n = min(BLOCK, total - start)
            t = (start + np.arange(n)) / RATE
            tone = 0.2 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * (t % 0.5))
            x = 0.05 * rng.standard_normal((2, n)) + tone
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


def peak_rss_child(src: Path, dst: Path, rate: int) -> tuple[float, float]:
    """Run one upscale in a child process; return (peak RSS in MiB, seconds)."""
    code = (
        "import sys; from audio_upscaler.pipeline import Upscaler; "
        f"Upscaler('sbr', {rate}).upscale_file(sys.argv[1], sys.argv[2], overwrite=True)"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(src), str(dst)], check=True)
    seconds = time.perf_counter() - start
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="DSP path speed and memory benchmark")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the temporary files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        src = tmp / "ten.wav"
        make_band_limited_file(src, args.minutes)
        seconds_audio = args.minutes * 60
        print(f"{args.minutes:g}-minute stereo 44.1 kHz file -> 48 kHz FLAC 24-bit")
        ref = time_soxr(src, 48_000)
        print(f"  soxr alone (reference)   {seconds_audio / ref:8.1f}x real time")
        for model in ("none", "sbr"):
            took = time_upscale(src, tmp / f"out_{model}.flac", model, 48_000)
            print(f"  pipeline --model {model:<7} {seconds_audio / took:8.1f}x real time  ({took / ref:.1f}x soxr's time)")
        src.unlink()

        long_src = tmp / "long.wav"
        make_band_limited_file(long_src, args.long_minutes, seed=1)
        rss, took = peak_rss_child(long_src, tmp / "long_out.flac", 96_000)
        print(f"{args.long_minutes:g}-minute stereo 44.1 kHz file -> 96 kHz FLAC (sbr)")
        print(f"  peak RSS {rss:8.0f} MiB   ({args.long_minutes * 60 / took:.1f}x real time)")


if __name__ == "__main__":
    main()
