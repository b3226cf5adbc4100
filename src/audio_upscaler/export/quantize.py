"""int8 quantization of ONNX exports with onnxruntime's quantization tools.

- ``dynamic``: weights stored as int8, activations quantized on the fly per call (no
  calibration). On convolutional models onnxruntime runs these as ``ConvInteger``, which is
  smaller but usually *slower* than fp32 on a CPU; the report says so.
- ``static``: weights and activations int8 in QDQ format, activation ranges calibrated on a few
  clips; runs as fused int8 kernels (faster than fp32). Only the weight-bearing operators
  (:data:`STATIC_OPS`) are quantized: quantizing every elementwise operator as well costs far more
  quality (on the STFT families the log-amplitude / ``exp`` path) for no speed.

Both leave the STFT/ISTFT transforms (the manifest's ``float_nodes``) in float, so the analysis
and synthesis stay exact. PyTorch's own dynamic quantization is not used: it covers only
``Linear``/recurrent layers, and every family here is convolutional.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UpscalerError
from .common import Clip
from .manifest import INPUTS, ExportManifest, pad_to_grid, read_manifest, write_manifest

MODES = ("dynamic", "static")
#: Operators static quantization converts to int8 (the ones holding weights).
STATIC_OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul"]


def quantize_onnx(source: str | Path, target: str | Path, mode: str = "dynamic",
                  calibration: Sequence[Clip] = ()) -> ExportManifest:
    """Write an int8 copy of the ONNX export folder ``source`` into ``target``; returns its manifest.

    ``calibration`` (static mode): clips at the model's rate whose ``degraded`` audio sets the
    activation ranges.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode not in MODES:
        raise UpscalerError(f"quantization mode must be one of {', '.join(MODES)}")
    source, target = Path(source), Path(target)
    manifest = read_manifest(source)
    if manifest.format != "onnx":
        raise UpscalerError("int8 quantization works on ONNX exports; export with --format onnx")
    if mode == "static" and not calibration:
        raise UpscalerError("static int8 quantization needs calibration clips")
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{manifest.file}.fp32"  # the quantizer may not read and write the same file
    shutil.copyfile(source / manifest.file, tmp)
    out = target / manifest.file
    logging.disable(logging.WARNING)  # onnxruntime.quantization logs a warning per unusual node
    try:
        if mode == "dynamic":
            _unshare_weights(tmp)
            quantize_dynamic(tmp, out, weight_type=QuantType.QInt8, nodes_to_exclude=manifest.float_nodes)
        else:
            quantize_static(tmp, out, _Calibration(calibration, manifest.alignment), quant_format=QuantFormat.QDQ,
                            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            op_types_to_quantize=STATIC_OPS, nodes_to_exclude=manifest.float_nodes)
    finally:
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)
    manifest.quantization = f"int8-{mode}"
    manifest.float_nodes = []
    write_manifest(target, manifest)
    return manifest


def _unshare_weights(path: Path) -> None:
    """Give every ``Identity(initializer)`` node its own copy of the initializer.

    The exporter deduplicates identical weights (e.g. the zero-initialized FiLM projections of an
    untrained model) into one initializer plus Identity nodes; onnxruntime's dynamic quantizer
    transposes a Gemm's weight in place and so breaks every other Gemm sharing it.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    shared = [n for n in graph.node if n.op_type == "Identity" and n.input[0] in weights]
    for node in shared:
        copy = onnx.TensorProto()
        copy.CopyFrom(weights[node.input[0]])
        copy.name = node.output[0]
        graph.initializer.append(copy)
        graph.node.remove(node)
    if shared:
        onnx.save(model, str(path))


class _Calibration:
    """onnxruntime ``CalibrationDataReader``: one input dict per clip."""

    def __init__(self, clips: Sequence[Clip], alignment: int):
        self._items = iter([{INPUTS[0]: pad_to_grid(c.degraded[None], alignment),
                             INPUTS[1]: np.array([c.cutoff_hz], np.float32)} for c in clips])

    def get_next(self) -> dict | None:
        return next(self._items, None)
