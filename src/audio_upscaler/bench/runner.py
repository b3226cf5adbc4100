"""Run every method on every (task, clip) pair; one failure never stops the run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..audio import Audio
from ..degrade import TASKS, apply_task
from ..errors import UpscalerError
from .cache import ItemCache, weights_identity
from .clips import Clip, find_clips, task_applies
from .memory import PeakRSS

#: Benchmark method name -> pipeline model name.
METHOD_MODELS = {"sinc": "none"}
#: ``MODEL+check``: a restoration model with its fills checked against the codec task's codec and
#: bitrate (what a lossy file tells the pipeline; see :mod:`audio_upscaler.consistency`).
CHECK_SUFFIX = "+check"
DEFAULT_TASKS = tuple(TASKS)
DEFAULT_METHODS = ("sinc", "sbr")
WARMUP_SECONDS = 1.0
#: The runner's temporary folders in the report folder (one per (task, clip) pair whose audio is
#: not kept): ``.bench-PID-HOST-XXXXXXXX``, PID the creating process, HOST a tag of its machine
#: (:func:`host_tag`), ``XXXXXXXX`` tempfile's random part.  ``.bench-XXXXXXXX``: the older name.
TEMP_PREFIX = ".bench-"
_TEMP_NAME = re.compile(r"\.bench-(\d+)-([0-9a-f]{8})-[a-z0-9_]+")
_LEGACY_TEMP_NAME = re.compile(r"\.bench-[a-z0-9_]{8}")
#: A folder with the older name (no owner recorded) is stale once nothing in it changed for this long.
LEGACY_STALE_SECONDS = 24 * 3600.0


def run_benchmark(data_dir: str | os.PathLike, tasks: Sequence[str] = DEFAULT_TASKS,
                  methods: Sequence[str] = DEFAULT_METHODS, out_dir: str | os.PathLike = "report",
                  *, max_clips: int | None = None, seconds: float | None = None,
                  plot_clips: int = 2, split: str | None = "validation", seed: int = 0,
                  progress: bool = True) -> dict:
    """Run the benchmark and write ``out_dir/results.json``, ``results.csv``, ``README.md``
    and ``plots/*.png``; returns the results (the content of ``results.json``).

    Args:
        data_dir: clean references (see :func:`audio_upscaler.bench.find_clips`).
        tasks: names from :data:`audio_upscaler.degrade.TASKS`.
        methods: ``sinc`` (plain resampling) and/or extender names.
        max_clips: use only the first N clips (kinds interleaved).
        seconds: cut each reference to its first ``seconds``.
        plot_clips: the first N clips of each task keep their audio under
            ``out_dir/audio/TASK/CLIP/`` and get a spectrogram comparison PNG.
        split: manifest split to use (``None``: every entry).
        seed: base seed; each (task, clip) gets its own seed derived from it.
        progress: show a progress bar on stderr.
    """
    from tqdm import tqdm

    from .report import write_report

    tasks, methods = check_tasks(tasks), check_methods(methods)
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise UpscalerError(f"seconds must be a positive number, not {seconds:g}")
    if max_clips is not None and max_clips < 1:
        raise UpscalerError("the number of clips must be at least 1")
    out = Path(out_dir)
    check_out_dir(out)
    clips = find_clips(data_dir, split, max_clips, exclude=[out / "audio", *out.glob(f"{TEMP_PREFIX}*")])  # not ours
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpscalerError(f"{out}: cannot create the report folder ({exc.strerror or exc})") from None
    remove_stale_temp_dirs(out)  # left by a run that was killed (kill -9, power cut)
    runner = Runner(out, methods, seconds, seed)
    pairs = [(task, clip) for task in tasks for clip in clips if task_applies(task, clip.kind)]
    items: list[dict] = []
    kept = dict.fromkeys(tasks, 0)
    runs = sum(method_applies(m, task) for task, _ in pairs for m in methods)
    with tqdm(total=runs, desc="benchmark", unit="run", disable=not progress) as bar:
        for task, clip in pairs:
            keep = kept[task] < plot_clips
            kept[task] += keep
            items += runner.run_pair(task, clip, keep, bar)
    results = {
        "config": {
            "data": str(data_dir), "out": str(out_dir), "tasks": tasks, "methods": methods, "max_clips": max_clips,
            "seconds": seconds, "split": split, "seed": seed, "plot_clips": plot_clips,
            "memory": PeakRSS.method(),
        },
        "environment": environment(),
        "clips": [{"name": c.name, "kind": c.kind, "path": str(c.path)} for c in clips],
        "items": items,
    }
    write_report(results, out)
    return results


#: What a report folder gets (and a re-run replaces).
REPORT_NAMES = ("README.md", "results.json", "results.csv", "plots", "audio")


def check_out_dir(out: Path) -> None:
    """Refuse a report folder that is a file, or that holds files a report would replace without
    being an earlier report (no ``cache/``, no report ``results.json``): a user's own README.md
    must not be overwritten."""
    if out.exists() and not out.is_dir():
        raise UpscalerError(f"{out}: exists and is not a folder (the report needs a folder)")
    if not out.is_dir() or (out / "cache").is_dir() or _is_report(out / "results.json"):
        return
    clash = [name for name in REPORT_NAMES if (out / name).exists()]
    if clash:
        raise UpscalerError(f"{out}: holds {', '.join(clash)} but is not a benchmark report; "
                            "choose another report folder")


def _is_report(path: Path) -> bool:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and "items" in results and "config" in results


def host_tag() -> str:
    """8 hex digits naming this machine (of its host name), so that a report folder shared over
    the network never has a folder of another machine's benchmark judged by this one's processes."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def temp_dir_prefix() -> str:
    """Prefix of this process's temporary folders: ``.bench-PID-HOST-``."""
    return f"{TEMP_PREFIX}{os.getpid()}-{host_tag()}-"


def remove_stale_temp_dirs(out: Path) -> list[Path]:
    """Delete the runner's temporary folders in ``out`` that no running benchmark uses: those
    named by a process of this machine that is gone (or a zombie), and those with the older name
    (no owner recorded) in which nothing changed for :data:`LEGACY_STALE_SECONDS`.  Nothing else
    is touched: no other names, no symlinks or files, no folder of a live process (a reused PID
    keeps a folder until that process ends too) or of another machine.  Returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(out))
    except OSError:
        return removed
    host = host_tag()
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match:
            stale = match.group(2) == host and _process_gone(int(match.group(1)))
        else:
            stale = bool(_LEGACY_TEMP_NAME.fullmatch(entry.name)) and _unchanged_for(entry.path, LEGACY_STALE_SECONDS)
        try:
            if not stale or not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)  # another run may be removing it at the same time
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs here (a zombie, killed but not yet reaped, counts as gone);
    ``False`` whenever that cannot be told."""
    import psutil

    if pid == os.getpid():
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return True
    except (psutil.Error, OSError, ValueError):  # e.g. access denied: it exists
        return False


def _unchanged_for(folder: str, seconds: float) -> bool:
    """Whether neither ``folder`` nor anything directly in it changed in the last ``seconds``."""
    limit = time.time() - seconds
    try:
        times = [os.lstat(folder).st_mtime, *(e.stat(follow_symlinks=False).st_mtime for e in os.scandir(folder))]
    except OSError:
        return False
    return max(times) < limit


def check_tasks(tasks: Sequence[str]) -> list[str]:
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise UpscalerError(f"unknown task {', '.join(unknown) or '(none given)'}; "
                            f"choose from {', '.join(TASKS)}")
    return list(dict.fromkeys(tasks))


def method_choices() -> list[str]:
    """Every method the benchmark runs: ``sinc`` (plain resampling), ``sbr`` and the installed
    models that extend or restore a band (a vocoder is no upscaler: the pipeline refuses it)."""
    from ..extenders import NON_NEURAL

    try:
        from ..models.registry import upscaler_models
    except ImportError:  # no torch: no neural models
        models = []
    else:
        models = upscaler_models()
    return [*METHOD_MODELS, *(n for n in (*NON_NEURAL, *models) if n not in METHOD_MODELS.values())]


def check_methods(methods: Sequence[str]) -> list[str]:
    from ..extenders import NON_NEURAL, available_names

    choices = method_choices()
    unknown = [m for m in methods if m.removesuffix(CHECK_SUFFIX) not in choices]
    if unknown or not methods:
        choose = (f"choose from {', '.join(choices)} (a model name + '{CHECK_SUFFIX}' checks a restoration "
                  "against the task's codec)")
        models = set(available_names()).difference(NON_NEURAL)  # every installed model, vocoders too
        installed = [m for m in unknown if m.removesuffix(CHECK_SUFFIX) in models]
        if installed:  # an installed name, yet no method: a vocoder
            raise UpscalerError(f"{', '.join(installed)}: a vocoder (it resynthesizes the band its input has), "
                                f"not an upscaler; {choose}")
        raise UpscalerError(f"unknown method {', '.join(unknown) or '(none given)'}; {choose}")
    return list(dict.fromkeys(methods))


def method_model(method: str) -> str:
    """The pipeline model a benchmark method runs."""
    name = method.removesuffix(CHECK_SUFFIX)
    return METHOD_MODELS.get(name, name)


def make_upscaler(method: str, task: str, rate: int, **options):
    """The pipeline that benchmark ``method`` runs on ``task`` at ``rate`` Hz (a ``+check`` method
    with the codec check against the task's codec); ``options`` go to ``Upscaler``."""
    from ..pipeline import Upscaler

    return Upscaler(method_model(method), rate, codec_check=method.endswith(CHECK_SUFFIX),
                    source_codec=source_codec(method, task), **options)


def method_applies(method: str, task: str) -> bool:
    """A ``+check`` method runs on codec tasks only (elsewhere it would be its model again)."""
    return not method.endswith(CHECK_SUFFIX) or TASKS[task].codec is not None


def source_codec(method: str, task: str) -> str | None:
    """``codec:kbps`` of a codec task for a ``+check`` method (``None`` otherwise)."""
    codec = TASKS[task].codec
    if not method.endswith(CHECK_SUFFIX) or codec is None or codec.bitrate_kbps is None:
        return None
    return f"{codec.codec}:{codec.bitrate_kbps}"


def item_seed(seed: int, task: str, clip: str) -> int:
    """A stable per-(task, clip) seed (SHA-256; independent of the clip order).  A clip name
    that is not UTF-8 (surrogate escapes) hashes as its own bytes."""
    return int(hashlib.sha256(f"{seed}:{task}:{clip}".encode("utf-8", "surrogateescape")).hexdigest()[:8], 16)


def environment() -> dict:
    """Where the numbers were measured."""
    import torch

    return {
        "audio_upscaler": __version__, "python": platform.python_version(),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Prepared:
    """A degraded pair ready for the methods."""

    reference: np.ndarray  #: float32 ``[C, T]`` at ``rate``
    rate: int              #: the task's reference rate (Hz)
    cutoff_hz: float       #: band limit of the degraded input (Hz)
    input_path: Path       #: the degraded input file


class Runner:
    """Runs the methods on one (task, clip) pair at a time, using the per-item cache."""

    def __init__(self, out: Path, methods: list[str], seconds: float | None, seed: int):
        self.out, self.methods, self.seconds, self.seed = out, methods, seconds, seed
        self.cache = ItemCache(out / "cache")
        self._upscalers: dict[tuple[str, int, str | None], object] = {}
        self.weights = {m: weights_identity(method_weights(m)) for m in methods}

    def run_pair(self, task: str, clip: Clip, keep: bool, bar) -> list[dict]:
        """One item (a dict) per method that applies to ``task``, from the cache where possible;
        ``bar`` is a tqdm bar."""
        methods = [m for m in self.methods if method_applies(m, task)]
        fingerprints = {m: self.cache.fingerprint(task, clip.path, self.seconds, self.seed, self.weights[m],
                                                   clip.kind)
                        for m in methods}
        items = {m: self.cache.load(task, m, clip.name, fingerprints[m]) for m in methods}
        todo = [m for m in methods if items[m] is None]
        bar.update(len(methods) - len(todo))
        if not todo:
            return list(items.values())
        with self._work_dir(task, clip, keep) as folder:
            try:
                prepared = self.prepare(task, clip, Path(folder))
            except Exception as exc:  # a bad clip fails its items, never the run
                if keep:
                    shutil.rmtree(folder, ignore_errors=True)
                items.update({m: failed_item(task, m, clip, exc) for m in todo})
                bar.update(len(todo))
                return list(items.values())
            for method in todo:
                bar.set_postfix_str(f"{task} {method}", refresh=False)
                try:
                    items[method] = self.run_method(task, method, clip, prepared, Path(folder))
                    self.cache.store(items[method], fingerprints[method])
                except Exception as exc:
                    items[method] = failed_item(task, method, clip, exc)
                bar.update(1)
        return list(items.values())

    def _work_dir(self, task: str, clip: Clip, keep: bool):
        if not keep:
            return tempfile.TemporaryDirectory(prefix=temp_dir_prefix(), dir=self.out)
        folder = self.out / "audio" / task / clip.name
        folder.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(folder)

    def prepare(self, task: str, clip: Clip, folder: Path) -> Prepared:
        """Read, resample, cut and degrade the reference; write ``reference.wav`` and the
        degraded ``input.wav`` (float) into ``folder``."""
        from ..dsp.resample import resample
        from ..io import output_format_for, read_audio, write_audio

        spec = TASKS[task]
        rate = spec.reference_rate
        audio = read_audio(clip.path)
        if audio.sample_rate < rate:
            raise UpscalerError(f"clip rate {audio.sample_rate} Hz is below the task's reference rate {rate} Hz")
        reference = resample(audio.samples, audio.sample_rate, rate)
        if self.seconds:
            reference = reference[:, : int(self.seconds * rate)]
        degraded = apply_task(task, reference, rate, item_seed(self.seed, task, clip.name))
        if degraded.low_rate_input is not None:
            user_input = Audio(degraded.low_rate_input, spec.input_rate)
        else:
            user_input = Audio(degraded.degraded, rate)
        fmt = output_format_for("x.wav", bit_depth=32)
        write_audio(folder / "reference.wav", Audio(reference, rate), fmt, overwrite=True)
        write_audio(folder / "input.wav", user_input, fmt, overwrite=True)
        return Prepared(reference, rate, degraded.cutoff_hz, folder / "input.wav")

    def upscaler(self, method: str, task: str, rate: int, warmup_input: Path):
        """One pipeline per (method, rate, source codec), warmed up once (untimed) on the start of an input."""
        from ..io import read_audio

        key = (method, rate, source_codec(method, task))
        if key not in self._upscalers:
            upscaler = make_upscaler(method, task, rate)
            audio = read_audio(warmup_input)
            upscaler.upscale(Audio(audio.samples[:, : int(WARMUP_SECONDS * audio.sample_rate)], audio.sample_rate))
            self._upscalers[key] = upscaler
        return self._upscalers[key]

    def run_method(self, task: str, method: str, clip: Clip, prepared: Prepared, folder: Path) -> dict:
        """Upscale the input file with ``method``, time it and score the output file."""
        from ..io import output_format_for, read_audio
        from ..metrics import evaluate_pair

        upscaler = self.upscaler(method, task, prepared.rate, prepared.input_path)
        output = folder / f"{method}.wav"
        with PeakRSS() as memory:
            started = time.perf_counter()
            result = upscaler.upscale_file(prepared.input_path, output,
                                           fmt=output_format_for("x.wav", bit_depth=32), overwrite=True)
            elapsed = time.perf_counter() - started
        estimate = read_audio(output).samples
        metrics = evaluate_pair(prepared.reference, estimate, prepared.rate,
                                input_cutoff_hz=prepared.cutoff_hz, speech=clip.kind == "speech")
        duration = prepared.reference.shape[1] / prepared.rate
        return {
            "task": task, "method": method, "clip": clip.name, "kind": clip.kind, "status": "ok",
            "error": None, "duration_s": duration, "cutoff_hz": prepared.cutoff_hz,
            "measured_cutoff_hz": result.cutoff_hz, "model": result.model, "elapsed_s": elapsed,
            "realtime_factor": duration / max(elapsed, 1e-9), "peak_mem_mib": memory.peak_mib,
            "metrics": metrics,
        }


def method_weights(method: str) -> list[str]:
    """Names of the installed model weights whose output ``method`` gives (``auto``: any
    upscaler model it may pick; a DSP method: none)."""
    from ..models.registry import available_models, upscaler_models

    name = method_model(method)
    if name == "auto":
        return upscaler_models()
    return [name] if name in available_models() else []


def failed_item(task: str, method: str, clip: Clip, exc: Exception) -> dict:
    """The record of an item that failed: its error as one line."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if not isinstance(exc, UpscalerError):
        message = f"{type(exc).__name__}: {message}"
    return {"task": task, "method": method, "clip": clip.name, "kind": clip.kind,
            "status": "failed", "error": message}
