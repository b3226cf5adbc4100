"""The summary of a batch: counts, speed and every failure with its reason (console and JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..textio import to_json, write_text_atomic
from .worker import JobResult

SUMMARY_NAME = "batch-summary.json"


@dataclass
class Summary:
    """What a batch did.  ``elapsed_s`` is the wall time of the whole run (seconds)."""

    in_dir: str
    out_dir: str
    backend: str
    results: list[JobResult] = field(default_factory=list)
    elapsed_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[JobResult]:
        return sorted((r for r in self.results if r.status == "failed"), key=lambda r: r.name)

    @property
    def files_per_s(self) -> float:
        """Files upscaled (not skipped) per second of wall time."""
        return self.count("done") / max(self.elapsed_s, 1e-9)

    @property
    def audio_seconds(self) -> float:
        return sum(r.duration_s or 0.0 for r in self.results if r.status == "done")

    def to_dict(self) -> dict:
        return {
            "in_dir": self.in_dir, "out_dir": self.out_dir, "backend": self.backend,
            "files": len(self.results), "done": self.count("done"), "skipped": self.count("skipped"),
            "failed": self.count("failed"), "elapsed_s": round(self.elapsed_s, 3),
            "files_per_s": round(self.files_per_s, 3), "audio_s": round(self.audio_seconds, 3),
            "failures": [{"file": r.name, "reason": r.reason} for r in self.failures],
            "results": [r.to_dict() for r in sorted(self.results, key=lambda r: r.name)],
        }

    def lines(self) -> list[str]:
        """One line of totals, then one per failed file."""
        totals = (
            f"batch: {self.count('done')} upscaled, {self.count('skipped')} already done, "
            f"{self.count('failed')} failed in {self.elapsed_s:.1f} s ({self.files_per_s:.2f} files/s); "
            f"summary in {Path(self.out_dir) / SUMMARY_NAME}"
        )
        return [totals, *(f"failed: {r.name}: {r.reason}" for r in self.failures)]

    def write(self) -> Path:
        """Write the JSON summary into ``out_dir`` (atomically); returns its path."""
        return write_text_atomic(Path(self.out_dir) / SUMMARY_NAME, to_json(self.to_dict(), indent=2) + "\n")
