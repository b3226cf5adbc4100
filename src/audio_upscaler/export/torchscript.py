"""TorchScript export by tracing (``torch.jit.trace``), with dynamic batch, channel and time axes.

The model is traced in :func:`~.common.export_mode` (no input length frozen into the graph; the
FFT-based STFTs are kept, TorchScript runs them), so the saved module takes lengths on the
alignment grid like the ONNX graph; :class:`TorchScriptModel` pads and crops around it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import UpscalerError
from ..models.base import UpscalerModel
from .common import export_mode, manifest_for, trace_input
from .manifest import TORCHSCRIPT_FILE, ExportManifest, pad_to_grid, read_manifest, write_manifest


def export_torchscript(model: UpscalerModel, folder: str | Path) -> ExportManifest:
    """Write ``folder/model.pt`` (a traced module: ``forward(audio [B, C, T], cutoff_hz [B])``,
    ``T`` on the alignment grid) + ``export.json``; returns the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x, cutoff = trace_input(model)
    with export_mode(model, conv=False):  # TorchScript runs torch.stft/istft: faster, and equal to eager
        try:
            traced = torch.jit.trace(model, (x, cutoff), check_trace=False)
        except Exception as exc:
            raise UpscalerError(f"cannot trace family '{model.family}': {str(exc).splitlines()[0][:300]}") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream; still supported
        torch.jit.save(traced, str(folder / TORCHSCRIPT_FILE))
    manifest = manifest_for(model, "torchscript", TORCHSCRIPT_FILE)
    write_manifest(folder, manifest)
    return manifest


class TorchScriptModel:
    """A TorchScript export as a runner: ``model(x [B, C, T] numpy, cutoff_hz [B]) -> [B, C, T]`` (any ``T``)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if self.manifest.format != "torchscript":
            raise UpscalerError(f"{self.folder} holds a {self.manifest.format} export, not TorchScript")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(self.folder / self.manifest.file), map_location="cpu").eval()

    def __call__(self, x: np.ndarray, cutoff_hz) -> np.ndarray:
        t = x.shape[-1]
        if t == 0:
            return np.zeros_like(x, dtype=np.float32)
        padded = torch.from_numpy(pad_to_grid(x, self.manifest.alignment))
        cutoff = torch.as_tensor(np.asarray(cutoff_hz, np.float32).reshape(-1)).expand(x.shape[0]).contiguous()
        with torch.inference_mode():
            return self.module(padded, cutoff)[..., :t].numpy()
