"""Run an exported ONNX model with onnxruntime and numpy only: this module never imports torch.

:class:`OnnxModel` behaves like the eager model (``[B, C, T]`` in and out, any ``T``: the end is
zero-padded to the alignment grid and the output cropped). :class:`OnnxExtender` is the pipeline's
band extender for it (``Upscaler(..., backend="onnxruntime")``), with the same rate adaptation as
:class:`audio_upscaler.models.base.ModelExtender`: chunks are resampled to the model's native
rate with soxr when the pipeline runs at another rate.

Installed exports live in ``<models folder>/<name>/onnx/`` (what ``audio-upscaler export NAME
--format onnx`` writes by default); any export folder or ``.onnx`` file inside one also works as a
model name.

An export found by name runs under that name, so it must be the installed model of that name:
its manifest's fingerprint of the weights it was made from is compared with the installed
weights (shipped or user) of the name, and an export made from other weights or settings is
refused with the command that remakes it (:func:`find_export`). Refused rather than run with a
warning: a batch or a streaming job would otherwise give, under the model's name, the output of a
model that is no longer installed, and a warning is easily lost in a log. Exports made before the
fingerprint was recorded cannot be checked; they run, and the plan's reason says so
(:func:`source_note`), since refusing them would break every working export on upgrading. An
export named by its folder (or ``.onnx`` file) is not checked: the user chose that file.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from ..errors import UpscalerError
from ..extenders import NativeRateExtender
from .manifest import (INPUTS, MANIFEST_FILE, OUTPUT, SOURCE_FIELDS, ExportManifest, pad_to_grid, read_manifest,
                       source_fingerprint)

#: Sub-folder of an installed model that holds its ONNX export.
ONNX_SUBDIR = "onnx"


class OnnxModel:
    """An ONNX export: ``model(x [B, C, T] float32, cutoff_hz [B] Hz) -> [B, C, T]`` at its native rate.

    Args:
        folder: export folder (``export.json`` + the ``.onnx`` file).
        threads: onnxruntime intra-op threads (default: its own choice).
    """

    def __init__(self, folder: str | Path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UpscalerError("the onnxruntime backend needs onnxruntime: pip install 'audio-upscaler[export]'") from None
        self.folder = Path(folder)
        self.manifest: ExportManifest = read_manifest(self.folder)
        if self.manifest.format != "onnx":
            raise UpscalerError(f"{self.folder} holds a {self.manifest.format} export, not ONNX")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only (not the optimizer's notes about unused constants)
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        path = str(self.folder / self.manifest.file)
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise UpscalerError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from exc

    @property
    def sample_rate(self) -> int:
        return self.manifest.sample_rate

    def __call__(self, x: np.ndarray, cutoff_hz) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3:
            raise ValueError(f"expected audio [batch, channels, time], got shape {x.shape}")
        b, _, t = x.shape
        if t == 0:
            return x.copy()
        padded = pad_to_grid(x, self.manifest.alignment)
        cutoff = np.ascontiguousarray(np.broadcast_to(np.asarray(cutoff_hz, np.float32).reshape(-1), (b,)))
        (y,) = self.session.run([OUTPUT], {INPUTS[0]: padded, INPUTS[1]: cutoff})
        return y[..., :t]


class OnnxExtender(NativeRateExtender):
    """Pipeline band extender running an :class:`OnnxModel` (numpy ``[C, T]`` in and out, see
    :class:`~audio_upscaler.extenders.NativeRateExtender` for the rate handling)."""

    def __init__(self, model: OnnxModel, name: str):
        m = model.manifest
        super().__init__(name, keeps_low_band=m.task != "restore")
        self.model = model
        self.native_rate = model.sample_rate
        self.model_context, self.model_lookahead, self.model_alignment = m.context_samples, m.latency_samples, m.alignment

    def _run(self, x: np.ndarray, cutoff_hz: float) -> np.ndarray:
        return self.model(x[None], cutoff_hz)[0]


def _installed() -> dict[str, Path]:
    from ..models.registry import search_dirs

    found: dict[str, Path] = {}
    for root in search_dirs():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                export = folder / ONNX_SUBDIR
                if folder.name not in found and (export / MANIFEST_FILE).is_file():
                    found[folder.name] = export
    return found


def available_models() -> list[str]:
    """Names of the installed models that have an ONNX export."""
    return sorted(_installed())


def _locate(name: str) -> tuple[Path, bool]:
    """``(export folder, found by name)`` for ``name`` (see :func:`find_export`)."""
    path = Path(name).expanduser()
    if path.suffix == ".onnx" and path.is_file():
        path = path.parent
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        return path, False
    installed = _installed()
    if name not in installed:
        choices = ", ".join(["sbr", "none", *installed]) if installed else "sbr, none (no ONNX export installed)"
        raise UpscalerError(f"no ONNX export named '{name}' (choose: {choices}; create one with 'audio-upscaler export')")
    return installed[name], True


def find_export(name: str) -> Path:
    """The ONNX export folder for ``name``: an export folder, a ``.onnx`` file in one, or an installed name.

    An export found by name is checked against the installed weights of that name (shipped or
    user), when there are any: one whose ``export.json`` records other weights or model settings
    (see :func:`.manifest.source_fingerprint`) is refused with an ``UpscalerError`` saying how to
    remake it, rather than run in that model's place (see the module docstring). An export
    without the fingerprint passes (:func:`source_note` words it); a folder or ``.onnx`` path is
    taken as it is.
    """
    folder, by_name = _locate(name)
    if by_name:
        _check_source(name, folder)
    return folder


def source_note(name: str) -> str | None:
    """A note for the plan's reason when the installed export ``name`` cannot be checked against
    the installed weights of that name (it records no fingerprint: made before it was recorded);
    ``None`` otherwise, also when ``name`` is no installed export or fails the check (loading it
    says why)."""
    try:
        folder, by_name = _locate(name)
        return _check_source(name, folder) if by_name else None
    except UpscalerError:
        return None


def _check_source(name: str, folder: Path) -> str | None:
    """Raise when export ``folder``, found as ``name``, was made from other weights or settings
    than the installed ``name``; the note of :func:`source_note` when it cannot tell."""
    from ..models.registry import installed_folder

    weights = installed_folder(name)
    if weights is None:  # an export without its weights (copied to a runtime-only machine): nothing to compare
        return None
    manifest = read_manifest(folder)
    recorded = {key: getattr(manifest, key) for key in SOURCE_FIELDS}
    if recorded["source_weights_sha256"] is None:
        return (f"the ONNX export of '{name}' in {folder} records no fingerprint of the weights it was made from "
                f"(an older version made it), so it is not checked against the installed '{name}'; "
                f"`{_remake(name, folder, manifest)}` refreshes it")
    installed = source_fingerprint(weights)
    if recorded["source_weights_sha256"] != installed["source_weights_sha256"]:
        differs = "other weights"
    elif None not in (recorded["source_config_sha256"], installed["source_config_sha256"]) and \
            recorded["source_config_sha256"] != installed["source_config_sha256"]:
        differs = "other model settings (config.json)"
    else:
        return None
    raise UpscalerError(f"the ONNX export of '{name}' in {folder} was made from {differs} than the installed "
                        f"'{name}' ({weights}); run `{_remake(name, folder, manifest)}` again, or name the export "
                        "folder itself to run it as it is")


def _remake(name: str, folder: Path, manifest: ExportManifest) -> str:
    """The ``audio-upscaler export`` command that writes this export again from the installed weights."""
    from ..models.registry import user_dir

    words = ["audio-upscaler", "export", name]
    quantize = {"int8-dynamic": "int8", "int8-static": "int8-static"}.get(manifest.quantization or "")
    if quantize:
        words += ["--quantize", quantize]
    pruning = manifest.report.get("pruning") or {}
    if pruning.get("target_sparsity"):
        words += ["--prune", f"{pruning['target_sparsity']:g}"]
        if pruning.get("method", "magnitude") != "magnitude":
            words += ["--prune-method", str(pruning["method"])]
        if pruning.get("fine_tune_steps"):
            words += ["--fine-tune-steps", str(int(pruning["fine_tune_steps"]))]
    default = user_dir() / name / ONNX_SUBDIR  # where `export NAME` writes an fp32 ONNX export
    if quantize or pruning.get("target_sparsity") or folder.resolve() != default.resolve():
        words += ["-o", str(folder), "--overwrite"]
    return " ".join(shlex.quote(w) for w in words)


def load_extender(name: str, threads: int | None = None) -> OnnxExtender:
    """The ONNX export ``name`` (see :func:`find_export`) as a pipeline band extender."""
    return OnnxExtender(OnnxModel(find_export(name), threads), name)
