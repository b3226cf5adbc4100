"""Fetch Debian packages with ``apt-get download`` and unpack them with ``dpkg-deb -x``.

Cache layout (``--cache DIR``)::

    DIR/debs/<package>_<version>_<arch>.deb    downloaded archives (``DIR/*.deb`` is used too)
    DIR/unpacked/<package>/usr/...             unpacked trees (complete when ``.complete`` exists)

Nothing is installed into the system: ``apt-get download`` needs no root, only the package
lists (``apt-get update``) and network access to a Debian/Ubuntu mirror.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from ...errors import UpscalerError

_COMPLETE = ".complete"


class PackageCache:
    """Unpacked Debian packages under ``root``; ``log`` receives one-line progress messages."""

    def __init__(self, root: str | Path, log: Callable[[str], None] = lambda message: None):
        self.root = Path(root).expanduser()
        self.log = log

    def tree(self, package: str) -> Path:
        """The unpacked package (fetched and unpacked first when missing)."""
        target = self.root / "unpacked" / package
        if (target / _COMPLETE).exists():
            return target
        deb = self.find_deb(package) or self.download(package)
        self.log(f"unpacking {deb.name}")
        _require("dpkg-deb")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=target.parent))
        try:
            _run(["dpkg-deb", "-x", str(deb), str(staging)], f"cannot unpack {deb}")
            (staging / _COMPLETE).write_text(deb.name + "\n")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def find_deb(self, package: str) -> Path | None:
        """A cached ``.deb`` of ``package`` (newest name), or ``None``."""
        found = sorted(p for folder in (self.root / "debs", self.root)
                       for p in folder.glob(f"{package}_*.deb"))
        return found[-1] if found else None

    def download(self, package: str) -> Path:
        """``apt-get download package`` into ``root/debs``; returns the archive."""
        _require("apt-get")
        folder = self.root / "debs"
        folder.mkdir(parents=True, exist_ok=True)
        self.log(f"downloading {package} (apt-get download)")
        _run(["apt-get", "download", package], f"apt-get could not download {package} "
             "(run `apt-get update` as root, check the network, or put the .deb into "
             f"{folder})", cwd=folder)
        deb = self.find_deb(package)
        if deb is None:
            raise UpscalerError(f"apt-get download {package} left no .deb in {folder}")
        return deb

    def copyright(self, package: str) -> str:
        """Text of the package's ``usr/share/doc/<package>/copyright`` ('' when absent)."""
        path = self.tree(package) / "usr" / "share" / "doc" / package / "copyright"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise UpscalerError(f"`{tool}` not found: the corpus builder needs a Debian/Ubuntu system "
                            "with apt and dpkg (or the unpacked packages in the cache folder)")


def _run(command: list[str], message: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UpscalerError(f"{message}: {detail}")
