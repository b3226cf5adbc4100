"""Web UI without a browser: path containment, content checks, limits, session folders,
A/B level matching, batch and studio jobs, Model Lab helpers, background jobs, the ``ui`` command.
(The page itself is tested in ``test_ui_browser.py``.)"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler.errors import UpscalerError
from audio_upscaler.ui.ab import matched_gains, player_html, write_preview
from audio_upscaler.ui.batch import cancelled, gather, run_batch
from audio_upscaler.ui.context import Context
from audio_upscaler.ui.controls import parse_options
from audio_upscaler.ui.files import SessionStore, check_audio, contained_path, folder_files
from audio_upscaler.ui.jobs import ProcessJobs
from audio_upscaler.ui.settings import UISettings

DEFAULTS = ["sbr", 48_000, "flac", "24", "independent", False, -1.0]


def tone(path: Path, rate: int = 16_000, seconds: float = 0.5, channels: int = 1, level: float = 0.5) -> Path:
    """A harmonic tone (fundamental 220 Hz, harmonics up to 0.45 x rate) written to ``path``."""
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 80) if 220 * k < 0.45 * rate)
    x = level * x / np.abs(x).max()
    sf.write(path, np.stack([x] * channels, axis=1).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    return folder


@pytest.fixture
def ctx(tmp_path, root) -> Context:
    settings = UISettings(roots=(root,), work_dir=tmp_path / "work", runs_dir=tmp_path / "runs",
                          max_upload_mb=5, max_duration_s=10)
    return Context(settings, SessionStore(settings.work_dir))


# ---------------------------------------------------------------------- folders and containment

@pytest.mark.parametrize("relative", ["../../etc/passwd", "..", "sub/../../x", "/etc/passwd", "/", "~/x", "~root"])
def test_paths_that_leave_the_root_are_refused(ctx, root, relative):
    with pytest.raises(UpscalerError):
        contained_path(str(root.resolve()), relative, ctx.settings)


def test_a_link_pointing_out_of_the_root_is_refused(ctx, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UpscalerError, match="outside the allowed folder"):
        contained_path(str(root.resolve()), "escape", ctx.settings)


def test_folders_inside_the_root_resolve(ctx, root):
    base = str(root.resolve())
    assert contained_path(base, "sub", ctx.settings) == (root / "sub").resolve()
    assert contained_path(base, ".", ctx.settings) == root.resolve()
    assert contained_path(base, "sub/../sub", ctx.settings) == (root / "sub").resolve()


def test_unknown_root_nul_and_no_roots_are_refused(ctx, root, tmp_path):
    with pytest.raises(UpscalerError, match="allowed folders"):
        contained_path(str(tmp_path), "root", ctx.settings)
    with pytest.raises(UpscalerError, match="NUL"):
        contained_path(str(root.resolve()), "sub\x00", ctx.settings)
    with pytest.raises(UpscalerError, match="--root"):
        contained_path(str(root.resolve()), "sub", UISettings())


def test_folder_files_skip_hidden_files_and_links_out(ctx, root, tmp_path):
    (tmp_path / "secret.wav").write_bytes(b"x")
    (root / "b.wav").write_bytes(b"x")
    (root / "a.flac").write_bytes(b"x")
    (root / ".hidden.wav").write_bytes(b"x")
    (root / "link.wav").symlink_to(tmp_path / "secret.wav")
    base = root.resolve()
    assert [p.name for p in folder_files(base, base, 10)] == ["a.flac", "b.wav"]
    with pytest.raises(UpscalerError, match="at most 1"):
        folder_files(base, base, 1)


def test_settings_refuse_a_missing_root_and_bad_limits(tmp_path):
    with pytest.raises(UpscalerError, match="not a folder"):
        UISettings(roots=(tmp_path / "missing",))
    with pytest.raises(UpscalerError):
        UISettings(max_upload_mb=0)
    with pytest.raises(UpscalerError):
        UISettings(max_jobs=0)


# ---------------------------------------------------------------------- content checks and limits

def test_audio_is_recognised_by_content_not_extension(ctx, tmp_path):
    audio_as_text = tone(tmp_path / "song.txt")
    info = check_audio(audio_as_text, ctx.settings)
    assert info.sample_rate == 16_000 and info.channels == 1
    text_as_audio = tmp_path / "fake.wav"
    text_as_audio.write_text("this is not audio\n" * 100)
    with pytest.raises(UpscalerError) as err:
        check_audio(text_as_audio, ctx.settings)
    assert str(err.value).startswith("fake.wav: ") and str(tmp_path) not in str(err.value)


def test_truncated_file_is_refused(ctx, tmp_path):
    whole = tone(tmp_path / "whole.wav", seconds=1.0)
    sf.write(tmp_path / "whole.flac", sf.read(whole)[0], 16_000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes((tmp_path / "whole.flac").read_bytes()[:2000])
    with pytest.raises(UpscalerError, match="cut.flac"):
        check_audio(cut, ctx.settings)


def test_size_and_duration_limits(tmp_path, ctx):
    long = tone(tmp_path / "long.wav", seconds=12.0)  # 12 s > 10 s limit, 384 kB
    with pytest.raises(UpscalerError, match="longer than the 10 s limit"):
        check_audio(long, ctx.settings)
    small = UISettings(max_upload_mb=0.1)
    with pytest.raises(UpscalerError, match="over the 0.1 MiB limit"):
        check_audio(long, small)


# ---------------------------------------------------------------------- sessions

def test_sessions_get_separate_random_folders(tmp_path):
    store = SessionStore(tmp_path / "work")
    a, b = store.folder("session-a"), store.folder("session-b")
    assert a != b and a.parent == b.parent == tmp_path / "work"
    assert "session" not in a.name and len(a.name) == 32
    assert store.folder("session-a") == a
    jobs = [store.job_folder("session-a", "batch") for _ in range(2)]
    assert jobs[0] != jobs[1] and all(j.parent == a and j.is_dir() for j in jobs)
    store.discard("session-a")
    assert not a.exists() and b.exists()
    with pytest.raises(UpscalerError):
        store.folder("")


# ---------------------------------------------------------------------- options and A/B

def test_options_follow_the_format():
    assert parse_options(*DEFAULTS).bit_depth == 24
    mp3 = parse_options("sbr", "44100", "mp3", "24", "mid-side", True, -3.0)
    assert (mp3.bit_depth, mp3.rate, mp3.normalize_dbfs, mp3.stereo) == (None, 44_100, -3.0, "mid-side")
    with pytest.raises(UpscalerError, match="MP3 cannot store 96000"):
        parse_options("sbr", 96_000, "mp3", "16", "independent", False, -1.0)
    with pytest.raises(UpscalerError, match="bit depths"):
        parse_options("sbr", 48_000, "flac", "32 (float)", "independent", False, -1.0)
    with pytest.raises(UpscalerError, match="unknown model"):
        parse_options("nope", 48_000, "flac", "24", "independent", False, -1.0)
    for rate in ("fast", "inf", "-inf"):  # the rate box takes typed values; "inf" was an internal OverflowError
        with pytest.raises(UpscalerError, match="number of Hz"):
            parse_options("sbr", rate, "flac", "24", "independent", False, -1.0)
    alac = parse_options("sbr", 192_000, "alac", "16", "independent", False, -1.0)
    assert (alac.extension, alac.bit_depth, alac.output_format().is_lossless) == ("m4a", 16, True)
    aac = parse_options("sbr", 48_000, "m4a", "24", "independent", False, -1.0)
    assert (aac.extension, aac.bit_depth, aac.output_format().is_lossless) == ("m4a", None, False)
    with pytest.raises(UpscalerError, match="AAC cannot store 192000"):
        parse_options("sbr", 192_000, "m4a", "24", "independent", False, -1.0)


def test_the_codec_check_box_reaches_the_upscaler():
    from audio_upscaler.ui.controls import UpscalerCache

    cache = UpscalerCache()
    plain, checked = parse_options(*DEFAULTS), parse_options(*DEFAULTS, True)
    assert not plain.codec_check and checked.codec_check
    assert cache.get(checked).codec_check and not cache.get(plain).codec_check


def test_level_matching_turns_the_louder_one_down():
    gain_in, gain_out = matched_gains(-20.0, -14.0)
    assert gain_in == 1.0 and gain_out == pytest.approx(10 ** (-6 / 20))
    gain_in, gain_out = matched_gains(-10.0, -16.0)
    assert gain_in == pytest.approx(10 ** (-6 / 20)) and gain_out == 1.0
    assert matched_gains(float("-inf"), -14.0) == (1.0, 1.0)
    # a float input peaking at +6 dBFS, as loud as the limited output: both down 6 dB, still matched
    # (the input's preview was clipped at full scale, the output's not)
    gain_in, gain_out = matched_gains(-14.0, -14.0, input_peak=2.0, output_peak=0.9)
    assert gain_in == pytest.approx(0.5) and gain_out == pytest.approx(0.5)


def test_preview_is_scaled_and_playable_rate(tmp_path):
    source = tone(tmp_path / "hi.wav", rate=192_000, seconds=0.25, channels=2, level=0.8)
    preview = write_preview(source, tmp_path / "preview.wav", 0.5)
    data, rate = sf.read(preview)
    assert rate == 48_000 and data.shape == (12_000, 2)
    assert 0.35 < np.abs(data).max() < 0.45  # 0.8 x 0.5 after resampling
    html = player_html(tmp_path / "a b.wav", preview)
    assert html.count("<audio") == 2 and "a%20b.wav" in html and "gradio_api/file=" in html


# ---------------------------------------------------------------------- studio and batch jobs

def test_studio_upscale_writes_output_previews_and_spectrogram(ctx, tmp_path):
    from audio_upscaler.ui.studio import analysis_markdown, inspect, upscale

    source = tone(tmp_path / "in.wav", rate=16_000, seconds=1.0)
    analysis, status = inspect(ctx, str(source), None)
    assert "16000 Hz" in analysis and "verdict" in analysis and "Ready" in status
    status, html, png, output = upscale(ctx, "s1", str(source), DEFAULTS)
    assert "**48000 Hz**" in status and "model `sbr`" in status
    info = sf.info(output)
    assert info.samplerate == 48_000 and abs(info.duration - 1.0) < 1e-3
    assert Path(png).stat().st_size > 10_000 and html.count("<audio") == 2
    assert Path(output).parent.parent == ctx.sessions.folder("s1")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"\x00" * 1000)
    analysis, status = inspect(ctx, str(bad), None)
    assert analysis == "" and status.startswith("**Error:** bad.wav")
    assert analysis_markdown.__doc__


def test_studio_upscales_a_one_sample_file(ctx, tmp_path):
    """The upscale worked, but the spectrogram of a file shorter than one window raised scipy's
    ValueError ("noverlap must be less than nperseg"), shown as an internal error."""
    from audio_upscaler.ui.studio import upscale

    source = tmp_path / "one.wav"
    sf.write(source, np.array([[0.5]], np.float32), 16_000)
    status, html, png, output = upscale(ctx, "s1", str(source), DEFAULTS)
    assert "**48000 Hz**" in status and sf.info(output).frames == 3
    assert Path(png).stat().st_size > 1_000


def test_spectrogram_marks_the_model_cutoff_only_when_given(tmp_path):
    """The studio's dashed line is where the input's content ends; a second, dotted line shows
    the cutoff the model got when it differs (a codec's wall above a fade)."""
    from PIL import Image

    from audio_upscaler.ui.plots import spectrogram_png

    source = tone(tmp_path / "in.wav", rate=48_000, seconds=0.5)
    one = np.asarray(Image.open(spectrogram_png([("input", source)], 7000.0, tmp_path / "one.png")).convert("RGB"))
    two = np.asarray(Image.open(spectrogram_png([("input", source)], 7000.0, tmp_path / "two.png",
                                                model_cutoff_hz=16_000.0)).convert("RGB"))
    lime = (two[..., 1] > 200) & (two[..., 0] < 100) & (two[..., 2] < 100)
    assert one.shape == two.shape and not ((one[..., 1] > 200) & (one[..., 0] < 100) & (one[..., 2] < 100)).any()
    assert lime.sum() > 100  # the dotted line and its label


def test_batch_goes_on_after_an_internal_error_on_one_file(ctx, root, tmp_path, monkeypatch):
    """A bug hit by one file (any exception, not only UpscalerError) stopped the whole batch."""
    from audio_upscaler.pipeline import Upscaler

    first, second = tone(tmp_path / "first.wav", rate=22_050), tone(tmp_path / "second.wav", rate=22_050)
    real = Upscaler.upscale_file

    def flaky(self, path, output, **kw):
        if Path(path).name == "first.wav":
            raise RuntimeError(f"boom in {path}")
        return real(self, path, output, **kw)

    monkeypatch.setattr(Upscaler, "upscale_file", flaky)
    rows, status, archive, job = list(run_batch(ctx, "s3", [("first.wav", first), ("second.wav", second)], DEFAULTS))[-1]
    assert [row[1] for row in rows] == ["error", "done"]
    assert rows[0][2] == "internal error (RuntimeError): boom in first.wav"  # no server path
    assert "1 of 2" in status and "1 failed" in status


def test_batch_goes_on_after_a_bad_file_and_zips_the_rest(ctx, root, tmp_path):
    tone(root / "sub" / "one.wav", rate=22_050)
    (root / "sub" / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 200)
    upload = tone(tmp_path / "upload.wav", rate=8_000)
    items = gather(ctx, [str(upload)], str(root.resolve()), "sub")
    assert [name for name, _ in items] == ["upload.wav", "sub/broken.wav", "sub/one.wav"]
    updates = list(run_batch(ctx, "s2", items, DEFAULTS))
    rows, status, archive, job = updates[-1]
    assert [row[1] for row in rows] == ["done", "error", "done"]
    assert "broken.wav" in rows[1][2] and str(root) not in rows[1][2]
    assert "2 of 3" in status and "1 failed" in status
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["one_upscaled.flac", "upload_upscaled.flac"]
    assert updates[0][0][0][1] == "queued"
    text, again = cancelled(job)
    assert "2 finished" in text and again.endswith(".zip")
    with pytest.raises(UpscalerError, match="add files"):
        gather(ctx, [], None, "")
    with pytest.raises(UpscalerError, match="outside"):
        gather(ctx, [], str(root.resolve()), "../..")


# ---------------------------------------------------------------------- Model Lab

def test_overrides_names_and_arguments(tmp_path):
    from audio_upscaler.ui.model_lab import check_name, parse_overrides, train_args

    runs = tmp_path / "runs"
    assert (parse_overrides("optim.lr=3e-4\ntrain.validate_every=10", runs)
            == ["optim.lr=3e-4", "train.validate_every=10"])
    for bad in ("data.source=/etc", "data.validation_source=/x", "lr=1", "optim.lr",
                "-o/tmp/out.d=1", "--data.x=1", "-v.x=1",  # an option to the command, not an override
                "train.init_from=/etc", f"train.vocoder_from={runs}/../elsewhere", "train.init_from=run1"):
        with pytest.raises(UpscalerError):  # model folders outside the runs folder (a bare name is relative to the server's cwd)
            parse_overrides(bad, runs)
    assert (parse_overrides(f"model.spec.channels=8 loss.l1_weight=0.5 train.init_from={runs}/run1", runs)
            == ["model.spec.channels=8", "loss.l1_weight=0.5", f"train.init_from={runs}/run1"])
    for bad in ("../x", "a/b", "", "auto", "x" * 65):
        with pytest.raises(UpscalerError):
            check_name(bad, "the run name")
    args = train_args("c.yaml", Path("/data"), Path("runs/r"), 20, ["optim.lr=1e-3"])
    assert args == ["train", "--config", "c.yaml", "--data", "/data", "--run-dir", "runs/r", "--quiet",
                    "--max-steps", "20", "optim.lr=1e-3"]


def test_a_torn_best_json_does_not_hide_the_runs(tmp_path):
    """One run's unreadable best.json (a run stopped while writing it) made the whole list fail."""
    from audio_upscaler.ui.model_lab import list_runs

    for name, best in (("a", "{"), ("b", '{"step": 4, "lsd": 1.5}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text("model: {family: apnet}\n")
        (tmp_path / name / "best.json").write_text(best)
    assert list_runs(tmp_path) == [["a", "apnet", 0, "–", "–", "no"], ["b", "apnet", 0, "1.500", 4, "no"]]


def test_runs_are_listed_and_a_run_exports_as_a_model(ctx, tmp_path, monkeypatch, torch_one_thread):
    from audio_upscaler.models import registry
    from audio_upscaler.ui.controls import model_choices
    from audio_upscaler.ui.model_lab import export, list_runs, run_curves_png

    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(tmp_path / "models"))
    run = ctx.settings.runs_dir / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: {family: apnet}\n")
    rows = [{"step": 10, "kind": "train", "loss": 0.5}, {"step": 20, "kind": "validation", "lsd": 1.25}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert list_runs(ctx.settings.runs_dir) == [["r1", "apnet", 20, "–", "–", "no"]]
    assert Path(run_curves_png(ctx, "r1", tmp_path / "c.png")).stat().st_size > 5_000
    with pytest.raises(UpscalerError, match="no best_model"):
        export(ctx, "r1", "mine")

    cls = registry.get_class("apnet")
    registry.build("apnet", **cls.tiny_config).save(run / "best_model")
    (run / "best.json").write_text(json.dumps({"step": 20, "lsd": 1.25}))
    assert list_runs(ctx.settings.runs_dir)[0][3:] == ["1.250", 20, "yes"]
    assert "mine" not in model_choices()
    assert "Exported" in export(ctx, "r1", "mine")
    assert "mine" in model_choices()


# ---------------------------------------------------------------------- background jobs

def test_background_jobs_are_per_session_limited_and_stoppable(tmp_path):
    jobs = ProcessJobs(2, command=(sys.executable, "-c"))
    sleeper = "import time; print('started', flush=True); time.sleep(60)"
    proc = jobs.start("a", "train", [sleeper], tmp_path / "a.log")
    with pytest.raises(UpscalerError, match="still running"):
        jobs.start("a", "train", [sleeper], tmp_path / "a2.log")
    jobs.start("b", "train", [sleeper], tmp_path / "b.log")
    with pytest.raises(UpscalerError, match="already runs 2"):
        jobs.start("c", "tune", [sleeper], tmp_path / "c.log")
    assert jobs.running("a", "train") is proc and jobs.running("a", "tune") is None
    assert not jobs.stop("c", "train")  # another session's job is not reachable
    started = time.monotonic()
    assert jobs.stop("a", "train")
    assert proc.returncode < 0 and time.monotonic() - started < 5
    jobs.stop_session("b")
    assert jobs.running("b", "train") is None
    done = jobs.start("c", "tune", ["print('hello')"], tmp_path / "c.log")
    done.wait(30)
    assert (tmp_path / "c.log").read_text().strip() == "hello"


# ---------------------------------------------------------------------- the command

def test_ui_command_stays_local_unless_allowed(monkeypatch, capsys, tmp_path):
    import audio_upscaler.ui.app as app
    from audio_upscaler.cli import main
    from audio_upscaler.cli.ui import is_local

    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.2")
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    calls = []
    monkeypatch.setattr(app, "launch", lambda settings, host, port, block: calls.append((settings, host, port)))
    assert main(["ui", "--host", "0.0.0.0", "--allow-remote", "--port", "8123", "--root", str(tmp_path)]) == 0
    assert "warning" in capsys.readouterr().err
    settings, host, port = calls[0]
    assert (host, port, settings.roots) == ("0.0.0.0", 8123, (tmp_path.resolve(),))
    assert main(["ui", "--root", str(tmp_path / "missing")]) == 2


def test_build_app_makes_independent_apps(tmp_path):
    pytest.importorskip("gradio", reason="gradio (the [ui] extra) is not installed")
    from audio_upscaler.ui.app import build_app, with_work_dir

    first = with_work_dir(UISettings())
    second = with_work_dir(UISettings())
    assert first.work_dir != second.work_dir and first.work_dir.is_dir()
    os.rmdir(first.work_dir)
    os.rmdir(second.work_dir)
    demo = build_app(UISettings(work_dir=tmp_path / "w"))
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"studio_run", "batch_run", "lab_train_start", "bench_run", "studio_spectrogram"} <= ids


@pytest.mark.slow
def test_training_from_the_lab_logs_curves_and_stops(ctx, root, tmp_path):
    """A real ``audio-upscaler train`` child process: curves appear, Stop ends it (about 15 s)."""
    from audio_upscaler.ui.model_lab import start_training

    for name in ("a", "b"):
        tone(root / f"{name}.wav", rate=48_000, seconds=1.0)
    tiny = ("model.dim=16 model.n_blocks=1 model.cond_dim=8 train.validate_every=2 train.log_every=1 "
            "data.validation_examples=1 data.validation_seconds=0.5 data.segment_seconds=0.25 optim.batch_size=2 "
            "data.num_workers=0 train.threads=1 data.validation_tasks=[bwe_8k_48k]")
    updates = start_training(ctx, "s", "configs/train/default.yaml", str(root.resolve()), ".", "lab-run", 100_000, tiny)
    stopped = False
    for status, log, png in updates:
        if png and not stopped:
            stopped = ctx.jobs.stop("s", "train")
    assert stopped and "stopped" in status and Path(png).stat().st_size > 5_000
    assert (ctx.settings.runs_dir / "lab-run" / "log.jsonl").is_file()


def test_benchmark_tab_refuses_a_clip_linked_from_outside_the_root(ctx, root, tmp_path):
    """A file symlink in the clips folder pointing out of the root was read: its metrics and
    spectrogram PNG came back in the page and the ZIP."""
    from audio_upscaler.ui import benchmark

    secret = tone(tmp_path / "secret.wav", rate=48_000)
    clips = root / "clips"
    clips.mkdir()
    tone(clips / "mine.wav", rate=48_000)
    args = (str(root), "clips", ["bwe_16k_48k"], ["sinc"], 0, 0.3)
    status, rows, _, _ = benchmark.run(ctx, "s1", *args)
    assert "1 clips" in status and rows[0][2] == "1"
    (clips / "link.wav").symlink_to(secret)
    with pytest.raises(UpscalerError, match="outside the allowed folder"):
        benchmark.run(ctx, "s1", *args)


def test_benchmark_tab_applies_the_upload_limits_to_clips_under_the_root(ctx, root, tmp_path):
    """Clips read from a folder under a root were benchmarked whatever their size or length (the
    other tabs refuse files over --max-upload-mb / --max-duration)."""
    from audio_upscaler.ui import benchmark

    clips = root / "clips"
    (clips / "long").mkdir(parents=True)
    tone(clips / "a_short.wav", rate=48_000)
    tone(clips / "long" / "b_long.wav", rate=48_000, seconds=12.0)  # 12 s > the 10 s limit
    args = (str(root), "clips", ["bwe_16k_48k"], ["sinc"])
    with pytest.raises(UpscalerError) as err:
        benchmark.run(ctx, "s1", *args, 0, 0.3)  # refused, not cut, even with 0.3 s per clip
    assert str(err.value) == "clips/long/b_long.wav: 12 s is longer than the 10 s limit"
    status, rows, _, _ = benchmark.run(ctx, "s1", *args, 1, 0.3)  # the long clip is not among those run
    assert "1 clips" in status and rows[0][2] == "1"
    small = Context(UISettings(roots=(root,), work_dir=tmp_path / "work2", max_upload_mb=0.04),
                    SessionStore(tmp_path / "work2"))
    with pytest.raises(UpscalerError) as err:
        benchmark.run(small, "s1", *args, 1, 0.3)  # 0.5 s at 48 kHz, 16 bit: 47 KiB
    assert str(err.value) == "clips/a_short.wav: 0.0 MiB is over the 0.04 MiB limit"


def test_benchmark_tab_refuses_a_run_over_the_audio_limit_before_any_work(ctx, root, monkeypatch):
    """Nothing bounded the work of one run (clips x seconds x tasks x methods, with 0 = all clips
    and whole clips): one click could hold a public server for hours."""
    import audio_upscaler.bench
    from audio_upscaler.degrade import TASKS
    from audio_upscaler.ui import benchmark

    def run_benchmark(*args, **kwargs):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(audio_upscaler.bench, "run_benchmark", run_benchmark)
    clips = root / "clips"
    clips.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        tone(clips / name, seconds=10.0)  # at the 10 s limit of each clip
    # Music clips (no speech/ folder): 6 of the 7 tasks apply (not speech_8k_22k); `+check` runs on
    # the 2 codec tasks only. Counting every task and method for every clip refused runs under the cap.
    tasks, methods = list(TASKS), ["sinc", "sbr", "default", "restore"]
    for max_clips, seconds, extra, expected in [
            (0, 0, [], "720 s of audio (3 clips, 30 s in all, through 7 tasks and 4 methods where they apply)"),
            (3, 9, [], "648 s of audio (3 clips, 27 s in all, through 7 tasks and 4 methods where they apply)"),
            (3, 8, ["restore+check"], "624 s of audio (3 clips, 24 s in all, through 7 tasks and 5 methods")]:
        with pytest.raises(UpscalerError) as err:
            benchmark.run(ctx, "s1", str(root), "clips", tasks, methods + extra, max_clips, seconds)
        assert str(err.value).startswith(f"this run would process {expected}")
        assert str(err.value).endswith("over the limit of 600 s per run; choose fewer clips, tasks or methods, "
                                       "or fewer seconds per clip")
    assert not list(ctx.settings.work_dir.rglob("benchmark-*"))
    for max_clips, seconds, extra in [(2, 0, ["restore+check"]), (3, 8, [])]:  # 520 s, 576 s: within the limit
        with pytest.raises(AssertionError, match="the benchmark ran"):
            benchmark.run(ctx, "s1", str(root), "clips", tasks, methods + extra, max_clips, seconds)


def test_benchmark_report_zip_names_clips_under_the_root_not_server_paths(ctx, root, tmp_path, monkeypatch):
    """The downloaded report named server paths: results.json (data folder, report folder, each
    clip's path) and the command line in README.md were absolute paths on the server, and so were
    paths in the error of a failed run."""
    from audio_upscaler.bench.runner import Runner
    from audio_upscaler.ui import benchmark

    clips = root / "clips"
    (clips / "speech").mkdir(parents=True)
    tone(clips / "mine.wav", rate=48_000)
    tone(clips / "speech" / "voice.wav", rate=48_000)
    real_run_method = Runner.run_method

    def run_method(self, task, method, clip, prepared, folder):
        if clip.name == "speech/voice":
            raise UpscalerError(f"{prepared.input_path}: cannot read (from {clip.path})")
        return real_run_method(self, task, method, clip, prepared, folder)

    monkeypatch.setattr(Runner, "run_method", run_method)
    status, _, _, archive = benchmark.run(ctx, "s1", str(root), "clips", ["bwe_16k_48k"], ["sinc"], 0, 0.3)
    assert "1 failed" in status
    with zipfile.ZipFile(archive) as z:
        texts = {name: z.read(name).decode() for name in z.namelist() if not name.endswith(".png")}
        assert {"README.md", "results.json", "results.csv"} <= set(texts)
    for name, text in texts.items():
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, name
    results = json.loads(texts["results.json"])
    assert results["config"]["data"] == "clips" and results["config"]["out"] == "report"
    assert sorted(c["path"] for c in results["clips"]) == ["clips/mine.wav", "clips/speech/voice.wav"]
    failed = next(i for i in results["items"] if i["status"] != "ok")
    assert failed["error"] == ("audio/bwe_16k_48k/speech/voice/input.wav: cannot read (from "
                               "clips/speech/voice.wav)")
    assert "`audio-upscaler benchmark clips --tasks bwe_16k_48k --methods sinc --out report --seconds 0.3`" \
        in texts["README.md"]
    assert "| bwe_16k_48k | sinc | speech/voice | audio/bwe_16k_48k/speech/voice/input.wav:" in texts["README.md"]
    assert "audio/bwe_16k_48k/speech/voice/input.wav: cannot read" in texts["results.csv"]
    assert "![bwe_16k_48k mine](plots/bwe_16k_48k__mine.png)" in texts["README.md"]
