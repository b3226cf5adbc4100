"""``export_model``: prune (optional) -> export -> check against eager -> quantize (optional) ->
report. What ``audio-upscaler export`` runs; every figure lands in the manifest's ``report``.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import UpscalerError
from ..models.base import UpscalerModel
from .common import (check_clips, compare, eager_runner, export_reference, max_abs_error, mean_lsd, realtime_factor,
                     run_clips)
from .manifest import FORMATS, read_manifest, source_fingerprint, write_manifest

#: Largest max-abs difference between an fp32 export and the eager model that passes the check.
TOLERANCE = 1e-4


def default_subdir(fmt: str, quantize: str | None = None) -> str:
    """Sub-folder of a model folder an export goes to: ``onnx``, ``onnx-int8-static``, ``torchscript``..."""
    return fmt if not quantize else f"{fmt}-int8" + ("" if quantize == "dynamic" else f"-{quantize}")


def export_model(model: UpscalerModel, out: str | Path, *, fmt: str = "onnx", quantize: str | None = None,
                 sparsity: float = 0.0, prune_method: str = "magnitude", fine_tune_steps: int = 0,
                 clip_files: Sequence[str | Path] = (), opset: int | None = None, force: bool = False,
                 speed_seconds: float = 4.0, source: str | Path | None = None) -> dict:
    """Export ``model`` (modified in place when pruned) into folder ``out``; returns the report.

    Args:
        fmt: ``onnx`` or ``torchscript``.
        quantize: ``dynamic`` or ``static`` int8 (ONNX only), or ``None``.
        sparsity: prune this fraction of the weights first (``prune_method``: magnitude|random),
            then fine-tune for ``fine_tune_steps`` steps towards the unpruned model's output.
        clip_files: audio files for the checks and calibration (default: a synthesized clip).
        speed_seconds: audio length for the x-real-time figures (0: skip them).
        source: the model folder ``model`` was loaded from; its fingerprint (SHA-256 of
            ``model.safetensors`` and of the model part of ``config.json``) goes into the manifest,
            so that the onnxruntime backend can tell when the installed weights of that name have
            changed since (see :func:`.onnx_backend.find_export`). ``None``: no fingerprint.

    Raises ``UpscalerError`` when the fp32 export differs from eager by more than :data:`TOLERANCE`.
    """
    if fmt not in FORMATS:
        raise UpscalerError(f"export format must be one of {', '.join(FORMATS)}")
    if quantize and fmt != "onnx":
        raise UpscalerError("int8 quantization needs --format onnx")
    fingerprint = source_fingerprint(source) if source is not None else {}  # the weights as loaded, before the long work
    model.eval()
    rate = model.sample_rate or 48_000
    clips = check_clips(rate, clip_files)
    report: dict = {"family": model.family, "format": fmt, "parameters": model.num_parameters(), "check_clips": len(clips)}
    speed = {}
    if speed_seconds:
        speed["eager"] = realtime_factor(eager_runner(model), rate, speed_seconds)
    if sparsity:
        report["pruning"] = _prune(model, clips, sparsity, prune_method, fine_tune_steps, rate, speed_seconds)
    reference = run_clips(eager_runner(model), clips)
    report["lsd_eager"] = round(mean_lsd(reference, [c.clean for c in clips], rate), 4)
    same_transforms = run_clips(export_reference(model, fmt), clips)

    out = Path(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise UpscalerError(f"cannot create the export folder {out}: {exc.strerror or exc}") from None
    try:
        report, manifest = _export_checked(model, out, fmt, quantize, opset, force, clips, reference, same_transforms,
                                           rate, speed_seconds, report, speed)
    except BaseException:
        if created:  # no half-made folder; an existing one keeps its previous export
            shutil.rmtree(out, ignore_errors=True)
        raise
    report["bytes"] = (out / manifest.file).stat().st_size
    if speed:
        report["x_real_time"] = {k: round(v, 1) for k, v in speed.items()}
    manifest.report = report
    for key, value in fingerprint.items():
        setattr(manifest, key, value)
    write_manifest(out, manifest)
    return report


def _export_checked(model: UpscalerModel, out: Path, fmt: str, quantize: str | None, opset: int | None, force: bool,
                    clips, reference, same_transforms, rate: int, speed_seconds: float, report: dict, speed: dict):
    """Export into a temporary folder inside ``out``, check it, and only then move the model file
    into ``out`` (a failed check leaves no export behind, nor replaces the one there)."""
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp:
        fp32_folder = Path(tmp) / "fp32"
        manifest = _export(model, fp32_folder, fmt, opset, force)
        runner = _runner(fp32_folder)
        exported = run_clips(runner, clips)
        error = max_abs_error(exported, same_transforms)
        report["max_abs_error"] = error
        report["max_abs_error_vs_fft_stft"] = max_abs_error(exported, reference)  # differs for ONNX of STFT families
        if error > TOLERANCE:
            raise UpscalerError(f"the {fmt} export differs from the PyTorch model by {error:.2e} (more than {TOLERANCE:g})")
        if speed_seconds:
            speed[fmt] = realtime_factor(runner, rate, speed_seconds)
        if quantize:
            from .quantize import quantize_onnx

            size_fp32 = (fp32_folder / manifest.file).stat().st_size
            final = Path(tmp) / "int8"
            manifest = quantize_onnx(fp32_folder, final, quantize, clips)
            int8 = _runner(final)
            quality = compare(int8, reference, clips, rate)
            report["int8"] = {"mode": quantize, "bytes_fp32": size_fp32, "bytes_int8": (final / manifest.file).stat().st_size,
                              "lsd_fp32": report["lsd_eager"], "lsd_int8": quality["lsd"],
                              "lsd_vs_fp32": quality["lsd_vs_reference"],
                              "max_abs_error_vs_fp32": quality["max_abs_error_vs_reference"]}
            if speed_seconds:
                speed[f"{fmt}-int8-{quantize}"] = realtime_factor(int8, rate, speed_seconds)
        else:
            final = fp32_folder
        os.replace(final / manifest.file, out / manifest.file)
    return report, manifest


def _prune(model: UpscalerModel, clips, sparsity: float, method: str, steps: int, rate: int, speed_seconds: float) -> dict:
    from .prune import compressed_bytes, distillation, prune_model, sparsity_of

    before = run_clips(eager_runner(model), clips)
    teacher = copy.deepcopy(model)
    info = {"method": method, "target_sparsity": sparsity, "fine_tune_steps": steps,
            "compressed_bytes_before": compressed_bytes(model),
            "lsd_before": round(mean_lsd(before, [c.clean for c in clips], rate), 4)}
    prune_model(model, sparsity, method, distillation(teacher, clips, steps) if steps else None)
    quality = compare(eager_runner(model), before, clips, rate)
    info.update(sparsity=round(sparsity_of(model), 4), compressed_bytes_after=compressed_bytes(model),
                lsd_after=quality["lsd"], lsd_vs_unpruned=quality["lsd_vs_reference"],
                max_abs_error_vs_unpruned=quality["max_abs_error_vs_reference"])
    if speed_seconds:
        info["x_real_time_after"] = round(realtime_factor(eager_runner(model), rate, speed_seconds), 1)
    return info


def _export(model: UpscalerModel, folder: Path, fmt: str, opset: int | None, force: bool):
    if fmt == "onnx":
        from .onnx import OPSET, export_onnx

        return export_onnx(model, folder, opset=opset or OPSET, force=force)
    from .torchscript import export_torchscript

    return export_torchscript(model, folder)


def _runner(folder: Path):
    if read_manifest(folder).format == "onnx":
        from .onnx_backend import OnnxModel

        return OnnxModel(folder)
    from .torchscript import TorchScriptModel

    return TorchScriptModel(folder)
