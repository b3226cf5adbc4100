"""ONNX export with dynamic batch, channel and time axes, for onnxruntime.

Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): on the families
here it exports in about a second where the ``torch.export``-based one takes 10 s or more and
needs ``onnxscript``, and both give the same graph semantics. STFT-based families export through
:func:`~audio_upscaler.models.blocks.conv_stft` (DFT-basis convolutions instead of complex FFTs);
the node names of those convolutions are recorded in the manifest (``float_nodes``) so that int8
quantization leaves the transforms exact.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UpscalerError
from ..models.base import UpscalerModel
from ..models.blocks import RealISTFT, RealSTFT
from .common import export_mode, manifest_for, trace_input
from .manifest import INPUTS, ONNX_FILE, OUTPUT, ExportManifest, write_manifest

#: Opset of the exported graphs (onnxruntime >= 1.14 runs it; conv-based STFTs need nothing newer).
OPSET = 17


def export_onnx(model: UpscalerModel, folder: str | Path, *, opset: int = OPSET, force: bool = False) -> ExportManifest:
    """Write ``folder/model.onnx`` + ``export.json`` for ``model``; returns the manifest.

    The graph maps ``audio [B, C, T]`` (``T`` a multiple of ``model.alignment()``) and
    ``cutoff_hz [B]`` to ``upscaled [B, C, T]``. Raises ``UpscalerError`` when the family does
    not declare ONNX support (``force=True`` tries anyway) or the exporter fails.
    """
    if not model.supports_onnx and not force:
        raise UpscalerError(f"model family '{model.family}' does not support ONNX export "
                            "(see the README table 'Streaming and export'; --force tries anyway)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x, cutoff = trace_input(model)
    axes = {0: "batch", 1: "channels", 2: "time"}
    with export_mode(model):
        try:
            torch.onnx.export(
                model, (x, cutoff), str(folder / ONNX_FILE), input_names=list(INPUTS), output_names=[OUTPUT],
                dynamic_axes={INPUTS[0]: axes, INPUTS[1]: {0: "batch"}, OUTPUT: axes},
                opset_version=opset, dynamo=False,
                do_constant_folding=False,  # keep computed constants (the DFT bases) as nodes: onnxruntime folds them at load
            )
        except Exception as exc:  # the exporter raises many types; report the first line
            raise UpscalerError(f"cannot export family '{model.family}' to ONNX: {str(exc).splitlines()[0][:300]}") from exc
    manifest = manifest_for(model, "onnx", ONNX_FILE, opset=opset, float_nodes=_transform_nodes(model, folder / ONNX_FILE))
    write_manifest(folder, manifest)
    return manifest


def _transform_nodes(model: UpscalerModel, path: Path) -> list[str]:
    """Names of the graph nodes inside the model's STFT/ISTFT modules (the exporter scopes node
    names by module path, e.g. ``/stft/Conv``)."""
    import onnx

    prefixes = tuple("/" + name.replace(".", "/") + "/" for name, module in model.named_modules()
                     if isinstance(module, (RealSTFT, RealISTFT)))
    if not prefixes:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.name.startswith(prefixes)]
