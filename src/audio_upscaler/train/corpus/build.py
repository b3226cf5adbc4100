"""Build the corpus: fetch packages, plan jobs, run them in parallel, keep the manifest current.

The build is idempotent and resumable: every finished job is recorded (``build_state.json``
next to ``manifest.jsonl``, both replaced atomically every few seconds and at the end), and
a job already recorded is never run again. Music is rendered score by score in catalogue
order until ``hours_music`` is reached, so raising it later only adds pieces.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tqdm import tqdm

from ...errors import UpscalerError
from .debian import PackageCache
from .grooves import HYDROGEN_PACKAGES, KitInfo, find_kits, groove_jobs
from .jobs import Job, JobContext
from .manifest import MANIFEST_NAME, Entry, item_key, read_manifest, write_manifest
from .music import SOUNDFONT_PACKAGE, SOUNDFONT_PATH, SOURCE as MUSIC21, DrumMix, PieceJob, catalogue, corpus_root
from .samples import SONIC_PI, sonic_pi_job
from .speech import FILLETS, HEDGEWARS, KLETTRES, speech_job
from .split import assign_splits, unit_hash
from ...textio import write_text_atomic

STATE_NAME = "build_state.json"
PACKAGES = {
    "music": (SOUNDFONT_PACKAGE,), "drums": HYDROGEN_PACKAGES, "sonic-pi": (SONIC_PI,),
    "klettres": (KLETTRES,), "hedgewars": (HEDGEWARS,), "fillets": (FILLETS,),
}
SOURCES = tuple(PACKAGES)
_FLUSH_SECONDS = 2.0
_MAX_FAILURES_IN_A_ROW = 20


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/audio-upscaler/debian`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "audio-upscaler" / "debian"


@dataclass
class BuildConfig:
    """What to build. ``drum_mix``: share of rendered pieces with a groove mixed in;
    ``validation_fraction``: share of source items on the validation side; ``jobs``: worker
    processes (1 runs everything in this process)."""

    out: Path
    cache: Path | None = None
    sources: tuple[str, ...] = SOURCES
    hours_music: float = 10.0
    hours_drums: float = 1.0
    drum_mix: float = 0.3
    validation_fraction: float = 0.1
    max_piece_seconds: float = 150.0
    music_rate: int = 48000
    seed: int = 0
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    quiet: bool = False

    def settings(self) -> dict:
        """The settings a corpus folder is tied to (changing them would change its files)."""
        return {"seed": self.seed, "validation_fraction": self.validation_fraction,
                "max_piece_seconds": self.max_piece_seconds, "drum_mix": self.drum_mix,
                "music_rate": self.music_rate}

    def check(self) -> None:
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise UpscalerError(f"unknown source {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
        if not self.sources:
            raise UpscalerError(f"no source named; choose from {', '.join(SOURCES)} (or all)")
        if not (self.hours_music >= 0 and self.hours_drums >= 0) or self.jobs < 1:  # NaN hours too
            raise UpscalerError("hours must be >= 0 and jobs >= 1")
        if not 0 <= self.validation_fraction < 1 or not 0 <= self.drum_mix <= 1:
            raise UpscalerError("validation fraction must be in [0, 1) and drum mix in [0, 1]")


@dataclass
class BuildSummary:
    """Jobs run/skipped/failed in this call and the whole corpus' entries afterwards."""

    ran: int
    skipped: int
    failed: int
    entries: list[Entry]
    seconds: float

    def hours(self) -> dict[str, float]:
        """Hours per ``kind/subset/split``."""
        totals: dict[str, float] = {}
        for e in self.entries:
            key = f"{e.kind}/{e.subset}/{e.split}"
            totals[key] = totals.get(key, 0.0) + e.duration / 3600
        return {k: round(v, 3) for k, v in sorted(totals.items())}


class _Store:
    """Manifest entries plus the set of finished jobs, saved together atomically."""

    def __init__(self, out: Path, settings: dict):
        self.out = out
        self.state = {"settings": settings, "done": [], "failed": {}}
        state_path = out / STATE_NAME
        if state_path.exists():
            saved = json.loads(state_path.read_text(encoding="utf-8"))
            if saved.get("settings") != settings:
                raise UpscalerError(f"{out} was built with other settings ({saved.get('settings')}); "
                                    "use a new --out folder or the same settings")
            self.state.update(saved)
        has_manifest = (out / MANIFEST_NAME).exists()
        self.entries = {e.path: e for e in read_manifest(out / MANIFEST_NAME)} if has_manifest else {}
        self.done = set(self.state["done"]) | {e.job for e in self.entries.values()}
        self._flushed = time.monotonic()

    def add(self, key: str, entries: list[Entry], error: str | None) -> None:
        for e in entries:
            self.entries[e.path] = e
        if error:
            self.state["failed"][key] = error
        self.done.add(key)
        if time.monotonic() - self._flushed > _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        write_manifest(self.out / MANIFEST_NAME, self.entries.values())
        self.state["done"] = sorted(self.done)
        write_text_atomic(self.out / STATE_NAME, json.dumps(self.state, indent=1) + "\n")
        self._flushed = time.monotonic()

    def seconds(self, source: str) -> float:
        return sum(e.duration for e in self.entries.values() if e.source == source)


def _run_job(job: Job, context: JobContext) -> tuple[list[Entry], str | None]:
    """Worker side: run one job; failures come back as text, not as exceptions."""
    try:
        return job.run(context), None
    except Exception as exc:  # one bad score or clip must not stop a long build
        return [], f"{type(exc).__name__}: {exc}"


class _InlineExecutor:
    """``submit`` runs at once in this process (``--jobs 1``, tests)."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def build_corpus(config: BuildConfig, log: Callable[[str], None] | None = None) -> BuildSummary:
    """Build (or complete) the corpus in ``config.out``; see the module docstring."""
    config.check()
    started = time.monotonic()
    log = log or ((lambda message: None) if config.quiet else (lambda message: print(message, file=sys.stderr)))
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UpscalerError(f"{out} is a file, not a corpus folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UpscalerError(f"cannot create the corpus folder {out}: {exc.strerror or exc}") from None
    store = _Store(out, config.settings())
    _remove_leftovers(out)
    trees, copyrights = _fetch(config, out, log)
    context = _context(config, trees, log)
    kits = find_kits({p: trees[p] for p in HYDROGEN_PACKAGES if p in trees}, copyrights, config.validation_fraction)
    counts = {"ran": 0, "skipped": 0, "failed": 0}
    workers = min(config.jobs, os.cpu_count() or 1)
    executor = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
                if workers > 1 else _InlineExecutor())
    try:
        fixed = _fixed_jobs(config, trees, copyrights, kits)
        with tqdm(total=len(fixed), desc="speech, samples, drums", unit="job", disable=config.quiet,
                  file=sys.stderr) as bar:
            _run(executor, workers, fixed, context, store, counts, lambda entries: bar.update(1))
        if "music" in config.sources and config.hours_music > 0:
            _render_music(config, kits, executor, workers, context, store, counts)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        store.flush()
    if counts["failed"]:
        log(f"{counts['failed']} job(s) failed; see 'failed' in {out / STATE_NAME}")
    return BuildSummary(counts["ran"], counts["skipped"], counts["failed"],
                        sorted(store.entries.values(), key=lambda e: e.path), time.monotonic() - started)


def _fetch(config: BuildConfig, out: Path, log) -> tuple[dict[str, Path], dict[str, str]]:
    """Unpacked trees and copyright texts of the packages the sources need (the hydrogen kits
    also for music when pieces get drums); copies the copyright files to ``out/licences``."""
    cache = PackageCache(config.cache or default_cache(), log)
    packages = {p for s in config.sources for p in PACKAGES[s]}
    if "music" in config.sources and config.drum_mix > 0:
        packages |= set(HYDROGEN_PACKAGES)
    trees = {p: cache.tree(p) for p in sorted(packages)}
    copyrights = {p: cache.copyright(p) for p in sorted(packages)}
    for package, text in copyrights.items():
        write_text_atomic(out / "licences" / f"{package}.txt", text)
    return trees, copyrights


def _fixed_jobs(config: BuildConfig, trees: dict[str, Path], copyrights: dict[str, str],
                kits: list[KitInfo]) -> list[Job]:
    """Speech, sonic-pi and drum-groove jobs (their number is known in advance)."""
    jobs: list[Job] = []
    for source, package in (("klettres", KLETTRES), ("hedgewars", HEDGEWARS), ("fillets", FILLETS)):
        if source in config.sources:
            jobs.append(speech_job(package, trees[package], copyrights[package], config.validation_fraction))
    if "sonic-pi" in config.sources:
        jobs.append(sonic_pi_job(trees[SONIC_PI], copyrights[SONIC_PI], config.validation_fraction))
    if "drums" in config.sources:
        jobs += groove_jobs(kits, config.hours_drums)
    return jobs


def _render_music(config: BuildConfig, kits: list[KitInfo], executor, workers: int, context: JobContext,
                  store: _Store, counts: dict[str, int]) -> None:
    """Score jobs in catalogue order until the rendered music reaches ``hours_music``."""
    target = config.hours_music * 3600
    with tqdm(total=round(config.hours_music, 2), desc="music", unit="h", disable=config.quiet, file=sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total} h [{elapsed}<{remaining}]") as bar:
        def progress(entries: list[Entry]) -> None:
            bar.n = round(min(store.seconds(MUSIC21), target) / 3600, 2)
            bar.refresh()

        progress([])
        _run(executor, workers, _piece_jobs(config, kits), context, store, counts, progress,
             budget=lambda in_flight: store.seconds(MUSIC21) + 60.0 * in_flight < target)


def _remove_leftovers(out: Path) -> None:
    """Delete what an interrupted build may have left: render folders and unfinished files."""
    for path in out.glob(".render-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in out.rglob(".*.tmp"):
        path.unlink(missing_ok=True)
    for path in out.rglob(".*.flac"):
        path.unlink(missing_ok=True)


def _context(config: BuildConfig, trees: dict[str, Path], log) -> JobContext:
    fluidsynth, soundfont = "fluidsynth", None
    if "music" in config.sources and config.hours_music > 0:
        from .tools import ensure_fluidsynth, ensure_music21

        fluidsynth = ensure_fluidsynth(log)
        ensure_music21(log)
        soundfont = trees[SOUNDFONT_PACKAGE] / SOUNDFONT_PATH
        if not soundfont.is_file():
            raise UpscalerError(f"{SOUNDFONT_PACKAGE} has no {SOUNDFONT_PATH}")
    return JobContext(out=Path(config.out).resolve(), music_rate=config.music_rate, seed=config.seed,
                      max_piece_seconds=config.max_piece_seconds, fluidsynth=fluidsynth, soundfont=soundfont)


def _piece_jobs(config: BuildConfig, kits: list[KitInfo]) -> Iterator[PieceJob]:
    """Score jobs in catalogue order; a ``drum_mix`` share get a kit from the same split."""
    from .tools import ensure_music21

    items = catalogue(corpus_root(ensure_music21()))
    splits = assign_splits((item_key(MUSIC21, i) for i in items), config.validation_fraction)
    for item in items:
        split = splits[item_key(MUSIC21, item)]
        same_side = [k for k in kits if k.split == split]
        mix = None
        if same_side and unit_hash(f"drum-mix:{config.seed}:{item}") < config.drum_mix:
            kit = same_side[int(unit_hash(f"drum-kit:{config.seed}:{item}") * len(same_side))]
            mix = DrumMix(kit.folder, kit.key, kit.licence)
        yield PieceJob(item, split, mix)


def _run(executor, workers: int, jobs: Iterable[Job], context: JobContext, store: _Store,
         counts: dict[str, int], progress: Callable[[list[Entry]], None],
         budget: Callable[[int], bool] = lambda in_flight: True) -> None:
    """Keep up to two jobs per worker in flight, skipping finished ones, while ``budget``
    (given the number in flight) allows; record each result as it arrives."""
    pending: dict[Future, Job] = {}
    queue = iter(jobs)
    failures_in_a_row = 0
    while True:
        while len(pending) < 2 * workers and budget(len(pending)):
            job = next(queue, None)
            if job is None:
                break
            if job.key in store.done:
                counts["skipped"] += 1
                progress([])
                continue
            pending[executor.submit(_run_job, job, context)] = job
        if not pending:
            return
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            job = pending.pop(future)
            entries, error = future.result()
            store.add(job.key, entries, error)
            counts["ran"] += 1
            counts["failed"] += error is not None
            failures_in_a_row = failures_in_a_row + 1 if error else 0
            if failures_in_a_row >= _MAX_FAILURES_IN_A_ROW:
                raise UpscalerError(f"{failures_in_a_row} jobs failed in a row; last: {job.key}: {error}")
            progress(entries)
