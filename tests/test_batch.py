"""Batch processing: mirrored outputs, failures that do not stop the batch, resume after a kill,
process pool and Ray backends, no writes outside OUT_DIR, no overwrites without --overwrite."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler import io
from audio_upscaler.audio import Audio
from concurrent.futures import process as futures_process
from concurrent.futures.process import BrokenProcessPool

from audio_upscaler.batch import SUMMARY_NAME, Job, JobResult, Settings, plan_jobs
from audio_upscaler.batch.journal import JOURNAL_NAME, Journal, read_journal
from audio_upscaler.batch.local import CRASH_REASON, WORKER_MEMORY_BYTES, default_workers, run_local
from audio_upscaler.cli import main
from audio_upscaler.dsp.resample import output_length
from audio_upscaler.errors import UpscalerError

from .signals import harmonic_tone

#: name -> (sample rate, channels); the tree every test starts from.
TREE = {"a.wav": (16_000, 1), "b.flac": (22_050, 2), "sub/c.mp3": (24_000, 1), "sub/deep/d.ogg": (32_000, 2)}


def make_tree(root: Path, files: dict = TREE, seconds: float = 0.5) -> Path:
    for i, (name, (rate, channels)) in enumerate(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = harmonic_tone(rate, seconds, f0=180 + 40 * i, channels=channels, seed=i)
        io.write_audio(path, Audio(samples, rate, {"title": f"track {i}"}))
    return root


def batch(capsys, *argv) -> tuple[int, str, str]:
    code = main(["batch", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def outputs(out_dir: Path) -> list[str]:
    """Visible files under ``out_dir`` except the summary, as POSIX paths."""
    return sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.name != SUMMARY_NAME)


def hidden(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.rglob(".*") if p.name != JOURNAL_NAME)


def assert_complete(in_dir: Path, out_dir: Path, name: str, rate: int = 48_000) -> np.ndarray:
    """The output of input ``name`` decodes fully, at ``rate``, with the right number of frames."""
    source = io.probe(in_dir / name)
    source_frames = io.read_audio(in_dir / name).frames
    out = io.read_audio((out_dir / name).with_suffix(".flac"))
    assert out.sample_rate == rate and out.channels == source.channels
    assert out.frames == output_length(source_frames, source.sample_rate, rate)
    assert np.isfinite(out.samples).all() and 0.05 < np.abs(out.samples).max() <= 1.0
    return out.samples


def test_batch_mirrors_the_tree_copies_tags_and_reports_a_failure(capsys, tmp_path):
    src = make_tree(tmp_path / "in")
    (src / "sub" / "broken.wav").write_bytes(b"RIFF but not really audio" * 40)
    (src / "notes.txt").write_text("not audio, no audio extension: not picked up")
    (src / ".hidden.wav").write_bytes(b"hidden files are skipped")
    out = tmp_path / "out"
    code, stdout, err = batch(capsys, src, "-o", out, "--recursive", "-m", "sbr", "-j", "1", "--json")
    assert code == 2  # one file failed
    assert outputs(out) == ["a.flac", "b.flac", "sub/c.flac", "sub/deep/d.flac"]
    for i, name in enumerate(TREE):
        assert_complete(src, out, name)
        assert io.probe((out / name).with_suffix(".flac")).tags["title"] == f"track {i}"
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert json.loads(stdout) == summary
    assert (summary["files"], summary["done"], summary["failed"], summary["skipped"]) == (5, 4, 1, 0)
    assert summary["failures"] == [{"file": "sub/broken.wav", "reason": summary["failures"][0]["reason"]}]
    assert "not an audio file" in summary["failures"][0]["reason"]
    assert summary["audio_s"] == pytest.approx(4 * 0.5, abs=0.01) and summary["files_per_s"] > 0
    assert "failed: sub/broken.wav: not an audio file" in err and "Traceback" not in err
    assert hidden(out) == []

    flat = tmp_path / "flat"
    code, _, err = batch(capsys, src, "-o", flat, "-m", "none", "-j", "1", "-q")
    assert code == 0 and err == "" and outputs(flat) == ["a.flac", "b.flac"]  # not recursive


def test_pool_gives_the_same_files_as_one_process_and_pattern_selects(capsys, tmp_path):
    src = make_tree(tmp_path / "in")
    code, _, _ = batch(capsys, src, "-o", tmp_path / "one", "--recursive", "-m", "sbr", "-q", "-j", "1")
    assert code == 0
    code, _, _ = batch(capsys, src, "-o", tmp_path / "pool", "--recursive", "-m", "sbr", "-q", "-j", "2")
    assert code == 0
    for name in outputs(tmp_path / "one"):
        np.testing.assert_array_equal(sf.read(tmp_path / "pool" / name)[0], sf.read(tmp_path / "one" / name)[0])
    code, _, _ = batch(capsys, src, "-o", tmp_path / "mp3", "--recursive", "--pattern", "*.MP3", "-m", "none",
                       "-j", "1", "-q", "-f", "wav", "--bit-depth", "16")
    assert code == 0 and outputs(tmp_path / "mp3") == ["sub/c.wav"]
    assert sf.info(tmp_path / "mp3" / "sub" / "c.wav").subtype == "PCM_16"


def test_rerun_skips_finished_files_and_redoes_missing_or_damaged_ones(capsys, tmp_path):
    src = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    assert batch(capsys, src, "-o", out, "--recursive", "-m", "none", "-j", "1", "-q")[0] == 0
    kept = {name: (out / name).stat().st_mtime_ns for name in ("b.flac", "sub/c.flac")}
    (out / "a.flac").unlink()
    damaged = out / "sub" / "deep" / "d.flac"
    damaged.write_bytes(damaged.read_bytes()[:1000])  # cut short behind the batch's back
    stale = [out / ".a.flac.0123abcd.tmp", out / "sub" / ".c.flac.89abcdef.tmp", out / ".upscale-x1y2.rf64"]
    for path in stale:  # what killed writers leave behind
        path.write_bytes(b"half")
    (out / ".keep").write_text("not ours")
    code, stdout, _ = batch(capsys, src, "-o", out, "--recursive", "-m", "none", "-j", "1", "--json")
    summary = json.loads(stdout)
    assert code == 0 and (summary["done"], summary["skipped"], summary["failed"]) == (2, 2, 0)
    assert {r["name"] for r in summary["results"] if r["status"] == "done"} == {"a.wav", "sub/deep/d.ogg"}
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept  # finished files untouched
    for name in TREE:
        assert_complete(src, out, name)
    assert hidden(out) == [".keep"]  # temporary files removed, others left alone


def test_existing_outputs_are_never_replaced_without_overwrite(capsys, tmp_path):
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1), "b.wav": (16_000, 1)})
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.flac").write_bytes(b"somebody else's file")
    code, _, err = batch(capsys, src, "-o", out, "-m", "none", "-j", "1")
    assert code == 2 and "failed: a.wav:" in err and "exists; pass --overwrite" in err
    assert (out / "a.flac").read_bytes() == b"somebody else's file"
    assert_complete(src, out, "b.wav")

    # Other settings than the finished run: the outputs exist, so they need --overwrite too.
    code, stdout, _ = batch(capsys, src, "-o", out, "-m", "none", "-j", "1", "--rate", "44100", "--json")
    assert code == 2 and json.loads(stdout)["failed"] == 2
    code, stdout, _ = batch(capsys, src, "-o", out, "-m", "none", "-j", "1", "--rate", "44100", "--overwrite", "--json")
    assert code == 0 and json.loads(stdout)["done"] == 2
    for name in ("a.wav", "b.wav"):
        assert_complete(src, out, name, rate=44_100)


def test_a_refused_run_with_other_settings_does_not_undo_a_finished_one(capsys, tmp_path):
    """Finished with sbr; a run with other settings is refused (outputs exist); the next sbr run
    still skips the finished files instead of refusing them too."""
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1), "b.wav": (16_000, 1)})
    out = tmp_path / "out"
    assert batch(capsys, src, "-o", out, "-m", "sbr", "-j", "1", "-q")[0] == 0
    assert batch(capsys, src, "-o", out, "-m", "none", "-j", "1", "-q")[0] == 2
    code, stdout, _ = batch(capsys, src, "-o", out, "-m", "sbr", "-j", "1", "--json")
    assert code == 0 and (json.loads(stdout)["skipped"], json.loads(stdout)["failed"]) == (2, 0)
    assert {r["event"] for r in read_journal(out / JOURNAL_NAME).values()} == {"done"}


def test_a_stale_temp_file_of_a_very_long_output_name_is_found(tmp_path):
    """The writers shorten the name in their temporary file's name when the output's is long."""
    from audio_upscaler.batch.jobs import stale_temp_files
    from audio_upscaler.io import temp_stem

    output = tmp_path / ("b" * 245 + ".flac")
    stem = temp_stem(output)
    assert stem != output.name and output.name.startswith(stem)
    stale = tmp_path / f".{stem}.0123abcd.tmp"
    stale.write_bytes(b"half")
    (tmp_path / ".other.flac.0123abcd.tmp").write_bytes(b"not ours")
    assert stale_temp_files([str(output)]) == [stale]


def test_nothing_is_written_outside_out_dir(capsys, tmp_path):
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1), "sub/b.wav": (16_000, 1)})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)  # a trap inside OUT_DIR
    code, _, err = batch(capsys, src, "-o", out, "--recursive", "-m", "none", "-j", "1", "-q")
    assert code == 2 and "failed: sub/b.wav:" in err and "outside the output folder" in err
    assert list(elsewhere.iterdir()) == []
    assert_complete(src, out, "a.wav")


def test_two_inputs_with_one_output_name_fail_the_second(tmp_path):
    for name in ("song.wav", "song.mp3", "other.flac"):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    jobs = {job.name: job for job in plan_jobs(tmp_path / "in", tmp_path / "out", "flac")}
    assert jobs["song.mp3"].output == jobs["song.wav"].output == str(tmp_path / "out" / "song.flac")
    assert jobs["song.mp3"].problem is None and jobs["other.flac"].problem is None
    assert jobs["song.wav"].problem == "writes the same output as song.mp3; rename one of them"


def test_out_dir_inside_in_dir_is_not_read_back(capsys, tmp_path):
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1)})
    out = src / "upscaled"
    for _ in range(2):
        code, stdout, _ = batch(capsys, src, "-o", out, "--recursive", "-m", "none", "-j", "1", "--json")
        assert code == 0 and [r["name"] for r in json.loads(stdout)["results"]] == ["a.wav"]
    assert outputs(out) == ["a.flac"]


@pytest.mark.parametrize("argv, fragment", [
    (["{src}", "-o", "{src}"], "must differ"),
    (["{tmp}/missing", "-o", "{tmp}/out"], "input folder not found"),
    (["{tmp}/in/a.wav", "-o", "{tmp}/out"], "batch takes a folder of audio files; for one file use 'audio-upscaler upscale'"),
    (["{src}", "-o", "{tmp}/out", "--pattern", "*.aiff"], "no files matching '*.aiff'"),
    (["{src}", "-o", "{tmp}/out", "--jobs", "0"], "--jobs must be at least 1"),
    (["{src}", "-o", "{tmp}/out", "--backend", "local", "--ray-address", "auto"], "needs the Ray backend"),
    (["{src}", "-o", "{tmp}/out", "-f", "mp3", "--rate", "96000"], "MP3 cannot store"),
    (["{src}", "-o", "{tmp}/out", "-m", "nonsense"], "unknown model"),
])
def test_request_errors_are_one_line(capsys, tmp_path, argv, fragment):
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1)})
    code, _, err = batch(capsys, *(a.format(src=src, tmp=tmp_path) for a in argv))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address, env, cluster_file, fragment", [
    pytest.param("127.0.0.1:1", None, None, "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused; "
                 "start one with 'ray start --head', or drop --ray-address", id="host-port"),
    pytest.param("auto", None, None, "cannot reach the Ray cluster at auto: no running Ray cluster found; "
                 "start one with 'ray start --head', or drop --ray-address", id="auto-no-cluster"),
    pytest.param("auto", None, "127.0.0.1:1", "cannot reach the Ray cluster at auto (", id="auto-dead-cluster"),
    pytest.param("auto", "127.0.0.1:1", None, "at 127.0.0.1:1 ($RAY_ADDRESS): Connection refused; "
                 "start one with 'ray start --head', or unset RAY_ADDRESS", id="auto-env"),
    pytest.param("headnode", None, None, "must be auto or HOST:PORT", id="no-port"),
])
def test_unreachable_ray_cluster_fails_at_once_and_writes_nothing(capsys, monkeypatch, tmp_path, address, env,
                                                                  cluster_file, fragment):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'audio-upscaler[ray]')")
    import ray._private.services

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray-tmp"))  # where `ray start` records the cluster
    if address == "auto" and not (env or cluster_file) and ray._private.services.find_gcs_addresses():
        pytest.skip("a Ray instance runs on this machine, and 'auto' would join it")
    if cluster_file:
        (tmp_path / "ray-tmp" / "ray").mkdir(parents=True)
        (tmp_path / "ray-tmp" / "ray" / "ray_current_cluster").write_text(cluster_file)
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    src = make_tree(tmp_path / "in", {"a.wav": (16_000, 1)})
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in [existing, *existing.iterdir()])
    for out in [tmp_path / "out", existing]:
        started = time.monotonic()
        code, _, err = batch(capsys, src, "-o", out, "--ray-address", address, "-q")
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
        assert time.monotonic() - started < 30  # Ray alone would keep retrying for minutes
        assert not (tmp_path / "out").exists()
        assert sorted((p.name, p.stat().st_mtime_ns) for p in [existing, *existing.iterdir()]) == before


def test_kill_9_mid_batch_loses_nothing_and_resume_finishes(capsys, tmp_path):
    files = {f"f{i:02d}.wav": (44_100, 2) for i in range(10)}
    src = make_tree(tmp_path / "in", files, seconds=1.5)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "audio_upscaler", "batch", str(src), "-o", str(out), "-m", "sbr", "-j", "2", "-q"]
    proc = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE)
    journal = out / JOURNAL_NAME
    deadline = time.monotonic() + 120
    while _count_done(journal) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-write
    proc.wait()
    proc.stderr.close()
    finished = {name for name, r in read_journal(journal).items() if r["event"] == "done"}
    assert 3 <= len(finished) < len(files), "the kill must land mid-batch"
    for name in outputs(out):  # whatever is there under a final name is complete
        assert_complete(src, out, name.replace(".flac", ".wav"))
    stamps = {name: (out / name).with_suffix(".flac").stat().st_mtime_ns for name in finished}

    code, stdout, _ = batch(capsys, src, "-o", out, "-m", "sbr", "-j", "1", "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["skipped"] == len(finished) and summary["done"] == len(files) - len(finished)
    assert {name: (out / name).with_suffix(".flac").stat().st_mtime_ns for name in finished} == stamps
    assert outputs(out) == sorted(name.replace(".wav", ".flac") for name in files)
    for name in files:
        assert_complete(src, out, name)
    assert hidden(out) == []  # temp files of the killed writers are gone


def _count_done(journal: Path) -> int:
    try:
        return journal.read_text().count('"event": "done"')
    except FileNotFoundError:
        return 0


def crash_on_marked_files(job: Job, settings: Settings) -> JobResult:
    """A job function whose worker process dies on files named ``crash*``."""
    if job.name.startswith("crash"):
        os._exit(1)
    return JobResult(job.name, "done")


def test_a_worker_that_dies_fails_only_its_own_file(tmp_path):
    names = ["a", "b", "crash", "c", "d"]
    jobs = [Job(n, str(tmp_path / n), str(tmp_path / "out" / n)) for n in names]
    settings = Settings({"model": "none"}, io.output_format_for("x.flac"), str(tmp_path / "out"))
    results = {r.name: r for r in run_local(jobs, settings, workers=2, job_fn=crash_on_marked_files)}
    assert sorted(results) == sorted(names)
    assert {n: r.status for n, r in results.items()} == {n: "failed" if n == "crash" else "done" for n in names}
    assert results["crash"].reason == CRASH_REASON
    assert multiprocessing.active_children() == []  # a live worker would block this process's exit


def _manager_thread_that_crashes_while_stopping_workers(self, cause):
    """CPython 3.11's race (a worker spawned by ``submit`` while a dead one is being handled): the
    pool's futures fail, then its manager thread dies before it has stopped the other workers."""
    for work_item in self.pending_work_items.values():
        work_item.future.set_exception(BrokenProcessPool("a worker died"))
    self.pending_work_items.clear()
    raise RuntimeError("dictionary changed size during iteration")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_no_worker_outlives_a_pool_whose_manager_thread_crashed(tmp_path, monkeypatch):
    monkeypatch.setattr(futures_process._ExecutorManagerThread, "terminate_broken",
                        _manager_thread_that_crashes_while_stopping_workers)
    names = ["a", "crash", "b"]
    jobs = [Job(n, str(tmp_path / n), str(tmp_path / "out" / n)) for n in names]
    settings = Settings({"model": "none"}, io.output_format_for("x.flac"), str(tmp_path / "out"))
    try:
        results = {r.name: r.status for r in run_local(jobs, settings, workers=2, job_fn=crash_on_marked_files)}
        assert results == {"a": "done", "crash": "failed", "b": "done"}
        assert multiprocessing.active_children() == []
    finally:
        for process in multiprocessing.active_children():  # so a failure cannot hang pytest's exit
            process.kill()


def test_worker_count_follows_cores_memory_and_request():
    gib = WORKER_MEMORY_BYTES
    assert default_workers(100, cores=8, available_bytes=64 * gib) == 8
    assert default_workers(100, cores=8, available_bytes=3 * gib) == 3  # memory-bound
    assert default_workers(100, cores=8, available_bytes=gib // 2) == 1
    assert default_workers(2, cores=8, available_bytes=64 * gib) == 2  # no idle workers
    assert default_workers(100, requested=5, cores=2, available_bytes=gib) == 5
    with pytest.raises(UpscalerError, match="at least 1"):
        default_workers(10, requested=0)


def test_journal_ignores_a_torn_line_and_refuses_a_second_writer(tmp_path):
    job = Job("a.wav", str(tmp_path / "a.wav"), str(tmp_path / "a.flac"))
    with Journal(tmp_path) as journal:
        journal.started(job)
        with pytest.raises(UpscalerError, match="another batch"):
            Journal(tmp_path)
    with open(tmp_path / JOURNAL_NAME, "a") as f:
        f.write('{"event": "done", "file": "a.wav", "outp')  # killed mid-line
    assert read_journal(tmp_path / JOURNAL_NAME) == {"a.wav": read_journal(tmp_path / JOURNAL_NAME)["a.wav"]}
    assert read_journal(tmp_path / JOURNAL_NAME)["a.wav"]["event"] == "start"
    with Journal(tmp_path) as journal:  # appends after the torn line still parse
        journal.failed(job, "because")
    assert read_journal(tmp_path / JOURNAL_NAME)["a.wav"]["reason"] == "because"


@pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8 need a byte-name file system")
def test_a_file_name_that_is_not_utf8_does_not_stop_the_batch(tmp_path):
    """The journal could not encode such a name (UnicodeEncodeError): the whole batch ended as an
    internal error after the files before it, with no summary."""
    from audio_upscaler.batch import run_batch
    from audio_upscaler.io import output_format_for
    from audio_upscaler.textio import to_json

    in_dir = make_tree(tmp_path / "in", {"a.wav": (16_000, 1), "c.wav": (16_000, 1)})
    os.rename(in_dir / "a.wav", os.fsencode(in_dir) + b"/b\xffd.wav")
    summary = run_batch(in_dir, tmp_path / "out", {"model": "none"}, output_format_for("x.flac"), jobs=1)
    assert len(summary.results) == 2 and (tmp_path / "out" / "c.flac").is_file()
    assert json.loads(to_json(summary.to_dict()))["files"] == 2  # what --json prints
    assert json.loads((tmp_path / "out" / SUMMARY_NAME).read_text(encoding="utf-8"))["files"] == 2
    journal = read_journal(tmp_path / "out" / JOURNAL_NAME)
    assert os.fsdecode(b"b\xffd.wav") in journal and journal["c.wav"]["event"] == "done"


def test_ray_backend_processes_a_folder(capsys, tmp_path):
    try:
        import ray
    except ImportError:
        print("skipping: Ray is not installed (pip install 'audio-upscaler[ray]')")
        pytest.skip("Ray is not installed (pip install 'audio-upscaler[ray]')")
    src = make_tree(tmp_path / "in")
    (src / "junk.wav").write_bytes(b"\x00" * 300)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        code, stdout, _ = batch(capsys, src, "-o", tmp_path / "out", "--recursive", "--backend", "ray", "-m", "sbr",
                                "--json")
    finally:
        ray.shutdown()
    summary = json.loads(stdout)
    assert code == 2 and summary["backend"] == "ray" and (summary["done"], summary["failed"]) == (4, 1)
    assert summary["failures"][0]["file"] == "junk.wav"
    for name in TREE:
        assert_complete(src, tmp_path / "out", name)


@pytest.mark.parametrize("address, env, fragment", [
    ("10.0.0.1:6379", None, "cannot reach the Ray cluster at 10.0.0.1:6379: GCS not ready; start one with "
     "'ray start --head', or drop --ray-address to run on this machine alone"),
    (None, "10.0.0.1:6379", "at 10.0.0.1:6379 ($RAY_ADDRESS): GCS not ready; start one with 'ray start --head', "
     "or unset RAY_ADDRESS"),
    (None, None, "cannot reach a local Ray instance: GCS not ready"),
])
def test_a_ray_cluster_that_fails_after_the_check_says_what_to_do(monkeypatch, address, env, fragment):
    """The port answered `check_ray`, then `ray.init` failed (not a Ray head, a version mismatch):
    the error still says how to go on."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'audio-upscaler[ray]')")
    from audio_upscaler.batch.ray_backend import run_ray
    from audio_upscaler.errors import UpscalerError

    def failing_init(**kwargs):
        raise ConnectionError("GCS not ready\nretrying")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", failing_init)
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UpscalerError) as err:
        next(run_ray([], None, address=address))  # init fails before the settings are used
    assert str(err.value) == fragment if address is None and env is None else fragment in str(err.value)
    assert "\n" not in str(err.value)
