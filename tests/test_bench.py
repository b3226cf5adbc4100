"""The benchmark runner: report files, every item scored, sbr above sinc, resuming from the
cache, failures recorded without stopping the run; clip discovery; the committed validation set."""

from __future__ import annotations

from collections import Counter

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler.bench import PeakRSS, find_clips, run_benchmark, task_applies
from audio_upscaler.bench.report import summarize
from audio_upscaler.cli import main
from audio_upscaler.errors import UpscalerError
from audio_upscaler.pipeline import Upscaler

from .signals import harmonic_tone

RATE = 48_000
SECONDS = 1.5
TASKS = ["bwe_8k_48k", "mp3_64k"]
METHODS = ["sinc", "sbr"]
VALIDATION_SET = Path(__file__).parent / "data" / "validation"
CORPUS_VALIDATION_SET = Path(__file__).parent / "data" / "validation_corpus"


def voiced(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like mono ``[1, T]``: a gliding 110-170 Hz harmonic voice under a 4 Hz syllable
    envelope, plus high-passed noise bursts (fricatives) between syllables; full band."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    k = np.arange(1, 60)[:, None]
    voice = (np.sin(k * phase) / k).sum(0) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    noise = np.diff(rng.standard_normal(t.size + 1)) * np.clip(-np.sin(2 * np.pi * 4 * t), 0, None) ** 4
    x = voice / np.abs(voice).max() + 0.3 * noise
    return (0.5 * x / np.abs(x).max())[None].astype(np.float32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A speech clip (folder ``speech/``), a stereo music clip and a corrupt file."""
    root = tmp_path_factory.mktemp("clips")
    (root / "speech").mkdir()
    sf.write(root / "speech" / "voice.flac", voiced(RATE, SECONDS).T, RATE, subtype="PCM_24")
    sf.write(root / "tone.flac", harmonic_tone(RATE, SECONDS, channels=2).T, RATE, subtype="PCM_24")
    (root / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 8)
    return root


@pytest.fixture(scope="module")
def bench(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results = run_benchmark(data_dir, TASKS, METHODS, out, plot_clips=1, progress=False)
    return out, results


def test_report_files_exist(bench):
    out, results = bench
    for name in ("results.json", "results.csv", "README.md"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "results.json").read_text())["config"]["tasks"] == TASKS
    readme = (out / "README.md").read_text()
    for task in TASKS:
        assert f"## {task}" in readme
    pytest.importorskip("matplotlib", reason="the PNG part needs the optional matplotlib")
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == [f"{task}__speech__voice.png" for task in TASKS]
    assert all(f"](plots/{name})" in readme for name in pngs)


def test_every_item_is_recorded_and_scored(bench):
    _, results = bench
    items = results["items"]
    clips = {"speech/voice", "tone", "broken"}
    assert {(i["task"], i["method"], i["clip"]) for i in items} == {(t, m, c) for t in TASKS for m in METHODS for c in clips}
    assert len(items) == len(TASKS) * len(METHODS) * len(clips)
    kinds = {i["clip"]: i["kind"] for i in items}
    assert kinds == {"speech/voice": "speech", "tone": "music", "broken": "music"}
    for item in items:
        if item["clip"] == "broken":
            assert item["status"] == "failed" and "broken.wav" in item["error"]
        else:
            assert item["status"] == "ok" and item["error"] is None
            assert math.isfinite(item["metrics"]["lsd"]) and item["metrics"]["lsd"] > 0
            assert item["realtime_factor"] > 0 and item["peak_mem_mib"] >= 0
            assert item["duration_s"] == pytest.approx(SECONDS)
            assert not math.isnan(item["metrics"]["stoi"]) == (item["kind"] == "speech")


def test_sbr_restores_more_than_sinc_above_the_cutoff(bench):
    _, results = bench
    scored = {(i["task"], i["method"], i["clip"]): i for i in results["items"] if i["status"] == "ok"}
    for clip in ("speech/voice", "tone"):
        sinc, sbr = scored[("bwe_8k_48k", "sinc", clip)], scored[("bwe_8k_48k", "sbr", clip)]
        assert sinc["cutoff_hz"] == 4000 and sbr["model"] == "sbr"
        assert sbr["metrics"]["lsd_hf"] < 0.8 * sinc["metrics"]["lsd_hf"]
    rows = {(r["task"], r["set"], r["method"]): r for r in results["summary"]}
    assert rows[("bwe_8k_48k", "all", "sinc")]["lsd_ratio_to_sinc"] == pytest.approx(1.0)
    assert rows[("bwe_8k_48k", "all", "sbr")]["lsd_ratio_to_sinc"] < 0.8
    assert rows[("bwe_8k_48k", "all", "sbr")]["failed"] == 1  # the broken clip
    assert {s for (t, s, _) in rows if t == "bwe_8k_48k"} == {"all", "speech", "music"}


def test_failures_appear_in_csv_and_markdown(bench):
    out, results = bench
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(results["items"])
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == len(TASKS) * len(METHODS) and all(r["lsd"] == "" for r in failed)
    assert all(float(r["lsd"]) > 0 for r in rows if r["status"] == "ok")
    readme = (out / "README.md").read_text()
    assert "## Failures" in readme and readme.count("| broken |") == len(failed)


def count_upscale_calls(monkeypatch) -> list:
    """A list that gets each input path ``Upscaler.upscale_file`` is called with from now on."""
    calls = []
    original = Upscaler.upscale_file

    def counting(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Upscaler, "upscale_file", counting)
    return calls


def test_resume_reuses_the_cache(bench, data_dir, monkeypatch):
    out, first = bench
    calls = count_upscale_calls(monkeypatch)
    again = run_benchmark(data_dir, TASKS, METHODS, out, plot_clips=1, progress=False)
    assert calls == []
    assert json.dumps(again["items"]) == json.dumps(first["items"])  # (NaN != NaN as floats)
    (out / "cache" / "mp3_64k" / "sbr" / "tone.json").unlink()
    run_benchmark(data_dir, TASKS, METHODS, out, plot_clips=1, progress=False)
    assert len(calls) == 1


def test_new_weights_behind_a_model_name_are_benchmarked_again(data_dir, tmp_path, monkeypatch):
    import os
    import shutil

    from audio_upscaler.models import registry

    models = tmp_path / "models"
    shutil.copytree(registry.model_path("default"), models / "mine")
    monkeypatch.setenv(registry.ENV_VAR, str(models))
    calls = count_upscale_calls(monkeypatch)
    out = tmp_path / "report"

    def bench_mine():
        calls.clear()
        run_benchmark(data_dir, ["bwe_8k_48k"], ["sinc", "mine"], out, plot_clips=0, seconds=0.5, progress=False)
        return len(calls)

    assert bench_mine() == 4  # 2 clips x 2 methods (the broken file fails before upscaling)
    assert bench_mine() == 0
    weights = models / "mine" / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # retrained
    assert bench_mine() == 2  # only the model's items; sinc's stay cached


def test_changed_package_code_is_benchmarked_again(bench, data_dir, tmp_path, monkeypatch):
    import shutil

    from audio_upscaler.bench import cache

    out = tmp_path / "report"
    shutil.copytree(bench[0], out)  # the shared report stays as it is for the other tests
    calls = count_upscale_calls(monkeypatch)
    run_benchmark(data_dir, ["bwe_8k_48k"], METHODS, out, plot_clips=0, progress=False)
    assert calls == []
    monkeypatch.setattr(cache, "package_identity", lambda: "edited")
    run_benchmark(data_dir, ["bwe_8k_48k"], METHODS, out, plot_clips=0, progress=False)
    assert len(calls) >= len(METHODS)  # the items that ran before run again


def test_benchmark_command(bench, data_dir, capsys):
    out, _ = bench  # everything is cached: the command only reads and reports
    code = main(["benchmark", str(data_dir), "--tasks", ",".join(TASKS), "--out", str(out), "--plots", "1"])
    stdout = capsys.readouterr().out
    assert code == 0 and "bwe_8k_48k      sbr" in stdout and "4 failed" in stdout
    assert main(["benchmark", str(data_dir), "--tasks", "bwe_8k_48k,nope", "--out", str(out)]) == 2
    assert main(["benchmark", str(data_dir), "--methods", "sinc,magic", "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("error: unknown") == 2


def test_benchmark_command_fails_when_every_item_failed(tmp_path, capsys):
    """Exit 0 with nothing measured (every clip unreadable) looked like success to a script."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 8)
    assert main(["benchmark", str(data), "--tasks", "bwe_8k_48k", "--methods", "sinc", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: all 1 items failed, nothing was measured") and err.count("\n") == 1, err
    assert (tmp_path / "r" / "README.md").is_file()  # the report with the reasons is still written


def test_find_clips_from_manifest_sidecar_and_folder(tmp_path):
    tone = harmonic_tone(16_000, 0.2).T
    for name in ("a.wav", "music/b.wav", "c.wav", "speech/d.wav", "e.wav"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        sf.write(tmp_path / name, tone, 16_000)
    (tmp_path / "c.json").write_text('{"kind": "speech"}')
    clips = find_clips(tmp_path)
    assert [(c.name, c.kind) for c in clips] == [
        ("c", "speech"), ("a", "music"), ("speech/d", "speech"), ("e", "music"), ("music/b", "music")]
    assert [c.name for c in find_clips(tmp_path, max_clips=2)] == ["c", "a"]
    (tmp_path / "e.json").write_text('{"kind": "noise"}')
    with pytest.raises(UpscalerError, match="kind"):
        find_clips(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UpscalerError, match="no audio clips"):
        find_clips(tmp_path / "empty")


def test_task_kinds():
    assert task_applies("speech_8k_22k", "speech") and not task_applies("speech_8k_22k", "music")
    assert task_applies("music_11k_44k", "music") and not task_applies("music_11k_44k", "speech")
    assert task_applies("bwe_8k_48k", "speech") and task_applies("mp3_64k", "music")


def test_ratio_to_sinc_uses_clips_both_scored():
    def item(method, clip, lsd, status="ok"):
        metrics = dict.fromkeys(("lsd", "lsd_hf", "lsd_lf", "snr", "si_sdr", "pesq_wb", "stoi"), math.nan)
        metrics["lsd"] = lsd
        return {"task": "bwe_8k_48k", "method": method, "clip": clip, "kind": "music", "status": status,
                "metrics": metrics, "duration_s": 1.0, "elapsed_s": 0.5, "peak_mem_mib": 3.0}

    items = [item("sinc", "a", 4.0), item("sinc", "b", 0.0, "failed"), item("sbr", "a", 1.0), item("sbr", "b", 9.0)]
    (sinc, sbr) = summarize(items, ["bwe_8k_48k"], ["sinc", "sbr"])
    assert sinc["clips"] == 1 and sinc["failed"] == 1 and sinc["realtime_factor"] == 2.0
    assert sbr["lsd"] == 5.0 and sbr["lsd_ratio_to_sinc"] == 0.25  # clip b has no sinc score
    assert math.isnan(sbr["pesq_wb"])


def test_peak_rss_sees_an_allocation():
    with PeakRSS() as memory:
        block = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        del block
    assert 38 <= memory.peak_mib < 80
    with PeakRSS() as idle:
        pass
    assert idle.peak_mib < 5


def test_committed_validation_set():
    clips = find_clips(VALIDATION_SET)
    assert [c.kind for c in clips] == ["speech", "music", "speech", "music"]
    entries = [json.loads(line) for line in (VALIDATION_SET / "manifest.jsonl").read_text().splitlines()]
    assert all(e["split"] == "validation" and e["bandwidth_hz"] >= 19_000 for e in entries)
    for clip in clips:
        info = sf.info(clip.path)
        assert info.samplerate == RATE and 1.5 <= info.duration <= 3.0
    assert sum(p.stat().st_size for p in VALIDATION_SET.rglob("*")) < 350_000


def test_committed_corpus_validation_set():
    """The second benchmark set: 8 speech + 8 music clips of 3 s from the corpus's validation split,
    each from a file and window measured at least 19 kHz wide, at most two files of one source item."""
    clips = find_clips(CORPUS_VALIDATION_SET)
    assert sorted(c.kind for c in clips) == ["music"] * 8 + ["speech"] * 8
    entries = [json.loads(line) for line in (CORPUS_VALIDATION_SET / "manifest.jsonl").read_text().splitlines()]
    assert len(entries) == 16 and len({e["path"] for e in entries}) == 16
    assert all(e["split"] == "validation" and e["bandwidth_hz"] >= 19_000 for e in entries)
    assert max(Counter((e["source"], e["item"]) for e in entries).values()) <= 3
    for clip in clips:
        info = sf.info(clip.path)
        assert info.samplerate == RATE and info.channels == 1 and info.duration == 3.0
    assert sum(p.stat().st_size for p in CORPUS_VALIDATION_SET.rglob("*")) < 2_300_000


def test_inputs_are_real_files_at_the_task_rates(bench):
    out, _ = bench
    kept = out / "audio"
    rates = {(task, name): sf.info(kept / task / "speech" / "voice" / f"{name}.wav").samplerate
             for task in TASKS for name in ("reference", "input", "sinc", "sbr")}
    assert rates[("bwe_8k_48k", "input")] == 8_000  # the low-rate file a user would have
    assert rates[("bwe_8k_48k", "reference")] == rates[("bwe_8k_48k", "sbr")] == RATE
    assert {rates[("mp3_64k", n)] for n in ("reference", "input", "sinc", "sbr")} == {44_100}  # resampled first


def test_clip_below_the_task_rate_is_refused(tmp_path):
    from audio_upscaler.bench import Clip
    from audio_upscaler.bench.runner import Runner

    path = tmp_path / "low.wav"
    sf.write(path, harmonic_tone(22_050, 0.5).T, 22_050)
    with pytest.raises(UpscalerError, match="below the task's reference rate"):
        Runner(tmp_path, ["sinc"], None, 0).prepare("bwe_8k_48k", Clip("low", path, "music"), tmp_path)


def test_plots_are_skipped_without_matplotlib(bench, monkeypatch, capsys):
    from audio_upscaler.bench.plots import write_plots

    out, results = bench
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    assert write_plots(results, out) == {}
    assert "skipping spectrogram plots: matplotlib is not installed" in capsys.readouterr().err


def test_a_check_method_runs_on_codec_tasks_only(data_dir, tmp_path):
    """``MODEL+check`` means nothing on a resampling task: it is not run there, gets no row, no
    plot row, and the report still renders."""
    results = run_benchmark(data_dir, TASKS, ["sinc", "sbr+check"], tmp_path, plot_clips=1, seconds=0.5,
                            progress=False)
    ran = {(i["task"], i["method"]) for i in results["items"]}
    assert ("bwe_8k_48k", "sbr+check") not in ran and ("mp3_64k", "sbr+check") in ran
    rows = summarize(results["items"], TASKS, ["sinc", "sbr+check"])
    assert {r["method"] for r in rows if r["task"] == "bwe_8k_48k"} == {"sinc"}
    assert {r["method"] for r in rows if r["task"] == "mp3_64k"} == {"sinc", "sbr+check"}
    assert (tmp_path / "README.md").is_file() and list((tmp_path / "plots").glob("bwe_8k_48k__*.png"))


def test_bad_seconds_and_report_folders_are_one_line_errors(data_dir, tmp_path, capsys):
    """--seconds nan/inf failed every item with a raw ValueError and exited 0; --out naming a file
    was an internal error; --out naming a folder with the user's own README.md overwrote it."""
    base = ["benchmark", str(data_dir), "--tasks", "bwe_8k_48k", "--methods", "sinc", "-q"]
    for seconds in ("nan", "inf"):
        assert main([*base, "--out", str(tmp_path / "r"), "--seconds", seconds]) == 2
    (tmp_path / "file").write_text("x")
    assert main([*base, "--out", str(tmp_path / "file")]) == 2
    assert main([*base, "--out", str(tmp_path / "file" / "sub")]) == 2
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    assert main([*base, "--out", str(mine), "--seconds", "0.3"]) == 2
    assert (mine / "README.md").read_text() == "my notes"
    err = capsys.readouterr().err
    assert err.count("error: ") == 5 and "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "r").exists()


def test_a_report_inside_the_data_folder_is_not_benchmarked(tmp_path):
    """A re-run took the report's own reference/input/method WAVs for new clips."""
    data = tmp_path / "clips"
    data.mkdir()
    sf.write(data / "tone.flac", harmonic_tone(RATE, 0.5).T, RATE)
    for _ in range(2):
        results = run_benchmark(data, ["bwe_16k_48k"], ["sinc"], data / "report", plot_clips=1, progress=False)
    assert [c["name"] for c in results["clips"]] == ["tone"]
    assert len(results["items"]) == 1


def test_clips_differing_only_in_suffix_stay_apart(tmp_path):
    """``a.wav`` and ``a.flac`` were both clip ``a``: one cache file and audio folder, and the
    ratio to sinc paired each with the other (sinc's own ratio came out 0.52)."""
    sf.write(tmp_path / "a.wav", harmonic_tone(RATE, 0.5).T, RATE)
    sf.write(tmp_path / "a.flac", np.random.default_rng(0).standard_normal(RATE // 2).astype(np.float32) * 0.1, RATE)
    assert sorted(c.name for c in find_clips(tmp_path)) == ["a.flac", "a.wav"]
    results = run_benchmark(tmp_path, ["bwe_16k_48k"], ["sinc"], tmp_path / "report", plot_clips=0, progress=False)
    assert results["summary"][0]["clips"] == 2
    assert results["summary"][0]["lsd_ratio_to_sinc"] == pytest.approx(1.0)
    assert len(list((tmp_path / "report" / "cache").rglob("*.json"))) == 2


def test_manifest_paths_outside_the_corpus_are_refused(tmp_path):
    """An absolute or ``..`` manifest path made the cache and the kept audio land outside the
    report folder (``/abs/clip.json``, ``/abs/clip/reference.wav``)."""
    entry = json.loads((VALIDATION_SET / "manifest.jsonl").read_text().splitlines()[0])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for bad in (str(tmp_path / "elsewhere.flac"), "../elsewhere.flac"):
        (corpus / "manifest.jsonl").write_text(json.dumps({**entry, "path": bad}) + "\n")
        with pytest.raises(UpscalerError, match="not a path inside the corpus folder"):
            find_clips(corpus)


def test_a_clip_whose_kind_changed_is_benchmarked_again(tmp_path):
    """A sidecar turning a clip into speech kept the cached music item (no PESQ/STOI, a music row)."""
    data = tmp_path / "clips"
    data.mkdir()
    sf.write(data / "voice.flac", voiced(RATE, 1.0).T, RATE)
    out = tmp_path / "report"
    first = run_benchmark(data, ["bwe_16k_48k"], ["sinc"], out, plot_clips=0, progress=False)
    assert first["items"][0]["kind"] == "music" and math.isnan(first["items"][0]["metrics"]["pesq_wb"])
    (data / "voice.json").write_text('{"kind": "speech"}')
    again = run_benchmark(data, ["bwe_16k_48k"], ["sinc"], out, plot_clips=0, progress=False)
    assert again["items"][0]["kind"] == "speech" and again["summary"][0]["set"] == "speech"
    assert again["items"][0]["metrics"]["pesq_wb"] > 1


# ---- temporary folders of runs that were killed --------------------------------------------------

def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_folders_are_removed_and_nothing_else(tmp_path):
    from audio_upscaler.bench.runner import LEGACY_STALE_SECONDS, host_tag, remove_stale_temp_dirs

    host, dead = host_tag(), _dead_pid()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        def folder(name: str) -> Path:
            path = tmp_path / name
            path.mkdir()
            (path / "input.wav").write_bytes(b"x")
            return path

        stale = folder(f".bench-{dead}-{host}-ab_12xyz")
        live = folder(f".bench-{running.pid}-{host}-abcd1234")
        mine = folder(f".bench-{os.getpid()}-{host}-abcd1234")
        other_host = folder(f".bench-{dead}-{'0' if host != '0' * 8 else '1'}{'0' * 7}-abcd1234")
        old_legacy, new_legacy = folder(".bench-abcdefgh"), folder(".bench-12345678")
        past = time.time() - LEGACY_STALE_SECONDS - 60
        for path in (old_legacy / "input.wav", old_legacy):
            os.utime(path, (past, past))
        kept = [live, mine, other_host, new_legacy,
                folder(f"bench-{dead}-{host}-abcd1234"), folder(f".bench-{dead}-{host}-abcd1234.wav"),
                folder(".bench-keep"), folder("audio")]
        (tmp_path / f".bench-{dead}-{host}-afile").write_bytes(b"a file, not a folder")
        target = folder("elsewhere")
        (tmp_path / f".bench-{dead}-{host}-alink").symlink_to(target, target_is_directory=True)

        assert sorted(remove_stale_temp_dirs(tmp_path)) == sorted([stale, old_legacy])
        assert all(p.is_dir() for p in kept) and not stale.exists() and not old_legacy.exists()
        assert (tmp_path / f".bench-{dead}-{host}-afile").is_file() and (target / "input.wav").is_file()
        assert (tmp_path / f".bench-{dead}-{host}-alink").is_symlink()
        assert remove_stale_temp_dirs(tmp_path) == []  # the live run's folder stays while it runs
    finally:
        running.kill()
        running.wait()
    assert remove_stale_temp_dirs(tmp_path) == [live]  # and goes once it was killed


_KILLED_RUN = """
import os, signal, sys
from audio_upscaler.bench import runner
def killed(*args, **kwargs):  # kill -9 while the first pair's temporary folder exists
    os.kill(os.getpid(), signal.SIGKILL)
runner.Runner.prepare = killed
runner.run_benchmark(sys.argv[1], ["bwe_8k_48k"], ["sinc"], sys.argv[2], plot_clips=0, progress=False)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_later_run_removes_the_temp_folder_of_a_killed_run(data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(data_dir), str(out)])
    assert proc.wait(timeout=300) == -signal.SIGKILL
    left = [p.name for p in out.glob(".bench-*")]
    assert len(left) == 1, left  # what kill -9 leaves behind
    assert main(["benchmark", str(data_dir), "--tasks", "bwe_8k_48k", "--methods", "sinc", "--out", str(out),
                 "--plots", "0", "--quiet"]) == 0, capsys.readouterr().err
    assert not list(out.glob(".bench-*")) and (out / "results.json").is_file()


def test_a_clip_name_that_is_not_utf8_is_benchmarked_and_reported(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    clip = data / os.fsdecode(b"caf\xe9.flac")
    try:
        sf.write(os.fsencode(clip), harmonic_tone(RATE, SECONDS).T, RATE, subtype="PCM_24")
    except (OSError, sf.SoundFileError) as exc:  # e.g. EILSEQ where only UTF-8 names are allowed
        pytest.skip(f"the file system refuses non-UTF-8 names: {exc}")
    out = tmp_path / "report"
    results = run_benchmark(data, ["bwe_8k_48k"], ["sinc"], out, plot_clips=1, progress=False)
    assert [(i["clip"], i["status"]) for i in results["items"]] == [(os.fsdecode(b"caf\xe9"), "ok")]
    assert "caf\\udce9" in (out / "results.csv").read_text(encoding="utf-8")  # escaped as in results.json
    assert "caf\\udce9" in (out / "README.md").read_text(encoding="utf-8")
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["items"][0]["clip"] == clip.stem
    if (out / "plots").is_dir():  # matplotlib installed
        assert os.listdir(os.fsencode(out / "plots")) == [b"bwe_8k_48k__caf\xe9.png"]
    assert not [name for name in os.listdir(os.fsencode(out)) if name.startswith(b".")]  # no temporary files left
