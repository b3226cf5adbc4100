"""What a perfect-magnitude fill of an MP3's holes would score: how far apart restore's two bars are.

For each music clip of the validation fixture and each MP3 task, the decoded MP3 (44.1 kHz, as
the benchmark makes it) is compared with the clean reference in a 1024-point STFT. Every bin where
the decoded spectrum is at least ``HOLE_DB`` under the reference (the codec's spectral holes and
the band above its cutoff) is replaced by the reference's own magnitude, with a random phase (what
a model that predicts magnitudes perfectly but not the phase would give) or with the true phase
(the unreachable best case); every other bin stays as decoded. Printed per task: the mean LSD as a
ratio to the decoded MP3's and the SI-SDR change against the decoded MP3 (dB), as the benchmark
averages them.

A filled bin whose phase is unrelated to the original's adds its own energy to the error, so a
random-phase fill at the true level lowers SI-SDR while it takes LSD far down: the bar "SI-SDR not
worse than the decoded MP3's" can only be met together with the LSD bar by a fill that follows
the original phase or by removing codec noise from the kept band.

    python scripts/codec_fill_oracle.py [--tasks mp3_64k,mp3_128k]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from audio_upscaler.bench import artifacts
from audio_upscaler.dsp.resample import resample
from audio_upscaler.metrics.lsd import lsd
from audio_upscaler.metrics.waveform import si_sdr
from check_artifacts import load_clips

ROOT = Path(__file__).resolve().parents[1]
N_FFT, HOP = 1024, 256
HOLE_DB = 10.0  # a decoded bin this far under the reference counts as removed by the codec


def oracle_fills(reference: np.ndarray, decoded: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """``reference``, ``decoded`` mono ``[T]`` -> the decoded signal with its holes filled from the
    reference's magnitudes, by phase: ``{"random": [T], "true": [T]}``."""
    window = torch.hann_window(N_FFT, dtype=torch.float64)

    def spectrum(x: np.ndarray) -> torch.Tensor:
        return torch.stft(torch.from_numpy(x.astype(np.float64)), N_FFT, HOP, window=window, return_complex=True)

    ref, dec = spectrum(reference), spectrum(decoded)
    holes = dec.abs() < ref.abs() * 10 ** (-HOLE_DB / 20)
    generator = torch.Generator().manual_seed(seed)
    phases = {"random": torch.exp(2j * np.pi * torch.rand(ref.shape, dtype=torch.float64, generator=generator)),
              "true": ref / ref.abs().clamp_min(1e-12)}
    return {name: torch.istft(torch.where(holes, ref.abs() * phase, dec), N_FFT, HOP, window=window,
                              length=reference.size).numpy()
            for name, phase in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mp3_64k,mp3_128k")
    parser.add_argument("--clips", type=Path, default=ROOT / "tests" / "data" / "validation" / "music")
    args = parser.parse_args()
    print("| task | decoded LSD | decoded SI-SDR dB | random phase: LSD / decoded, dSI-SDR | true phase: LSD / decoded, dSI-SDR |")
    print("|---|---|---|---|---|")
    for task in args.tasks.split(","):
        scores = {"decoded": [], "random": [], "true": []}
        for clean in load_clips(args.clips).values():
            check = artifacts.band_limited(clean, task)
            rate = check.input_rate
            reference, decoded = resample(clean, artifacts.RATE, rate)[0], check.low[0]
            n = min(reference.size, decoded.size)
            reference, decoded = reference[:n], decoded[:n]
            outputs = {"decoded": decoded, **oracle_fills(reference, decoded)}
            for name, y in outputs.items():
                scores[name].append((lsd(reference, y, rate).lsd, si_sdr(reference, y)))
        mean = {name: np.mean(values, axis=0) for name, values in scores.items()}
        base_lsd, base_sdr = mean["decoded"]
        cells = [f"{mean[p][0] / base_lsd:.3f}, {mean[p][1] - base_sdr:+.3f} dB" for p in ("random", "true")]
        print(f"| {task} | {base_lsd:.3f} | {base_sdr:.2f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
