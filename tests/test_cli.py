"""The command line: main job, analysis, doctor, and one-line errors with exit code 2."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler.cli import main

from .signals import band_limited


@pytest.fixture
def wav_16k(tmp_path):
    path = tmp_path / "in.wav"
    sf.write(path, band_limited(48_000, 1.0, 16_000).samples.T, 16_000, subtype="PCM_16")
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_upscale_writes_output_and_json_summary(capsys, wav_16k, tmp_path):
    out = tmp_path / "out.flac"
    code, stdout, _ = run_cli(capsys, "upscale", wav_16k, "-o", out, "--model", "sbr", "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["output_rate"] == 48_000 and summary["model"] == "sbr"
    assert sf.info(out).samplerate == 48_000


def test_default_output_name_and_overwrite_protection(capsys, wav_16k):
    code, _, _ = run_cli(capsys, "upscale", wav_16k, "-q")
    expected = wav_16k.with_name("in_upscaled.flac")
    assert code == 0 and expected.exists()
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q")
    assert code == 2 and "--overwrite" in err
    code, _, _ = run_cli(capsys, "upscale", wav_16k, "-q", "--overwrite")
    assert code == 0


def test_default_output_name_takes_the_format_extension(capsys, wav_16k):
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-f", "mp3")
    assert code == 0, err
    assert sorted(p.name for p in wav_16k.parent.iterdir()) == ["in.wav", "in_upscaled.mp3"]
    assert sf.info(wav_16k.with_name("in_upscaled.mp3")).format == "MP3"


def test_m4a_output_aac_or_alac(capsys, wav_16k, tmp_path):
    """``.m4a`` is AAC; ``-f alac`` is Apple Lossless in ``INPUT_upscaled.m4a``; batch names its
    outputs ``.m4a`` too; ALAC in a ``.flac`` name is refused."""
    from audio_upscaler import io

    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-f", "alac")
    assert code == 0, err
    alac = io.read_audio(wav_16k.with_name("in_upscaled.m4a"))
    assert (alac.codec, alac.bit_depth, alac.sample_rate, alac.frames) == ("alac", 24, 48_000, 48_000)
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-o", tmp_path / "a.m4a", "--bitrate", "96")
    assert code == 0, err
    aac = io.read_audio(tmp_path / "a.m4a")
    assert (aac.codec, aac.sample_rate, aac.frames) == ("aac", 48_000, 48_000)
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-f", "alac", "-o", tmp_path / "x.flac")
    assert code == 2 and "does not match" in err and not (tmp_path / "x.flac").exists()
    code, _, err = run_cli(capsys, "batch", tmp_path, "-o", tmp_path / "out", "-m", "none", "-f", "m4a",
                           "--pattern", "in.wav", "-q")
    assert code == 0, err
    assert io.probe(tmp_path / "out" / "in.m4a").codec == "aac"


def test_format_contradicting_the_extension_and_an_empty_output_are_refused(capsys, wav_16k, tmp_path):
    for extra, fragment in [(["-f", "flac", "-o", tmp_path / "x.wav"], "does not match"), (["-o", ""], "empty")]:
        code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", *extra)
        assert code == 2 and fragment in err and err.count("\n") == 1, (extra, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-f", "opus", "-o", tmp_path / "x.ogg")
    assert code == 0 and sf.info(tmp_path / "x.ogg").subtype == "OPUS", err  # Opus in an .ogg file is fine


def test_fifo_or_device_output_is_refused_before_processing(capsys, wav_16k, tmp_path):
    fifo, device = tmp_path / "fifo.wav", tmp_path / "null.wav"
    os.mkfifo(fifo)
    device.symlink_to(os.devnull)
    for out in (fifo, device):
        code, _, err = run_cli(capsys, "upscale", wav_16k, "-o", out, "-f", "wav", "--overwrite")
        assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err
    assert fifo.is_fifo() and device.is_symlink() and device.is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.wav", "in.wav", "null.wav"]


def test_symlink_output_is_written_through(capsys, wav_16k, tmp_path):
    target, link = tmp_path / "real.flac", tmp_path / "link.flac"
    target.write_bytes(b"old")
    link.symlink_to(target)
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-o", link, "--overwrite")
    assert code == 0, err
    assert link.is_symlink() and sf.info(target).samplerate == 48_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "link.flac", "real.flac"]


def test_long_output_names(capsys, wav_16k, tmp_path):
    longest = tmp_path / ("a" * 249 + ".flac")
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-o", longest)
    assert code == 0, err
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", "-m", "none", "-o", tmp_path / ("b" * 260 + ".flac"))
    assert code == 2 and "too long" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [longest.name, "in.wav"]


def test_batch_summary_gets_the_permissions_of_the_outputs(capsys, wav_16k, tmp_path):
    out_dir = tmp_path / "out"
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(capsys, "batch", tmp_path, "-o", out_dir, "-q", "-m", "none", "--jobs", "1")
    finally:
        os.umask(old)
    assert code == 0, err
    modes = {p.name: p.stat().st_mode & 0o777 for p in out_dir.iterdir() if not p.name.startswith(".")}
    assert modes == {"in.flac": 0o644, "batch-summary.json": 0o644}


def test_analyze_json(capsys, wav_16k):
    code, stdout, _ = run_cli(capsys, "analyze", wav_16k, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["sample_rate"] == 16_000
    assert 7_500 < report["cutoff_hz"] <= 8_000


def test_doctor(capsys):
    code, stdout, _ = run_cli(capsys, "doctor", "--json")
    info = json.loads(stdout)
    assert code == 0 and info["device"] in ("cpu", "cuda", "mps") and "flac" in info["soundfile_formats"]
    assert info["m4a_encoders"] == ["aac", "alac"]  # what .m4a output needs (PyAV's FFmpeg has both)


def test_doctor_recommends_for_the_cpus_this_process_may_use(capsys, monkeypatch):
    """Under ``taskset -c 0`` (or a container's cpuset) on a 4-thread machine, doctor counted all
    4 threads and recommended 3 data-loader workers for a process that can run on one."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    code, stdout, _ = run_cli(capsys, "doctor", "--json")
    info = json.loads(stdout)
    assert code == 0 and (info["cpu_threads"], info["cpu_usable"]) == (4, 1)
    assert info["recommendations"]["num_workers"] == 0
    code, stdout, _ = run_cli(capsys, "doctor")
    assert "cpu         4 threads, 1 usable by this process" in stdout
    from audio_upscaler.train.data import loader_settings

    assert loader_settings("cpu")["num_workers"] == 0


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.wav", "not found"),
    "zero-byte": (lambda d: _write_bytes(d / "empty.wav", b""), "empty"),
    "text": (lambda d: _write_bytes(d / "notes.wav", b"hello, this is not audio\n" * 20), "not an audio file"),
    "nan": (lambda d: _nan_wav(d / "nan.wav"), "NaN"),
    "rate-too-low": (lambda d: _wav(d / "slow.wav", 500), "sample rate"),
    "nine-channels": (lambda d: _wav(d / "nine.wav", 16_000, channels=9), "channels"),
    "directory": (lambda d: d, "directory"),
}


def _wav(path, rate, channels=1):
    sf.write(path, np.zeros((rate, channels), np.float32) + 0.1, rate, subtype="PCM_16")
    return path


def _nan_wav(path):
    x = np.full((16_000, 1), 0.1, np.float32)
    x[8_000] = np.nan
    sf.write(path, x, 16_000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_no_output(capsys, tmp_path, case):
    make, fragment = BAD_INPUTS[case]
    src = make(tmp_path)
    out = tmp_path / "out" / "result.flac"
    out.parent.mkdir()
    code, _, err = run_cli(capsys, "upscale", src, "-o", out, "-q")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment.lower() in err.lower()
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_request_errors(capsys, wav_16k, tmp_path):
    cases = [
        (["-o", tmp_path / "a.flac", "--rate", "8000", "--cutoff", "5000"], "not below the target rate's Nyquist frequency 4000"),
        (["-o", wav_16k, "--overwrite"], "input"),
        (["-o", tmp_path / "a.xyz"], "format"),
        (["-o", tmp_path / "a.mp3", "--rate", "96000"], "MP3"),
        (["-o", tmp_path / "missing_dir" / "a.flac"], "folder"),
        (["-o", tmp_path / "a.flac", "--model", "nonsense"], "unknown model"),
        (["-o", tmp_path / "a.flac", "--source-codec", "mp3"], "codec:kbps"),
        (["-o", tmp_path / "a.flac", "--source-codec", "flac:900"], "unknown codec"),
    ]
    for extra, fragment in cases:
        code, _, err = run_cli(capsys, "upscale", wav_16k, "-q", *extra)
        assert code == 2 and fragment.lower() in err.lower(), (extra, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.parametrize("code, fragment", [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied")])
def test_write_failures_leave_no_file(capsys, monkeypatch, wav_16k, tmp_path, code, fragment):
    """Disk full / permission denied while writing (simulated: root ignores permissions)."""
    calls = []

    def failing_write(self, data):
        calls.append(1)
        if len(calls) > 1:  # fail mid-way, after a first block was written
            raise OSError(code, os.strerror(code))
        return original(self, data)

    original = sf.SoundFile.write
    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code_, _, err = run_cli(capsys, "upscale", wav_16k, "-o", out_dir / "a.wav", "-q", "--rate", "192000")
    assert code_ == 2 and fragment in err.lower() and err.count("\n") == 1
    assert list(out_dir.iterdir()) == []


def test_models_lists_families_and_installed_weights(capsys, tmp_path, monkeypatch):
    from audio_upscaler.models import registry

    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(tmp_path))
    registry.build("apnet").save(tmp_path / "mine")
    code, stdout, _ = run_cli(capsys, "models", "--json")
    listing = json.loads(stdout)
    assert code == 0
    assert "apnet" in {f["family"] for f in listing["families"]}
    assert all(f["parameters"] > 0 for f in listing["families"])
    mine = [w for w in listing["weights"] if w["name"] == "mine"]
    assert mine and mine[0]["family"] == "apnet" and mine[0]["path"] == str(tmp_path / "mine")
    code, stdout, _ = run_cli(capsys, "models")
    assert code == 0 and "mine" in stdout and "sbr" in stdout


def test_upscale_says_when_a_user_folder_shadows_a_shipped_model(capsys, wav_16k, tmp_path, monkeypatch):
    """A user folder named like a shipped model replaces it, for ``auto`` too; the plan line says so
    (a damaged or older user copy otherwise looked like the shipped model at work)."""
    from audio_upscaler.models import registry

    users = tmp_path / "models"
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(users))
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-o", tmp_path / "a.flac", "-m", "default")
    assert code == 0 and "not the shipped ones" not in err, err
    registry.build("apnet", n_blocks=1, dim=16).save(users / "default")
    registry.build("apnet", n_blocks=1, dim=16).save(users / "mine")
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-o", tmp_path / "b.flac", "-m", "default")
    assert code == 0 and "-> model 'default' (" in err and f"[weights from {users / 'default'}, not the shipped ones]" in err
    code, _, err = run_cli(capsys, "upscale", wav_16k, "-o", tmp_path / "c.flac", "-m", "mine")
    assert code == 0 and "not the shipped ones" not in err  # no shipped model of that name


# ---- the process: signals and a closed stdout (real subprocesses) ------------------------------

def cli_process(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "audio_upscaler", *map(str, argv)], stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_no_temporary_file(tmp_path, signum):
    source, out_dir = tmp_path / "long.wav", tmp_path / "out"
    out_dir.mkdir()
    t = np.arange(60 * 16_000) / 16_000
    sf.write(source, 0.3 * np.sin(2 * np.pi * 440 * t), 16_000, subtype="PCM_16")
    proc = cli_process("upscale", source, "-o", out_dir / "o.flac", "-m", "sbr", "-r", "192000", "-q")
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until the writer's temporary file exists
    assert proc.poll() is None, "finished before the signal could be sent: make the input longer"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signum, err  # ended by the signal after cleaning up (a shell says 128 + signum)
    assert b"Traceback" not in err and b"terminated" in err
    assert list(out_dir.iterdir()) == []


def test_closed_stdout_ends_quietly(wav_16k):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is printed, like `| head` that has quit
    try:
        proc = cli_process("analyze", wav_16k, stdout=write_end)
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b"", err


def test_non_utf8_file_names_work_and_print_as_their_own_bytes(capsysbinary, tmp_path):
    """A Latin-1 name such as b"caf\\xe9.wav" comes from the shell as a str with surrogate
    escapes; reading, writing, batch folders and the names printed on stdout all work with it
    (stdout as in a UTF-8 locale, whose ``strict`` error handler cannot encode those escapes)."""
    folder = tmp_path / "in"
    folder.mkdir()
    src = folder / os.fsdecode(b"caf\xe9.wav")
    try:
        sf.write(os.fsencode(src), band_limited(48_000, 0.5, 16_000).samples.T, 16_000, subtype="PCM_16")
    except (OSError, sf.SoundFileError) as exc:  # e.g. EILSEQ where only UTF-8 names are allowed
        pytest.skip(f"the file system refuses non-UTF-8 names: {exc}")
    mp3 = folder / os.fsdecode(b"caf\xe9-128k.mp3")
    mp3.write_bytes((Path(__file__).parents[1] / "examples" / "music_mp3_128k.mp3").read_bytes())

    def cli(*argv):
        code = main([os.fspath(a) for a in argv])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode("utf-8", "replace")

    code, out, err = cli("analyze", src)
    assert code == 0, err
    code, out, err = cli("analyze", mp3, "--json")
    assert code == 0 and json.loads(out)["sample_rate"] == 44_100, err
    out_file = tmp_path / os.fsdecode(b"\xe9t\xe9.flac")
    code, _, err = cli("upscale", src, "-o", out_file, "-q", "-m", "none")
    assert code == 0, err
    code, _, err = cli("upscale", mp3, "-o", tmp_path / os.fsdecode(b"caf\xe9.wav"), "-q", "-m", "none")
    assert code == 0, err
    code, out, err = cli("evaluate", "--reference", out_file, "--estimate", out_file)
    assert code == 0, err
    assert out.startswith(b"reference  " + os.fsencode(out_file) + b": 48000 Hz")  # the name's own bytes
    code, _, err = cli("batch", folder, "-o", tmp_path / "out", "-q", "-m", "none", "--jobs", "1")
    assert code == 0, err
    assert sorted(os.listdir(os.fsencode(tmp_path / "out"))) == [
        b".audio-upscaler-batch.jsonl", b"batch-summary.json", b"caf\xe9-128k.flac", b"caf\xe9.flac"]
    assert sorted(os.listdir(os.fsencode(tmp_path))) == [b"caf\xe9.wav", b"in", b"out", b"\xe9t\xe9.flac"]
