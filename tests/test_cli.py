"""The command line: main job, analysis, doctor, and one-line errors with exit code 2."""

from __future__ import annotations

import errno
import json
import os

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


def test_analyze_json(capsys, wav_16k):
    code, stdout, _ = run_cli(capsys, "analyze", wav_16k, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["sample_rate"] == 16_000
    assert 7_500 < report["cutoff_hz"] <= 8_000


def test_doctor(capsys):
    code, stdout, _ = run_cli(capsys, "doctor", "--json")
    info = json.loads(stdout)
    assert code == 0 and info["device"] in ("cpu", "cuda", "mps") and "flac" in info["soundfile_formats"]


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
        (["-o", tmp_path / "a.flac", "--rate", "8000"], "below the input rate"),
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
