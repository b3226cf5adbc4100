"""``run_batch``: plan the jobs of a folder, skip finished ones, run the rest, record everything.

The driver alone writes the journal and the summary; workers (local processes or Ray tasks)
only upscale files.  Per file: a ``start`` record before it is handed out, a ``done`` or
``failed`` record when its result comes back (see :mod:`audio_upscaler.batch.journal`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import UpscalerError
from ..io_formats import OutputFormat
from .jobs import Job, plan_jobs, stale_temp_files
from .journal import Journal
from .local import default_workers, run_local
from .summary import Summary
from .worker import JobResult, Settings, upscaler_for

BACKENDS = ("local", "ray")


def run_batch(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    upscaler_options: dict,
    fmt: OutputFormat,
    *,
    pattern: str | None = None,
    recursive: bool = False,
    jobs: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> Summary:
    """Upscale every matching file of ``in_dir`` into the mirrored tree under ``out_dir``.

    Args:
        upscaler_options: keyword arguments of :class:`~audio_upscaler.pipeline.Upscaler`.
        fmt: output format; outputs get its extension.
        pattern: glob on file names (``*.mp3``); default: every audio extension.
        jobs: worker processes (local) or concurrent tasks (Ray); default: by cores and memory
            (local) or the cluster's CPUs (Ray).
        overwrite: replace existing outputs (finished work of a previous run with the same
            settings is still skipped).
        on_start: called once as ``on_start(to_run, skipped)`` before the first job.
        on_result: called with each :class:`JobResult` as it arrives.

    Returns the :class:`Summary`, also written as JSON into ``out_dir``.  Problems with single
    files are failed results, never exceptions; :class:`UpscalerError` is raised only for
    problems with the request itself (bad options, missing or unwritable folders, no files).
    """
    started = time.perf_counter()
    if backend not in BACKENDS:
        raise UpscalerError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if jobs is not None and jobs < 1:
        raise UpscalerError(f"--jobs must be at least 1, not {jobs}")
    if backend == "ray":
        from .ray_backend import check_ray

        check_ray(ray_address)
    out_dir = Path(out_dir).absolute()
    settings = Settings(dict(upscaler_options), fmt, str(out_dir))
    fmt.validate_rate(upscaler_for(settings).target_rate)  # bad options fail before any worker starts
    planned = plan_jobs(Path(in_dir), out_dir, fmt.container, pattern, recursive)
    _make_output_folder(out_dir)
    summary = Summary(str(Path(in_dir).absolute()), str(out_dir), backend)
    key = settings.key()
    with Journal(out_dir) as journal:
        todo = []
        for job in planned:
            if job.problem is None and journal.is_finished(job, key):
                summary.results.append(JobResult(job.name, "skipped"))
            else:
                todo.append(_decide(job, journal, overwrite))
        for path in stale_temp_files([job.output for job in planned]):
            path.unlink(missing_ok=True)
        if on_start:
            on_start(len(todo), len(summary.results))
        for job, result in _execute(todo, journal, settings, backend, jobs, ray_address):
            if result.status == "done":
                journal.done(job, key)
            else:
                journal.failed(job, result.reason or "unknown")
            summary.results.append(result)
            if on_result:
                on_result(result)
    summary.elapsed_s = time.perf_counter() - started
    summary.write()
    return summary


def _execute(todo: list[Job], journal: Journal, settings: Settings, backend: str, jobs: int | None,
             ray_address: str | None) -> Iterator[tuple[Job, JobResult]]:
    """Each job with its result: refused jobs at once, the others from the backend as they finish."""
    for job in todo:
        if job.problem:
            yield job, JobResult(job.name, "failed", reason=job.problem)
    runnable = [job for job in todo if job.problem is None]
    if backend == "ray":
        from .ray_backend import run_ray

        results = run_ray(_journaled(runnable, journal), settings, jobs, ray_address)
    else:
        results = run_local(_journaled(runnable, journal), settings, default_workers(len(runnable), jobs))
    by_name = {job.name: job for job in runnable}
    for result in results:
        yield by_name[result.name], result


def _decide(job: Job, journal: Journal, overwrite: bool) -> Job:
    """May ``job`` write its output?  Replacing needs ``--overwrite``, unless it is our own
    unfinished or damaged work."""
    if job.problem or not os.path.lexists(job.output):
        return job
    if overwrite or journal.may_replace(job):
        return dataclasses.replace(job, replace=True)
    return dataclasses.replace(job, problem=f"{job.output}: exists; pass --overwrite to replace it")


def _journaled(jobs: list[Job], journal: Journal) -> Iterator[Job]:
    """Hand out jobs, recording each in the journal just before it goes to a worker."""
    for job in jobs:
        journal.started(job)
        yield job


def _make_output_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpscalerError(f"{out_dir}: cannot create the output folder: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UpscalerError(f"{out_dir}: permission denied: cannot write to the output folder")
