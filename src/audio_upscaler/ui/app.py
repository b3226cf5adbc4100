"""The Gradio app: :func:`build_app` assembles the four tabs, :func:`launch` serves it.

Nothing is created at import time: settings, session folders, the upscaler cache and the job
registry belong to the :class:`~audio_upscaler.ui.context.Context` that :func:`build_app` makes.
Long work (upscales, batches, benchmarks) runs in Gradio's queue with at most
``settings.max_jobs`` at once; training and tuning run as child processes.
"""

import atexit
import dataclasses
import shutil
import tempfile
from pathlib import Path

from .context import Context, session_id
from .files import SessionStore
from .settings import UISettings

TITLE = "Audio Upscaler"
#: Gradio's own upload cache: files older than a day are deleted every hour (seconds).
CACHE_CLEANUP = (3600, 86400)


def with_work_dir(settings: UISettings) -> UISettings:
    """``settings`` with a ``work_dir`` (when none is set: a fresh temporary folder, removed when
    the process exits)."""
    if settings.work_dir is not None:
        Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
        return settings
    work_dir = Path(tempfile.mkdtemp(prefix="audio-upscaler-ui-"))
    atexit.register(shutil.rmtree, work_dir, ignore_errors=True)
    return dataclasses.replace(settings, work_dir=work_dir)


def build_app(settings: UISettings | None = None):
    """The UI as a ``gradio.Blocks`` (not yet launched; see :func:`launch`)."""
    import gradio as gr

    from . import batch, benchmark, model_lab, studio
    from .controls import model_choices

    settings = with_work_dir(settings or UISettings())
    ctx = Context(settings, SessionStore(settings.work_dir))
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown(f"# {TITLE}\nRestore the missing high frequencies of band-limited audio.")
        with gr.Tabs():
            studio_controls = studio.build(ctx)
            batch_controls = batch.build(ctx)
            model_lab.build(ctx, [studio_controls.model, batch_controls.model])
            benchmark.build(ctx)

        def on_load():
            choices = model_choices()  # models exported or installed since the server started
            return gr.update(choices=choices), gr.update(choices=choices)

        def on_unload(request: gr.Request):
            session = session_id(request)
            ctx.jobs.stop_session(session)
            ctx.sessions.discard(session)

        demo.load(on_load, None, [studio_controls.model, batch_controls.model], queue=False)
        demo.unload(on_unload)
    demo.queue(default_concurrency_limit=settings.max_jobs)
    return demo


def offline_theme():
    """Gradio's default look with system fonts (the default theme fetches web fonts)."""
    import gradio as gr

    sans = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=sans, font_mono=["ui-monospace", "monospace"])


def launch(settings: UISettings | None = None, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Build and serve the UI; with ``block=False`` return the running ``gradio.Blocks``
    (call ``.close()`` to stop it). Files are served only from Gradio's cache and the session folders."""
    settings = with_work_dir(settings or UISettings())
    demo = build_app(settings)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
                allowed_paths=[str(settings.work_dir)], max_file_size=settings.max_upload_bytes,
                show_error=True, ssr_mode=False, footer_links=[], theme=offline_theme())
    return demo
