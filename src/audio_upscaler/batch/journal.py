"""The batch journal: what a batch did in ``OUT_DIR``, so that a re-run can resume.

An append-only file of JSON lines, one event per line, each flushed and fsync'd before the batch
goes on.  Events (all carry ``file``, the input's path relative to ``IN_DIR``, and ``output``,
relative to ``OUT_DIR``):

- ``start``: the job was handed to a worker; its output may now appear.
- ``done``: the output was committed; with its size in ``bytes``, the ``settings`` key and the
  input's ``input_bytes``/``input_mtime_ns``.
- ``failed``: with the ``reason``; nothing was written.

Only the last event of each file counts, except that a ``failed`` event after a ``done`` leaves
the ``done`` in force (nothing was written, so the finished output still stands: a run with other
settings that was refused must not make the next run with the first settings redo or refuse it).
A torn last line (the process was killed while writing it) is ignored.  Outputs are committed atomically by the writers, so an output either
exists complete or not at all; the journal decides whether it is finished work of the same
settings (skip it), our own unfinished or damaged work (redo it, replacing the file), or a file
someone else put there (refuse unless ``--overwrite``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import UpscalerError
from ..textio import to_json
from .jobs import Job

JOURNAL_NAME = ".audio-upscaler-batch.jsonl"


def read_journal(path: Path) -> dict[str, dict]:
    """The deciding event of each file recorded in the journal at ``path`` (empty if none)."""
    return _replay(path)[0]


def _replay(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """``(deciding event, last done event)`` of each file in the journal at ``path``."""
    last: dict[str, dict] = {}
    done: dict[str, dict] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return last, done
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # torn by a kill mid-write
            continue
        if isinstance(record, dict) and isinstance(record.get("file"), str) and "event" in record:
            _record(last, done, record)
    return last, done


def _record(last: dict[str, dict], done: dict[str, dict], record: dict) -> None:
    """Update the deciding event of ``record``'s file (see the module docstring) and its last ``done``."""
    name = record["file"]
    if record["event"] == "done":
        done[name] = record
    previous = done.get(name)
    failed_after_done = record["event"] == "failed" and previous is not None and \
        previous.get("output") == record.get("output")
    last[name] = previous if failed_after_done else record


class Journal:
    """The journal of ``out_dir``, opened for appending under an exclusive lock."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / JOURNAL_NAME
        self.last, self._done = _replay(self.path)
        try:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise UpscalerError(f"{self.out_dir}: cannot write to the output folder: {exc.strerror or exc}") from None
        try:
            _lock(self._file)
        except OSError:
            self._file.close()
            raise UpscalerError(f"{self.out_dir}: another batch is writing into this output folder") from None
        if _ends_torn(self.path):  # start on a fresh line after a record cut by a kill
            self._file.write("\n")

    # ---- decisions ----------------------------------------------------------------------------

    def is_finished(self, job: Job, settings_key: str) -> bool:
        """True if ``job`` was done with the same settings, from the same input, and its output
        is still there, of the size written."""
        record = self._record_for(job)
        if record is None or record["event"] != "done" or record.get("settings") != settings_key:
            return False
        size, mtime = _stat(job.input)
        return (size, mtime) == (record.get("input_bytes"), record.get("input_mtime_ns")) and \
            _stat(job.output)[0] == record.get("bytes")

    def may_replace(self, job: Job) -> bool:
        """True if an existing output of ``job`` is our own unfinished or damaged work."""
        record = self._record_for(job)
        if record is None:
            return False
        return record["event"] == "start" or (record["event"] == "done" and _stat(job.output)[0] != record.get("bytes"))

    def _record_for(self, job: Job) -> dict | None:
        record = self.last.get(job.name)
        return record if record is not None and record.get("output") == self._relative(job.output) else None

    # ---- recording ----------------------------------------------------------------------------

    def started(self, job: Job) -> None:
        self._append({"event": "start", "file": job.name, "output": self._relative(job.output)})

    def done(self, job: Job, settings_key: str) -> None:
        size, mtime = _stat(job.input)
        self._append({
            "event": "done", "file": job.name, "output": self._relative(job.output),
            "bytes": _stat(job.output)[0], "settings": settings_key, "input_bytes": size, "input_mtime_ns": mtime,
        })

    def failed(self, job: Job, reason: str) -> None:
        self._append({"event": "failed", "file": job.name, "output": self._relative(job.output), "reason": reason})

    def _append(self, record: dict) -> None:
        record["time"] = round(time.time(), 3)
        self._file.write(to_json(record) + "\n")  # a file name that is not UTF-8 as \udcXX escapes
        self._file.flush()
        os.fsync(self._file.fileno())
        _record(self.last, self._done, record)

    def _relative(self, output: str) -> str:
        return Path(output).relative_to(self.out_dir).as_posix()

    def close(self) -> None:
        self._file.close()  # also releases the lock

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _stat(path: str) -> tuple[int | None, int | None]:
    """``(size, mtime_ns)`` of ``path``, ``(None, None)`` if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


def _ends_torn(path: Path) -> bool:
    """True if the file does not end with a newline (its last record was cut short)."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _lock(file) -> None:
    """Exclusive, non-blocking lock on an open file (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
