"""Load check of ``audio-upscaler batch``: many short files of mixed formats through one batch.

Builds ``--files`` synthesized clips (WAV, FLAC, MP3, OGG Vorbis; 16-44.1 kHz; mono and stereo;
1-4 s; tagged; spread over sub-folders), runs the ``batch`` command over them in a child process
while sampling the memory of that process and its workers, then re-reads every output and checks
it: present, fully decodable, 48 kHz, same channels, the exact number of frames, finite, the
tags kept, and the original band intact (the output resampled back to the input rate matches
the decoded input).  Prints files/s, real-time factor and peak memory; exits 1 if any output is
lost or corrupt.

    python scripts/load_check.py [--files 200] [--jobs N] [--model sbr] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from audio_upscaler import io
from audio_upscaler.audio import Audio
from audio_upscaler.dsp.resample import output_length, resample

FORMATS = ("wav", "flac", "mp3", "ogg")
RATES = (16_000, 22_050, 32_000, 44_100)
OUTPUT_RATE = 48_000
MIN_BAND_SNR_DB = 15.0  # output brought back to the input rate vs. the decoded input


def clip(rate: int, seconds: float, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonic notes plus a little noise, ``[channels, time]`` float32, peak about 0.5."""
    t = np.arange(int(rate * seconds)) / rate
    f0 = rng.uniform(110, 440)
    out = np.zeros((channels, t.size))
    for c in range(channels):
        for k in range(1, min(int(rate / 2 // f0), 40)):
            out[c] += np.sin(2 * np.pi * f0 * k * (1 + 0.002 * c) * t + rng.uniform(0, 2 * np.pi)) / k
        out[c] *= np.exp(-2.0 * (t % 0.5))
    out += 0.01 * rng.standard_normal(out.shape)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def build_inputs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        fmt, rate, channels = FORMATS[i % 4], RATES[(i // 4) % 4], 1 + (i // 16) % 2
        path = folder / f"album{i % 10:02d}" / f"clip{i:03d}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = Audio(clip(rate, rng.uniform(1.0, 4.0), channels, rng), rate, {"title": f"clip {i}", "artist": "load check"})
        io.write_audio(path, audio, io.output_format_for(path, bit_depth=16) if fmt in ("wav", "flac") else None)
        paths.append(path)
    return paths


def run_batch(in_dir: Path, out_dir: Path, model: str, jobs: int | None) -> tuple[dict, float, int, int]:
    """Run the batch command; returns (summary, wall seconds, peak RSS of the process tree, of one process)."""
    command = [sys.executable, "-m", "audio_upscaler", "batch", str(in_dir), "-o", str(out_dir), "--recursive",
               "-m", model, "--json"] + (["-j", str(jobs)] if jobs else [])
    started = time.perf_counter()
    proc = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_one = 0
    while proc.poll() is None:
        rss = []
        for p in [proc, *proc.children(recursive=True)]:
            try:
                rss.append(p.memory_info().rss)
            except psutil.Error:
                pass
        peak_tree, peak_one = max(peak_tree, sum(rss)), max(peak_one, *rss, 0)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if not stdout.strip():
        sys.exit(f"the batch command printed no summary (exit {proc.returncode}):\n{stderr}")
    return json.loads(stdout), wall, peak_tree, peak_one


def check_output(source: Path, output: Path) -> str | None:
    """Why ``output`` is not a correct upscale of ``source``, or ``None``."""
    if not output.exists():
        return "missing"
    try:
        out = io.read_audio(output)
    except Exception as exc:  # noqa: BLE001 - any failure to decode is a corrupt output
        return f"cannot be decoded: {exc}"
    src = io.read_audio(source)
    expected = output_length(src.frames, src.sample_rate, OUTPUT_RATE)
    if (out.sample_rate, out.channels, out.frames) != (OUTPUT_RATE, src.channels, expected):
        return (f"{out.sample_rate} Hz {out.channels} ch {out.frames} frames, "
                f"expected {OUTPUT_RATE} Hz {src.channels} ch {expected}")
    if not np.isfinite(out.samples).all():
        return "non-finite samples"
    if out.tags.get("title") != src.tags.get("title"):
        return f"tags lost: {out.tags}"
    back = resample(out.samples, OUTPUT_RATE, src.sample_rate)[:, : src.frames]
    snr = 10 * np.log10(np.sum(src.samples**2) / max(np.sum((back - src.samples) ** 2), 1e-20))
    return None if snr >= MIN_BAND_SNR_DB else f"original band changed: SNR {snr:.1f} dB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--jobs", type=int, help="passed to batch -j (default: its own choice)")
    parser.add_argument("--model", default="sbr")
    parser.add_argument("--work", type=Path, help="folder for inputs and outputs (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        t0 = time.perf_counter()
        sources = build_inputs(work / "in", args.files)
        print(f"built {len(sources)} inputs ({', '.join(FORMATS)}) in {time.perf_counter() - t0:.1f} s")
        summary, wall, peak_tree, peak_one = run_batch(work / "in", work / "out", args.model, args.jobs)
        problems = {}
        for source in sources:
            output = (work / "out" / source.relative_to(work / "in")).with_suffix(".flac")
            if (why := check_output(source, output)) is not None:
                problems[source.relative_to(work / "in").as_posix()] = why
        leftovers = [p.name for p in (work / "out").rglob(".*") if not p.name.startswith(".audio-upscaler-batch")]
    lost = sum(why == "missing" for why in problems.values())
    audio_s = summary["audio_s"]
    print(f"batch ({summary['backend']}, model {args.model}): {summary['done']} done, {summary['failed']} failed, "
          f"{summary['skipped']} skipped")
    print(f"wall time {wall:.1f} s (batch's own {summary['elapsed_s']:.1f} s): {len(sources) / wall:.2f} files/s, "
          f"{audio_s:.0f} s of audio = {audio_s / wall:.1f}x real time")
    print(f"peak memory: {peak_tree / 2**20:.0f} MiB for the batch and its workers together, "
          f"{peak_one / 2**20:.0f} MiB for the largest single process")
    print(f"verified {len(sources)} outputs by re-reading: {lost} lost, {len(problems) - lost} corrupt, "
          f"{len(leftovers)} temporary files left")
    for name, why in sorted(problems.items())[:20]:
        print(f"  {name}: {why}")
    return 1 if problems or leftovers or summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
