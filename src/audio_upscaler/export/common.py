"""What the exporters share: the tracing mode, the manifest of a model, check clips and the
comparisons reported at export time (max abs error, LSD, speed).

A *runner* is any callable ``(x [B, C, T] float32 numpy, cutoff_hz [B]) -> [B, C, T]`` at the
model's native rate: :func:`eager_runner`, :class:`.onnx_backend.OnnxModel`,
:class:`.torchscript.TorchScriptModel`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UpscalerError
from ..models.base import UpscalerModel
from ..models.blocks import conv_stft
from .manifest import ExportManifest

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Length of the example input a graph is traced with (seconds; any length on the grid works after).
TRACE_SECONDS = 0.25
#: Shortest ``--clip`` file the checks take (seconds; a 1-sample clip crashed the model's STFT).
MIN_CLIP_SECONDS = 0.1


@contextmanager
def export_mode(model: UpscalerModel, conv: bool = True) -> Iterator[UpscalerModel]:
    """Prepare ``model`` for tracing: eval mode, ``valid_length`` the identity on every sub-model
    (so no input length is frozen into the graph as a Python number: the traced graph takes lengths
    already on the alignment grid, and the runtimes pad and crop, see :func:`.manifest.pad_to_grid`)
    and, with ``conv``, DFT-convolution STFTs (:func:`~..models.blocks.conv_stft`; ONNX has no
    complex tensors)."""
    subs = [m for m in model.modules() if isinstance(m, UpscalerModel)]
    was_training = model.training
    model.eval()
    with (conv_stft(model) if conv else nullcontext()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints and the legacy exporter
        for sub in subs:
            sub.valid_length = _identity  # instance attribute shadows the method
        try:
            yield model
        finally:
            for sub in subs:
                del sub.valid_length
            model.train(was_training)


def _identity(n):
    return n


def trace_input(model: UpscalerModel, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Example ``(x [1, 1, T], cutoff_hz [1])`` for tracing, ``T`` on the alignment grid."""
    rate = model.sample_rate or 48_000
    g = torch.Generator().manual_seed(seed)
    n = model.valid_length(int(TRACE_SECONDS * rate))
    return 0.1 * torch.randn(1, 1, n, generator=g), torch.tensor([rate / 6], dtype=torch.float32)


def manifest_for(model: UpscalerModel, fmt: str, file: str, **fields) -> ExportManifest:
    import dataclasses

    return ExportManifest(
        family=model.family, format=fmt, file=file, sample_rate=model.sample_rate, alignment=model.alignment(),
        context_samples=model.context_samples(), latency_samples=model.latency_samples(),
        config=dataclasses.asdict(model.config), task=model.task, **fields,
    )


def eager_runner(model: UpscalerModel, conv: bool = False) -> Runner:
    """The PyTorch model as a runner (inference mode, fp32). ``conv=True`` runs its STFTs as the
    DFT convolutions an export uses (see :func:`export_reference`)."""

    def run(x: np.ndarray, cutoff_hz: np.ndarray) -> np.ndarray:
        cutoff = torch.as_tensor(np.asarray(cutoff_hz, np.float32).reshape(-1))
        with torch.inference_mode(), (conv_stft(model) if conv else nullcontext()):
            return model(torch.from_numpy(np.ascontiguousarray(x, np.float32)), cutoff).numpy()

    return run


def export_reference(model: UpscalerModel, fmt: str = "onnx") -> Runner:
    """What an export of format ``fmt`` is checked against: the eager model computing its STFTs
    the way the graph does (ONNX: DFT convolutions instead of FFTs; TorchScript keeps the FFTs).
    The two STFTs agree to float32 rounding, but STFT bins at the rounding-noise level (e.g. above
    the cutoff of band-limited input) have arbitrary phases in both, and a model may amplify that
    difference; checking against the same transforms measures what the export itself changes."""
    return eager_runner(model, conv=fmt == "onnx")


# ---------------------------------------------------------------------- check clips


@dataclass
class Clip:
    """A check example at the model's rate: ``degraded``/``clean`` ``[C, T]`` float32, cutoff in Hz."""

    degraded: np.ndarray
    clean: np.ndarray
    cutoff_hz: float


def check_clips(sample_rate: int, files: Sequence[str | Path] = (), seconds: float = 1.0,
                cutoffs_hz: Sequence[float] = (4000.0, 8000.0, 11000.0), seed: int = 0) -> list[Clip]:
    """Band-limited examples: each full-band source (``files``, else a synthesized music-like clip:
    decaying harmonic notes over noise bursts) low-passed at each cutoff by resampling to twice the
    cutoff and back (soxr)."""
    from ..dsp.resample import resample

    sources = [_read(f, sample_rate, seconds) for f in files] or [_synth(sample_rate, seconds, seed)]
    clips = []
    for clean in sources:
        for cutoff in cutoffs_hz:
            low = int(2 * cutoff)
            degraded = resample(resample(clean, sample_rate, low), low, sample_rate)[:, : clean.shape[1]]
            clips.append(Clip(degraded, clean, float(cutoff)))
    return clips


def _synth(sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 196.0 * 2 ** (np.floor(t * 4) % 5 / 12)  # a new note every 0.25 s
    env = np.exp(-4.0 * (t % 0.25))
    k = np.arange(1, int(sample_rate / 2 / 400))[:, None]
    tone = (np.sin(2 * np.pi * k * np.cumsum(f0) / sample_rate) / k).sum(0) * env
    noise = rng.standard_normal(t.size) * np.exp(-30.0 * (t % 0.5))  # percussive bursts
    x = tone / np.abs(tone).max() + 0.3 * noise
    return (0.5 * x / np.abs(x).max())[None].astype(np.float32)


#: A check clip whose peak stays under this (about -100 dBFS) is silent.
SILENT_CLIP_PEAK = 1e-5


def _read(path: str | Path, sample_rate: int, seconds: float) -> np.ndarray:
    from ..dsp.resample import resample
    from ..io import read_audio

    audio = read_audio(path)
    if audio.duration < MIN_CLIP_SECONDS:
        raise UpscalerError(f"{path}: {audio.frames} samples ({audio.duration:.3f} s) are too short for a check clip "
                            f"(at least {MIN_CLIP_SECONDS:g} s)")
    x = resample(audio.samples, audio.sample_rate, sample_rate)
    x = np.ascontiguousarray(x[:2, : int(seconds * sample_rate)], np.float32)
    if not np.abs(x).max() > SILENT_CLIP_PEAK:  # a silent clip passes every comparison and calibrates nothing
        raise UpscalerError(f"{path}: the part used as a check clip ({seconds:g} s) is silent")
    return x


# ---------------------------------------------------------------------- comparisons


def run_clips(runner: Runner, clips: Sequence[Clip]) -> list[np.ndarray]:
    """The runner's output ``[C, T]`` for each clip."""
    return [runner(c.degraded[None], np.array([c.cutoff_hz], np.float32))[0] for c in clips]


def max_abs_error(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def mean_lsd(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray], sample_rate: int) -> float:
    """Mean LSD (NU-Wave 2 / AP-BWE convention) of ``outputs`` against ``references``."""
    from ..metrics import lsd

    return float(np.mean([lsd(r, o, sample_rate).lsd for o, r in zip(outputs, references)]))


def realtime_factor(runner: Runner, sample_rate: int, seconds: float = 4.0, repeats: int = 3) -> float:
    """Seconds of mono audio processed per second of wall time (best of ``repeats``)."""
    x = (0.1 * np.random.default_rng(0).standard_normal((1, 1, int(seconds * sample_rate)))).astype(np.float32)
    cutoff = np.array([sample_rate / 6], np.float32)
    runner(x[..., : x.shape[-1] // 8], cutoff)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        runner(x, cutoff)
        best = min(best, time.perf_counter() - start)
    return seconds / best


def compare(runner: Runner, reference: Sequence[np.ndarray], clips: Sequence[Clip], sample_rate: int) -> dict:
    """The runner's quality on ``clips`` (``lsd`` against the clean clips) and its deviation from
    ``reference`` outputs of another model on the same clips (``lsd_vs_reference``,
    ``max_abs_error_vs_reference``)."""
    outputs = run_clips(runner, clips)
    return {
        "lsd": round(mean_lsd(outputs, [c.clean for c in clips], sample_rate), 4),
        "lsd_vs_reference": round(mean_lsd(outputs, reference, sample_rate), 4),
        "max_abs_error_vs_reference": max_abs_error(outputs, reference),
    }
