"""Ray backend: the jobs of a batch as Ray tasks on a cluster.

``address`` is what :func:`ray.init` takes: ``auto`` (the cluster this machine belongs to, as
started by ``ray start``), ``HOST:PORT`` of a head node, or ``None`` (``$RAY_ADDRESS`` if set,
else a new local instance).  If Ray is already initialised in this process, that session is used.

Every node reads the inputs and writes the outputs itself, so ``IN_DIR`` and ``OUT_DIR`` must
be at the same paths on every node (a shared file system), and audio-upscaler must be installed
on every node.  Ray reuses its worker processes, so each builds its upscaler (loads its model)
once, on its first job.  A task whose worker dies is retried once by Ray, then reported failed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Iterator

from ..errors import UpscalerError
from .jobs import Job
from .worker import JobResult, Settings, run_job


def run_ray(jobs: Iterable[Job], settings: Settings, workers: int | None = None,
            address: str | None = None) -> Iterator[JobResult]:
    """Run ``jobs`` as Ray tasks (one CPU each); yields each result as it is ready.

    At most ``workers`` tasks are submitted at a time (default: the cluster's CPUs); the next
    one goes out as soon as one finishes.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError ... depending on the cause
            joins = address or os.environ.get("RAY_ADDRESS")
            where = f"the Ray cluster at {address or _from_env(joins)}" if joins else "a local Ray instance"
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            hint = f"; {_hint(from_env=not address)}" if joins else ""
            raise UpscalerError(f"cannot reach {where}: {reason}{hint}") from None
    try:
        slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=1, max_retries=1)(run_job)
        settings_ref = ray.put(settings)
        pending = iter(jobs)
        running: dict = {}
        while True:
            while len(running) < slots and (job := next(pending, None)) is not None:
                running[task.remote(job, settings_ref)] = job
            if not running:
                return
            [ready], _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ready)
            try:
                yield ray.get(ready)
            except ray.exceptions.RayError as exc:
                reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                yield JobResult(job.name, "failed", reason=f"the Ray worker failed: {reason}")
    finally:
        if started_here:
            ray.shutdown()


def check_ray(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast, before a batch writes anything: Ray must be installed and the cluster of
    ``address`` must answer, since Ray itself keeps retrying for minutes.  ``auto`` and no
    address mean ``$RAY_ADDRESS`` if set; ``auto`` then means the cluster :func:`ray.init` would
    join (looked up as it does); no address at all is left to it (it starts a local instance)."""
    if _import_ray().is_initialized():
        return
    from_env = address in (None, "auto") and bool(os.environ.get("RAY_ADDRESS"))
    if from_env:
        address = os.environ["RAY_ADDRESS"]
    if not address:
        return
    shown = _from_env(address) if from_env else address
    hint = _hint(from_env)
    target = address
    if address == "auto":
        try:  # ray.init's own look-up (internal to Ray: if a Ray release lacks it, leave auto to ray.init)
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:
            return
        try:
            target = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise UpscalerError(f"cannot reach the Ray cluster at {shown}: no running Ray cluster found; {hint}") from None
        shown = f"{shown} ({target})"
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UpscalerError(f"the Ray address must be auto or HOST:PORT, not '{address}'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UpscalerError(f"cannot reach the Ray cluster at {shown}: {exc.strerror or exc}; {hint}") from None


def _from_env(address: str) -> str:
    return f"{address} ($RAY_ADDRESS)"


def _hint(from_env: bool) -> str:
    """What to do about a Ray cluster that cannot be reached."""
    drop = "unset RAY_ADDRESS" if from_env else "drop --ray-address"
    return f"start one with 'ray start --head', or {drop} to run on this machine alone"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UpscalerError("the Ray backend needs Ray: pip install 'audio-upscaler[ray]'") from None
    return ray
