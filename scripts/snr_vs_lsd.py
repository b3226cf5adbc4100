"""SNR against LSD when a model's generated band is scaled by a gain: how far apart the two bars are.

For each clip of the validation fixture and each band-extension task, the model's output is split
into the plain resampled input (``none``) and the band the model adds; that band is scaled by each
gain and the result scored against the clean reference.  Prints, per task and clip set, the mean
LSD as a ratio to sinc's and the SNR change against sinc (dB).  A band with the right spectrum but
unrelated phase adds its own energy to the error, so SNR falls as the band gets louder while LSD
improves; the table shows which gain, if any, meets both bars.

A second table asks whether simple phase priors could help: the true band's own magnitudes with
phases taken from harmonic transposition (the phase of bin ``j / 2`` doubled, coherent for a
zero-phase pulse train), from a copy of the band below (bin ``j - cutoff``), or random; printed is
the correlation of each with the true band (1 = phase-exact, 0 = unrelated).

    python scripts/snr_vs_lsd.py [--model default] [--tasks bwe_8k_48k,bwe_16k_48k] [--gains 1,0.7,0.5,0.35,0.25]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

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


PRIOR_FFT, PRIOR_HOP = 1024, 256


def phase_prior_correlations(clean: np.ndarray, cutoff_hz: float, seed: int = 0) -> dict[str, float]:
    """Correlation with the true octave above ``cutoff_hz`` of that octave rebuilt from its true
    magnitudes and each prior's phases; ``clean [channels, T]`` at 48 kHz (channels averaged)."""
    x = torch.from_numpy(clean.mean(axis=0).astype(np.float64))
    window = torch.hann_window(PRIOR_FFT, dtype=torch.float64)
    spec = torch.stft(x, PRIOR_FFT, PRIOR_HOP, window=window, return_complex=True).numpy()
    lo = int(cutoff_hz * PRIOR_FFT / artifacts.RATE)
    bins = np.arange(lo, min(2 * lo, spec.shape[0]))
    phase = np.angle(spec)
    priors = {"transposition": 2 * phase[bins // 2], "copy": phase[bins - lo],
              "random": np.random.default_rng(seed).uniform(-np.pi, np.pi, (bins.size, spec.shape[1]))}

    def octave(values: np.ndarray) -> np.ndarray:
        full = np.zeros_like(spec)
        full[bins] = values
        return torch.istft(torch.from_numpy(full), PRIOR_FFT, PRIOR_HOP, window=window, length=x.numel()).numpy()

    true = octave(spec[bins])
    result = {}
    for name, prior in priors.items():
        guess = octave(np.abs(spec[bins]) * np.exp(1j * prior))
        result[name] = float(guess @ true / np.sqrt((guess @ guess) * (true @ true)))
    return result


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
    print("\n| cutoff | clip | " + " | ".join(f"{name} phase" for name in ("transposition", "copy", "random")) + " |")
    print("|---|---|---|---|---|")
    for cutoff in (4_000.0, 8_000.0):
        for kind in ("speech", "music"):
            for name, x in load_clips(args.clips / kind).items():
                rho = phase_prior_correlations(x, cutoff)
                print(f"| {cutoff / 1000:g} kHz | {name} | " + " | ".join(f"{v:+.3f}" for v in rho.values()) + " |")


if __name__ == "__main__":
    main()
