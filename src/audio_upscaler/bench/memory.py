"""Peak memory of a block of code, as the resident set size (RSS) it adds to the process."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_kernel_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def release_free_memory() -> None:
    """Collect garbage and hand freed heap memory back to the OS (glibc ``malloc_trim``), so
    that the next measurement starts from what the process really uses."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: nothing to trim


class PeakRSS:
    """Context manager: ``peak_mib`` = peak RSS inside the block minus the RSS before it (MiB).

    On Linux the kernel's own high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs``) is exact. Elsewhere a thread samples RSS with ``psutil`` every
    ``interval`` seconds and can miss shorter peaks. Freed memory is handed back to the OS first
    (:func:`release_free_memory`); memory the process still holds before the block (caches,
    loaded models) is not counted, so this is the extra memory the block needed, not the
    process total.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mib = float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def method() -> str:
        """How peaks are measured on this machine (one line, for reports)."""
        if _reset_kernel_peak():
            return "peak RSS during the call minus RSS before it (Linux VmHWM, exact)"
        return "peak RSS during the call minus RSS before it (psutil, sampled every 5 ms)"

    def __enter__(self) -> PeakRSS:
        import psutil

        release_free_memory()
        self._process = psutil.Process()
        self._baseline = self._peak = self._process.memory_info().rss
        if not _reset_kernel_peak():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc_info) -> None:
        if self._thread is None:
            peak = (_status_kib("VmHWM") or 0) * 1024
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, self._process.memory_info().rss)
        self.peak_mib = max(0, peak - self._baseline) / 2**20
