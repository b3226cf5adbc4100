"""Model families: shape contract, checkpoints, gradients, overfitting, chunking and the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_upscaler.audio import Audio
from audio_upscaler.dsp.resample import resample
from audio_upscaler.errors import UpscalerError
from audio_upscaler.losses import GeneratorLoss
from audio_upscaler.models import registry
from audio_upscaler.models.base import ModelExtender, UpscalerModel

from .signals import harmonic_tone

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAMILIES = registry.families()
#: The tiny configuration each family declares for tests.
TINY = {family: registry.get_class(family).tiny_config for family in FAMILIES}


def tiny(family: str, seed: int = 0) -> UpscalerModel:
    torch.manual_seed(seed)
    return registry.build(family, **TINY[family]).eval()


def randomized(model: UpscalerModel, std: float = 0.5) -> UpscalerModel:
    """Give zero-initialized tensors (identity-start heads, FiLM) random values, so that an
    untrained model's output depends on every input, the cutoff included."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=std)
    return model


def run(model: UpscalerModel, x: np.ndarray | torch.Tensor, cutoff: float = 6000.0) -> torch.Tensor:
    x = torch.as_tensor(x)
    with torch.no_grad():
        return model(x, torch.full((x.shape[0],), cutoff))


def test_every_family_has_a_tiny_config_and_a_yaml():
    assert FAMILIES, "no model family registered"
    for family in FAMILIES:
        assert TINY[family], f"{family} declares no tiny_config"
        model = registry.build_from_yaml(CONFIGS / f"{family}.yaml")
        assert model.family == family
        assert model.config == registry.make_config(family)  # the YAML mirrors the defaults


@pytest.mark.parametrize("family", FAMILIES)
def test_family_info(family):
    info = registry.family_info(family)
    assert info["family"] == family and info["description"]
    assert info["parameters"] == registry.build(family).num_parameters() > 0
    low, high = info["cutoffs_hz"]  # one model serves band limits from 2 to 20 kHz
    assert low <= 2000 and 20000 <= high < info["sample_rate"] / 2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 1, 4801), (2, 2, 3333), (1, 1, 17)])
def test_output_shape_equals_input_shape(family, shape):
    x = torch.randn(shape) * 0.1
    y = run(tiny(family), x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_cutoff_conditions_the_output(family):
    model = randomized(tiny(family))
    x = torch.randn(2, 1, 3000) * 0.1
    with torch.no_grad():
        assert torch.equal(model(x, 6000.0), model(x, torch.tensor([6000.0, 6000.0])))
        assert not torch.allclose(model(x, 6000.0), model(x, 12000.0), atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_geometry_is_consistent(family):
    model = tiny(family)
    a = model.alignment()
    assert model.receptive_field() > 0 and model.context_samples() > 0
    assert model.valid_length(1) == a and model.valid_length(a + 1) == 2 * a
    assert model.preferred_chunk() % a == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_chunk_with_context_equals_whole(family):
    """Inside its receptive field a chunk sees exactly what the whole signal sees (with a DC
    offset, which apnet estimates over frames beyond its convolutions' reach)."""
    model = tiny(family)
    ctx, a = model.context_samples(), model.alignment()
    x = torch.from_numpy(harmonic_tone(48_000, 0.5))[None] + 0.1
    start, length = (-(-ctx // a) + 4) * a, 10 * a
    assert start + length + ctx <= x.shape[-1]
    whole = run(model, x)[..., start : start + length]
    part = run(model, x[..., start - ctx : start + length + ctx])[..., ctx : ctx + length]
    assert torch.allclose(whole, part, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("half", [False, True])
def test_save_load_round_trip(family, half, tmp_path):
    model = tiny(family)
    folder = model.save(tmp_path / "ckpt", half=half)
    meta = json.loads((folder / "config.json").read_text())
    assert meta["family"] == family and meta["sample_rate"] == model.sample_rate
    loaded = UpscalerModel.load(folder)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(1, 1, 2001) * 0.1
    if half:  # identical to the model with its weights rounded to fp16, close to the original
        rounded = tiny(family)
        rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
        assert torch.equal(run(loaded, x), run(rounded, x))
        assert (folder / "model.safetensors").stat().st_size < 0.6 * 4 * model.num_parameters()
    else:
        assert torch.equal(run(loaded, x), run(model, x))


def test_load_rejects_bad_folders(tmp_path):
    with pytest.raises(UpscalerError, match="not a model folder"):
        UpscalerModel.load(tmp_path)
    folder = tiny("apnet").save(tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["no_such_setting"] = 1
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UpscalerError, match="no_such_setting"):
        UpscalerModel.load(folder)
    meta["config"] = {"dim": 48}  # weights of a dim-32 model
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UpscalerError, match="do not match"):
        UpscalerModel.load(folder)


def test_unknown_family_is_a_user_error():
    with pytest.raises(UpscalerError, match="unknown model family"):
        registry.build("no-such-family")


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_every_parameter(family):
    """After three steps (chained zero-initialized layers, such as identity heads after FiLM,
    block gradients for the first steps)."""
    model = tiny(family).train()
    x, cutoff = torch.randn(2, 1, 3000) * 0.1, torch.tensor([4000.0, 9000.0])
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        y = model(x, cutoff)
        (y * torch.randn_like(y)).sum().backward()
        opt.step()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def overfit_losses(model: UpscalerModel, steps: int) -> list[float]:
    """Generator losses of ``steps`` Adam steps (lr 1e-2) on one 0.15 s clip band-limited at 6 kHz."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    target = harmonic_tone(48_000, 0.15) + 0.01 * rng.standard_normal((1, 7200)).astype(np.float32)
    low = resample(resample(target, 48_000, 12_000), 12_000, 48_000)
    x, y, cutoff = torch.from_numpy(low)[None], torch.from_numpy(target)[None], torch.tensor([6000.0])
    model.train()
    loss_fn = GeneratorLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss, _ = loss_fn(model(x, cutoff), y, cutoff)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_overfits_one_clip(family):
    losses = overfit_losses(tiny(family), 120)
    assert min(losses[-10:]) < losses[0] / 5


# ---------------------------------------------------------------------- registry and pipeline

@pytest.fixture
def user_models(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    return tmp_path


def test_available_models_lists_user_folders(user_models):
    before = registry.available_models()
    tiny("apnet").save(user_models / "mine")
    tiny("apnet").save(user_models / "sbr")  # reserved name: never a model
    (user_models / "empty").mkdir()
    assert registry.available_models() == sorted({*before, "mine"})
    info = registry.model_info("mine")
    assert info["family"] == "apnet" and info["parameters"] == tiny("apnet").num_parameters()
    assert info["sample_rate"] == 48_000 and info["description"]
    with pytest.raises(UpscalerError, match="no model weights named"):
        registry.model_path("absent")


def test_damaged_user_folders_are_listed_and_refused_in_one_line(user_models, capsys):
    """A damaged folder in the user models folder used to make ``audio-upscaler models`` fail
    as a whole (one unreadable config.json hid every model), and loading a truncated
    safetensors file, a config whose values build no model or a non-numeric version was an
    internal error with a traceback."""
    from audio_upscaler.cli import main

    tiny("apnet").save(user_models / "good")
    for name in ("badjson", "badcfg", "truncated", "newer", "badtask"):
        tiny("apnet").save(user_models / name)
    (user_models / "badjson" / "config.json").write_text("{not json")
    meta = json.loads((user_models / "good" / "config.json").read_text())
    (user_models / "badcfg" / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "dim": -3}}))
    (user_models / "newer" / "config.json").write_text(json.dumps({**meta, "version": "abc"}))
    (user_models / "badtask" / "config.json").write_text(json.dumps({**meta, "task": "bogus"}))
    weights = user_models / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])

    assert main(["models", "--json"]) == 0
    listed = {w["name"]: w for w in json.loads(capsys.readouterr().out)["weights"]}
    assert listed["good"]["family"] == "apnet" and "error" not in listed["good"]
    assert "cannot read" in listed["badjson"]["error"] and listed["badjson"]["path"] == str(user_models / "badjson")
    assert "'version' must be a number" in listed["newer"]["error"]
    assert "unknown task 'bogus'" in listed["badtask"]["error"]
    assert main(["models"]) == 0
    assert "badjson  unusable: cannot read" in capsys.readouterr().out
    usable = registry.upscaler_models()
    assert "good" in usable and not {"badjson", "newer", "badtask"} & set(usable)

    expected = {"badcfg": "does not describe a usable 'apnet' model", "truncated": "cannot read the weights",
                "newer": "'version' must be a number", "badjson": "cannot read"}
    for name, message in expected.items():
        with pytest.raises(UpscalerError, match=message):
            registry.load_model(name)
    assert isinstance(registry.load_model("good"), UpscalerModel)


@pytest.mark.parametrize("rate", [48_000, 44_100, 32_000])
def test_extender_geometry_in_pipeline_rate(rate):
    model = tiny("apnet")
    ext = ModelExtender(model, "x")
    a = ext.alignment(rate)
    assert (a * model.sample_rate) % (rate * model.alignment()) == 0  # whole model frames
    assert ext.context_samples(rate) >= model.context_samples() * rate / model.sample_rate
    base = harmonic_tone(rate, 0.3)
    assert ext.extend(base, rate, 5000.0).shape == base.shape


@pytest.mark.parametrize("rate", [48_000, 32_000])
def test_extender_chunks_join_exactly(rate):
    """Windows cut with the reported context and alignment give the output of one long call
    whose frame grid has the same origin (the chunker starts at ``-context``)."""
    from audio_upscaler.chunking import process_chunked

    ext = ModelExtender(tiny("apnet"), "x")
    ctx, align = ext.context_samples(rate), ext.alignment(rate)
    x = np.pad(harmonic_tone(rate, 1.0), ((0, 0), (ctx, ctx)))
    whole = ext.extend(x, rate, 5000.0)[:, ctx:-ctx]
    chunked = np.concatenate(list(process_chunked(
        lambda w: ext.extend(w, rate, 5000.0), [x[:, ctx:]], 1, 8 * align, ctx)), axis=1)[:, :-ctx]
    assert chunked.shape == whole.shape
    assert np.abs(chunked - whole).max() < 1e-5


#: Every family the pipeline runs (a vocoder is refused there: it extends nothing).
PIPELINE_CASES = [("apnet", 48_000)] + [(family, 44_100) for family in FAMILIES
                                        if registry.get_class(family).default_task != "vocoder"]


def test_the_pipeline_refuses_a_vocoder_family(user_models):
    from audio_upscaler.errors import UpscalerError
    from audio_upscaler.pipeline import Upscaler

    tiny("vocos").save(user_models / "voc")
    with pytest.raises(UpscalerError, match="'voc' is a vocoder"):
        Upscaler("voc", 48_000).upscale(Audio(np.zeros((1, 1600), np.float32), 16_000))


@pytest.mark.parametrize(("family", "rate"), PIPELINE_CASES)
def test_pipeline_keeps_the_low_band(user_models, family, rate):
    """Any family, at its own rate or resampled: below the cutoff the output is the input."""
    from audio_upscaler.pipeline import Upscaler

    randomized(tiny(family, seed=3), std=0.05).save(user_models / "rand")
    cutoff = 7_000.0
    audio = Audio(resample(harmonic_tone(48_000, 1.5, channels=2), 48_000, 16_000), 16_000)
    up = Upscaler("rand", rate, limiter=False, cutoff_hz=cutoff, chunk_seconds=0.5)
    out = up.upscale(audio).samples
    ref = resample(audio.samples, 16_000, rate)
    assert out.shape == ref.shape

    # Compare Hann-windowed interiors (the signal ends are zero-extended, so not exact there).
    edge = rate // 5
    window = np.hanning(out.shape[1] - 2 * edge)
    spec_out, spec_ref = np.fft.rfft(out[:, edge:-edge] * window), np.fft.rfft(ref[:, edge:-edge] * window)
    freqs = np.fft.rfftfreq(window.size, 1 / rate)
    low = freqs < 0.85 * cutoff
    err = np.sum(np.abs(spec_out[:, low] - spec_ref[:, low]) ** 2) / np.sum(np.abs(spec_ref[:, low]) ** 2)
    assert 10 * np.log10(err) < -60
    if family != "apnet":
        return
    high = freqs > 1.2 * cutoff  # a random apnet already puts energy up there
    assert np.sum(np.abs(spec_out[:, high]) ** 2) > 1e3 * np.sum(np.abs(spec_ref[:, high]) ** 2)


def test_restore_task_replaces_the_low_band_too(user_models):
    """Weights saved with task ``restore`` (codec restoration): the pipeline uses the model's whole
    output, so below the cutoff the output is the model's, not the input's. The model here halves
    every bin (identity-initialized heads + an amplitude bias of log 0.5)."""
    from audio_upscaler.pipeline import Upscaler

    halver = tiny("apnet")
    with torch.no_grad():
        halver.amp_head.bias.fill_(float(np.log(0.5)))
    for task in ("restore", "extend"):
        halver.task = task
        halver.save(user_models / task)
    assert registry.load_model("restore").task == "restore"
    assert not registry.load_extender("restore").keeps_low_band and registry.load_extender("extend").keeps_low_band

    rate, cutoff = 48_000, 7_000.0
    audio = Audio(resample(harmonic_tone(48_000, 1.5), 48_000, 16_000), 16_000)
    ref = resample(audio.samples, 16_000, rate)
    edge = rate // 5
    window = np.hanning(ref.shape[1] - 2 * edge)
    low = np.fft.rfftfreq(window.size, 1 / rate) < 0.85 * cutoff
    spec_ref = np.fft.rfft(ref[:, edge:-edge] * window)[:, low]

    def low_band_error_db(name: str, gain: float) -> float:
        out = Upscaler(name, rate, limiter=False, cutoff_hz=cutoff, chunk_seconds=0.5).upscale(audio).samples
        spec = np.fft.rfft(out[:, edge:-edge] * window)[:, low]
        return 10 * np.log10(np.sum(np.abs(spec - gain * spec_ref) ** 2) / np.sum(np.abs(gain * spec_ref) ** 2))

    assert low_band_error_db("restore", 0.5) < -50
    assert low_band_error_db("extend", 1.0) < -50

    meta = json.loads((user_models / "restore" / "config.json").read_text())
    meta["task"] = "denoise"
    (user_models / "restore" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UpscalerError, match="unknown task 'denoise'"):
        UpscalerModel.load(user_models / "restore")


@pytest.mark.parametrize("family", [f for f in FAMILIES if registry.get_class(f).default_task != "vocoder"])
def test_every_family_upscales_a_real_file(user_models, family, tmp_path):
    """File to file through the CLI, with the family's tiny model installed as a user model."""
    import soundfile as sf

    from audio_upscaler.cli import main

    tiny(family).save(user_models / f"tiny-{family}")
    example = Path(__file__).resolve().parents[1] / "examples" / "speech_8k.wav"
    out = tmp_path / "out.wav"
    assert main(["upscale", str(example), "-o", str(out), "-m", f"tiny-{family}", "-r", "44100", "-q"]) == 0
    info, source = sf.info(str(out)), sf.info(str(example))
    assert info.samplerate == 44_100 and abs(info.duration - source.duration) < 1e-3
    assert np.isfinite(sf.read(str(out))[0]).all()


def test_shipped_weights_are_verified_by_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "user"))
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "shipped")
    folder = tiny("apnet").save(tmp_path / "shipped" / "packaged")
    with pytest.raises(UpscalerError, match="no checksum"):
        registry.load_model("packaged")
    digest = registry.sha256(folder / "model.safetensors")
    (tmp_path / "shipped" / "SHA256SUMS").write_text(f"{digest}  packaged/model.safetensors\n")
    assert registry.load_model("packaged").family == "apnet"
    with open(folder / "model.safetensors", "r+b") as f:  # flip one byte of the weights
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(UpscalerError, match="SHA-256 mismatch"):
        registry.load_model("packaged")
