"""Portable model formats: ONNX and TorchScript export, int8 quantization and pruning.

- :mod:`.onnx`: :func:`~.onnx.export_onnx` (dynamic batch/channel/time axes, checked against eager);
- :mod:`.torchscript`: :func:`~.torchscript.export_torchscript` (traced, checked the same way);
- :mod:`.quantize`: int8 ONNX models with onnxruntime (dynamic, or static with calibration);
- :mod:`.prune`: magnitude or random unstructured pruning, optionally with a short fine-tune;
- :mod:`.onnx_backend`: runs an exported ONNX model in the pipeline with onnxruntime + numpy;
- :mod:`.manifest`: the ``export.json`` describing an export folder.
- :mod:`.job`: :func:`~.job.export_model`, what ``audio-upscaler export`` runs (prune, export,
  check, quantize, report); :mod:`.common`: tracing mode, check clips and comparisons.

An export is a folder holding one model file plus ``export.json`` (family, native rate, the
chunking geometry, the checks made at export time, and the SHA-256 of the weights it was made
from, checked against the installed weights when the export is run by name). Importing this package imports nothing;
:mod:`.onnx_backend` and :mod:`.manifest` never import torch.
"""
