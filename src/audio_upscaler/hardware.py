"""System check (``audio-upscaler doctor``): what this machine has and what the tool will use."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field

#: Codecs read through PyAV (decoding) that soundfile cannot open.
PYAV_DECODERS = ("aac", "alac", "wmav2", "mp3", "opus", "vorbis", "flac")
#: FFmpeg encoders behind M4A output (:mod:`audio_upscaler.m4a`).
M4A_ENCODERS = ("aac", "alac")


@dataclass
class SystemInfo:
    """Facts about the machine, plus the settings the tool recommends for it."""

    python: str
    platform: str
    torch: str
    device: str
    device_name: str
    gpu_memory_gb: float | None
    cpu_threads: int
    cpu_usable: int
    torch_threads: int
    memory_total_gb: float
    memory_available_gb: float
    soundfile_formats: list[str]
    pyav_decoders: list[str]
    mp3_encoder: str | None
    m4a_encoders: list[str] = field(default_factory=list)
    recommendations: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        gpu = f" ({self.gpu_memory_gb:.1f} GB)" if self.gpu_memory_gb else ""
        lines = [
            f"python      {self.python} on {self.platform}",
            f"torch       {self.torch}",
            f"device      {self.device}: {self.device_name}{gpu}",
            f"cpu         {self.cpu_threads} threads"
            + (f", {self.cpu_usable} usable by this process" if self.cpu_usable != self.cpu_threads else "")
            + f" (torch uses {self.torch_threads})",
            f"memory      {self.memory_available_gb:.1f} GB free of {self.memory_total_gb:.1f} GB",
            f"read/write  {', '.join(self.soundfile_formats)} (soundfile)",
            f"PyAV reads  {', '.join(self.pyav_decoders) or 'nothing (PyAV missing)'} (AAC/M4A, ALAC, WMA, video files)",
            f"mp3 encoder {self.mp3_encoder or 'missing'}",
            f"m4a writes  {', '.join(self.m4a_encoders) or 'nothing (PyAV or its encoders missing)'} (PyAV)",
        ]
        lines += [f"recommend   {key} = {value}" for key, value in self.recommendations.items()]
        return lines


def usable_cpus() -> int:
    """CPU threads this process may run on (its affinity: ``taskset``, a container's cpuset),
    which can be fewer than the machine has."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def _device() -> tuple[str, str, float | None]:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return "cuda", props.name, props.total_memory / 2**30
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", "Apple GPU", None
    return "cpu", platform.processor() or platform.machine(), None


def recommend(device: str, gpu_memory_gb: float | None, cpu_threads: int, memory_gb: float) -> dict[str, object]:
    """Training and inference settings suited to the machine (the seed's hardware advice)."""
    windows = sys.platform.startswith("win")
    rec: dict[str, object] = {
        "inference_device": device,
        "num_workers": 0 if windows else max(0, min(4, cpu_threads - 1)),
        "pin_memory": device == "cuda",
        "mixed_precision": "bf16/fp16 (AMP)" if device == "cuda" else "off (fp32 on CPU)",
    }
    if device == "cuda" and gpu_memory_gb:
        rec["train_batch_size"] = 16 if gpu_memory_gb >= 16 else 8 if gpu_memory_gb >= 8 else 4
        rec["parallel_tune_trials"] = 2 if gpu_memory_gb > 8 else 1
    else:
        rec["train_batch_size"] = 4 if memory_gb >= 8 else 2
        rec["parallel_tune_trials"] = 1
    return rec


def _has_encoder(av, name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError (an FFmpeg/ValueError mix) for a missing one
        return False
    return True


def get_system_info() -> SystemInfo:
    """Collect :class:`SystemInfo` for this machine (imports torch, soundfile, av)."""
    import psutil
    import soundfile as sf
    import torch

    device, name, gpu_gb = _device()
    mem = psutil.virtual_memory()
    threads, usable = os.cpu_count() or 1, usable_cpus()
    try:
        import av

        decoders = [c for c in PYAV_DECODERS if c in av.codecs_available]
        encoders = [c for c in M4A_ENCODERS if _has_encoder(av, c)]
    except ImportError:
        decoders, encoders = [], []
    from importlib.util import find_spec

    mp3 = "libsndfile" if "MP3" in sf.available_formats() else "lameenc" if find_spec("lameenc") else None
    formats = sorted(sf.available_formats())
    wanted = {"WAV", "FLAC", "AIFF", "OGG", "MP3"}
    return SystemInfo(
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        torch=torch.__version__,
        device=device,
        device_name=name,
        gpu_memory_gb=gpu_gb,
        cpu_threads=threads,
        cpu_usable=usable,
        torch_threads=torch.get_num_threads(),
        memory_total_gb=mem.total / 2**30,
        memory_available_gb=mem.available / 2**30,
        soundfile_formats=[f.lower() for f in formats if f in wanted] + (["opus"] if "OGG" in formats else []),
        pyav_decoders=decoders,
        mp3_encoder=mp3,
        m4a_encoders=encoders,
        recommendations=recommend(device, gpu_gb, usable, mem.total / 2**30),
    )
