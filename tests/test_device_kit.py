"""scripts/device_kit.py: the corpus a lent GPU machine trains on, and the command that runs there."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_upscaler.train.config import apply_overrides, from_dict, load_config
from audio_upscaler.train.corpus.manifest import Entry, read_manifest, write_manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import device_kit  # noqa: E402


@pytest.fixture()
def corpus(tmp_path):
    """Three training and one validation file per kind (4 s of stereo noise at 44.1 kHz), two items each."""
    root = tmp_path / "corpus"
    entries = []
    rng = np.random.default_rng(0)
    for kind in ("speech", "music"):
        for i, split in enumerate(("train", "train", "train", "validation")):
            path = f"{kind}/{kind}{i}.flac"
            (root / kind).mkdir(parents=True, exist_ok=True)
            sf.write(root / path, (0.1 * rng.standard_normal((176_400, 2))).astype(np.float32), 44_100)
            entries.append(Entry(path=path, source="src", item=f"{kind}{i % 2}", kind=kind, duration=4.0,
                                 sample_rate=44_100, channels=2, bandwidth_hz=22_000.0, licence="CC0", split=split))
    write_manifest(root / "manifest.jsonl", entries)
    return root


def test_pack_writes_a_corpus_of_mono_48_khz_clips_within_its_budget(corpus, tmp_path):
    out = tmp_path / "kit"
    sizes = device_kit.pack_corpus(corpus, out, mib=0.25, seconds=1.0, speech_share=0.5, validation_clips=1)
    entries = read_manifest(out)
    by = {(k, s): [e for e in entries if e.kind == k and e.split == s] for k in ("speech", "music")
          for s in ("train", "validation")}
    for kind in ("speech", "music"):
        assert len(by[kind, "validation"]) == 1
        assert 1 <= len(by[kind, "train"]) < 3  # stops once its 0.125 MiB are used
        assert sizes[kind] < 0.125 + 0.2  # at most one clip (about 0.1 MiB of noise) past it
    for e in entries:
        info = sf.info(out / e.path)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (48_000, 1, "PCM_16", 48_000)
        assert e.job == "device-kit" and e.params["from"].startswith(e.kind)
        source = sf.read(corpus / e.params["from"], dtype="float32")[0].mean(axis=1)
        start = device_kit.window(176_400, 44_100, e.params["from"])  # a hash-chosen window, as recorded
        assert e.params["start_s"] == round(start / 44_100, 3) and 0 < start < 176_400 - 44_100
        clip = sf.read(out / e.path, dtype="float32")[0]
        original = source[start : start + 44_100]
        assert abs(10 * np.log10(np.mean(clip**2) / np.mean(original**2))) < 0.5  # the same window, down-mixed
    again = tmp_path / "again"
    device_kit.pack_corpus(corpus, again, mib=0.25, seconds=1.0, speech_share=0.5, validation_clips=1)
    assert [e.params for e in read_manifest(again)] == [e.params for e in entries]  # deterministic


def test_the_device_command_fits_and_its_settings_are_valid():
    overrides = ["loss.phase_weight=1.0", "loss.discriminators=[mrd,mpd]", "optim.batch_size=32"]
    text = device_kit.device_command(".kit", "default", 8, overrides)
    assert len(text) <= 2000 and text.startswith("set -o pipefail && ")
    assert "--data .kit/corpus" in text and "train.max_minutes=8" in text and "$OUT/model" in text
    assert "'loss.discriminators=[mrd,mpd]'" in text  # quoted for the shell
    settings = [a for a in text.split(" train ")[1].split(" 2>&1")[0].split() if "=" in a and not a.startswith("-")]
    config = apply_overrides(load_config(ROOT / device_kit.RECIPES["default"]).to_dict(),
                             [s.strip("'") for s in settings if not s.startswith("train.device")])
    checked = from_dict(config)
    assert checked.train.max_minutes == 8 and checked.loss.phase_weight == 1.0 and checked.optim.batch_size == 32
