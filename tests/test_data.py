"""Training datasets over a tiny synthetic corpus: shapes, alignment, cutoffs, determinism,
filters, mixing ratio, DataLoader settings; ``make-pairs`` and ``inspect``."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_upscaler.analysis import estimate_cutoff
from audio_upscaler.cli import data as data_cli
from audio_upscaler.degrade import DegradationChain, LowPass
from audio_upscaler.errors import UpscalerError
from audio_upscaler.train.corpus.manifest import Entry, write_manifest
from audio_upscaler.train.corpus.pairs import make_pairs
from audio_upscaler.train.data import DataConfig, PairDataset, loader_settings, make_loader

from .signals import harmonic_tone, xcorr_peak_lag


def full_band(rate: int, seconds: float, channels: int, seed: int) -> np.ndarray:
    """Harmonic notes plus quiet white noise: content up to Nyquist, ``[channels, T]``."""
    rng = np.random.default_rng(seed)
    tone = harmonic_tone(rate, seconds, f0=180 + 40 * seed, channels=channels, seed=seed)
    return (tone + 0.02 * rng.standard_normal(tone.shape)).astype(np.float32)


#: (path, kind, split, rate, channels, seconds, signal)
FILES = [
    ("music/a.flac", "music", "train", 48000, 2, 3.0, "full"),
    ("music/b.flac", "music", "validation", 44100, 2, 2.0, "full"),
    ("music/quiet.flac", "music", "train", 48000, 2, 3.0, "silent"),
    ("speech/s1.flac", "speech", "train", 44100, 1, 3.0, "full"),
    ("speech/s2.flac", "speech", "validation", 48000, 1, 2.0, "full"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    entries = []
    for i, (path, kind, split, rate, channels, seconds, sig) in enumerate(FILES):
        x = full_band(rate, seconds, channels, i) if sig == "full" else np.zeros((channels, int(rate * seconds)))
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / path, x.T, rate, subtype="PCM_24")
        entries.append(Entry(path, "synthetic", f"item{i}", kind, seconds, rate, channels,
                             rate / 2 if sig == "full" else 0.0, "CC0", split))
    write_manifest(root / "manifest.jsonl", entries)
    return root


def config(**changes) -> DataConfig:
    return DataConfig(**{"segment_seconds": 0.5, "length": 6, **changes})


def test_examples_have_the_requested_shape_rate_and_cutoff(corpus):
    for channels in (1, 2):
        ds = PairDataset(corpus, config(channels=channels), degradation="bwe_8k_48k", validation=True)
        degraded, clean, cutoff, _ = ds[0]
        assert degraded.shape == clean.shape == (channels, 24000)
        assert degraded.dtype == clean.dtype == torch.float32 and cutoff == 4000.0
        assert estimate_cutoff(clean.numpy(), 48000).hz > 15000
        assert estimate_cutoff(degraded.numpy(), 48000).hz == pytest.approx(4000, abs=300)
    chain = DegradationChain([(LowPass((6000.0, 6000.0), ("brickwall",)), 1.0)])
    for index in range(3):
        degraded, clean, cutoff, _ = PairDataset(corpus, config(), degradation=chain, validation=True)[index]
        assert cutoff == 6000.0
        assert estimate_cutoff(degraded.numpy(), 48000).hz == pytest.approx(6000, abs=300)


def test_measured_cutoff_is_what_the_analysis_finds_on_the_degraded_crop(corpus):
    """data.measured_cutoff: the example's cutoff is ``estimate_cutoff`` of the degraded crop (what
    the pipeline gives a model), not the codec's nominal band edge measured on white noise."""
    nominal = PairDataset(corpus, config(), degradation="mp3_64k", validation=True)
    measured = PairDataset(corpus, config(measured_cutoff=True), degradation="mp3_64k", validation=True)
    for index in range(3):
        degraded, clean, cutoff, band = nominal[index]
        degraded2, clean2, cutoff2, band2 = measured[index]
        torch.testing.assert_close(degraded2, degraded, rtol=0, atol=0)  # the same example otherwise
        assert band2 == band
        assert cutoff2 == estimate_cutoff(degraded.numpy(), 48000).hz
        assert cutoff2 != cutoff  # the nominal edge (white noise) differs from what this crop shows


def test_degraded_and_clean_crops_are_aligned(corpus):
    for degradation in ("bwe_8k_48k", None):  # the fixed task, the random training chain
        ds = PairDataset(corpus, config(), degradation=degradation, validation=True)
        for index in range(len(ds)):
            degraded, clean, _, _ = ds[index]
            assert xcorr_peak_lag(clean.numpy(), degraded.numpy(), max_lag=300) == 0


def test_validation_mode_repeats_itself_whatever_the_workers(corpus):
    ds = PairDataset(corpus, config(), validation=True)
    first = [ds[i] for i in range(len(ds))]
    second = [ds[i] for i in range(len(ds))]
    for a, b in zip(first, second):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(first[0][1], first[1][1])
    inline = list(make_loader(ds, batch_size=3, num_workers=0))
    workers = list(make_loader(ds, batch_size=3, num_workers=2))
    for a, b in zip(inline, workers):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert [len(batch[0]) for batch in inline] == [3, 3]


def test_training_mode_draws_new_examples_and_reseeds(corpus):
    ds = PairDataset(corpus, config(), degradation="bwe_8k_48k")
    ds.reseed(5)
    run = [ds[0][1] for _ in range(4)]
    assert not torch.equal(run[0], run[1])  # the index does not fix the example in training
    ds.reseed(5)
    assert all(torch.equal(a, ds[0][1]) for a in run)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_split_kind_and_bandwidth_filters(corpus):
    names = lambda ds: sorted(os.path.relpath(f.path, corpus) for f in ds.files)  # noqa: E731
    assert names(PairDataset(corpus, config())) == ["music/a.flac", "music/quiet.flac", "speech/s1.flac"]
    assert names(PairDataset(corpus, config(), validation=True)) == ["music/b.flac", "speech/s2.flac"]
    assert len(PairDataset(corpus, config(split=None)).files) == 5
    assert names(PairDataset(corpus, config(kinds=("speech",)))) == ["speech/s1.flac"]
    assert names(PairDataset(corpus, config(min_bandwidth_hz=1000))) == ["music/a.flac", "speech/s1.flac"]
    with pytest.raises(UpscalerError, match="no usable audio"):
        PairDataset(corpus, config(subset="speech_22k"))
    with pytest.raises(UpscalerError, match="works at 44100 Hz"):  # resampling tasks fix their rate
        PairDataset(corpus, config(), degradation="music_11k_44k")
    degraded, clean, cutoff, _ = PairDataset(corpus, config(), degradation="mp3_128k", validation=True)[0]
    assert degraded.shape == clean.shape and 14_000 < cutoff < 23_000  # codec tasks work at 48 kHz too


def test_examples_carry_the_band_of_their_source(tmp_path):
    """The manifest's measured bandwidth, else the file's Nyquist frequency, capped at the model's."""
    entries = []
    for name, rate, band in [("narrow.flac", 48000, 20_000.0), ("cd.flac", 44100, 0.0), ("hires.flac", 96000, 40_000.0)]:
        sf.write(tmp_path / name, full_band(rate, 1.0, 1, 1).T, rate, subtype="PCM_24")
        entries.append(Entry(name, "synthetic", name, "music", 1.0, rate, 1, band, "CC0", "train"))
    write_manifest(tmp_path / "manifest.jsonl", entries)
    ds = PairDataset(tmp_path, config(kinds=("music",)), degradation="bwe_8k_48k")
    ds.reseed(0)
    bands = {}
    for _ in range(60):
        _, clean, _, band = ds[0]
        bands.setdefault(band, clean)
    assert sorted(bands) == [20_000.0, 22_050.0, 24_000.0]
    assert PairDataset(tmp_path, config(kinds=("music",), sample_rate=16000)).source_band(ds.files[0]) == 8000.0


def test_speech_ratio_sets_the_mix(corpus):
    ds = PairDataset(corpus, config(split=None, speech_ratio=0.8))
    rng = np.random.default_rng(0)
    kinds = [ds.pick_file(rng).kind for _ in range(4000)]
    assert kinds.count("speech") / len(kinds) == pytest.approx(0.8, abs=0.03)
    proportional = PairDataset(corpus, config(split=None, speech_ratio=None))
    kinds = [proportional.pick_file(rng).kind for _ in range(4000)]
    assert kinds.count("speech") / len(kinds) == pytest.approx(5 / 13, abs=0.03)  # 5 of 13 s are speech


def test_quiet_crops_are_drawn_again(corpus):
    ds = PairDataset(corpus, config(kinds=("music",), min_rms_dbfs=-40.0))
    rng = np.random.default_rng(1)
    levels = [np.sqrt(np.mean(ds.clean_crop(rng)[0] ** 2)) for _ in range(40)]
    assert min(levels) > 10 ** (-40 / 20)


def test_level_augmentation_scales_clean_and_degraded_alike(corpus):
    plain = PairDataset(corpus, config(), degradation="bwe_8k_48k", validation=True)
    scaled = PairDataset(corpus, config(level_db=(-30.0, 0.0)), degradation="bwe_8k_48k", validation=True)
    gains = []
    for index in range(len(plain)):
        (d0, c0, _, _), (d1, c1, _, _) = plain[index], scaled[index]
        if torch.equal(c0, c1):  # the level draw comes after the crop, so the crops are the same
            continue
        gain = float((c1 * c0).sum() / (c0 * c0).sum())
        assert torch.allclose(c1, gain * c0, atol=1e-6)
        assert torch.allclose(d1, gain * d0, atol=2e-4)  # the degradation saw the scaled crop
        assert c1.abs().max() <= 0.99 + 1e-6
        gains.append(20 * np.log10(gain))
    assert len(gains) >= 5 and -30 <= min(gains) and max(gains) <= 0 and max(gains) - min(gains) > 5


def test_random_level_never_exceeds_the_peak_cap():
    from audio_upscaler.train.data import LEVEL_PEAK_CAP, random_level

    rng = np.random.default_rng(0)
    loud = np.full((1, 100), 0.9, np.float32)
    for _ in range(50):
        assert np.abs(random_level(loud, (0.0, 12.0), rng)).max() <= LEVEL_PEAK_CAP + 1e-6
    quiet = random_level(loud, (-20.0, -20.0), rng)
    assert np.allclose(quiet, 0.09, rtol=1e-5)
    assert random_level(np.zeros((1, 10), np.float32), (-6.0, 6.0), rng).max() == 0


def test_plain_folders_short_files_and_kinds(tmp_path):
    (tmp_path / "speech").mkdir()
    sf.write(tmp_path / "speech/short.wav", full_band(16000, 0.2, 1, 3).T, 16000)
    sf.write(tmp_path / "song.flac", full_band(44100, 1.0, 2, 4).T, 44100)
    (tmp_path / "notes.txt").write_text("not audio")
    ds = PairDataset(tmp_path, config(segment_seconds=0.5, kinds=("speech",)), degradation="bwe_8k_48k")
    assert [f.kind for f in ds.files] == ["speech"]
    clean, band = ds.clean_crop(np.random.default_rng(0))
    assert clean.shape == (1, 24000) and np.abs(clean[:, 10000:]).max() == 0  # 0.2 s of audio, then zeros
    assert band == 8000.0  # a plain file's band is its Nyquist frequency
    assert {f.kind for f in PairDataset(tmp_path, config()).files} == {"speech", "other"}
    with pytest.raises(UpscalerError, match="no such folder"):
        PairDataset(tmp_path / "missing", config())


def test_loader_settings_for_each_platform(monkeypatch):
    linux = loader_settings("cpu", num_workers=2)
    assert linux["num_workers"] == 2 and linux["persistent_workers"] and linux["prefetch_factor"] == 2
    assert linux["pin_memory"] is False and callable(linux["worker_init_fn"])
    assert loader_settings("cuda:0", num_workers=0) == {"num_workers": 0, "pin_memory": True,
                                                        "worker_init_fn": linux["worker_init_fn"]}
    monkeypatch.setattr(os, "name", "nt")
    windows = loader_settings("cpu", num_workers=4)
    assert windows["num_workers"] == 0 and "persistent_workers" not in windows and "prefetch_factor" not in windows


def test_make_pairs_writes_aligned_pairs_and_resumes(corpus, tmp_path):
    records = make_pairs(corpus, tmp_path, "bwe_8k_48k", split="validation")
    assert [r["name"] for r in records] == ["music/b", "speech/s2"]
    for r in records:
        clean, rate = sf.read(tmp_path / r["clean"], always_2d=True)
        degraded, rate2 = sf.read(tmp_path / r["degraded"], always_2d=True)
        low, low_rate = sf.read(tmp_path / r["low_rate"], always_2d=True)
        assert rate == rate2 == 48000 and low_rate == 8000 and clean.shape == degraded.shape
        assert r["cutoff_hz"] == 4000.0 and low.shape[0] == pytest.approx(clean.shape[0] / 6, abs=1)
        assert xcorr_peak_lag(clean.T, degraded.T, max_lag=300) == 0
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.flac")}
    assert make_pairs(corpus, tmp_path, "bwe_8k_48k", split="validation") == records
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.flac")} == stamps
    assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == 2
    with pytest.raises(UpscalerError, match="unknown task"):
        make_pairs(corpus, tmp_path, "bwe_1k_2k")


def test_make_pairs_refuses_what_it_used_to_mix_up_silently(tmp_path):
    """Two inputs sharing a name (the second was skipped as if done), pairs of other settings in
    the output folder (reused as they were, or overwritten by another task's), a length limit of
    zero or less (empty or end-cut files), and a bad input (the pairs done before it went
    unrecorded)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    x = full_band(44100, 1.0, 1, 0)[0]
    sf.write(src / "a.wav", x, 44100)
    sf.write(src / "a.flac", x, 44100)
    with pytest.raises(UpscalerError, match=r"a\.flac and .*a\.wav would both be written as clean/a\.flac"):
        make_pairs(src, out, "bwe_8k_48k")
    assert not out.exists()
    (src / "a.flac").unlink()

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(UpscalerError, match="--max-seconds must be a positive"):
            make_pairs(src, out, "bwe_8k_48k", max_seconds=bad)
    records = make_pairs(src, out, "bwe_8k_48k", max_seconds=0.5)
    assert records[0]["duration"] == 0.5 and sf.info(out / "clean/a.flac").frames == 24000
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    for changes in ({"task": "mp3_64k", "max_seconds": 0.5}, {"task": "bwe_8k_48k"},
                    {"task": "bwe_8k_48k", "max_seconds": 0.5, "seed": 3}):
        task = changes.pop("task")
        with pytest.raises(UpscalerError, match="holds pairs made with task bwe_8k_48k, seed 0, --max-seconds 0.5"):
            make_pairs(src, out, task, **changes)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps  # nothing rewritten

    other = tmp_path / "other"  # another input folder into the same output: its a.wav is not "done"
    other.mkdir()
    sf.write(other / "a.wav", 0.5 * x, 44100)
    make_pairs(other, out, "bwe_8k_48k", max_seconds=0.5)
    clean, _ = sf.read(out / "clean/a.flac")
    assert np.max(np.abs(clean)) == pytest.approx(0.5 * np.max(np.abs(x)), rel=0.05)

    (src / "b.wav").write_bytes(b"RIFF1234WAVEjunk")  # sorted after a.wav
    out2 = tmp_path / "out2"
    with pytest.raises(UpscalerError, match="b.wav"):
        make_pairs(src, out2, "bwe_8k_48k")
    assert [json.loads(line)["name"] for line in (out2 / "pairs.jsonl").read_text().splitlines()] == ["a"]
    (out2 / "pairs.jsonl").write_text("garbage\n")
    with pytest.raises(UpscalerError, match="pairs.jsonl:1: not a pairs record"):
        make_pairs(src, out2, "bwe_8k_48k")


def test_make_pairs_command_skips_unreadable_files_with_a_warning_each(tmp_path, capsys, monkeypatch):
    """One broken file in a folder stopped ``make-pairs`` there: the good files after it got no
    pairs. Now each bad file is one warning line and left out (no output of it); only a folder
    with no readable file at all is an error."""
    from audio_upscaler.cli import main
    import audio_upscaler.io

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.wav", "c.wav"):
        sf.write(src / name, full_band(44100, 0.5, 1, 0)[0], 44100)
    (src / "b.wav").write_bytes(b"RIFF1234WAVEjunk")
    (src / "d.flac").write_bytes(b"")
    assert main(["data", "make-pairs", str(src), str(out), "--task", "bwe_8k_48k", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"warning: skipped {src / 'b.wav'}: not an audio file, or an audio format that cannot be decoded",
        f"warning: skipped {src / 'd.flac'}: the file is empty (0 bytes)"]
    assert [json.loads(line)["name"] for line in (out / "pairs.jsonl").read_text().splitlines()] == ["a", "c"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flac")) == [
        f"{d}/{n}.flac" for d in ("clean", "degraded", "low_rate") for n in ("a", "c")]
    assert main(["data", "make-pairs", str(src), str(out), "--task", "bwe_8k_48k"]) == 0
    assert f"2 pairs in {out} (task bwe_8k_48k), 2 files skipped\n" in capsys.readouterr().out

    for name in ("a.wav", "c.wav"):
        (src / name).unlink()
    assert main(["data", "make-pairs", str(src), str(tmp_path / "none"), "--task", "bwe_8k_48k", "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[2:] == [f"error: no pairs written: none of the 2 audio files in {src} could be read"]
    assert not (tmp_path / "none").exists()

    sf.write(src / "e.wav", full_band(44100, 0.5, 1, 0)[0], 44100)  # a write that fails keeps no half pair
    real_write = audio_upscaler.io.write_audio

    def write_clean_only(path, *args, **kwargs):
        if "degraded" in str(path):
            raise UpscalerError(f"{path}: no space left on the device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(audio_upscaler.io, "write_audio", write_clean_only)
    assert main(["data", "make-pairs", str(src), str(out), "--task", "bwe_8k_48k", "-q"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert not (out / "clean/e.flac").exists()
    assert [json.loads(line)["name"] for line in (out / "pairs.jsonl").read_text().splitlines()] == ["a", "c"]


def test_a_hand_edited_manifest_with_wrong_types_is_one_error_line(tmp_path, capsys):
    """Values of the wrong type (a duration "abc", a null bandwidth or components list, an item
    given as a list, a NaN duration) and bytes that are not UTF-8 used to pass ``read_manifest``
    and fail later as internal errors (``data inspect``, training, the benchmark)."""
    from audio_upscaler.cli import main
    from audio_upscaler.train.corpus.manifest import read_manifest

    good = {"path": "a.flac", "source": "s", "item": "i", "kind": "music", "duration": 1.5, "sample_rate": 48000,
            "channels": 2, "bandwidth_hz": 20000, "licence": "CC0", "split": "train"}
    manifest = tmp_path / "manifest.jsonl"
    bad_values = {"duration": "abc", "bandwidth_hz": None, "components": None, "item": ["i"],
                  "duration ": None, "sample_rate": 0, "channels": True, "params": [1]}
    for key, value in bad_values.items():
        line = {**good, key.strip(): value} if key != "duration " else {**good, "duration": float("nan")}
        manifest.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n")
        with pytest.raises(UpscalerError, match=rf"manifest.jsonl:2: not a manifest line \('{key.strip()}' must be"):
            read_manifest(manifest)
        assert main(["data", "inspect", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    manifest.write_bytes(json.dumps(good).encode() + b"\n\xff\xfe\n")
    assert main(["data", "inspect", str(manifest)]) == 2
    assert "manifest.jsonl:2: not a manifest line" in capsys.readouterr().err
    manifest.write_text(json.dumps(good) + "\n")
    assert [e.duration for e in read_manifest(manifest)] == [1.5]
    assert main(["data", "inspect", str(tmp_path / "absent.jsonl")]) == 2
    assert f"no manifest at {tmp_path / 'absent.jsonl'}\n" in capsys.readouterr().err  # not absent.jsonl/manifest.jsonl


def test_make_pairs_into_a_folder_inside_its_input_does_not_take_its_own_pairs_as_input(tmp_path):
    """``make-pairs in in/pairs`` run twice took the first run's clean/, degraded/ and low_rate/
    files as inputs of the second: degraded audio written as "clean" references."""
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "a.wav", full_band(44100, 0.5, 1, 0)[0], 44100)
    for _ in range(2):
        records = make_pairs(src, src / "pairs", "bwe_8k_48k")
        assert [r["name"] for r in records] == ["a"]
    assert sorted(p.relative_to(src / "pairs").as_posix() for p in (src / "pairs").rglob("*.flac")) == [
        "clean/a.flac", "degraded/a.flac", "low_rate/a.flac"]
    for out in (src, tmp_path):
        with pytest.raises(UpscalerError, match="holds the input folder"):
            make_pairs(src, out, "bwe_8k_48k")


def test_data_command_parses_and_inspects(corpus, capsys):
    parser = argparse.ArgumentParser()
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "build-corpus", "--out", "x", "--hours-music", "0.5", "--jobs", "2",
                              "--sources", "music,klettres"])
    assert (args.hours_music, args.jobs, args.sources, args.run) == (0.5, 2, "music,klettres", data_cli.run_build)
    args = parser.parse_args(["data", "inspect", str(corpus), "--json"])
    assert args.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 5 and summary["split_conflicts"] == []
    assert summary["by_kind_subset_split"]["speech/main/validation"]["hours"] == pytest.approx(2 / 3600, abs=1e-3)
    args = parser.parse_args(["data", "inspect", str(corpus / "speech/s1.flac"), "--json"])
    assert args.run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample_rate"] == 44100 and report["cutoff_hz"] > 15000
