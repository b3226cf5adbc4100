"""Hardening: odd and broken inputs through the command line (``upscale``, ``analyze``, ``batch``).

Each case of issue 10's list gives either a correct result or its one-line message with exit
code 2; never a traceback, a partial output file or a hang.  The reader-level versions of some
cases are in ``test_io.py``, and ``test_cli.py`` covers missing, zero-byte .wav, text, NaN,
< 1 kHz, 9-channel and directory inputs of ``upscale``; they are not repeated here.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler import io
from audio_upscaler.audio import Audio
from audio_upscaler.cli import main
from audio_upscaler.dsp.resample import output_length
from audio_upscaler.errors import UpscalerError
from audio_upscaler.pipeline import Upscaler

TIME_LIMIT_S = 30.0  # generous: a hang shows as minutes; the cases take well under a second alone


def tone(rate: int, seconds: float, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """Sines of different pitch per channel, ``[time, channels]`` float32 (soundfile layout)."""
    t = np.arange(int(rate * seconds)) / rate
    freqs = min(1000.0, rate / 8) * (1 + 0.25 * np.arange(channels))
    return (amplitude * np.sin(2 * np.pi * freqs[None, :] * t[:, None])).astype(np.float32)


def wav_bytes(rate: int, samples: np.ndarray, claimed_data_bytes: int | None = None) -> bytes:
    """A 16-bit mono WAV whose header may claim a different data size than it holds."""
    data = (samples * 32767).astype("<i2").tobytes()
    claim = len(data) if claimed_data_bytes is None else claimed_data_bytes
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
    return b"RIFF" + struct.pack("<I", (36 + claim) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + fmt + \
        b"data" + struct.pack("<I", claim) + data


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = zlib.compress(b"".join(b"\x00" + bytes(3 * 8) for _ in range(8)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def truncated(fmt: str):
    def make(path: Path) -> None:
        if fmt == "mp3":
            io.write_audio(path, Audio(tone(44_100, 2.0, 2).T, 44_100))
        else:
            sf.write(path, tone(44_100, 1.0, 2), 44_100, format=fmt, subtype="PCM_16")
        cut(path)
    return make


def float_wav_with(value: float):
    def make(path: Path) -> None:
        x = tone(22_050, 1.0, 2)
        x[5000, 1] = value
        sf.write(path, x, 22_050, subtype="FLOAT")
    return make


def run_cli(capsys, *argv) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


def assert_one_line_error(err: str, fragment: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and fragment.lower() in err.lower(), err


# ---- inputs that must be refused ----------------------------------------------------------------

REFUSED = {
    "zero-byte mp3": ("empty.mp3", lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    "truncated wav": ("cut.wav", truncated("WAV"), "truncated"),
    "truncated flac": ("cut.flac", truncated("FLAC"), "truncated"),
    "truncated mp3": ("cut.mp3", truncated("mp3"), "truncated"),
    "image named .wav": ("picture.wav", lambda p: p.write_bytes(png_bytes()), "not an audio file"),
    "binary junk": ("junk.flac", lambda p: p.write_bytes(np.random.default_rng(11).bytes(30_000)), "not an audio file"),
    "0 samples": ("nothing.wav", lambda p: sf.write(p, np.zeros((0, 2)), 44_100), "no audio samples"),
    "infinite float": ("inf.wav", float_wav_with(np.inf), "NaN or infinite"),
    "header claims 1 GB, holds 1 s": (
        "short.wav", lambda p: p.write_bytes(wav_bytes(16_000, tone(16_000, 1.0)[:, 0], 1_000_000_000)), "truncated"),
}


@pytest.mark.parametrize("command", ["upscale", "analyze"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_broken_input_gives_one_line_exit_2_and_no_output(capsys, tmp_path, case, command):
    name, make, fragment = REFUSED[case]
    source = tmp_path / name
    make(source)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    extra = ["-o", out_dir / "result.flac", "-m", "sbr", "-q"] if command == "upscale" else []
    code, _, err, seconds = run_cli(capsys, command, source, *extra)
    assert code == 2
    assert_one_line_error(err, fragment)
    assert name in err  # the message names the file
    assert sorted(os.listdir(out_dir)) == []  # no output, no temporary file
    assert seconds < TIME_LIMIT_S


def test_a_file_too_short_for_the_lower_target_rate_is_refused(capsys, tmp_path):
    """One sample at 768 kHz resampled down to 48 kHz is no sample at all: the fuzz test found an
    empty (0-byte) FLAC written for it."""
    sf.write(tmp_path / "blip.wav", tone(768_000, 0.05)[:1], 768_000, subtype="PCM_24")
    code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "blip.wav", "-o", tmp_path / "out.flac")
    assert code == 2
    assert_one_line_error(err, "is too short for 48000 Hz: 1 samples at 768000 Hz make no sample at that rate")
    assert sorted(os.listdir(tmp_path)) == ["blip.wav"]
    with pytest.raises(UpscalerError, match="the audio is too short for 48000 Hz"):
        Upscaler("none", 48_000).upscale(Audio(np.zeros((1, 1), np.float32), 768_000))


def test_input_rate_above_the_target_is_resampled_down(capsys, tmp_path):
    """A 768 kHz file asked for at the default 48 kHz is written at 48 kHz, and the plan says why."""
    sf.write(tmp_path / "fast.wav", tone(768_000, 0.05), 768_000, subtype="PCM_24")
    code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "fast.wav", "-o", tmp_path / "out.flac")
    assert code == 0, err
    assert "below the input's 768000 Hz: resampled down" in err
    assert sf.info(tmp_path / "out.flac").samplerate == 48_000
    assert sf.info(tmp_path / "out.flac").frames == 2_400


# ---- odd but valid inputs: a correct result ---------------------------------------------------

def upscale_ok(capsys, source: Path, output: Path, *extra) -> Audio:
    code, _, err, seconds = run_cli(capsys, "upscale", source, "-o", output, "-q", *extra)
    assert code == 0 and err == "" and seconds < TIME_LIMIT_S, err
    return io.read_audio(output)


def analyze_ok(capsys, source: Path) -> dict:
    code, out, err, seconds = run_cli(capsys, "analyze", source, "--json")
    assert code == 0 and err == "" and seconds < TIME_LIMIT_S, err
    return json.loads(out)


def test_one_sample_files(capsys, tmp_path):
    sf.write(tmp_path / "one.wav", np.array([[0.5]]), 16_000, subtype="PCM_16")
    sf.write(tmp_path / "one_stereo.flac", np.array([[0.5, -0.5]]), 44_100, subtype="PCM_16")
    for name, rate in (("one.wav", 16_000), ("one_stereo.flac", 44_100)):
        for model in ("sbr", "none"):
            out = upscale_ok(capsys, tmp_path / name, tmp_path / f"{model}_{name}.flac", "-m", model)
            assert out.frames == output_length(1, rate, 48_000) and np.isfinite(out.samples).all()
        assert analyze_ok(capsys, tmp_path / name)["frames"] == 1


@pytest.mark.parametrize("name, content", [
    ("flac_content.wav", "FLAC"), ("mp3_content.flac", "mp3"), ("wav_content.mp3", "WAV"), ("ogg_content.mp3", "ogg"),
])
def test_wrong_extension_is_read_by_content(capsys, tmp_path, name, content):
    x = tone(22_050, 1.0, 2)
    source = tmp_path / name
    if content in ("mp3", "ogg"):
        io.write_audio(tmp_path / f"real.{content}", Audio(x.T, 22_050))
        (tmp_path / f"real.{content}").rename(source)
    else:
        sf.write(source, x, 22_050, format=content, subtype="PCM_16")
    out = upscale_ok(capsys, source, tmp_path / "out.flac", "-m", "sbr")
    assert out.channels == 2 and out.frames == output_length(io.read_audio(source).frames, 22_050, 48_000)
    assert analyze_ok(capsys, source)["sample_rate"] == 22_050


def test_dc_only_input_keeps_its_level_and_stays_finite(capsys, tmp_path):
    sf.write(tmp_path / "dc.wav", np.full((22_050, 2), 0.5), 22_050, subtype="PCM_16")
    out = upscale_ok(capsys, tmp_path / "dc.wav", tmp_path / "dc.flac", "-m", "sbr")
    middle = out.samples[:, 10_000:-10_000]
    assert np.isfinite(out.samples).all() and np.abs(out.samples).max() <= 1.0
    np.testing.assert_allclose(middle.mean(axis=1), 0.5, atol=0.005)
    removed = upscale_ok(capsys, tmp_path / "dc.wav", tmp_path / "no_dc.flac", "-m", "sbr", "--remove-dc")
    assert np.abs(removed.samples[:, -2000:]).max() < 0.01  # the 5 Hz high-pass has settled
    assert analyze_ok(capsys, tmp_path / "dc.wav")["dc_offset"] == pytest.approx([0.5, 0.5], abs=1e-3)


def test_full_scale_square_wave_is_limited_below_full_scale(capsys, tmp_path):
    t = np.arange(22_050) / 22_050
    square = np.where(np.sin(2 * np.pi * 441 * t) >= 0, 1.0, -1.0)
    sf.write(tmp_path / "square.wav", np.stack([square, square], 1), 22_050, subtype="PCM_16")
    out = upscale_ok(capsys, tmp_path / "square.wav", tmp_path / "square.flac", "-m", "sbr")
    assert 0.95 < np.abs(out.samples).max() <= 10 ** (-0.1 / 20) + 1e-4  # the lossless ceiling, -0.1 dBFS
    lossy = upscale_ok(capsys, tmp_path / "square.wav", tmp_path / "square.mp3", "-m", "sbr")
    assert np.isfinite(lossy.samples).all()
    report = analyze_ok(capsys, tmp_path / "square.wav")
    assert report["clipped_samples"] > 10_000 and report["peak_dbfs"] == pytest.approx(0.0, abs=0.01)


def test_eight_channels_are_kept(capsys, tmp_path):
    sf.write(tmp_path / "eight.wav", tone(16_000, 0.5, 8, amplitude=0.3), 16_000, subtype="PCM_16")
    out = upscale_ok(capsys, tmp_path / "eight.wav", tmp_path / "eight.flac", "-m", "sbr")
    assert out.channels == 8 and out.frames == 24_000
    levels = np.abs(out.samples).max(axis=1)
    assert np.all((levels > 0.25) & (levels < 0.35))  # every channel carries its tone
    assert analyze_ok(capsys, tmp_path / "eight.wav")["channels"] == 8


def test_1_khz_input(capsys, tmp_path):
    """The lowest readable rate; its analysis used to crash (K-weighting shelf above Nyquist)."""
    sf.write(tmp_path / "k1.wav", tone(1000, 2.0), 1000, subtype="PCM_16")
    report = analyze_ok(capsys, tmp_path / "k1.wav")
    assert report["sample_rate"] == 1000 and -12 < report["loudness_lufs"] < -6
    out = upscale_ok(capsys, tmp_path / "k1.wav", tmp_path / "k1.flac", "-m", "sbr", "--rate", "8000")
    assert out.sample_rate == 8000 and out.frames == 16_000
    assert np.abs(out.samples[0, 4000:12_000]).max() == pytest.approx(0.5, abs=0.02)


def test_768_khz_input(capsys, tmp_path):
    sf.write(tmp_path / "k768.wav", tone(768_000, 0.1), 768_000, subtype="PCM_24")
    assert analyze_ok(capsys, tmp_path / "k768.wav")["sample_rate"] == 768_000
    out = upscale_ok(capsys, tmp_path / "k768.wav", tmp_path / "out.wav", "-m", "none", "--rate", "768000")
    assert out.sample_rate == 768_000 and out.frames == 76_800
    np.testing.assert_allclose(out.samples[0, 2000:-2000], tone(768_000, 0.1)[2000:-2000, 0], atol=1e-3)


def test_wav_header_claiming_4_gb_reads_what_is_there(capsys, tmp_path):
    """A data size of 4 GB (more than 2 GB: the mark of a streamed WAV whose writer never knew
    the length) is not trusted: the samples present are read, with no 4 GB allocation."""
    x = tone(16_000, 1.0)[:, 0]
    (tmp_path / "huge.wav").write_bytes(wav_bytes(16_000, x, claimed_data_bytes=4_000_000_000))
    tracemalloc.start()
    try:
        out = upscale_ok(capsys, tmp_path / "huge.wav", tmp_path / "out.flac", "-m", "sbr")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.frames == 48_000 and peak < 200e6
    assert analyze_ok(capsys, tmp_path / "huge.wav")["frames"] == 16_000


# ---- two hours of silence: streamed in flat memory ------------------------------------------------

def two_hours_of_silence(path: Path, rate: int = 1000) -> int:
    """Stream-write 2 h of silence (8-bit, 1 kHz: 7.2 MB); returns the frame count."""
    minute = np.zeros((60 * rate, 1), np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_U8") as f:
        for _ in range(120):
            f.write(minute)
    return 120 * 60 * rate


def warm_up(capsys, tmp_path: Path, *argv) -> None:
    """Run a command once on a short file, so that lazy imports do not count as traced memory."""
    sf.write(tmp_path / "short.wav", np.zeros((2000, 1)), 1000, subtype="PCM_U8")
    assert run_cli(capsys, *[a if a != "INPUT" else tmp_path / "short.wav" for a in argv])[0] == 0
    for path in tmp_path.glob("warm*"):
        path.unlink()


def test_two_hours_of_silence_analyze_in_flat_memory(capsys, tmp_path):
    frames = two_hours_of_silence(tmp_path / "silence.wav")
    warm_up(capsys, tmp_path, "analyze", "INPUT")
    tracemalloc.start()
    try:
        report = analyze_ok(capsys, tmp_path / "silence.wav")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report["frames"] == frames and report["verdict"].startswith("silent")
    assert peak < frames * 4 / 4  # well under the decoded float32 size (28.8 MB)


class _StopAfter:
    """Stands in for the CLI progress bar: records traced memory, interrupts at ``fraction``."""

    fraction = 0.25
    current: list[int] = []

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, done: int, total: int) -> None:
        self.current.append(tracemalloc.get_traced_memory()[0])
        if done > self.fraction * total:
            raise KeyboardInterrupt

    def close(self) -> None:
        pass


def test_two_hours_of_silence_upscale_streams_and_ctrl_c_leaves_nothing(capsys, tmp_path, monkeypatch):
    """Memory stays flat through the first half hour of output, and an interrupt (Ctrl-C) then
    leaves no file; the whole run is in the slow test below."""
    frames = two_hours_of_silence(tmp_path / "silence.wav")
    warm_up(capsys, tmp_path, "upscale", "INPUT", "-o", tmp_path / "warm.flac", "-m", "none", "--rate", "8000", "-q")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setattr("audio_upscaler.cli.upscale.Progress", _StopAfter)
    _StopAfter.current = []
    tracemalloc.start()
    try:
        code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "silence.wav", "-o", out_dir / "out.flac",
                                  "-m", "none", "--rate", "8000", "-q")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 130 and err == "interrupted\n"
    assert os.listdir(out_dir) == []
    current = _StopAfter.current
    assert len(current) > 20 and max(current[len(current) // 4:]) < 1.2 * current[len(current) // 4] + 2e6  # flat
    assert peak < 8 * frames * 4 / 2  # well under the float32 output of the whole file (230 MB)


@pytest.mark.slow
def test_two_hours_of_silence_upscale_completes(capsys, tmp_path):
    frames = two_hours_of_silence(tmp_path / "silence.wav")
    code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "silence.wav", "-o", tmp_path / "out.flac",
                              "-m", "none", "--rate", "8000", "-q")
    assert code == 0 and err == ""
    assert io.probe(tmp_path / "out.flac").frames == 8 * frames


# ---- where the output goes ----------------------------------------------------------------------

@pytest.fixture
def locked_folder(tmp_path, monkeypatch):
    """A folder nobody may write to.  Root ignores permissions, so there ``os.access`` is told so."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
            False if Path(p) == locked and mode & os.W_OK else real_access(p, mode, **kw)))
    yield locked
    locked.chmod(0o700)


def test_unwritable_output_folder(capsys, tmp_path, locked_folder):
    sf.write(tmp_path / "in.wav", tone(16_000, 0.5), 16_000, subtype="PCM_16")
    code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "in.wav", "-o", locked_folder / "out.flac", "-q")
    assert code == 2
    assert_one_line_error(err, "permission denied")
    (tmp_path / "batch_in").mkdir()
    (tmp_path / "in.wav").rename(tmp_path / "batch_in" / "in.wav")
    code, _, err, _ = run_cli(capsys, "batch", tmp_path / "batch_in", "-o", locked_folder, "-q", "-j", "1")
    assert code == 2
    assert_one_line_error(err, "permission denied")
    assert os.listdir(locked_folder) == []


def fail_writes_with_enospc(monkeypatch, when) -> None:
    """Make libsndfile writes fail with 'no space left' where ``when(container, n)``: ``n`` counts
    the writes into files of that container (``RF64`` is the pipeline's two-pass temp file)."""
    real_write = sf.SoundFile.write
    calls: dict[str, int] = {}

    def write(self, data):
        calls[self.format] = calls.get(self.format, 0) + 1
        if when(self.format, calls[self.format]):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", write)


@pytest.mark.parametrize("stage", ["normalize pass", "final encode"])
def test_full_disk_during_two_pass_normalize_leaves_nothing(capsys, tmp_path, monkeypatch, stage):
    """The --normalize path writes a float temp file first, then the output; either may hit a full disk."""
    sf.write(tmp_path / "in.wav", tone(16_000, 20.0, 2), 16_000, subtype="PCM_16")  # several blocks
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    failing = "RF64" if stage == "normalize pass" else "FLAC"
    fail_writes_with_enospc(monkeypatch, lambda container, n: container == failing and n > 1)
    code, _, err, _ = run_cli(capsys, "upscale", tmp_path / "in.wav", "-o", out_dir / "out.flac",
                              "--normalize", "-1", "-m", "sbr", "-q")
    assert code == 2
    assert_one_line_error(err, "no space left" if failing == "RF64" else "disk full")
    assert os.listdir(out_dir) == []


def test_full_disk_during_batch_fails_each_file_and_leaves_nothing(capsys, tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(src / name, tone(16_000, 3.0), 16_000, subtype="PCM_16")
    fail_writes_with_enospc(monkeypatch, lambda container, n: n > 1)
    out = tmp_path / "out"
    code, stdout, err, _ = run_cli(capsys, "batch", src, "-o", out, "-m", "none", "-j", "1", "--json")
    summary = json.loads(stdout)
    assert code == 2 and summary["failed"] == 2 and all("disk full" in f["reason"] for f in summary["failures"])
    assert "Traceback" not in err and err.count("\n") == 2  # one line per failed file
    assert sorted(os.listdir(out)) == [".audio-upscaler-batch.jsonl", "batch-summary.json"]


def test_symlink_loops_in_batch_folders_end_and_each_file_is_done_once(capsys, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.wav", "sub/b.wav"):
        sf.write(src / name, tone(16_000, 0.5), 16_000, subtype="PCM_16")
    (src / "sub" / "up").symlink_to("..", target_is_directory=True)  # in/sub/up -> in
    (src / "sub" / "here").symlink_to(".", target_is_directory=True)  # in/sub/here -> in/sub
    (src / "self.wav").symlink_to("self.wav")  # a file symlink pointing at itself
    code, stdout, err, seconds = run_cli(capsys, "batch", src, "-o", tmp_path / "out", "--recursive",
                                         "-m", "none", "-j", "1", "--json")
    summary = json.loads(stdout)
    assert seconds < TIME_LIMIT_S and code == 2
    assert [(r["name"], r["status"]) for r in summary["results"]] == [
        ("a.wav", "done"), ("self.wav", "failed"), ("sub/b.wav", "done")]
    assert "symbolic links" in summary["failures"][0]["reason"] and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.flac")) == [
        "a.flac", "sub/b.flac"]
