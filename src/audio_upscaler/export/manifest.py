"""The manifest of an export folder (``export.json``): what the runtime needs besides the graph.

An exported graph takes ``audio [B, C, T]`` float32 with ``T`` a multiple of ``alignment`` (the
runtime zero-pads the end and crops, as the eager ``forward`` does) and ``cutoff_hz [B]``, and
returns the full-band ``[B, C, T]`` at ``sample_rate``. ``context_samples``/``latency_samples`` are
the model's chunking geometry at that rate. Torch-free.

``source_weights_sha256``/``source_config_sha256`` fingerprint the model folder an export was
made from (:func:`source_fingerprint`: the SHA-256 of its ``model.safetensors``, and of the
model-defining part of its ``config.json``); the onnxruntime backend compares them with the
installed weights of the same name (:func:`.onnx_backend.find_export`). ``None`` in exports made
before they were recorded, or of a model object that was never saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UpscalerError
from ..typecheck import checked_fields

MANIFEST_FILE = "export.json"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.pt"
#: Names of the graph's inputs and output.
INPUTS = ("audio", "cutoff_hz")
OUTPUT = "upscaled"
FORMATS = ("onnx", "torchscript")


@dataclass
class ExportManifest:
    """Everything an export folder's runtime needs; ``report`` holds the export-time checks."""

    family: str
    format: str  # onnx | torchscript
    file: str  # the model file inside the folder
    sample_rate: int  # native rate in Hz (0 = any rate)
    alignment: int  # input lengths must be multiples of this (samples)
    context_samples: int  # context each side for exact chunked output (samples)
    latency_samples: int  # look-ahead a streaming caller waits for (samples)
    config: dict = field(default_factory=dict)  # the model's constructor config
    task: str = "extend"  # extend | restore (models.base.TASKS)
    opset: int | None = None
    quantization: str | None = None  # None | "int8-dynamic" | "int8-static"
    float_nodes: list = field(default_factory=list)  # ONNX nodes int8 quantization must leave in float
    source_weights_sha256: str | None = None  # SHA-256 of the model.safetensors it was made from
    source_config_sha256: str | None = None  # config_sha256() of that folder's config.json
    report: dict = field(default_factory=dict)


#: The fingerprint fields of :class:`ExportManifest`.
SOURCE_FIELDS = ("source_weights_sha256", "source_config_sha256")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def write_manifest(folder: str | Path, manifest: ExportManifest) -> Path:
    path = Path(folder) / MANIFEST_FILE
    path.write_text(json.dumps(dataclasses.asdict(manifest), indent=2) + "\n")
    return path


def read_manifest(folder: str | Path) -> ExportManifest:
    """The manifest of export folder ``folder``; ``UpscalerError`` if it is missing or broken."""
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
        manifest = ExportManifest(**checked_fields(ExportManifest, data, MANIFEST_FILE))
    except FileNotFoundError:
        raise UpscalerError(f"{folder} is not an export folder (no {MANIFEST_FILE}); run 'audio-upscaler export'") from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # AttributeError: JSON that is not an object
        raise UpscalerError(f"cannot read {path}: {exc}") from exc
    if manifest.alignment < 1 or min(manifest.sample_rate, manifest.context_samples, manifest.latency_samples) < 0:
        raise UpscalerError(f"{path}: alignment must be at least 1 and the rate and sample counts 0 or more")
    if manifest.format not in FORMATS or not (Path(folder) / manifest.file).is_file():
        raise UpscalerError(f"{path} names no usable model file ({manifest.format}: {manifest.file})")
    for key in SOURCE_FIELDS:
        value = getattr(manifest, key)
        if value is not None and not _SHA256.fullmatch(value):
            raise UpscalerError(f"{path}: {key} must be a SHA-256 (64 lowercase hex digits) or null, got {value!r}")
    return manifest


def config_sha256(folder: str | Path) -> str | None:
    """SHA-256 of what in ``folder/config.json`` defines the model (family, task and settings,
    canonical JSON: key order and spacing do not count, nor ``package_version`` and the other
    bookkeeping); ``None`` when the file is missing or not a JSON object."""
    from ..models.registry import CONFIG_FILE

    try:
        meta = json.loads((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    identity = {key: meta.get(key) for key in ("family", "task", "config")}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def source_fingerprint(folder: str | Path) -> dict:
    """The :data:`SOURCE_FIELDS` of model folder ``folder`` (``model.safetensors`` + ``config.json``)."""
    from ..models.registry import WEIGHTS_FILE, sha256

    path = Path(folder) / WEIGHTS_FILE
    try:
        weights = sha256(path)
    except OSError as exc:
        raise UpscalerError(f"cannot read the weights {path}: {exc.strerror or exc}") from None
    return {"source_weights_sha256": weights, "source_config_sha256": config_sha256(folder)}


def pad_to_grid(x: np.ndarray, alignment: int) -> np.ndarray:
    """``x [B, C, T]`` zero-padded at the end to a multiple of ``alignment`` samples (float32)."""
    x = np.asarray(x, dtype=np.float32)
    t = x.shape[-1]
    n = -(-t // alignment) * alignment
    return np.pad(x, ((0, 0), (0, 0), (0, n - t))) if n != t else np.ascontiguousarray(x)
