"""What the tabs of one UI server share: settings, session folders, cached upscalers, jobs.

One :class:`Context` is made by :func:`audio_upscaler.ui.app.build_app`; nothing here exists
at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UpscalerError
from .controls import UpscalerCache
from .files import SessionStore
from .jobs import ProcessJobs
from .settings import UISettings


@dataclass
class Context:
    settings: UISettings
    sessions: SessionStore
    upscalers: UpscalerCache = field(default_factory=UpscalerCache)
    jobs: ProcessJobs | None = None

    def __post_init__(self) -> None:
        if self.jobs is None:
            self.jobs = ProcessJobs(self.settings.max_jobs)


def session_id(request) -> str:
    """The browser session of a Gradio request (each tab of a browser is its own session)."""
    session = getattr(request, "session_hash", None)
    if not session:
        raise UpscalerError("no browser session; reload the page")
    return str(session)


def error_text(exc: BaseException) -> str:
    """The line shown in the page for a failure: the message of a user error, else the type."""
    if isinstance(exc, UpscalerError):
        return f"**Error:** {exc}"
    return f"**Internal error:** {type(exc).__name__}: {exc}"
