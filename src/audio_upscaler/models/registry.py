"""Model families by name, and the weights available to the pipeline.

Families register with ``@register("name")``; :data:`FAMILY_MODULES` lists the modules that
define them (imported on first use, so importing this module does not import torch).
Weights live in folders ``<root>/<name>/`` holding ``model.safetensors`` + ``config.json``;
the roots are the user folder (``$AUDIO_UPSCALER_MODELS``, else ``~/.cache/audio_upscaler/models``)
and the weights shipped in the package (``models/weights/``). A user folder shadows a shipped
one of the same name.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UpscalerError
from ..typecheck import checked_fields

if TYPE_CHECKING:
    from .base import ModelExtender, UpscalerModel

#: Modules (under ``audio_upscaler.models``) that define model families.
FAMILY_MODULES = ("apnet", "waveunet", "specunet", "wavelet", "edge", "melgan", "vocoder")
#: Names that belong to non-neural extenders and can never name weights.
RESERVED_NAMES = ("auto", "sbr", "none")
ENV_VAR = "AUDIO_UPSCALER_MODELS"
#: The two files of a model folder (here rather than in :mod:`.base`, so that finding installed
#: weights needs no torch: the onnxruntime path checks its exports against them).
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SHIPPED_DIR = Path(__file__).parent / "weights"
CHECKSUMS = "SHA256SUMS"

_FAMILIES: dict[str, type] = {}


def register(family: str):
    """Class decorator: make ``cls`` buildable as ``family``."""

    def decorator(cls: type) -> type:
        if family in _FAMILIES and _FAMILIES[family] is not cls:
            raise ValueError(f"model family '{family}' is registered twice")
        cls.family = family
        _FAMILIES[family] = cls
        return cls

    return decorator


def _load_families() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def families() -> list[str]:
    """Names of every registered model family."""
    _load_families()
    return sorted(_FAMILIES)


def get_class(family: str) -> type[UpscalerModel]:
    _load_families()
    if family not in _FAMILIES:
        raise UpscalerError(f"unknown model family '{family}'; choose one of: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[family]


def make_config(family: str, **config: Any):
    """The family's config dataclass filled from ``config`` (unknown keys are an error)."""
    config_class = get_class(family).config_class
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UpscalerError(f"unknown setting(s) for model family '{family}': {', '.join(unknown)}")
    return config_class(**checked_fields(config_class, config, "model"))


def build(family: str, **config: Any) -> UpscalerModel:
    """A freshly initialized model of ``family``; ``config`` overrides the dataclass defaults."""
    return get_class(family)(make_config(family, **config))


def build_from_yaml(path: str | os.PathLike, section: str = "model") -> UpscalerModel:
    """Build from a YAML file whose ``section`` (or whole document) holds ``family`` + config fields."""
    import yaml

    from ..textio import load_yaml

    try:
        data = load_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UpscalerError(f"cannot read model config {path}: {exc}") from exc
    data = data.get(section, data) if isinstance(data, dict) else None
    if not isinstance(data, dict) or "family" not in data:
        raise UpscalerError(f"{path} has no model 'family' (expected under '{section}:')")
    data = dict(data)
    return build(data.pop("family"), **data)


# ---------------------------------------------------------------------- available weights

def user_dir() -> Path:
    """Folder for user-installed or trained models."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "audio_upscaler" / "models"


def search_dirs() -> list[Path]:
    """Roots searched for model folders, highest priority first."""
    return [user_dir(), SHIPPED_DIR]


def _is_model_dir(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def _model_dirs() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in search_dirs():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name not in RESERVED_NAMES and folder.name not in found and _is_model_dir(folder):
                found[folder.name] = folder
    return found


def available_models() -> list[str]:
    """Names of every model whose weights are installed (shipped or user)."""
    return sorted(_model_dirs())


def upscaler_models() -> list[str]:
    """Installed models that extend or restore a band (every task but ``vocoder``): what the web
    UI offers."""
    from .base import read_config

    names = []
    for name, folder in sorted(_model_dirs().items()):
        try:
            task = _task(read_config(folder))
        except UpscalerError:  # a damaged folder (``audio-upscaler models`` says what is wrong)
            continue
        if task != "vocoder":
            names.append(name)
    return names


def _task(meta: dict) -> str:
    """The task of saved weights (``config.json`` contents), their family's default if unsaved."""
    from .base import TASKS

    task = meta.get("task") or get_class(meta["family"]).default_task
    if task not in TASKS:
        raise UpscalerError(f"unknown task '{task}' (expected one of: {', '.join(TASKS)})")
    return task


def model_path(name: str) -> Path:
    """The folder holding the weights called ``name``."""
    found = _model_dirs()
    if name not in found:
        choices = ", ".join(sorted(found)) or "none installed"
        raise UpscalerError(f"no model weights named '{name}' ({choices})")
    return found[name]


def installed_folder(name: str) -> Path | None:
    """The folder holding the installed weights called ``name`` (user first), or ``None``."""
    return _model_dirs().get(name)


def shadowing_user_folder(name: str) -> Path | None:
    """The user folder that shadows the shipped model ``name``, if one does (it is what loads)."""
    folder = installed_folder(name)
    shipped = SHIPPED_DIR / name
    return folder if folder is not None and folder != shipped and _is_model_dir(shipped) else None


def family_info(family: str) -> dict:
    """What ``audio-upscaler models`` lists for a family (parameters at its default size)."""
    cls = get_class(family)
    model = build(family)
    return {
        "family": family,
        "description": cls.description,
        "parameters": model.num_parameters(),
        "sample_rate": model.sample_rate,
        "cutoffs_hz": list(cls.cutoff_range_hz),
        "streaming": cls.supports_streaming,
        "onnx": cls.supports_onnx,
    }


def model_info(name: str) -> dict:
    """What ``audio-upscaler models`` lists for one installed weights folder."""
    from .base import read_config

    folder = model_path(name)
    meta = read_config(folder)
    cls = get_class(meta["family"])
    return {
        "name": name,
        "family": meta["family"],
        "description": cls.description,
        "task": _task(meta),
        "parameters": meta.get("parameters"),
        "sample_rate": meta.get("sample_rate"),
        "cutoffs_hz": list(cls.cutoff_range_hz),
        "streaming": cls.supports_streaming,
        "onnx": cls.supports_onnx,
        "dtype": meta.get("dtype"),
        "path": str(folder),
    }


def shipped_digests() -> dict[str, str]:
    """``{"<name>/model.safetensors": sha256}`` from the shipped ``SHA256SUMS`` file."""
    sums = SHIPPED_DIR / CHECKSUMS
    if not sums.is_file():
        return {}
    digests = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, _, path = line.strip().partition("  ")
            digests[path] = digest
    return digests


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_shipped(folder: Path) -> None:
    """Check a shipped model's weights against ``SHA256SUMS`` (user folders are not checked)."""
    if folder.parent.resolve() != SHIPPED_DIR.resolve():
        return
    key = f"{folder.name}/{WEIGHTS_FILE}"
    expected = shipped_digests().get(key)
    if expected is None:
        raise UpscalerError(f"shipped model '{folder.name}' has no checksum in {SHIPPED_DIR / CHECKSUMS}")
    if sha256(folder / WEIGHTS_FILE) != expected:
        raise UpscalerError(f"shipped model '{folder.name}' is corrupted (SHA-256 mismatch); reinstall the package")


def load_model(name: str) -> UpscalerModel:
    """Load the installed weights called ``name`` (eval mode, CPU); shipped weights are
    verified by SHA-256 first."""
    from .base import UpscalerModel

    folder = model_path(name)
    verify_shipped(folder)
    return UpscalerModel.load(folder)


def load_extender(name: str) -> ModelExtender:
    """The installed model ``name`` wrapped as a pipeline band extender; :class:`UpscalerError`
    for a vocoder (it only resynthesizes the band its input has: not an upscaler)."""
    from .base import ModelExtender, read_config

    if _task(read_config(model_path(name))) == "vocoder":
        raise UpscalerError(f"'{name}' is a vocoder (log-mel -> audio, a part of mel-GAN models), not a band-extension "
                            f"model; choose one of: auto, sbr, none, {', '.join(upscaler_models())}")
    return ModelExtender(load_model(name), name)
