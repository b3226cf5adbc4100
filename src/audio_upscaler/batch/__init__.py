"""Batch processing: upscale whole folders, on this machine or on a Ray cluster, resumably.

- :mod:`.jobs`: find the inputs, mirror their paths under ``OUT_DIR`` with the new extension.
- :mod:`.journal`: the append-only journal that makes a batch resumable.
- :mod:`.worker`: what a worker does with one job (shared by both backends).
- :mod:`.local`: process pool on this machine; :mod:`.ray_backend`: Ray tasks on a cluster.
- :mod:`.summary`: counts, speed and failures (console and JSON).
- :mod:`.runner`: :func:`run_batch`, which ties them together.
"""

from .jobs import Job, find_inputs, plan_jobs
from .runner import BACKENDS, run_batch
from .summary import SUMMARY_NAME, Summary
from .worker import JobResult, Settings

__all__ = [
    "BACKENDS", "SUMMARY_NAME", "Job", "JobResult", "Settings", "Summary", "find_inputs", "plan_jobs", "run_batch",
]
