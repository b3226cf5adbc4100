"""The model contract, checkpoint format and the pipeline adapter.

Every family subclasses :class:`UpscalerModel`: ``forward(x [B, C, T], cutoff_hz [B]) -> [B, C, T]``
at the model's native rate, whatever its internal representation. A checkpoint is a folder with
``model.safetensors`` (weights, fp32 or fp16) and ``config.json`` (family, constructor config,
sample rate, format version), so any checkpoint rebuilds its model with no code edits and
loading never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import UpscalerError
from ..extenders import NativeRateExtender
from .registry import CONFIG_FILE, WEIGHTS_FILE

FORMAT_VERSION = 1
#: What trained weights are for. ``extend``: the pipeline keeps the input below the cutoff and
#: takes only the model's band above it. ``restore`` (codec restoration): the model's whole
#: output is used, since it also repairs the band below the cutoff. ``vocoder``: log-mel -> audio
#: (the ``vocos`` family, made for the mel GAN family); through the pipeline it only resynthesizes
#: the input's band, so the web UI does not offer it.
TASKS = ("extend", "restore", "vocoder")


class UpscalerModel(nn.Module):
    """Base of every band-extension model.

    Subclasses set ``family`` (via :func:`registry.register`), ``config_class`` (a dataclass),
    ``description``, the capability flags, and implement :meth:`forward` and
    :meth:`receptive_field`. The constructor takes one ``config`` instance.
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    description: ClassVar[str] = ""
    supports_streaming: ClassVar[bool] = False
    supports_onnx: ClassVar[bool] = False
    #: Input cutoffs (Hz) the family is designed and trained for.
    cutoff_range_hz: ClassVar[tuple[float, float]] = (2000.0, 20000.0)
    #: Constructor overrides giving a very small model (tests, smoke runs of the training loop).
    tiny_config: ClassVar[dict] = {}
    #: Hyper-parameters ``audio-upscaler tune`` searches: ``{field: [choices]}`` (categorical) or
    #: ``{field: {"low": a, "high": b, "log": bool}}`` (int when both bounds are ints, else float).
    tune_space: ClassVar[dict] = {}
    #: what weights of this family are for unless saved otherwise (one of :data:`TASKS`)
    default_task: ClassVar[str] = "extend"

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        #: one of :data:`TASKS`; a property of the trained weights (saved in ``config.json``)
        self.task = self.default_task

    # ------------------------------------------------------------------ geometry

    @property
    def sample_rate(self) -> int:
        """Native sample rate in Hz (0 = any rate)."""
        return int(getattr(self.config, "sample_rate", 0))

    def receptive_field(self) -> int:
        """Input samples that can influence one output sample."""
        raise NotImplementedError

    def context_samples(self) -> int:
        """Samples of context needed on each side of a chunk for exact chunked output."""
        return self.receptive_field() // 2

    def latency_samples(self) -> int:
        """Look-ahead in samples a streaming caller must wait for (non-causal: the context)."""
        return self.context_samples()

    def alignment(self) -> int:
        """Chunk starts must be multiples of this many samples (frame or stride grid)."""
        return 1

    def valid_length(self, n: int) -> int:
        """Smallest input length ``>= n`` the network processes without internal padding."""
        a = self.alignment()
        return -(-int(n) // a) * a

    def preferred_chunk(self) -> int:
        """Chunk length in samples that balances speed and memory (about 4 s)."""
        rate = self.sample_rate or 48_000
        return self.valid_length(4 * rate)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """``x [B, C, T]`` at the native rate, ``cutoff_hz [B]`` -> full-band ``[B, C, T]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into folder ``path`` (created).

        ``half=True`` stores floating-point weights as fp16 (smaller files for shipping); they
        are loaded back as fp32.
        """
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"family": self.family})
        meta = {
            "family": self.family,
            "version": FORMAT_VERSION,
            "package_version": __version__,
            "sample_rate": self.sample_rate,
            "dtype": "float16" if half else "float32",
            "parameters": self.num_parameters(),
            "task": self.task,
            "config": dataclasses.asdict(self.config),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> UpscalerModel:
        """Rebuild a saved model (any family, via the registry) in eval mode, fp32 on the CPU."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from . import registry

        meta = read_config(path)
        settings = meta.get("config", {})
        if not isinstance(settings, dict):
            raise UpscalerError(f"{Path(path) / CONFIG_FILE}: 'config' is not an object of model settings")
        try:
            model = registry.build(meta["family"], **settings)
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:  # e.g. a negative width
            raise UpscalerError(f"{Path(path) / CONFIG_FILE} does not describe a usable '{meta['family']}' "
                                f"model: {_first_line(exc)}") from exc
        model.task = meta.get("task", model.task)
        if model.task not in TASKS:
            raise UpscalerError(f"{path}: unknown task '{model.task}' (expected one of: {', '.join(TASKS)})")
        if cls is not UpscalerModel and not isinstance(model, cls):
            raise UpscalerError(f"{path} holds a '{meta['family']}' model, not '{cls.family}'")
        try:
            state = load_file(str(Path(path) / WEIGHTS_FILE))
        except (SafetensorError, OSError) as exc:  # a truncated or foreign file
            raise UpscalerError(f"cannot read the weights {Path(path) / WEIGHTS_FILE} (damaged or not "
                                f"safetensors): {_first_line(exc)}") from exc
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise UpscalerError(f"weights in {path} do not match their config: {str(exc).splitlines()[0]}") from exc
        return model.eval()


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_config(path: str | Path) -> dict:
    """The ``config.json`` of checkpoint folder ``path`` (checked for the required files)."""
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise UpscalerError(f"{folder} is not a model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise UpscalerError(f"cannot read {folder / CONFIG_FILE}: {exc}") from exc
    if not isinstance(meta, dict) or "family" not in meta:
        raise UpscalerError(f"{folder / CONFIG_FILE} does not name a model family")
    version = meta.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, (int, float)):
        raise UpscalerError(f"{folder / CONFIG_FILE}: 'version' must be a number, got {version!r}")
    if not isinstance(meta["family"], str):
        raise UpscalerError(f"{folder / CONFIG_FILE}: 'family' must be a name, got {meta['family']!r}")
    if version > FORMAT_VERSION:
        raise UpscalerError(f"{folder} was saved by a newer version (format {meta['version']})")
    return meta


class ModelExtender(NativeRateExtender):
    """A PyTorch model as a pipeline band extender (numpy ``[C, T]`` in and out, see
    :class:`~audio_upscaler.extenders.NativeRateExtender` for the rate handling)."""

    def __init__(self, model: UpscalerModel, name: str):
        super().__init__(name, keeps_low_band=model.task != "restore")
        self.model = model.eval()
        self.native_rate = model.sample_rate
        self.model_context = model.context_samples()
        self.model_lookahead = model.latency_samples()
        self.model_alignment = model.alignment()

    def _run(self, x: np.ndarray, cutoff_hz: float) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)[None], torch.tensor([cutoff_hz], dtype=torch.float32))[0].numpy()
