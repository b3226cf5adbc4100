"""The external programs the builder needs: ``fluidsynth`` (apt) and ``music21`` (pip).

Missing ones are installed when possible (``apt-get install -y fluidsynth`` as root,
``pip install music21`` into the running interpreter); otherwise a one-line error says how.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from typing import Callable

from ...errors import UpscalerError

MUSIC21_REQUIREMENT = "music21>=9"


def ensure_fluidsynth(log: Callable[[str], None] = print) -> str:
    """Path of the ``fluidsynth`` program, installing the Debian package as root if needed."""
    found = shutil.which("fluidsynth")
    if found:
        return found
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not (is_root and shutil.which("apt-get")):
        raise UpscalerError("fluidsynth is not installed: run `sudo apt-get install fluidsynth` "
                            "(or install FluidSynth 2.x and put it on PATH), then build again")
    log("installing fluidsynth (apt-get install -y fluidsynth)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "fluidsynth"]
    if subprocess.run(install, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)  # stale package lists
        subprocess.run(install, capture_output=True, env=env)
    found = shutil.which("fluidsynth")
    if not found:
        raise UpscalerError("could not install fluidsynth with apt-get; install it by hand")
    return found


def ensure_music21(log: Callable[[str], None] = print):
    """The ``music21`` module, installed with pip into this interpreter if missing."""
    try:
        return importlib.import_module("music21")
    except ImportError:
        pass
    log(f"installing {MUSIC21_REQUIREMENT} (pip)")
    result = subprocess.run([sys.executable, "-m", "pip", "install", MUSIC21_REQUIREMENT],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise UpscalerError(f"could not install music21 with pip: run `pip install "
                            f"'{MUSIC21_REQUIREMENT}'` (or `pip install audio-upscaler[train]`)")
    importlib.invalidate_caches()
    return importlib.import_module("music21")
