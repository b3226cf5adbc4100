"""``audio-upscaler evaluate``: metrics of a file pair, delay reporting, resampling, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler.cli import main

from .signals import harmonic_tone

RATE = 48_000


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def reference(tmp_path):
    """One second of full-band harmonic notes plus a little noise, float WAV at 48 kHz."""
    x = harmonic_tone(RATE, 1.0)[0] + 0.01 * np.random.default_rng(1).standard_normal(RATE)
    path = tmp_path / "ref.wav"
    sf.write(path, x.astype(np.float32), RATE, subtype="FLOAT")
    return path, x.astype(np.float32)


def test_identity_gives_zero_lsd_and_infinite_snr(capsys, reference):
    path, _ = reference
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", path,
                           "--input-cutoff", 8000, "--json")
    assert code == 0
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    metrics = result["metrics"]
    assert metrics["lsd"] == 0.0 and metrics["lsd_hf"] == 0.0 and metrics["lsd_lf"] == 0.0
    assert metrics["snr"] == "inf" and float(metrics["snr"]) == math.inf and metrics["delay_samples"] == 0
    assert result["estimate"]["resampled_to"] is None and result["input_cutoff_hz"] == 8000
    assert metrics["pesq_wb"] is None  # NaN in strict JSON: only with --speech


def test_delayed_copy_reports_and_removes_the_delay(capsys, reference, tmp_path):
    path, x = reference
    delayed = tmp_path / "late.wav"
    sf.write(delayed, np.concatenate([np.zeros(480, np.float32), x]), RATE, subtype="FLOAT")
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", delayed, "--json")
    assert code == 0
    metrics = json.loads(out)["metrics"]
    assert metrics["delay_samples"] == 480 and metrics["delay_ms"] == pytest.approx(10.0)
    assert metrics["length_difference"] == 480
    assert metrics["lsd"] < 0.05 and float(metrics["snr"]) > 60  # aligned, it is the same signal
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", delayed)
    assert "the estimate lags the reference by 480 samples (10.00 ms)" in out
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", delayed, "--no-align", "--json")
    assert json.loads(out)["metrics"]["snr"] < 10  # not forgiven without alignment


def test_a_short_estimate_and_a_delay_at_the_search_limit_are_pointed_out(capsys, reference, tmp_path):
    """Half an estimate scored LSD 0 and SNR inf with nothing said; a delay found at the edge of
    --max-delay (where a larger real one would also be reported) was reported without a warning."""
    path, x = reference
    half = tmp_path / "half.wav"
    sf.write(half, x[: RATE // 2], RATE, subtype="FLOAT")
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", half)
    assert code == 0 and "note: the estimate is 0.50 s shorter than the reference; only the part both cover" in out
    late = tmp_path / "late.wav"  # 10 ms late: found at the edge of a 10 ms search
    sf.write(late, np.concatenate([np.zeros(480, np.float32), x]), RATE, subtype="FLOAT")
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", late, "--max-delay", 0.01)
    assert "lags the reference by 480 samples" in out
    assert "note: that delay is the largest searched (--max-delay 0.01 s)" in out
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", late)  # 0.1 s: inside, no notes
    assert "lags the reference by 480 samples" in out and "note:" not in out


def test_text_table_lists_every_metric(capsys, reference):
    path, _ = reference
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", path)
    assert code == 0
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[4:] if line}
    assert rows["LSD"].split()[1] == "0.000"
    assert "inf" in rows["SNR"] and "--input-cutoff" in rows["LSD-HF"] and "--speech" in rows["STOI"]
    assert len(rows) == 14


def test_estimate_at_another_rate_is_resampled(capsys, reference, tmp_path):
    path, x = reference
    other = tmp_path / "est_96k.wav"
    import soxr

    sf.write(other, soxr.resample(x, RATE, 96_000, quality="VHQ").astype(np.float32), 96_000, subtype="FLOAT")
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", other, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["estimate"]["sample_rate"] == 96_000 and result["estimate"]["resampled_to"] == RATE
    assert result["metrics"]["delay_samples"] == 0 and result["metrics"]["snr"] > 25  # only the band edge near 24 kHz differs
    code, out, _ = run_cli(capsys, "evaluate", "--reference", path, "--estimate", other)
    assert "resampled from 96000 Hz to 48000 Hz" in out


@pytest.mark.parametrize("case", ["missing", "garbage", "channels", "cutoff", "delay-nan", "delay-inf"])
def test_bad_input_gives_exit_2_and_one_line(capsys, reference, tmp_path, case):
    path, x = reference
    estimate, extra = tmp_path / "est.wav", []
    if case == "garbage":
        estimate.write_bytes(b"RIFF\x00\x00not audio at all" * 20)
    elif case == "channels":
        sf.write(estimate, np.stack([x, x], axis=1), RATE, subtype="FLOAT")
    elif case == "cutoff":
        estimate, extra = path, ["--input-cutoff", 30000]
    elif case.startswith("delay-"):  # was an internal error (ValueError / OverflowError)
        estimate, extra = path, ["--max-delay", case.removeprefix("delay-")]
    code, out, err = run_cli(capsys, "evaluate", "--reference", path, "--estimate", estimate, *extra)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
