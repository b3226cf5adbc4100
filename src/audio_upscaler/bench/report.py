"""Benchmark report: summary rows, ``results.json``, ``results.csv`` and ``README.md``.

Summary rows hold, per task, method and clip set (all clips; and speech / music separately
when a task has both), the number of scored and failed clips, the mean of each metric over the
scored clips (NaN values, e.g. PESQ on music, are left out of a mean), the overall real-time
factor (total audio seconds / total wall seconds), the largest peak memory, and the LSD ratio to
``sinc`` computed on the clips both methods scored.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..degrade import TASKS
from ..metrics import METRIC_KEYS
from ..textio import to_json, write_text_atomic
from .clips import KINDS

MEAN_KEYS = ("lsd", "lsd_hf", "lsd_lf", "snr", "si_sdr", "pesq_wb", "stoi")
ITEM_COLUMNS = ("task", "method", "clip", "kind", "status", "error", "duration_s", "cutoff_hz",
                "measured_cutoff_hz", "model", "elapsed_s", "realtime_factor", "peak_mem_mib")
#: Markdown table: (header, summary key, digits).
TABLE_COLUMNS = (
    ("LSD", "lsd", 2), ("LSD-HF", "lsd_hf", 2), ("LSD-LF", "lsd_lf", 2), ("SNR dB", "snr", 1),
    ("SI-SDR dB", "si_sdr", 1), ("PESQ", "pesq_wb", 2), ("STOI", "stoi", 3),
    ("× real time", "realtime_factor", 1), ("peak MiB", "peak_mem_mib", 0),
    ("LSD / sinc", "lsd_ratio_to_sinc", 2),
)


def write_report(results: dict, out: Path) -> None:
    """Add ``results["summary"]`` and write JSON, CSV, plots and the markdown report into ``out``."""
    from .plots import write_plots

    results["summary"] = summarize(results["items"], results["config"]["tasks"], results["config"]["methods"])
    write_text_atomic(out / "results.json", to_json(results, indent=1))  # strict JSON: NaN -> null
    write_csv(results["items"], out / "results.csv")
    plots = write_plots(results, out)
    write_text_atomic(out / "README.md", markdown(results, plots))


def summarize(items: list[dict], tasks: list[str], methods: list[str]) -> list[dict]:
    """One row per (task, clip set, method); see the module docstring."""
    rows = []
    for task in tasks:
        task_items = [i for i in items if i["task"] == task]
        kinds = [k for k in KINDS if any(i["kind"] == k for i in task_items)]
        sets = ["all", *kinds] if len(kinds) > 1 else kinds
        for clip_set in sets:
            chosen = [i for i in task_items if clip_set in ("all", i["kind"])]
            for method in methods:
                if any(i["method"] == method for i in chosen):  # a method may not apply to a task
                    rows.append(_row(task, clip_set, method, chosen))
    return rows


def _row(task: str, clip_set: str, method: str, items: list[dict]) -> dict:
    mine = [i for i in items if i["method"] == method]
    ok = [i for i in mine if i["status"] == "ok"]
    row = {"task": task, "set": clip_set, "method": method, "clips": len(ok), "failed": len(mine) - len(ok)}
    for key in MEAN_KEYS:
        row[key] = _mean([i["metrics"][key] for i in ok])
    elapsed = sum(i["elapsed_s"] for i in ok)
    row["realtime_factor"] = sum(i["duration_s"] for i in ok) / elapsed if ok else math.nan
    row["peak_mem_mib"] = max((i["peak_mem_mib"] for i in ok), default=math.nan)
    row["lsd_ratio_to_sinc"] = _ratio_to_sinc(ok, items)
    return row


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _ratio_to_sinc(ok: list[dict], items: list[dict]) -> float:
    """Mean LSD of ``ok`` over mean LSD of sinc, on the clips both scored (NaN without sinc)."""
    sinc = {i["clip"]: i["metrics"]["lsd"] for i in items if i["method"] == "sinc" and i["status"] == "ok"}
    pairs = [(i["metrics"]["lsd"], sinc[i["clip"]]) for i in ok if i["clip"] in sinc]
    if not pairs or sum(s for _, s in pairs) == 0:
        return math.nan
    return sum(m for m, _ in pairs) / sum(s for _, s in pairs)


def write_csv(items: list[dict], path: Path) -> None:
    """One row per item: ``ITEM_COLUMNS`` then every metric (empty for failed items).  A clip name
    that is not UTF-8 is written with ``\\udcXX`` escapes (as in ``results.json``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            writer = csv.DictWriter(f, [*ITEM_COLUMNS, *METRIC_KEYS], restval="")
            writer.writeheader()
            for item in items:
                writer.writerow({**{k: item.get(k) for k in ITEM_COLUMNS}, **item.get("metrics", {})})
        tmp.replace(path)
    except BaseException:  # no half-written temporary file left behind
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------- markdown


def command_line(config: dict) -> str:
    """The ``audio-upscaler benchmark`` command that reproduces ``config``."""
    parts = ["audio-upscaler benchmark", config["data"], "--tasks", ",".join(config["tasks"]),
             "--methods", ",".join(config["methods"]), "--out", config.get("out", "report")]
    for flag, key in (("--max-clips", "max_clips"), ("--seconds", "seconds")):
        if config.get(key) is not None:
            parts += [flag, f"{config[key]:g}"]
    return " ".join(parts)


def describe_task(task: str) -> str:
    spec = TASKS[task]
    rate = f"{spec.reference_rate / 1000:g} kHz"
    if spec.input_rate is not None:
        return f"{spec.input_rate / 1000:g} kHz input → {rate}"
    setting = f"{spec.codec.bitrate_kbps} kbit/s" if spec.codec.bitrate_kbps else f"VBR q{spec.codec.vbr_quality:g}"
    return f"{spec.codec.codec.upper()} {setting} (decoded) at {rate}"


def markdown(results: dict, plots: dict) -> str:
    """The report as markdown: header, overview table, one table per task (split by kind when
    a task has both) with its plots, failures."""
    config, env, items = results["config"], results["environment"], results["items"]
    counts = {k: sum(c["kind"] == k for c in results["clips"]) for k in KINDS}
    length = f"the first {config['seconds']:g} s of each" if config.get("seconds") else "whole clips"
    lines = [
        "# Benchmark results", "",
        f"`{command_line(config)}`", "",
        f"{len(results['clips'])} clips ({counts['speech']} speech, {counts['music']} music; {length}); "
        f"audio_upscaler {env['audio_upscaler']}, {env['date']}, {env['processor']}, {env['cpu_count']} CPUs.", "",
        "LSD: NU-Wave 2 / AP-BWE convention (log10 power, STFT 2048/512), lower is better; LSD-HF / "
        "LSD-LF: bins above / at or below the task's input cutoff. SNR and SI-SDR in dB. PESQ (wide "
        "band) and STOI on speech clips only. × real time: seconds of audio per second of "
        "`Upscaler.upscale_file` (file reading, analysis and writing included). Peak MiB: "
        f"{config['memory']}. LSD / sinc: mean LSD relative to plain resampling on the same clips.", "",
        "## Overview (all clips of each task)", "", *_table(overview_rows(results["summary"]), ("task", "method")), "",
    ]
    for task in config["tasks"]:
        rows = [r for r in results["summary"] if r["task"] == task]
        cutoffs = sorted({round(i["cutoff_hz"]) for i in items if i["task"] == task and i["status"] == "ok"})
        cutoff = f" (input cutoff {'/'.join(f'{c / 1000:g}' for c in cutoffs)} kHz)" if cutoffs else ""
        lines += [f"## {task}: {describe_task(task)}{cutoff}", "", *_table(rows), ""]
        lines += [f"![{task} {clip}](plots/{path.name})" for (t, clip), path in plots.items() if t == task]
        lines += [""] if any(t == task for t, _ in plots) else []
    failed = [i for i in items if i["status"] != "ok"]
    if failed:
        lines += ["## Failures", "", "| task | method | clip | error |", "|---|---|---|---|"]
        lines += [f"| {i['task']} | {i['method']} | {i['clip']} | {i['error']} |" for i in failed]
        lines.append("")
    return "\n".join(lines)


def _table(rows: list[dict], labels: tuple[str, ...] = ("method", "set")) -> list[str]:
    """A markdown table: the ``labels`` columns, the number of scored clips, ``TABLE_COLUMNS``."""
    header = [*labels, "clips", *(name for name, _, _ in TABLE_COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(labels) + "--:|" * (len(header) - len(labels))]
    for row in rows:
        scored = f"{row['clips']}" + (f" ({row['failed']} failed)" if row["failed"] else "")
        cells = [*(row[label] for label in labels), scored, *(_fmt(row[key], digits) for _, key, digits in TABLE_COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def overview_rows(summary: list[dict]) -> list[dict]:
    """Each task's rows over all its clips (its first clip set)."""
    first: dict[str, str] = {}
    for row in summary:
        first.setdefault(row["task"], row["set"])
    return [row for row in summary if row["set"] == first[row["task"]]]


def _fmt(value: float, digits: int) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"
