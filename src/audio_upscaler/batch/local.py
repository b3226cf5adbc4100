"""Local backend: the jobs of a batch in a pool of worker processes on this machine.

Each worker process builds its upscaler once (pool initializer) and keeps it.  Jobs are handed
out a few at a time, so only the jobs in flight have been started.  When a worker process dies
(out of memory, a crash inside a decoder), the pool is rebuilt; the jobs that were in flight are
run again one at a time, so that only the file that kills its worker fails.

CPython 3.11-3.13 spawn pool workers on demand from ``submit``; when a worker dies at the same
moment, the pool's manager thread can crash while stopping the workers ("dictionary changed size
during iteration") and leave a worker waiting for work forever, which then blocks the exit of this
process.  Every pool's workers are therefore stopped explicitly after its shutdown.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import UpscalerError
from ..hardware import usable_cpus
from .jobs import Job
from .worker import JobResult, Settings, init_worker, run_job, upscaler_for

#: Memory one worker may use: decoder, resampler and extender buffers of a long file, a model (bytes).
WORKER_MEMORY_BYTES = 1 << 30
CRASH_REASON = "the worker process died while processing this file (out of memory, or a crash in a decoder)"

JobFn = Callable[[Job, Settings], JobResult]


def default_workers(n_jobs: int, requested: int | None = None, cores: int | None = None,
                    available_bytes: int | None = None) -> int:
    """How many worker processes to run for ``n_jobs`` files.

    ``requested`` (``--jobs``) is taken as given; otherwise one per core, but no more than the
    available memory holds at :data:`WORKER_MEMORY_BYTES` each.  Never more than ``n_jobs``,
    never fewer than 1.
    """
    if requested is not None:
        if requested < 1:
            raise UpscalerError(f"--jobs must be at least 1, not {requested}")
        wanted = requested
    else:
        if available_bytes is None:
            import psutil

            available_bytes = psutil.virtual_memory().available
        wanted = min(cores or usable_cpus(), max(1, available_bytes // WORKER_MEMORY_BYTES))
    return max(1, min(wanted, n_jobs))


def run_local(jobs: Iterable[Job], settings: Settings, workers: int, job_fn: JobFn = run_job) -> Iterator[JobResult]:
    """Run ``jobs`` on ``workers`` processes; yields each result as it is ready (any order).

    With one worker the jobs run in this process (no pool to start).  ``jobs`` is consumed
    lazily, one job per free worker.
    """
    if workers <= 1:
        upscaler_for(settings)
        for job in jobs:
            yield job_fn(job, settings)
        return
    yield from _run_pool(iter(jobs), settings, workers, job_fn)


def _run_pool(jobs: Iterator[Job], settings: Settings, workers: int, job_fn: JobFn) -> Iterator[JobResult]:
    context = multiprocessing.get_context("spawn")  # no fork of a parent that may hold threads
    threads = max(1, usable_cpus() // workers)
    suspects: deque[Job] = deque()  # in flight when a worker died: rerun alone
    while True:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(settings, threads))
        running: dict[Future, Job] = {}
        lost: list[Job] = []
        try:
            while not lost:
                while len(running) < workers and (job := _next_job(jobs, suspects, running)) is not None:
                    try:
                        running[pool.submit(job_fn, job, settings)] = job
                    except BrokenProcessPool:  # a worker died since the last wait
                        lost.append(job)
                        break
                if lost:
                    break
                if not running:
                    return
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        lost.append(job)
                        continue
                    yield result
        finally:
            _shut_down(pool, broken=bool(lost))
        lost += running.values()
        if len(lost) == 1:  # it ran alone, so it is the one that killed its worker
            yield JobResult(lost[0].name, "failed", reason=CRASH_REASON)
        else:
            suspects.extend(lost)


def _shut_down(pool: ProcessPoolExecutor, broken: bool = False) -> None:
    """Shut ``pool`` down and make sure none of its worker processes outlives it. A ``broken``
    pool's workers (one died) are killed first: CPython 3.11's manager thread joins them without
    a timeout, and a survivor blocked on the queue the dead one left in a dirty state never exits
    (seen as a hung batch; its jobs' futures have already failed and are rerun)."""
    worker_processes = list((getattr(pool, "_processes", None) or {}).values())
    if broken:
        for process in worker_processes:
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)
    for process in worker_processes:
        process.join(timeout=5)
        if process.is_alive():  # left behind by a crashed manager thread
            process.kill()
            process.join()


def _next_job(jobs: Iterator[Job], suspects: deque[Job], running: dict) -> Job | None:
    """The next job to submit: suspects one at a time with nothing else running, then new jobs."""
    if suspects:
        return None if running else suspects.popleft()
    return next(jobs, None)
