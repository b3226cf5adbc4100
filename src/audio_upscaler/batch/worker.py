"""What a batch worker does with one job; the same code runs in a local process pool and in Ray.

A worker process builds its :class:`~audio_upscaler.pipeline.Upscaler` (and so loads its model)
once, on its first job or in the pool's initializer, and keeps it for every later job.
Every problem with a file becomes a failed :class:`JobResult`; nothing a file does stops the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass

from ..errors import UpscalerError
from ..io_formats import OutputFormat
from .jobs import Job, prepare_output_folder

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Settings:
    """What every job of one batch shares (sent once to each worker).

    Attributes:
        upscaler: keyword arguments of :class:`~audio_upscaler.pipeline.Upscaler`.
        fmt: the output format.
        out_dir: absolute ``OUT_DIR``; no output is written outside it.
    """

    upscaler: dict
    fmt: OutputFormat
    out_dir: str

    def key(self) -> str:
        """A short fingerprint of what shapes the output (recorded in the journal)."""
        text = json.dumps({"upscaler": self.upscaler, "format": asdict(self.fmt)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class JobResult:
    """What happened to one file.

    ``status`` is ``done``, ``failed`` or ``skipped`` (finished by an earlier run); ``reason``
    says why a file failed; times in seconds.
    """

    name: str
    status: str
    reason: str | None = None
    model: str | None = None
    duration_s: float | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


_upscaler_cache: tuple[dict, object] | None = None


def init_worker(settings: Settings, threads: int | None = None) -> None:
    """Pool initializer: cap the math threads per worker, then build the upscaler once."""
    if threads:
        for name in _THREAD_VARIABLES:
            os.environ[name] = str(threads)
        import sys

        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    try:
        upscaler_for(settings)
    except Exception:  # noqa: S110 - a failing initializer breaks the pool; run_job reports it per file
        pass


def upscaler_for(settings: Settings):
    """This process's upscaler for ``settings``, built on first use."""
    global _upscaler_cache
    if _upscaler_cache is None or _upscaler_cache[0] != settings.upscaler:
        from ..pipeline import Upscaler

        _upscaler_cache = (settings.upscaler, Upscaler(**settings.upscaler))
    return _upscaler_cache[1]


def run_job(job: Job, settings: Settings) -> JobResult:
    """Upscale one file; every error becomes a failed result naming its reason."""
    started = time.perf_counter()
    try:
        output = prepare_output_folder(job.output, settings.out_dir)
        result = upscaler_for(settings).upscale_file(job.input, output, fmt=settings.fmt, overwrite=job.replace)
        return JobResult(job.name, "done", model=result.model, duration_s=round(result.duration_s, 3),
                         elapsed_s=round(time.perf_counter() - started, 3))
    except UpscalerError as exc:
        reason = str(exc).removeprefix(f"{job.input}: ")
    except Exception as exc:  # a bug met by one file must not stop the batch
        reason = f"internal error: {type(exc).__name__}: {exc}"
    return JobResult(job.name, "failed", reason=reason, elapsed_s=round(time.perf_counter() - started, 3))
