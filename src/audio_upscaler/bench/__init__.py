"""Quality and speed benchmark: degrade clean references, upscale them, score the results.

For every benchmark task (:data:`audio_upscaler.degrade.TASKS`) and clean clip, the reference
is brought to the task's rate (soxr, when the clip's rate differs), optionally cut to its first
``seconds``, and degraded with the task's fixed preset. The degraded input is written to a real
file as a user would have it: WAV at the low rate for resampling tasks, the decoded codec output
(WAV at the reference rate) for codec tasks; both 32-bit float, so no quantization is added.
Each method then runs through the same :meth:`audio_upscaler.pipeline.Upscaler.upscale_file` as
the CLI (default settings, target rate = the task's reference rate), so timings include
decoding, analysis and writing. The output file is read back and scored against the reference
with :func:`audio_upscaler.metrics.evaluate_pair` (aligned; LSD-HF/LF split at the task's input
cutoff; PESQ/STOI for speech clips).

Methods are ``sinc`` (plain resampling, pipeline model ``none``) and extender names
(:func:`audio_upscaler.extenders.available_names`).

- Speed: ``realtime_factor`` = seconds of audio per second of wall time of ``upscale_file``,
  after one untimed warm-up per method and rate (model loading and first-call imports are not
  counted).
- Memory: ``peak_mem_mib`` = peak RSS of the process during the call minus its RSS just before
  (:class:`PeakRSS`).
- Resuming: finished items are cached under ``OUT/cache/`` (:mod:`.cache`); a re-run reuses them.
  Failed items are recorded with their message but not cached, so a re-run retries them.

Modules: :mod:`.clips` (what to run on), :mod:`.runner` (running), :mod:`.memory`,
:mod:`.cache`, :mod:`.report` (JSON/CSV/markdown), :mod:`.plots` (spectrogram PNGs).
"""

from .clips import KINDS, Clip, find_clips, task_applies
from .memory import PeakRSS
from .runner import DEFAULT_METHODS, DEFAULT_TASKS, METHOD_MODELS, run_benchmark

__all__ = ["DEFAULT_METHODS", "DEFAULT_TASKS", "KINDS", "METHOD_MODELS", "Clip", "PeakRSS",
           "find_clips", "run_benchmark", "task_applies"]
