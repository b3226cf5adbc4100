"""Batch tab: many files (uploads and/or a folder under an allowed root), one settings panel, a
queue with per-file status, a ZIP of the results; cancel keeps the files finished so far."""

from collections.abc import Iterator
from pathlib import Path

from ..errors import UpscalerError
from .context import Context, error_text, session_id
from .controls import build_controls, parse_options
from .files import check_audio, contained_path, folder_files, public_message, root_of, unique_name, zip_files

HEADERS = ["file", "status", "detail"]
ZIP_NAME = "upscaled.zip"


def gather(ctx: Context, uploads: list[str] | None, root: str | None, folder: str | None) -> list[tuple[str, Path]]:
    """``(shown name, path)`` of every file of the batch: the uploads, then the files directly in
    ``root/folder`` when a folder is given ('.' for the root itself)."""
    items = [(Path(p).name, Path(p)) for p in uploads or []]
    if folder and folder.strip():
        target = contained_path(root or "", folder, ctx.settings)
        base = root_of(target, ctx.settings)
        items += [(str(p.relative_to(base)), p) for p in folder_files(target, base, ctx.settings.max_batch_files)]
    if not items:
        raise UpscalerError("add files: upload some, or name a folder under an allowed root")
    if len(items) > ctx.settings.max_batch_files:
        raise UpscalerError(f"{len(items)} files; at most {ctx.settings.max_batch_files} per batch")
    return items


def finished_outputs(job: Path) -> list[Path]:
    """Completed output files of a batch folder (the writer's temporary files are hidden)."""
    return sorted(p for p in job.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != ZIP_NAME)


def run_batch(ctx: Context, session: str, items: list[tuple[str, Path]], values: list,
              progress=None) -> Iterator[tuple[list[list[str]], str, str | None, str]]:
    """Upscale each item; yields ``(rows, status, zip or None, job folder)`` after every change.
    A file that fails gets its message in its row; the others go on."""
    options = parse_options(*values)
    fmt = options.output_format()
    upscaler = ctx.upscalers.get(options)
    job = ctx.sessions.job_folder(session, "batch")
    rows = [[name, "queued", ""] for name, _ in items]
    count = len(items)
    yield _copy(rows), f"Running 0/{count}…", None, str(job)
    for i, (name, path) in enumerate(items):
        rows[i][1] = "running"
        yield _copy(rows), f"Running {i + 1}/{count}: {name}", None, str(job)

        def report(done: int, total: int, i=i, name=name) -> None:
            if progress is not None:
                progress((i + done / max(total, 1)) / count, desc=name)

        output = unique_name(job, f"{Path(name).stem}_upscaled.{options.extension}")
        try:
            check_audio(path, ctx.settings)
            result = upscaler.upscale_file(path, output, fmt=fmt, progress=report)
        except UpscalerError as exc:
            rows[i][1:] = ["error", public_message(exc, path, output)]
        except Exception as exc:  # noqa: BLE001 - a bug on one file must not stop the others
            rows[i][1:] = ["error", f"internal error ({type(exc).__name__}): {public_message(exc, path, output)}"]
        else:
            rows[i][1:] = ["done", f"{result.input_rate} → {result.output_rate} Hz, model {result.model}, "
                                   f"{result.realtime_factor:.1f}× real time"]
    done = finished_outputs(job)
    failed = sum(row[1] == "error" for row in rows)
    archive = str(zip_files(done, job / ZIP_NAME)) if done else None
    status = f"**Finished:** {len(done)} of {count} files upscaled" + (f", {failed} failed" if failed else "") + "."
    yield _copy(rows), status, archive, str(job)


def _copy(rows: list[list[str]]) -> list[list[str]]:
    return [list(row) for row in rows]


def cancelled(job: str | None) -> tuple[str, str | None]:
    """Status and ZIP of what a cancelled batch finished."""
    done = finished_outputs(Path(job)) if job and Path(job).is_dir() else []
    if not done:
        return "**Cancelled.** No file was finished.", None
    return (f"**Cancelled.** {len(done)} finished file(s) are in the ZIP.",
            str(zip_files(done, Path(job) / ZIP_NAME)))


def build(ctx: Context):
    """The Batch tab (inside the current Blocks); returns its settings controls."""
    import gradio as gr

    roots = ctx.settings.root_labels()
    with gr.Tab("Batch", id="batch", elem_id="tab_batch"):
        with gr.Row():
            with gr.Column():
                uploads = gr.File(file_count="multiple", label="Audio files", elem_id="batch_files")
                with gr.Row():
                    root = gr.Dropdown(roots, value=roots[0] if roots else None, label="Allowed root",
                                       elem_id="batch_root", interactive=bool(roots))
                    folder = gr.Textbox(label="Folder under the root ('.' = the root; empty = uploads only)",
                                        elem_id="batch_folder", interactive=bool(roots),
                                        placeholder="no folder access: start with --root DIR" if not roots else "")
            with gr.Column():
                controls = build_controls("batch")
                with gr.Row():
                    run = gr.Button("Run batch", variant="primary", elem_id="batch_run")
                    cancel = gr.Button("Cancel", variant="stop", elem_id="batch_cancel")
        status = gr.Markdown(elem_id="batch_status")
        table = gr.Dataframe(headers=HEADERS, value=[], label="Queue", interactive=False, elem_id="batch_table",
                             wrap=True)
        archive = gr.File(label="Results (ZIP)", elem_id="batch_zip", interactive=False)
        job = gr.State(None)

        def on_run(files, root_label, folder_text, model, rate, container, depth, stereo, normalize, level, codec_check,
                   request: gr.Request, progress=gr.Progress()):
            try:
                items = gather(ctx, files, root_label, folder_text)
                yield from run_batch(ctx, session_id(request), items,
                                     [model, rate, container, depth, stereo, normalize, level, codec_check], progress)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                yield [], error_text(exc), None, None

        event = run.click(on_run, [uploads, root, folder, *controls.inputs()], [table, status, archive, job],
                          concurrency_limit=ctx.settings.max_jobs, concurrency_id="jobs")
        cancel.click(cancelled, [job], [status, archive], cancels=[event], queue=False)
    return controls
