"""Audio Upscaler: restore the missing high frequencies of band-limited audio.

Public API::

    from audio_upscaler import Upscaler, analyze, Audio, read_audio, write_audio
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Heavy modules (torch, scipy) are imported on first use so `import audio_upscaler` stays fast.
_LAZY = {
    "Audio": ("audio_upscaler.audio", "Audio"),
    "UpscalerError": ("audio_upscaler.errors", "UpscalerError"),
    "Upscaler": ("audio_upscaler.pipeline", "Upscaler"),
    "analyze": ("audio_upscaler.analysis", "analyze"),
    "read_audio": ("audio_upscaler.io", "read_audio"),
    "write_audio": ("audio_upscaler.io", "write_audio"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'audio_upscaler' has no attribute {name!r}")
