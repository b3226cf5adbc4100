"""Studio tab: one file in (upload or recording), analysis, upscale with progress, A/B listening,
spectrograms before/after with the cutoff marked, download."""

import re
from pathlib import Path

from ..errors import UpscalerError
from .ab import PLAYER_JS, matched_gains, player_html, write_preview
from .context import Context, error_text, session_id
from .controls import build_controls, parse_options
from .files import check_audio, public_message
from .plots import SPECTROGRAM_SECONDS, spectrogram_png


def chosen_input(file: str | None, recording: str | None) -> str:
    """The uploaded file, else the recording; :class:`UpscalerError` when there is neither."""
    path = file or recording
    if not path:
        raise UpscalerError("upload or record a file first")
    return str(path)


def analysis_markdown(report, name: str) -> str:
    """The analysis as a two-column markdown table (from :meth:`Report.summary_lines`)."""
    rows = []
    for line in report.summary_lines():
        key, value = (re.split(r"\s{2,}", line, maxsplit=1) + [""])[:2]
        rows.append(f"| {key} | {value} |")
    return f"| {name} | |\n|---|---|\n" + "\n".join(rows)


def inspect(ctx: Context, file: str | None, recording: str | None) -> tuple[str, str]:
    """``(analysis markdown, status markdown)`` for a new input."""
    from ..analysis import analyze

    if not (file or recording):
        return "", ""
    path = chosen_input(file, recording)
    try:
        check_audio(path, ctx.settings)
        report = analyze(path)
    except UpscalerError as exc:
        return "", error_text(UpscalerError(public_message(exc, path)))
    except Exception as exc:  # noqa: BLE001 - an internal error, shown in the page
        return "", error_text(exc)
    return analysis_markdown(report, Path(path).name), "Ready: choose the settings and press **Upscale**."


def upscale(ctx: Context, session: str, path: str, values: list, progress=None) -> tuple[str, str, str, str]:
    """Upscale ``path`` with the control ``values``; returns ``(status, A/B html, spectrogram
    png, output file)``. Raises :class:`UpscalerError` for user errors."""
    from ..analysis import analyze

    options = parse_options(*values)
    check_audio(path, ctx.settings)
    job = ctx.sessions.job_folder(session, "studio")
    output = job / f"{Path(path).stem}_upscaled.{options.extension}"

    def report_progress(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(total, 1), desc="upscaling")

    try:
        result = ctx.upscalers.get(options).upscale_file(path, output, fmt=options.output_format(),
                                                          progress=report_progress)
    except UpscalerError as exc:
        raise UpscalerError(public_message(exc, path, output)) from None
    if progress is not None:
        progress(1.0, desc="preparing A/B previews and spectrograms")
    out_report = analyze(output)
    gain_in, gain_out = matched_gains(result.report.loudness_lufs, out_report.loudness_lufs,
                                      10 ** (result.report.peak_dbfs / 20), 10 ** (out_report.peak_dbfs / 20))
    preview_a = write_preview(path, job / "preview_input.wav", gain_in)
    preview_b = write_preview(output, job / "preview_output.wav", gain_out)
    note = f"level-matched: input {_db(gain_in)}, output {_db(gain_out)}"
    png = spectrogram_png([("input", path), ("output", output)], result.content_cutoff_hz, job / "spectrogram.png",
                          model_cutoff_hz=result.model_cutoff_hz)
    shown = "" if result.duration_s <= SPECTROGRAM_SECONDS else f" (spectrograms: first {SPECTROGRAM_SECONDS:g} s)"
    status = (f"**Done.** {Path(path).name}: {result.input_rate} Hz → **{result.output_rate} Hz** "
              f"{options.container.upper()}, model `{result.model}` ({result.model_reason}); input: "
              f"{result.cutoff_summary()}, output content reaches {out_report.cutoff_hz / 1000:.1f} kHz; "
              f"{result.duration_s:.1f} s of audio in {result.elapsed_s:.1f} s "
              f"({result.realtime_factor:.1f}× real time){shown}.")
    return status, player_html(preview_a, preview_b, note), str(png), str(output)


def _db(gain: float) -> str:
    import math

    return f"{20 * math.log10(gain):+.1f} dB"


def build(ctx: Context):
    """The Studio tab (inside the current Blocks); returns its settings controls."""
    import gradio as gr

    with gr.Tab("Studio", id="studio", elem_id="tab_studio"):
        with gr.Row():
            with gr.Column():
                file = gr.File(label="Audio file (any format; checked by its content)", elem_id="studio_file")
                recording = gr.Audio(sources=["microphone"], type="filepath", label="…or record",
                                     elem_id="studio_record")
                analysis = gr.Markdown(elem_id="studio_analysis")
            with gr.Column():
                controls = build_controls("studio")
                run = gr.Button("Upscale", variant="primary", elem_id="studio_run")
                status = gr.Markdown(elem_id="studio_status")
                ab = gr.HTML(player_html(None, None), js_on_load=PLAYER_JS, elem_id="studio_ab")
                download = gr.File(label="Result", elem_id="studio_download", interactive=False)
        spectrogram = gr.Image(label=("Spectrograms (dashed line: where the input's content ends; "
                                        "dotted: the cutoff the model was given, when different)"), type="filepath",
                               elem_id="studio_spectrogram", interactive=False)

        def on_input(file_path, recorded):
            return inspect(ctx, file_path, recorded)

        def on_run(file_path, recorded, model, rate, container, depth, stereo, normalize, level, codec_check,
                   request: gr.Request, progress=gr.Progress()):
            try:
                path = chosen_input(file_path, recorded)
                return upscale(ctx, session_id(request), path,
                               [model, rate, container, depth, stereo, normalize, level, codec_check], progress)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                return error_text(exc), player_html(None, None), None, None

        file.change(on_input, [file, recording], [analysis, status])
        recording.change(on_input, [file, recording], [analysis, status])
        run.click(on_run, [file, recording, *controls.inputs()], [status, ab, spectrogram, download],
                  concurrency_limit=ctx.settings.max_jobs, concurrency_id="jobs")
    return controls
