"""What one web UI server allows: upload limits, readable folders, concurrent jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UpscalerError


@dataclass(frozen=True)
class UISettings:
    """Limits and folders of one UI server (:func:`audio_upscaler.ui.app.build_app`).

    Attributes:
        roots: folders whose files Batch, Benchmark and Model Lab may read (nothing outside
            them, no path traversal); empty means no folder access, uploads only.
        max_upload_mb: largest accepted file (MiB), uploaded or read from a root.
        max_duration_s: longest accepted audio (seconds) per file.
        max_jobs: upscales/batches/benchmarks running at once across all users; more wait in
            Gradio's queue.
        max_batch_files: most files one batch may hold.
        work_dir: parent of the per-session folders (default: a fresh temporary folder).
        runs_dir: training runs listed and started by Model Lab.
        config_dirs: folders searched for training configs (``*.yaml``) offered by Model Lab.
    """

    roots: tuple[Path, ...] = ()
    max_upload_mb: float = 200.0
    max_duration_s: float = 1800.0
    max_jobs: int = 2
    max_batch_files: int = 200
    work_dir: Path | None = None
    runs_dir: Path = Path("runs")
    config_dirs: tuple[Path, ...] = field(default_factory=lambda: (Path("configs"), Path("configs/train")))

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_duration_s <= 0:
            raise UpscalerError("upload size and duration limits must be positive")
        if self.max_jobs < 1 or self.max_batch_files < 1:
            raise UpscalerError("max jobs and max batch files must be at least 1")
        roots = []
        for root in self.roots:
            path = Path(root).expanduser().resolve()
            if not path.is_dir():
                raise UpscalerError(f"allowed root {root} is not a folder")
            roots.append(path)
        object.__setattr__(self, "roots", tuple(dict.fromkeys(roots)))
        object.__setattr__(self, "runs_dir", Path(self.runs_dir))
        object.__setattr__(self, "config_dirs", tuple(Path(d) for d in self.config_dirs))

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def root_labels(self) -> list[str]:
        """The roots as shown in folder pickers (their full paths)."""
        return [str(root) for root in self.roots]
