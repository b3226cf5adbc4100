"""File safety for the web UI: content checks, folder containment, per-session folders.

- :func:`check_audio` accepts a file by its *content* (the library's :func:`audio_upscaler.io.probe`
  decodes its header), never by its extension, and enforces the size and duration limits.
- :func:`contained_path` turns a (root, relative path) pair typed in the page into a path that is
  guaranteed to lie under that root after resolving ``..`` and symbolic links.
- :class:`SessionStore` gives each browser session its own folder under a random name; the
  folder is removed when the session ends.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePath

from ..errors import UpscalerError
from .settings import UISettings


def check_audio(path: str | Path, settings: UISettings, name: str | None = None):
    """The :class:`audio_upscaler.io.AudioInfo` of ``path`` if it is decodable audio within the
    limits; else :class:`UpscalerError` whose message names the file (``name``, default its file
    name), not the server path."""
    from .. import io

    path = Path(path)
    name = name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise UpscalerError(f"{name}: file not found") from None
    if size > settings.max_upload_bytes:
        raise UpscalerError(f"{name}: {size / 2**20:.1f} MiB is over the {settings.max_upload_mb:g} MiB limit")
    try:
        info = io.probe(path)
    except UpscalerError as exc:
        raise UpscalerError(str(exc).replace(str(path), name)) from None
    if info.duration is not None and info.duration > settings.max_duration_s:
        raise UpscalerError(
            f"{name}: {info.duration:.0f} s is longer than the {settings.max_duration_s:g} s limit")
    return info


def public_message(exc: BaseException, *paths: str | Path) -> str:
    """``str(exc)`` with each server path in ``paths`` replaced by its file name."""
    text = str(exc)
    for path in paths:
        text = text.replace(str(path), Path(path).name)
    return text


def contained_path(root: str, relative: str | None, settings: UISettings) -> Path:
    """``root / relative`` resolved, if ``root`` is one of ``settings.roots`` and the result stays
    inside it. Absolute paths, ``..`` that leaves the root and links pointing outside are refused."""
    allowed = {str(r): r for r in settings.roots}
    if not allowed:
        raise UpscalerError("folder access is off: start the UI with --root DIR to allow a folder")
    if root not in allowed:
        raise UpscalerError("choose one of the allowed folders")
    base = allowed[root]
    relative = (relative or "").strip()
    if "\x00" in relative:
        raise UpscalerError("the folder name contains a NUL character")
    if PurePath(relative).is_absolute() or relative.startswith("~"):
        raise UpscalerError("give a folder relative to the chosen root, not an absolute path")
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise UpscalerError(f"'{relative}' is outside the allowed folder")
    return target


def folder_files(folder: Path, root: Path, limit: int) -> list[Path]:
    """Regular, non-hidden files directly in ``folder`` (sorted), those whose real location is
    under ``root``; more than ``limit`` files is an error."""
    if not folder.is_dir():
        raise UpscalerError(f"'{folder.name or folder}' is not a folder")
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            continue  # a link out of the root
        files.append(path)
    if len(files) > limit:
        raise UpscalerError(f"the folder holds {len(files)} files; at most {limit} per batch")
    return files


def root_of(path: Path, settings: UISettings) -> Path:
    """The allowed root holding ``path`` (already contained)."""
    return next(r for r in settings.roots if path.is_relative_to(r))


def unique_name(folder: Path, name: str) -> Path:
    """``folder / name``, or ``folder / stem-2.ext`` ... when that exists."""
    candidate, n = folder / name, 1
    stem, suffix = Path(name).stem, Path(name).suffix
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}{suffix}"
    return candidate


def zip_files(files: Iterable[Path], destination: Path, base: Path | None = None) -> Path:
    """Write ``destination`` (a ZIP) holding ``files``, named relative to ``base`` (default: flat)."""
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, str(path.relative_to(base)) if base else path.name)
    return destination


class SessionStore:
    """One folder per browser session under ``work_dir``, named by a random token (the session
    id never appears in a path); :meth:`discard` deletes a session's folder."""

    def __init__(self, work_dir: Path):
        self.work_dir = Path(work_dir)
        self._folders: dict[str, Path] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def folder(self, session: str) -> Path:
        """This session's folder (created on first use)."""
        if not session:
            raise UpscalerError("no browser session; reload the page")
        with self._lock:
            if session not in self._folders:
                folder = self.work_dir / secrets.token_hex(16)
                folder.mkdir(parents=True)
                self._folders[session] = folder
            return self._folders[session]

    def job_folder(self, session: str, kind: str) -> Path:
        """A new empty folder ``<kind>-<n>`` in this session's folder, for one job's files."""
        base = self.folder(session)
        with self._lock:
            self._counts[session] = n = self._counts.get(session, 0) + 1
        folder = base / f"{kind}-{n}"
        folder.mkdir()
        return folder

    def discard(self, session: str) -> None:
        """Delete this session's folder and forget it."""
        with self._lock:
            folder = self._folders.pop(session, None)
            self._counts.pop(session, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
