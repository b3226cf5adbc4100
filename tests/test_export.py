"""Export: the DFT-convolution STFT pair, ONNX and TorchScript round trips for every family that
supports them (the others fail for the stated reasons), int8 quantization, pruning, the
onnxruntime backend of the pipeline (without torch) and ``audio-upscaler export``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from audio_upscaler.audio import Audio
from audio_upscaler.errors import UpscalerError
from audio_upscaler.export.common import check_clips, eager_runner, export_reference, mean_lsd, run_clips
from audio_upscaler.export.job import TOLERANCE, export_model
from audio_upscaler.export.manifest import read_manifest
from audio_upscaler.export.prune import compressed_bytes, distillation, prunable_weights, prune_model, sparsity_of
from audio_upscaler.io import write_audio
from audio_upscaler.models import registry
from audio_upscaler.models.blocks import ISTFT, STFT, RealISTFT, RealSTFT, conv_stft
from audio_upscaler.pipeline import Upscaler

pytest.importorskip("onnxruntime", reason="the export tests need the [export] extra (onnx, onnxruntime)")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAMILIES = registry.families()
ONNX = [f for f in FAMILIES if registry.get_class(f).supports_onnx]
#: Families that do not trace to TorchScript, and why (the README table says the same).
NO_TORCHSCRIPT = {"wavelet": "its wavelet filters' padding is computed from the input length in Python, "
                             "so a trace freezes one length"}
TORCHSCRIPT = [f for f in FAMILIES if f not in NO_TORCHSCRIPT]


def tiny_model(family: str, **overrides):
    """The family's tiny model with every zero-initialized tensor randomized (mildly, so the
    output stays at audio level and the absolute tolerance means what it says)."""
    torch.manual_seed(0)
    model = registry.build(family, **{**registry.get_class(family).tiny_config, **overrides}).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=0.05)
    return model


def short_clips(rate: int):
    """Check clips of 0.3 s (a stereo one too) at lengths off the alignment grid."""
    clips = check_clips(rate, seconds=0.3, cutoffs_hz=(5000.0, 9000.0))
    clips[1].degraded = np.stack([clips[1].degraded[0, :-37], 0.5 * clips[1].degraded[0, 37:]])
    return clips


# ---------------------------------------------------------------------- STFT pair


@pytest.mark.parametrize("n_fft, hop", [(256, 64), (1024, 256)])
def test_conv_stft_pair_matches_torch_stft_istft(n_fft, hop):
    x = 0.5 * torch.randn(3, hop * 40, generator=torch.Generator().manual_seed(0))
    stft, real = STFT(n_fft, hop), RealSTFT(n_fft, hop)
    spec = stft(x)
    with conv_stft(real):
        re, im = real(x)
    scale = spec.abs().max()
    assert torch.allclose(re, spec.real, atol=2e-6 * scale) and torch.allclose(im, spec.imag, atol=2e-6 * scale)
    assert real.conv is False  # restored after the block

    noise = torch.randn_like(spec)  # also spectra that no signal has
    inverse = RealISTFT(n_fft, hop)
    with conv_stft(inverse):
        for s in (spec, noise):
            y = inverse(s.real, s.imag, x.shape[1])
            assert torch.allclose(y, ISTFT(n_fft, hop)(s, x.shape[1]), atol=1e-5)
    assert torch.equal(torch.stack(real(x)), torch.stack([spec.real, spec.imag]))  # fft path: the same op


def test_apnet_is_the_same_model_with_either_stft():
    model = tiny_model("apnet", prior="copy")
    x = 0.3 * torch.randn(2, 1, 4000, generator=torch.Generator().manual_seed(1))
    cutoff = torch.tensor([5000.0, 11000.0])
    with torch.no_grad():
        fft = model(x, cutoff)
        with conv_stft(model):
            conv = model(x, cutoff)
    assert (fft - x).abs().max() > 0.05  # not the identity
    assert (fft - conv).abs().max() < 1e-5 * max(1.0, float(fft.abs().max()))


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("family", ONNX)
def test_onnx_round_trip(family, tmp_path):
    from audio_upscaler.export.onnx import export_onnx
    from audio_upscaler.export.onnx_backend import OnnxModel

    model = tiny_model(family, **({"prior": "copy"} if family == "apnet" else {}))  # apnet's default prior
    export_onnx(model, tmp_path)
    clips = short_clips(model.sample_rate)
    exported = OnnxModel(tmp_path)
    reference = export_reference(model)  # eager, with the STFTs computed as the graph does
    errors = [np.abs(a - b).max() for a, b in zip(run_clips(exported, clips), run_clips(reference, clips))]
    assert max(errors) < TOLERANCE, errors
    x = np.stack([clips[0].degraded, 0.5 * clips[0].degraded])  # batch of 2, dynamic axis
    cutoffs = np.array([5000.0, 9000.0])
    assert np.abs(exported(x, cutoffs) - reference(x, cutoffs)).max() < TOLERANCE


def test_onnx_export_keeps_the_restore_task_and_its_hole_filling(tmp_path):
    """A restore model with hole filling, rescaled kept bins, a fill ceiling and partial holes in
    phase exports with its task and gives the same output as in PyTorch."""
    from audio_upscaler.export.onnx import export_onnx
    from audio_upscaler.export.onnx_backend import OnnxExtender, OnnxModel

    model = tiny_model("apnet", prior="copy", fill_holes_db=3.0, kept_bins="rescale", fill_ceiling_db=6.0,
                       fill_phase_db=20.0)
    with torch.no_grad():
        model.amp_head.bias += 2.0  # +17 dB everywhere: the ceiling is what bounds the band below the cutoff
    model.task = "restore"
    export_onnx(model, tmp_path)
    assert OnnxModel(tmp_path).manifest.task == "restore"
    assert not OnnxExtender(OnnxModel(tmp_path), "x").keeps_low_band
    clips = short_clips(model.sample_rate)
    errors = [np.abs(a - b).max() for a, b in zip(run_clips(OnnxModel(tmp_path), clips),
                                                  run_clips(export_reference(model), clips))]
    assert max(errors) < TOLERANCE, errors


def test_families_without_onnx_support_refuse_clearly(tmp_path):
    from audio_upscaler.export.onnx import export_onnx

    for family in sorted(set(FAMILIES) - set(ONNX)):
        with pytest.raises(UpscalerError, match="does not support ONNX"):
            export_onnx(tiny_model(family), tmp_path / family)


@pytest.mark.parametrize("family", TORCHSCRIPT)
def test_torchscript_round_trip(family, tmp_path):
    report = export_model(tiny_model(family), tmp_path, fmt="torchscript", speed_seconds=0)
    assert report["max_abs_error"] < TOLERANCE
    assert read_manifest(tmp_path).format == "torchscript"


@pytest.mark.parametrize("edit, message", [({"alignment": 0}, "alignment must be at least 1"),
                                           ({"alignment": "64"}, "alignment must be a whole number"),
                                           ({"context_samples": -5}, "sample counts 0 or more"),
                                           ({"source_weights_sha256": "abc"}, "source_weights_sha256 must be a SHA-256"),
                                           ({"source_config_sha256": 5}, "source_config_sha256 must be a string or null"),
                                           (None, "cannot read")])
def test_a_hand_edited_manifest_is_a_clear_error(tmp_path, edit, message):
    """alignment 0 was an internal ZeroDivisionError when the export was used; JSON that is not
    an object an AttributeError."""
    export_model(tiny_model("edge"), tmp_path, fmt="torchscript", speed_seconds=0)
    path = tmp_path / "export.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps([data] if edit is None else {**data, **edit}))
    with pytest.raises(UpscalerError, match=message):
        read_manifest(tmp_path)


@pytest.mark.parametrize("family", sorted(NO_TORCHSCRIPT))
def test_families_without_torchscript_fail_the_check(family, tmp_path):
    """If this starts passing, the family traces now: move it out of NO_TORCHSCRIPT and the README."""
    with pytest.raises(UpscalerError, match="differs from the PyTorch model"):
        export_model(tiny_model(family), tmp_path, fmt="torchscript", speed_seconds=0)


def test_a_failed_check_leaves_no_export_and_keeps_the_previous_one(tmp_path):
    """The export was written into the output folder before its check: a failed check left a
    loadable export (model file + export.json) behind, replacing the good one that was there."""
    good = tmp_path / "good"
    export_model(tiny_model("edge"), good, fmt="torchscript", speed_seconds=0)
    before = (good / "model.pt").read_bytes()
    with pytest.raises(UpscalerError, match="differs from the PyTorch model"):
        export_model(tiny_model("wavelet"), good, fmt="torchscript", speed_seconds=0)
    assert read_manifest(good).family == "edge" and (good / "model.pt").read_bytes() == before
    assert sorted(p.name for p in good.iterdir()) == ["export.json", "model.pt"]  # no temporary folder left
    fresh = tmp_path / "new" / "export"
    with pytest.raises(UpscalerError, match="differs from the PyTorch model"):
        export_model(tiny_model("wavelet"), fresh, fmt="torchscript", speed_seconds=0)
    assert not fresh.exists()


def test_cli_export_into_a_file_is_a_one_line_error(tmp_path, capsys):
    from audio_upscaler.cli import main

    model = tmp_path / "tiny"
    tiny_model("edge").save(model)
    (tmp_path / "taken").write_text("mine")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        assert main(["export", str(model), "--no-speed", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: cannot create the export folder") and err.count("\n") == 1, err
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize("args, message", [(["-o", ""], "the output folder (-o) is empty"),
                                           (["--fine-tune-steps", "-3"], "--fine-tune-steps must be 0 or more")])
def test_cli_export_refuses_an_empty_output_and_negative_fine_tuning(tmp_path, capsys, args, message):
    """`-o ''` quietly meant the default folder (upscale refuses an empty -o); -3 steps were a no-op."""
    from audio_upscaler.cli import main

    model = tmp_path / "tiny"
    tiny_model("edge").save(model)
    assert main(["export", str(model), "--no-speed", *args]) == 2
    assert capsys.readouterr().err == f"error: {message}" + ("" if args[0] == "-o" else ", got -3") + "\n"
    assert not (model / "onnx").exists()


def test_cli_export_asks_before_replacing_an_export_in_an_output_folder(tmp_path, capsys):
    """An export in the -o folder was replaced silently (upscale and train --export ask first)."""
    from audio_upscaler.cli import main

    model, out = tmp_path / "tiny", tmp_path / "mine"
    tiny_model("edge").save(model)
    assert main(["export", str(model), "--no-speed", "-o", str(out)]) == 0
    before = (out / "export.json").read_text()
    capsys.readouterr()
    assert main(["export", str(model), "--no-speed", "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {out} already holds an export; pass --overwrite to replace it\n"
    assert (out / "export.json").read_text() == before
    assert main(["export", str(model), "--no-speed", "-o", str(out), "--overwrite"]) == 0


def test_a_check_clip_too_short_for_the_model_is_a_one_line_error(tmp_path, capsys):
    """A 1-sample --clip crashed inside the model's STFT (internal RuntimeError); a silent one passed
    every check and would calibrate int8-static on nothing."""
    from audio_upscaler.cli import main

    model = tmp_path / "tiny"
    tiny_model("edge").save(model)
    clip = tmp_path / "click.wav"
    write_audio(clip, Audio(np.array([[0.5]], np.float32), 48_000))
    assert main(["export", str(model), "--no-speed", "--clip", str(clip), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {clip}: 1 samples") and "too short for a check clip" in err, err
    assert not (tmp_path / "out").exists()
    clip = tmp_path / "silence.wav"
    write_audio(clip, Audio(np.zeros((1, 48_000), np.float32), 48_000))  # passed every check (LSD 0.000)
    assert main(["export", str(model), "--no-speed", "--clip", str(clip), "-o", str(tmp_path / "out")]) == 2
    assert "is silent" in capsys.readouterr().err and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- int8 and pruning


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_is_smaller_and_close_to_fp32(mode, tmp_path):
    # wider than tiny: in a tiny model the graph itself, not the weights, is most of the file
    report = export_model(tiny_model("edge", base_channels=32, max_channels=128), tmp_path, quantize=mode, speed_seconds=0.5)
    q = report["int8"]
    assert q["bytes_int8"] < 0.7 * q["bytes_fp32"]
    assert q["max_abs_error_vs_fp32"] < 0.05  # int8 noise, not a different model
    assert abs(q["lsd_int8"] - q["lsd_fp32"]) < 0.5
    assert set(report["x_real_time"]) == {"eager", "onnx", f"onnx-int8-{mode}"}
    assert read_manifest(tmp_path).quantization == f"int8-{mode}"


def test_static_int8_keeps_the_stft_in_float(tmp_path):
    import onnx

    report = export_model(tiny_model("apnet"), tmp_path, quantize="static", speed_seconds=0)
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    convs = {n.name: n.input[1] for n in graph.node if n.op_type in ("Conv", "ConvTranspose")}
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    assert convs["/stft/Conv"] not in dequantized and convs["/istft/ConvTranspose"] not in dequantized
    assert any(w in dequantized for w in convs.values())  # while the network's convs are int8
    assert report["int8"]["max_abs_error_vs_fp32"] < 0.05


def test_magnitude_and_random_pruning():
    model = tiny_model("edge")
    dense = compressed_bytes(model)
    weights = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable_weights(model)])
    threshold = weights.kthvalue(weights.numel() // 2).values
    prune_model(model, 0.5, "magnitude")
    assert sparsity_of(model) == pytest.approx(0.5, abs=1e-3)
    kept = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable_weights(model)])
    assert kept[kept > 0].min() >= threshold  # the smallest weights went
    assert compressed_bytes(model) < 0.8 * dense

    rand = prune_model(tiny_model("edge"), 0.5, "random")
    assert sparsity_of(rand) == pytest.approx(0.5, abs=1e-3)
    zeros = torch.cat([(m.weight == 0).flatten() for m, _ in prunable_weights(rand)])
    original = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable_weights(tiny_model("edge"))])
    assert original[zeros].max() > threshold  # random: large weights were removed too


def test_fine_tune_after_pruning_keeps_zeros_and_recovers():
    teacher = tiny_model("edge")
    clips = short_clips(teacher.sample_rate)
    target = run_clips(eager_runner(teacher), clips)

    def lsd_to_teacher(model) -> float:
        return mean_lsd(run_clips(eager_runner(model), clips), target, teacher.sample_rate)

    plain = prune_model(tiny_model("edge"), 0.6, "random")
    tuned = prune_model(tiny_model("edge"), 0.6, "random", fine_tune=distillation(teacher, clips, steps=30))
    assert sparsity_of(tuned) == pytest.approx(0.6, abs=1e-3)  # the masks held during the fine-tune
    assert lsd_to_teacher(tuned) < 0.7 * lsd_to_teacher(plain)


def test_pruned_export_reports_size_speed_and_quality(tmp_path):
    report = export_model(tiny_model("waveunet"), tmp_path, sparsity=0.5, speed_seconds=0.3)
    p = report["pruning"]
    assert p["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert p["compressed_bytes_after"] < p["compressed_bytes_before"]
    assert p["lsd_vs_unpruned"] > 0 and p["x_real_time_after"] > 0
    assert report["max_abs_error"] < TOLERANCE  # the export matches the pruned model


# ---------------------------------------------------------------------- the onnxruntime backend


@pytest.fixture(scope="module")
def onnx_model_dir(tmp_path_factory):
    """``<models>/tiny/`` with PyTorch weights and their ONNX export in ``tiny/onnx/``."""
    from audio_upscaler.export.onnx import export_onnx

    root = tmp_path_factory.mktemp("models")
    model = tiny_model("edge")
    model.save(root / "tiny")
    export_onnx(model, root / "tiny" / "onnx")
    return root


def test_pipeline_onnxruntime_backend_equals_torch(onnx_model_dir, monkeypatch):
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(onnx_model_dir))
    x = check_clips(16_000, seconds=0.5, cutoffs_hz=(6000.0,))[0].degraded
    audio = Audio(np.concatenate([x, x[:, ::-1]]), 16_000)
    outputs = [Upscaler("tiny", 44_100, cutoff_hz=6000, backend=b).upscale(audio).samples for b in ("torch", "onnxruntime")]
    assert np.abs(outputs[0] - outputs[1]).max() < TOLERANCE
    with pytest.raises(UpscalerError, match="no ONNX export named"):
        Upscaler("missing", 48_000, backend="onnxruntime")


def test_auto_on_onnxruntime_without_an_export_says_how_to_make_one(monkeypatch, tmp_path):
    from audio_upscaler.extenders import choose_extender

    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(tmp_path))  # the shipped models have no ONNX export
    name, reason = choose_extender("auto", full_band=False, lossy=False, backend="onnxruntime")
    assert name == "sbr" and "no model exported to ONNX" in reason and "audio-upscaler export" in reason


def test_auto_on_onnxruntime_with_no_restore_export_says_so(monkeypatch, tmp_path):
    """With only 'default' exported, a lossy input read "no 'restore' model is installed" on
    onnxruntime, though the shipped restore model is installed: what it lacks is an export."""
    from audio_upscaler.extenders import choose_extender
    from audio_upscaler.export.manifest import MANIFEST_FILE

    (tmp_path / "default" / "onnx").mkdir(parents=True)
    (tmp_path / "default" / "onnx" / MANIFEST_FILE).write_text("{}")
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(tmp_path))
    name, reason = choose_extender("auto", full_band=False, lossy=True, backend="onnxruntime")
    assert name == "default" and "not installed" not in reason and "is installed" not in reason
    assert "no 'restore' model is exported to ONNX" in reason and "audio-upscaler export restore" in reason


def test_streaming_runs_an_onnx_export(onnx_model_dir):
    from audio_upscaler.export.onnx_backend import load_extender
    from audio_upscaler.models.base import UpscalerModel
    from audio_upscaler.streaming import StreamingUpscaler

    x = check_clips(16_000, seconds=0.4, cutoffs_hz=(6000.0,))[0].degraded
    runs = []
    for model in (UpscalerModel.load(onnx_model_dir / "tiny"), load_extender(str(onnx_model_dir / "tiny" / "onnx"))):
        streamer = StreamingUpscaler(model, 16_000, 48_000, 320, cutoff_hz=6000)
        blocks = [streamer.feed(x[:, i : i + 320]) for i in range(0, x.shape[1], 320)]
        runs.append(np.concatenate([*blocks, streamer.flush()], axis=1))
    assert runs[0].shape == runs[1].shape
    assert np.abs(runs[0] - runs[1]).max() < TOLERANCE


def upscale_without_torch(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """``audio-upscaler upscale ARGS`` in a fresh interpreter that fails if torch gets imported."""
    script = ("import sys; from audio_upscaler.cli import main; "
              f"rc = main(['upscale', *{args!r}]); "
              "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, env=env)


def test_cli_export_then_upscale_without_torch(onnx_model_dir, tmp_path):
    from audio_upscaler.cli import main

    out = tmp_path / "export"
    assert main(["export", str(onnx_model_dir / "tiny"), "--quantize", "int8-static", "--no-speed", "-o", str(out), "--json"]) == 0
    report = read_manifest(out).report
    assert report["max_abs_error"] < TOLERANCE  # checked on the fp32 graph before quantizing
    assert read_manifest(out).quantization == "int8-static" and report["int8"]["max_abs_error_vs_fp32"] < 0.05

    source = tmp_path / "in.wav"
    write_audio(source, Audio(check_clips(22_050, seconds=0.5, cutoffs_hz=(5000.0,))[0].degraded, 22_050))
    done = upscale_without_torch([str(source), "-o", str(tmp_path / "out.wav"), "-m", str(out), "--backend",
                                  "onnxruntime", "-q"])
    assert done.returncode == 0, done.stderr.decode()
    from audio_upscaler.io import probe

    assert probe(tmp_path / "out.wav").sample_rate == 48_000


def test_batch_runs_an_onnx_export(onnx_model_dir, tmp_path, monkeypatch):
    from audio_upscaler.cli import main
    from audio_upscaler.io import probe

    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(onnx_model_dir))
    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.wav"):
        write_audio(tmp_path / "in" / name, Audio(check_clips(16_000, seconds=0.3, cutoffs_hz=(5000.0,))[0].degraded, 16_000))
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "tiny", "--runtime", "onnxruntime",
                 "-j", "1", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.flac")) == ["a.flac", "b.flac"]
    assert probe(tmp_path / "out" / "a.flac").sample_rate == 48_000
    (tmp_path / "other").mkdir()
    assert main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "other"), "-m", "missing", "--runtime",
                 "onnxruntime", "-j", "1", "-q"]) != 0  # no such export: a clear failure, not a torch fallback


# ---------------------------------------------------------------------- exports against the installed weights


def _retrained(folder, seed: int = 1):
    """Other weights of the same family and size saved into ``folder`` (a retrained model)."""
    model = tiny_model("edge")
    with torch.no_grad():
        next(model.parameters()).add_(0.01 * seed)
    model.save(folder)


def _upscale_by_name(name: str, tmp_path, capsys) -> tuple[int, str]:
    from audio_upscaler.cli import main

    source = tmp_path / "in.wav"
    if not source.exists():
        write_audio(source, Audio(check_clips(16_000, seconds=0.3, cutoffs_hz=(5000.0,))[0].degraded, 16_000))
    capsys.readouterr()
    rc = main(["upscale", str(source), "-o", str(tmp_path / "out.wav"), "-m", name, "--runtime", "onnxruntime",
               "--overwrite"])
    return rc, capsys.readouterr().err


def test_an_export_of_retrained_weights_of_the_same_name_is_refused(tmp_path, monkeypatch, capsys):
    """export.json recorded nothing of the weights it was made from: after the user retrained
    'tiny' in the models folder, the old ONNX export kept running under that name."""
    from audio_upscaler.cli import main
    from audio_upscaler.extenders import choose_extender

    models = tmp_path / "models"
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(models))
    tiny_model("edge").save(models / "tiny")
    assert main(["export", "tiny", "--no-speed"]) == 0
    manifest = read_manifest(models / "tiny" / "onnx")
    assert manifest.source_weights_sha256 == registry.sha256(models / "tiny" / "model.safetensors")
    assert manifest.source_config_sha256 is not None
    assert choose_extender("tiny", False, False, "onnxruntime") == ("tiny", "chosen by the user")  # checked: no note
    assert _upscale_by_name("tiny", tmp_path, capsys)[0] == 0

    _retrained(models / "tiny")
    rc, err = _upscale_by_name("tiny", tmp_path, capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err == (f"error: the ONNX export of 'tiny' in {models / 'tiny' / 'onnx'} was made from other weights than "
                   f"the installed 'tiny' ({models / 'tiny'}); run `audio-upscaler export tiny` again, or name the "
                   "export folder itself to run it as it is\n")
    with pytest.raises(UpscalerError, match="made from other weights than the installed 'tiny'"):
        Upscaler("tiny", 48_000, backend="onnxruntime")
    # named by its folder, the export runs as before (the user chose that file)
    assert _upscale_by_name(str(models / "tiny" / "onnx"), tmp_path, capsys)[0] == 0
    assert _upscale_by_name(str(models / "tiny" / "onnx" / "model.onnx"), tmp_path, capsys)[0] == 0
    # the command it gives makes a good export again
    assert main(["export", "tiny", "--no-speed"]) == 0
    assert _upscale_by_name("tiny", tmp_path, capsys)[0] == 0


def test_an_export_made_with_other_model_settings_is_refused(tmp_path, monkeypatch, capsys):
    """The same weights under another config.json (an inference setting changed, another task)
    are another model; bookkeeping such as package_version and key order is not."""
    models = tmp_path / "models"
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(models))
    model = tiny_model("edge")
    model.save(models / "tiny")
    export_model(model, models / "tiny" / "onnx", speed_seconds=0, source=models / "tiny")
    config = models / "tiny" / "config.json"
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**dict(reversed(list(meta.items()))), "package_version": "9.9"}))  # no change
    Upscaler("tiny", 48_000, backend="onnxruntime")
    config.write_text(json.dumps({**meta, "task": "restore"}))
    rc, err = _upscale_by_name("tiny", tmp_path, capsys)
    assert rc == 2 and "was made from other model settings (config.json) than the installed 'tiny'" in err, err


def test_an_export_of_a_shipped_name_is_checked_against_the_shipped_weights(tmp_path, monkeypatch, capsys):
    """A package update shipping new 'default' weights left the user's ONNX export of the old
    ones running as 'default'. The command given keeps the export's quantization and folder."""
    models = tmp_path / "models"
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(models))
    _retrained(tmp_path / "old-default")  # stands for the weights shipped before the update
    export_model(tiny_model("edge"), models / "default" / "onnx", speed_seconds=0, source=tmp_path / "old-default")
    rc, err = _upscale_by_name("default", tmp_path, capsys)
    assert rc == 2 and err.startswith("error: the ONNX export of 'default' in ") and err.count("\n") == 1, err
    assert f"than the installed 'default' ({registry.SHIPPED_DIR / 'default'}); run `audio-upscaler export default` again" in err
    path = models / "default" / "onnx" / "export.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "quantization": "int8-static"}))
    rc, err = _upscale_by_name("default", tmp_path, capsys)
    assert (f"run `audio-upscaler export default --quantize int8-static -o {models / 'default' / 'onnx'} --overwrite` "
            "again") in err, err
    manifest = json.loads(path.read_text())  # a pruned export: the command prunes the same way again
    manifest["report"]["pruning"] = {"method": "random", "target_sparsity": 0.5, "fine_tune_steps": 200}
    path.write_text(json.dumps(manifest))
    rc, err = _upscale_by_name("default", tmp_path, capsys)
    assert ("run `audio-upscaler export default --quantize int8-static --prune 0.5 --prune-method random "
            f"--fine-tune-steps 200 -o {models / 'default' / 'onnx'} --overwrite` again") in err, err


def test_an_export_without_the_fingerprint_runs_with_a_note(tmp_path, monkeypatch, capsys):
    """Exports made before the fingerprint was recorded cannot be checked: they still run by name,
    and the plan says that they are unchecked; without installed weights of the name (an export
    copied alone) there is nothing to check and nothing to say."""
    from audio_upscaler.export.onnx import export_onnx
    from audio_upscaler.extenders import choose_extender

    models = tmp_path / "models"
    monkeypatch.setenv("AUDIO_UPSCALER_MODELS", str(models))
    model = tiny_model("edge")
    export_onnx(model, models / "tiny" / "onnx")  # records no source
    assert read_manifest(models / "tiny" / "onnx").source_weights_sha256 is None
    assert choose_extender("tiny", False, False, "onnxruntime") == ("tiny", "chosen by the user")
    model.save(models / "tiny")
    name, reason = choose_extender("tiny", False, False, "onnxruntime")
    assert name == "tiny" and reason == (
        f"chosen by the user; the ONNX export of 'tiny' in {models / 'tiny' / 'onnx'} records no fingerprint of the "
        "weights it was made from (an older version made it), so it is not checked against the installed 'tiny'; "
        "`audio-upscaler export tiny` refreshes it")
    rc, err = _upscale_by_name("tiny", tmp_path, capsys)
    assert rc == 0 and "records no fingerprint" in err


def test_an_export_run_by_name_is_checked_without_torch(onnx_model_dir, tmp_path):
    """Finding the installed weights to check against, and the plan line (which names a user
    folder shadowing a shipped model), used to import torch through models.base."""
    source = tmp_path / "in.wav"
    write_audio(source, Audio(check_clips(16_000, seconds=0.3, cutoffs_hz=(5000.0,))[0].degraded, 16_000))
    done = upscale_without_torch([str(source), "-o", str(tmp_path / "out.wav"), "-m", "tiny", "--runtime", "onnxruntime"],
                                 {**os.environ, "AUDIO_UPSCALER_MODELS": str(onnx_model_dir)})
    assert done.returncode == 0, done.stderr.decode()
    assert "records no fingerprint" in done.stderr.decode()  # the fixture's export records no source
