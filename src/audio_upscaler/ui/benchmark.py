"""Benchmark tab: tasks x methods on a folder of clean clips under an allowed root; the results
table, the spectrogram comparison images and the report as a ZIP
(:func:`audio_upscaler.bench.run_benchmark` does the work)."""

import copy
import math
import os
import re
from pathlib import Path

from ..errors import UpscalerError
from .context import Context, error_text, session_id
from .files import check_audio, contained_path, root_of, zip_files

#: Files of a benchmark report folder that go into the ZIP (audio kept for plots stays out).
REPORT_FILES = ("README.md", "results.json", "results.csv")
#: The report folder as the downloaded report names it (the CLI's default ``--out``).
PUBLIC_OUT = "report"
#: Most audio one run may process (s): each clip's seconds (cut to *Seconds per clip*) x the
#: tasks that apply to its kind x the methods that apply to each task (``+check`` on codec tasks
#: only), as the runner counts its runs.  On the 2-core development machine (shared, 2026-12-07) a second processed
#: cost about 0.25-0.3 s with ``default`` or ``restore`` (degradation and scoring included) and
#: 0.15 s with ``sinc`` or ``sbr``, so a run at the limit takes at most about 3 minutes and one
#: click cannot hold a public server for hours.
MAX_AUDIO_S = 600.0


def method_choices() -> list[str]:
    """``sinc`` (plain resampling), ``sbr`` and every installed upscaler model."""
    from ..bench.runner import method_choices

    return method_choices()


def table_headers() -> list[str]:
    from ..bench.report import TABLE_COLUMNS

    return ["task", "method", "clips", *(name for name, _, _ in TABLE_COLUMNS)]


def table_rows(results: dict) -> list[list[str]]:
    """The overview (all clips of each task) as rows of text cells."""
    from ..bench.report import TABLE_COLUMNS, overview_rows

    def cell(value, digits: int) -> str:
        return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

    return [[row["task"], row["method"], str(row["clips"]),
             *(cell(row[key], digits) for _, key, digits in TABLE_COLUMNS)]
            for row in overview_rows(results["summary"])]


def run(ctx: Context, session: str, root: str | None, folder: str | None, tasks: list[str], methods: list[str],
        max_clips: float | None, seconds: float | None) -> tuple[str, list[list[str]], list[str], str]:
    """Run the benchmark into a new session folder; ``(status, rows, plot PNGs, report ZIP)``.

    The clips are held to the upload limits of the other tabs (``settings.max_upload_mb`` and
    ``settings.max_duration_s``, :func:`.files.check_audio`): a clip that will run (the first
    ``max_clips``) and is over either limit refuses the whole run with a one-line error naming it
    by its path under the root. A long clip is refused, not cut to the duration limit, even when
    *Seconds per clip* is shorter: the runner decodes each whole clip before cutting it, so only
    refusing bounds the work, and Studio and Batch refuse such files too. A run that would
    process more than :data:`MAX_AUDIO_S` of audio is refused before it starts."""
    from ..bench import find_clips, run_benchmark, task_applies
    from ..bench.runner import method_applies

    data = contained_path(root or "", folder or ".", ctx.settings)
    if not tasks or not methods:
        raise UpscalerError("choose at least one task and one method")
    base = root_of(data, ctx.settings)
    clip_limit = int(max_clips) if max_clips else None
    cut = float(seconds) if seconds else None
    clips = find_clips(data, split=None)
    for clip in clips:  # a link out of the root is never read
        if not clip.path.resolve().is_relative_to(base):
            raise UpscalerError(f"'{clip.name}' leads outside the allowed folder")
    taken = []  # (kind, seconds) of the clips run_benchmark will take
    for clip in clips[:clip_limit]:
        info = check_audio(clip.path, ctx.settings, name=clip.path.relative_to(base).as_posix())
        length = ctx.settings.max_duration_s if info.duration is None else info.duration
        taken.append((clip.kind, min(length, cut) if cut else length))
    # as the runner does: a task on the clips of its kinds, a method on the tasks it applies to
    total = sum(length * sum(method_applies(m, task) for m in methods)
                for task in tasks for kind, length in taken if task_applies(task, kind))
    if total > MAX_AUDIO_S:
        raise UpscalerError(
            f"this run would process {total:.0f} s of audio ({len(taken)} clips, {sum(s for _, s in taken):.0f} s in "
            f"all, through {len(tasks)} tasks and {len(methods)} methods where they apply), over the limit of "
            f"{MAX_AUDIO_S:g} s per run; choose fewer clips, tasks or methods, or fewer seconds per clip")
    out = ctx.sessions.job_folder(session, "benchmark")
    results = run_benchmark(data, tasks, methods, out, max_clips=clip_limit,
                            seconds=cut, split=None, progress=True)
    public_report(results, out, base)
    plots = sorted((out / "plots").glob("*.png"))
    report = [out / name for name in REPORT_FILES if (out / name).is_file()] + plots
    archive = zip_files(report, out / "benchmark_report.zip", base=out)
    failed = sum(item["status"] != "ok" for item in results["items"])
    status = (f"**Done:** {len(results['items'])} runs on {len(results['clips'])} clips"
              + (f", {failed} failed (see the report)" if failed else "") + ".")
    return status, table_rows(results), [str(p) for p in plots], str(archive)


def public_report(results: dict, out: Path, base: Path) -> dict:
    """Rewrite the text files of the report in ``out`` (the session copy the ZIP is made of) so
    that they name no server path: the clips folder and each clip by their path under the root
    ``base``, the report folder as ``report`` (so the README's command line runs from the root),
    and in error messages the root's and ``out``'s paths by paths relative to them. Returns the
    rewritten results; ``results`` is left as it was. (The CLI's report keeps the paths it was given.)"""
    from ..bench.plots import plot_path
    from ..bench.report import markdown, write_csv
    from ..textio import to_json, write_text_atomic

    def under_root(path: str) -> str:
        return Path(path).relative_to(base).as_posix()

    public = copy.deepcopy(results)
    public["config"].update(data=under_root(results["config"]["data"]), out=PUBLIC_OUT)
    for clip in public["clips"]:
        clip["path"] = under_root(clip["path"])
    for item in public["items"]:
        if item.get("error"):
            item["error"] = relative_paths(item["error"], out, base)
    pairs = dict.fromkeys((item["task"], item["clip"]) for item in public["items"])
    plots = {pair: plot_path(out, *pair) for pair in pairs if plot_path(out, *pair).is_file()}
    write_text_atomic(out / "results.json", to_json(public, indent=1))
    write_csv(public["items"], out / "results.csv")
    write_text_atomic(out / "README.md", markdown(public, plots))
    return public


def relative_paths(text: str, *folders: Path) -> str:
    """``text`` with each path under one of ``folders`` written relative to it (the folder itself
    as ``.``); the deepest folder wins, and a folder is matched as given and resolved."""
    names = {str(f) for folder in folders for f in (folder, folder.resolve()) if str(f) != os.sep}
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(re.escape(name) + r"(?:" + re.escape(os.sep) + r"|(?![^\s'\"`,;:)\]]))",
                      lambda m: "" if m.group(0).endswith(os.sep) else ".", text)
    return text


def build(ctx: Context) -> None:
    """The Benchmark tab (inside the current Blocks)."""
    import gradio as gr

    from ..degrade import TASKS

    roots = ctx.settings.root_labels()
    with gr.Tab("Benchmark", id="benchmark", elem_id="tab_benchmark"):
        with gr.Row():
            root = gr.Dropdown(roots, value=roots[0] if roots else None, label="Allowed root", elem_id="bench_root")
            folder = gr.Textbox(".", label="Clean clips folder under the root (or a corpus folder)",
                                elem_id="bench_folder")
        tasks = gr.CheckboxGroup(list(TASKS), value=["bwe_8k_48k"], label="Tasks", elem_id="bench_tasks")
        methods = gr.CheckboxGroup(method_choices(), value=["sinc", "sbr"], label="Methods", elem_id="bench_methods")
        with gr.Row():
            max_clips = gr.Number(4, label="Max clips (0 = all)", precision=0, minimum=0, elem_id="bench_max_clips")
            seconds = gr.Number(5, label="Seconds per clip (0 = whole)", minimum=0, elem_id="bench_seconds")
            run_button = gr.Button("Run benchmark", variant="primary", elem_id="bench_run")
        status = gr.Markdown(elem_id="bench_status")
        table = gr.Dataframe(headers=table_headers(), value=[], label="Results (all clips of each task)",
                             interactive=False, elem_id="bench_table")
        gallery = gr.Gallery(label="Spectrograms (dashed line: input cutoff)", elem_id="bench_gallery", columns=3,
                             fit_columns=False, object_fit="contain", height="auto")
        report = gr.File(label="Report (ZIP: README.md, results.json, results.csv, plots)", elem_id="bench_zip",
                         interactive=False)

        def on_run(root_label, folder_text, task_names, method_names, clips, secs,
                   request: gr.Request, progress=gr.Progress(track_tqdm=True)):
            try:
                return run(ctx, session_id(request), root_label, folder_text, task_names, method_names, clips, secs)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                return error_text(exc), [], [], None

        run_button.click(on_run, [root, folder, tasks, methods, max_clips, seconds],
                         [status, table, gallery, report], concurrency_limit=ctx.settings.max_jobs,
                         concurrency_id="jobs")
