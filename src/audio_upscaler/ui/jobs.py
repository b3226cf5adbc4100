"""Background processes started from the page (training, tuning), one per session and kind.

Training and tuning run as ``python -m audio_upscaler train|tune ...`` child processes in their
own process group: the page stays responsive, a stop ends the whole group (data-loader workers
included), and the run folder keeps checkpoints to resume from. A session sees and stops only
its own processes; at most ``limit`` run at once on the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import UpscalerError

STOP_WAIT_S = 10.0


class ProcessJobs:
    """Child processes keyed by ``(session, kind)``, each running ``command + args``."""

    def __init__(self, limit: int, command: tuple[str, ...] = (sys.executable, "-m", "audio_upscaler")):
        self.limit = limit
        self.command = tuple(command)
        self._procs: dict[tuple[str, str], subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, session: str, kind: str, args: list[str], log_path: Path) -> subprocess.Popen:
        """Run ``command + args`` with stdout and stderr appended to ``log_path``."""
        with self._lock:
            self._forget_finished()
            if (session, kind) in self._procs:
                raise UpscalerError(f"a {kind} job of this page is still running; stop it first")
            if len(self._procs) >= self.limit:
                raise UpscalerError(f"the server already runs {len(self._procs)} background jobs; try later")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log:
                proc = subprocess.Popen([*self.command, *args], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            self._procs[(session, kind)] = proc
            return proc

    def running(self, session: str, kind: str) -> subprocess.Popen | None:
        """The process of this session and kind if it is still alive."""
        with self._lock:
            proc = self._procs.get((session, kind))
        return proc if proc is not None and proc.poll() is None else None

    def stop(self, session: str, kind: str) -> bool:
        """End this session's process of ``kind`` (SIGTERM to its group, SIGKILL after a wait);
        False if none was running."""
        with self._lock:
            proc = self._procs.pop((session, kind), None)
        if proc is None or proc.poll() is not None:
            return False
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        return True

    def stop_session(self, session: str) -> None:
        """Stop every process of a session (when its page is closed)."""
        with self._lock:
            kinds = [kind for s, kind in self._procs if s == session]
        for kind in kinds:
            self.stop(session, kind)

    def _forget_finished(self) -> None:
        for key in [k for k, p in self._procs.items() if p.poll() is not None]:
            del self._procs[key]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    if not hasattr(os, "killpg"):  # Windows: no process groups
        proc.kill() if sig == getattr(signal, "SIGKILL", None) else proc.terminate()
        return
    try:
        os.killpg(proc.pid, sig)  # the group this process leads (start_new_session)
    except ProcessLookupError:
        pass
