"""Unstructured pruning of a model's weights to a target sparsity, magnitude or random, with an
optional short fine-tune while the pruning masks hold the removed weights at zero.

Pruning is global over every convolution and linear weight (:func:`prunable_weights`): magnitude
pruning removes the weights smallest in absolute value across all those layers, random pruning
removes a random subset. Dense kernels do not skip zeros, so speed does not change; the gain is
storage once the weights are compressed (:func:`compressed_bytes`), and a sparse model is the
starting point for structured pruning or sparse runtimes.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import UpscalerError
from ..models.base import UpscalerModel
from .common import Clip

METHODS = ("magnitude", "random")
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)
FineTune = Callable[[UpscalerModel], None]


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every convolution and linear layer of ``model``."""
    return [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]


def prune_model(model: UpscalerModel, sparsity: float, method: str = "magnitude",
                fine_tune: FineTune | None = None, seed: int = 0) -> UpscalerModel:
    """Zero a fraction ``sparsity`` (0-1) of ``model``'s prunable weights in place and return it.

    ``fine_tune(model)`` (optional) runs in training mode while the masks are attached, so the
    pruned weights stay zero; the masks are then folded into the weights.
    """
    if method not in METHODS:
        raise UpscalerError(f"pruning method must be one of {', '.join(METHODS)}")
    if not 0.0 <= sparsity < 1.0:
        raise UpscalerError(f"sparsity must be at least 0 and below 1, got {sparsity}")
    params = prunable_weights(model)
    torch.manual_seed(seed)
    pruning = prune.L1Unstructured if method == "magnitude" else prune.RandomUnstructured
    prune.global_unstructured(params, pruning_method=pruning, amount=float(sparsity))
    if fine_tune is not None:
        model.train()
        fine_tune(model)
    for module, name in params:
        prune.remove(module, name)
    return model.eval()


def sparsity_of(model: nn.Module) -> float:
    """Fraction of the prunable weights that are exactly zero."""
    weights = [getattr(m, name) for m, name in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / max(total, 1)


def compressed_bytes(model: nn.Module) -> int:
    """Size of the fp16 weights after zlib compression (what sparsity saves in storage)."""
    raw = b"".join(v.detach().half().numpy().tobytes() for v in model.state_dict().values() if v.is_floating_point())
    return len(zlib.compress(raw, 6))


def distillation(teacher: UpscalerModel, clips: Sequence[Clip], steps: int = 50, lr: float = 1e-4) -> FineTune:
    """A fine-tune hook: ``steps`` Adam steps pulling the model's output towards ``teacher``'s
    (the unpruned model) on ``clips``, with an L1 waveform + multi-resolution STFT loss. Needs
    no training data beyond the clips, since the target is the teacher's own output."""
    from ..losses import MultiResolutionSTFTLoss

    teacher = copy.deepcopy(teacher).eval()
    pairs = []
    for clip in clips:
        x, cutoff = torch.from_numpy(clip.degraded)[None], torch.tensor([clip.cutoff_hz])
        with torch.no_grad():
            pairs.append((x, cutoff, teacher(x, cutoff)))
    spectral = MultiResolutionSTFTLoss(sample_rate=teacher.sample_rate or 48_000)

    def fine_tune(model: UpscalerModel) -> None:
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        for step in range(int(steps)):
            x, cutoff, target = pairs[step % len(pairs)]
            y = model(x, cutoff)
            loss = (y - target).abs().mean() + spectral(y, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return fine_tune
