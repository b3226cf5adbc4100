"""The fixed validation set of a training run and its metrics.

For each benchmark task (``degrade.TASKS``, at the model's rate) a fixed set of examples is drawn
once from the validation data; every validation runs the model on them and reports, per task,
the mean LSD / LSD-HF / LSD-LF (NU-Wave 2 / AP-BWE convention), SNR, the same for the unprocessed
(sinc-resampled) input, and optionally PESQ / STOI. ``lsd`` (the mean over tasks) is what runs
select the best checkpoint and stop early on. With ``source_band_only`` (the run's
``data.source_band_only``) the metrics see, like the loss, only the band each example's source has:
above it the output is given the reference's content (``losses.outside_band_from_target``).
A task whose references have a lower rate than the model (``mp3_*``: 44.1 kHz) is scored at that
rate, as the benchmark scores it: for a 48 kHz model only its output up to 22.05 kHz counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..degrade import TASKS
from ..degrade.spec import chain_from_spec
from ..dsp.resample import resample
from ..losses import outside_band_from_target
from ..metrics import lsd, snr
from .data import DataConfig, PairDataset

#: Validation "task" without degradation: clean in, clean out (vocoders, resynthesis models).
CLEAN_TASK = "clean"


@dataclass
class ValidationSet:
    """``task -> (degraded [N, C, T], clean [N, C, T], cutoff_hz [N], band_hz [N])`` tensors at
    ``sample_rate`` (``band_hz``: the band of each example's source)."""

    sample_rate: int
    tasks: dict
    source_band_only: bool = False

    @classmethod
    def build(cls, source, data: DataConfig, tasks: list[str], examples: int,
              source_band_only: bool = False) -> ValidationSet:
        """Draw ``examples`` fixed examples per task from ``source`` (``data`` sets rate/crop);
        a task is a benchmark task name or ``"clean"`` (no degradation)."""
        fixed = {}
        for task in tasks:
            config = DataConfig(**{**data.__dict__, "length": examples, "split": "auto"})
            degradation = chain_from_spec("none") if task == CLEAN_TASK else task
            ds = PairDataset(source, config, degradation=degradation, validation=True)
            degraded, clean, cutoff, band = zip(*(ds[i] for i in range(len(ds))))
            fixed[task] = (torch.stack(degraded), torch.stack(clean),
                           torch.tensor(cutoff, dtype=torch.float32), torch.tensor(band, dtype=torch.float32))
        return cls(data.sample_rate, fixed, source_band_only)

    def run(self, model: torch.nn.Module, device: torch.device, speech_metrics: bool = False,
            batch_size: int = 4) -> tuple[dict, dict]:
        """Metrics ``{"lsd": mean, "<task>/lsd": ..., ...}`` and outputs ``{task: [N, C, T]}``."""
        metrics, outputs = {}, {}
        model.eval()
        with torch.inference_mode():
            for task, (degraded, clean, cutoff, band) in self.tasks.items():
                parts = [model(degraded[i:i + batch_size].to(device), cutoff[i:i + batch_size].to(device)).float().cpu()
                         for i in range(0, len(degraded), batch_size)]
                outputs[task] = torch.cat(parts)
                scored = (outside_band_from_target(outputs[task], clean, band, self.sample_rate)
                          if self.source_band_only else outputs[task])
                metrics.update(self._task_metrics(task, scored, degraded, clean, cutoff, speech_metrics))
        metrics["lsd"] = float(np.mean([metrics[f"{t}/lsd"] for t in self.tasks]))
        metrics["lsd_ratio"] = float(np.mean([metrics[f"{t}/lsd_ratio"] for t in self.tasks]))
        return metrics, outputs

    def _task_metrics(self, task, out, degraded, clean, cutoff, speech_metrics) -> dict:
        rows = {"lsd": [], "lsd_hf": [], "lsd_lf": [], "snr": [], "input_lsd": [], "input_snr": []}
        speech = {"pesq": [], "stoi": []}
        rate = scoring_rate(task, self.sample_rate)
        for est, low, ref, fc in zip(out.numpy(), degraded.numpy(), clean.numpy(), cutoff.tolist()):
            if rate != self.sample_rate:
                est, low, ref = (resample(a, self.sample_rate, rate) for a in (est, low, ref))
            result = lsd(ref, est, rate, fc)
            rows["lsd"].append(result.lsd)
            rows["lsd_hf"].append(result.lsd_hf)
            rows["lsd_lf"].append(result.lsd_lf)
            rows["snr"].append(snr(ref, est))
            rows["input_lsd"].append(lsd(ref, low, rate).lsd)
            rows["input_snr"].append(snr(ref, low))
            if speech_metrics:
                for name, value in _speech_scores(ref, est, rate).items():
                    speech[name].append(value)
        metrics = {f"{task}/{k}": _finite_mean(v) for k, v in rows.items()}
        base = metrics[f"{task}/input_lsd"]  # 0 for the clean task: no ratio there
        metrics[f"{task}/lsd_ratio"] = metrics[f"{task}/lsd"] / base if base > 1e-6 else math.nan
        metrics.update({f"{task}/{k}": _finite_mean(v) for k, v in speech.items() if v})
        return metrics


def scoring_rate(task: str, model_rate: int) -> int:
    """The rate validation scores ``task`` at: the benchmark task's reference rate where it is
    below ``model_rate`` (Hz), else ``model_rate``."""
    spec = TASKS.get(task)
    return spec.reference_rate if spec is not None and spec.reference_rate < model_rate else model_rate


def _speech_scores(ref: np.ndarray, est: np.ndarray, rate: int) -> dict:
    from ..errors import UpscalerError
    from ..metrics import pesq_wb, stoi

    scores = {}
    for name, fn in (("pesq", pesq_wb), ("stoi", stoi)):
        try:
            scores[name] = fn(ref, est, rate)
        except UpscalerError:  # silent clip, missing package: not scorable
            scores[name] = math.nan
    return scores


def _finite_mean(values: list) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
