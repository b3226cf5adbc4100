"""The corpus builder on a tiny fake package cache (synthetic clips laid out like the real
Debian packages; no network, no apt-get): bandwidth filter, packing, split, licences,
manifest, resumability; plus the pure parts (split rule, licences, MIDI, arrangement, kits)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from audio_upscaler.analysis import estimate_cutoff
from audio_upscaler.errors import UpscalerError
from audio_upscaler.loudness import LoudnessMeter
from audio_upscaler.train.corpus import BuildConfig, build_corpus, read_manifest, write_manifest
from audio_upscaler.train.corpus import clips, drums
from audio_upscaler.train.corpus.arrange import INSTRUMENTS, Effects, ScoreData, ScoreNote, arrange
from audio_upscaler.train.corpus.debian import PackageCache
from audio_upscaler.train.corpus.drumkit import load_kit, parse_drumkit
from audio_upscaler.train.corpus.jobs import JobContext
from audio_upscaler.train.corpus.licences import licence_for
from audio_upscaler.train.corpus.manifest import split_conflicts
from audio_upscaler.train.corpus.midi import ChannelSetup, NoteEvent, midi_bytes, variable_length
from audio_upscaler.train.corpus.split import PINNED_VALIDATION, assign_splits

from .signals import harmonic_tone

KLETTRES_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2+

Files: doc/*
License: GFDL-NIV-1.2+
"""
HEDGEWARS_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2

Files: share/hedgewars/Data/Sounds/*
License: GFDL-1.3

Files: hedgewars/*
License: GPL-2
"""
HYDROGEN_COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2+

Files:
 drumkits/KitB.h2drumkit
License: CC-BY-3.0
"""


# ----------------------------------------------------------------- synthetic material


def voice_clip(rate: int, seconds: float, seed: int, lowpass_hz: float | None = None) -> np.ndarray:
    """Speech-like: a voiced harmonic tone plus a noise burst (fricative, full band), 50 ms of
    silence on both sides; optionally low-passed (a Vorbis-like band limit)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    voiced = harmonic_tone(rate, seconds, f0=140 + 40 * rng.random(), top_hz=8000)[0]
    noise = rng.standard_normal(n) * np.exp(-((np.arange(n) / rate - seconds * 0.7) / 0.06) ** 2)
    x = 0.6 * voiced + 0.3 * noise
    if lowpass_hz:
        x = signal.sosfiltfilt(signal.butter(10, lowpass_hz, fs=rate, output="sos"), x)
    pad = np.zeros(int(0.05 * rate))
    return np.concatenate([pad, x, pad]).astype(np.float32)[None]


def write(path: Path, x: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.T, rate)


def one_shot(rate: int, kind: str, seed: int = 0) -> np.ndarray:
    """Drum-like one-shots: ``kick`` (decaying 55-85 Hz sine), ``snare``/``hat`` (noise bursts)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.4 * rate)) / rate
    if kind == "kick":
        x = np.sin(2 * np.pi * (55 + 10 * (seed % 4)) * t) * np.exp(-t / 0.08)
    else:
        x = rng.standard_normal(t.size) * np.exp(-t / (0.05 if kind == "snare" else 0.2))
        if kind == "hat":
            x = signal.sosfilt(signal.butter(4, 6000, "highpass", fs=rate, output="sos"), x)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)[None]


NEW_KIT = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://www.hydrogen-music.org/drumkit">
 <name>KitA</name><license>CC0</license>
 <instrumentList>
  <instrument><id>0</id><name>Kick</name><volume>1</volume><pan>0</pan><muteGroup>-1</muteGroup>
   <instrumentComponent><layer><filename>kick_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer>
   <layer><filename>kick_hard.wav</filename><min>0.5</min><max>1</max><gain>1</gain></layer></instrumentComponent></instrument>
  <instrument><id>1</id><name>Snare</name><volume>0.9</volume><pan>0.2</pan><muteGroup>-1</muteGroup>
   <instrumentComponent><layer><filename>snare.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrumentComponent></instrument>
  <instrument><id>2</id><name>Hat Closed</name><volume>1</volume><pan>-0.3</pan><muteGroup>-1</muteGroup>
   <instrumentComponent><layer><filename>hat.wav</filename><min>0</min><max>1</max><gain>0.8</gain></layer></instrumentComponent></instrument>
  <instrument><id>3</id><name>Hat Open</name><volume>1</volume><pan>-0.3</pan><muteGroup>-1</muteGroup>
   <instrumentComponent><layer><filename>hat_open.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrumentComponent></instrument>
  <instrument><id>4</id><name>Ghost</name><volume>1</volume>
   <instrumentComponent><layer><filename>missing.wav</filename><min>0</min><max>1</max><gain>1</gain></layer></instrumentComponent></instrument>
 </instrumentList>
</drumkit_info>
"""
OLD_KIT = """<drumkit_info><name>KitB</name><author>x</author><licence>GPL</licence><instrumentList>
 <instrument><id>0</id><name>Djembe Bass</name><volume>1</volume><pan_L>1</pan_L><pan_R>0.5</pan_R><filename>low.wav</filename></instrument>
 <instrument><id>1</id><name>Djembe Slap</name><volume>1</volume><pan_L>0.5</pan_L><pan_R>1</pan_R><filename>slap.wav</filename></instrument>
</instrumentList></drumkit_info>
"""


def make_kit(folder: Path, xml: str, files: dict[str, str], rate: int = 44100) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drumkit.xml").write_text(xml)
    for i, (name, kind) in enumerate(files.items()):
        write(folder / name, one_shot(rate, kind, seed=i), rate)
    return folder / "drumkit.xml"


KIT_A_FILES = {"kick_soft.wav": "kick", "kick_hard.wav": "kick", "snare.wav": "snare", "hat.wav": "hat",
               "hat_open.wav": "hat"}
KIT_B_FILES = {"low.wav": "kick", "slap.wav": "snare"}


def fake_cache(root: Path) -> Path:
    """Unpacked fake packages under ``root/unpacked`` (marked complete, as PackageCache expects)."""
    def tree(package: str, copyright_text: str = "") -> Path:
        t = root / "unpacked" / package
        t.mkdir(parents=True, exist_ok=True)
        (t / ".complete").write_text("fake\n")
        doc = t / "usr/share/doc" / package
        doc.mkdir(parents=True, exist_ok=True)
        (doc / "copyright").write_text(copyright_text or "Not machine-readable.\nGPL version 2.\n")
        return t

    k = tree("klettres-data", KLETTRES_COPYRIGHT) / "usr/share/klettres"
    for number, (lang, lowpassed) in enumerate((("en", (False, False, False)), ("it", (False, False)),
                                                ("de", (False, False, True)), ("fr", (True, True)))):
        for i, low in enumerate(lowpassed):
            write(k / lang / "alpha" / f"c{i}{'_lp' if low else ''}.wav",
                  voice_clip(44100, 0.8, seed=10 * number + i, lowpass_hz=11000 if low else None), 44100)
    h = tree("hedgewars-data", HEDGEWARS_COPYRIGHT) / "usr/share/games/hedgewars/Data/Sounds/voices"
    for pack, count in (("Default", 3), ("Pirate", 2), ("Robot", 2)):
        for i in range(count):
            write(h / pack / f"Word{i}.wav", voice_clip(44100, 1.2, seed=50 + i + 7 * len(pack)), 44100)
    f = tree("fillets-ng-data") / "usr/share/games/fillets-ng/sound"
    write(f / "city/en/vit-1.wav", voice_clip(22050, 2.0, seed=80), 22050)
    write(f / "city/en/vit-2.wav", voice_clip(22050, 1.5, seed=81), 22050)
    write(f / "barrel/en/low.wav", voice_clip(11025, 2.0, seed=82), 11025)
    s = tree("sonic-pi-samples") / "usr/share/sonic-pi/samples"
    write(s / "loop_a.flac", np.repeat(harmonic_tone(44100, 2.0, f0=110), 2, axis=0), 44100)
    write(s / "loop_b.flac", np.repeat(harmonic_tone(44100, 1.5, f0=165), 2, axis=0), 44100)
    write(s / "bd_x.flac", one_shot(44100, "kick"), 44100)
    kits = tree("hydrogen-drumkits", HYDROGEN_COPYRIGHT) / "usr/share/hydrogen/data/drumkits"
    make_kit(kits / "KitA", NEW_KIT, KIT_A_FILES)
    make_kit(kits / "KitB", OLD_KIT, KIT_B_FILES)
    make_kit(tree("hydrogen-data") / "usr/share/hydrogen/data/drumkits/KitC", NEW_KIT.replace("KitA", "KitC"),
             KIT_A_FILES, rate=48000)
    return root


SOURCES = ("drums", "sonic-pi", "klettres", "hedgewars", "fillets")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus built from the fake cache (everything but music, which needs a soundfont)."""
    root = tmp_path_factory.mktemp("corpus")
    config = BuildConfig(out=root / "data", cache=fake_cache(root / "cache"), sources=SOURCES,
                         hours_drums=0.025, jobs=1, quiet=True)  # 3 grooves: one per kit
    summary = build_corpus(config)
    return config, summary


# ----------------------------------------------------------------- pure parts


def test_split_rule_pins_hashes_and_keeps_both_sides():
    many = [f"music21:piece{i}" for i in range(3000)]
    split = assign_splits(many + sorted(PINNED_VALIDATION), 0.1)
    assert all(split[k] == "validation" for k in PINNED_VALIDATION)
    share = sum(split[k] == "validation" for k in many) / len(many)
    assert 0.08 < share < 0.12
    # adding items never moves the others (the rule depends on the name only)
    more = assign_splits(many + [f"music21:extra{i}" for i in range(500)], 0.1)
    assert all(more[k] == split[k] for k in many)
    # a small group always gets one validation item, and the rule is deterministic
    small = assign_splits([f"kit:{n}" for n in "abcde"], 0.1)
    assert list(small.values()).count("validation") >= 1
    assert small == assign_splits([f"kit:{n}" for n in "edcba"], 0.1)
    assert set(assign_splits(["kit:a", "kit:b"], 0.0).values()) == {"train"}


def test_licence_of_installed_path_prefers_the_specific_paragraph():
    voice = "usr/share/games/hedgewars/Data/Sounds/voices/Default/Hello.ogg"
    assert licence_for(HEDGEWARS_COPYRIGHT, voice, "?") == "GFDL-1.3"
    assert licence_for(HEDGEWARS_COPYRIGHT, "usr/games/hedgewars", "?") == "GPL-2"
    assert licence_for(KLETTRES_COPYRIGHT, "usr/share/klettres/it/alpha/a.ogg", "?") == "GPL-2+"
    assert licence_for("This package is GPL.\n", "any/file", "GPL-2") == "GPL-2"


def test_midi_writer_encodes_lengths_and_events():
    assert [variable_length(v) for v in (0, 127, 128, 0x3FFF, 0x4000)] == [
        b"\x00", b"\x7f", b"\x81\x00", b"\xff\x7f", b"\x81\x80\x00"]
    notes = [NoteEvent(0.0, 0.5, 0, 60, 100), NoteEvent(0.5, 1.0, 1, 64, 90), NoteEvent(0.5, 0.75, 0, 67, 0)]
    data = midi_bytes(notes, [ChannelSetup(0, 40, pan=10), ChannelSetup(1, 0)], end_seconds=3.0)
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    body = data[22:]
    assert body.count(b"\x90\x3c\x64") == 1 and body.count(b"\x91\x40\x5a") == 1
    assert body.count(b"\x90\x43\x01") == 1  # velocity 0 would be a note-off: clamped to 1
    assert b"\xc0\x28" in body and b"\xb0\x0a\x0a" in body  # program 40, pan 10 on channel 0
    assert body.endswith(b"\xff\x2f\x00")


def test_arrangement_fits_instrument_ranges_and_is_reproducible():
    rng = np.random.default_rng(0)
    parts = [[ScoreNote(i * 1.0, 1.0, base + int(rng.integers(-5, 6))) for i in range(400)]
             for base in (76, 64, 55, 40)]
    data = ScoreData(parts, tempo_qpm=100.0)
    for seed in range(12):
        a = arrange(data, np.random.default_rng(seed), max_seconds=60.0)
        b = arrange(data, np.random.default_rng(seed), max_seconds=60.0)
        assert a.notes == b.notes and a.channels == b.channels
        assert 0 < a.duration <= 60.0 and all(n.start < 60.0 for n in a.notes)
        assert 85 <= a.description["tempo_qpm"] <= 115
        assert all(9 != c.channel and c.program in INSTRUMENTS for c in a.channels)
        for setup in a.channels:
            pitches = [n.pitch for n in a.notes if n.channel == setup.channel]
            _, low, high = INSTRUMENTS[setup.program]
            assert low <= np.median(pitches) <= high, (seed, setup)


def test_drumkit_formats_roles_and_licence(tmp_path):
    kit = parse_drumkit(make_kit(tmp_path / "KitA", NEW_KIT, KIT_A_FILES))
    assert [i.name for i in kit.instruments] == ["Kick", "Snare", "Hat Closed", "Hat Open"]  # Ghost: no file
    assert [i.role for i in kit.instruments] == ["kick", "snare", "hihat", "hihat_open"]
    assert kit.licence == "CC0" and len(kit.instruments[0].layers) == 2
    assert kit.instruments[1].pan == pytest.approx((0.8, 1.0))
    old = parse_drumkit(make_kit(tmp_path / "KitB", OLD_KIT, KIT_B_FILES))
    assert [i.role for i in old.instruments] == ["perc", "perc"] and old.instruments[0].pan == (1.0, 0.5)
    loaded = load_kit(old, 48000)
    assert loaded.roles["kick"] == [0]  # the darker sound plays the kick
    assert all(loaded.roles[r] for r in ("snare", "hihat", "ride", "crash", "tom"))
    assert drums.kit_licence(HYDROGEN_COPYRIGHT, "KitB", "GPL", "?") == "CC-BY-3.0"
    assert drums.kit_licence(HYDROGEN_COPYRIGHT, "KitA", "CC0", "?") == "CC0"


def test_grooves_are_reproducible_layered_and_choke_hihats(tmp_path):
    kit = load_kit(parse_drumkit(make_kit(tmp_path / "KitA", NEW_KIT, KIT_A_FILES)), 48000)
    soft, hard = kit.sound(0, 0.3), kit.sound(0, 0.9)
    assert not np.allclose(soft[:, :100] / 0.3, hard[:, :100] / 0.9)  # another layer, not just louder
    groove = drums.random_groove(np.random.default_rng(3), duration=8.0)
    hits = drums.sequence(groove, kit, np.random.default_rng(4))
    assert hits == drums.sequence(groove, kit, np.random.default_rng(4))
    assert hits and all(0 <= h.time < 8.0 and 0 < h.velocity <= 1 for h in hits)
    length = 48000
    opened = drums.render([drums.Hit(0.0, 3, 0.8)], kit, length)
    choked = drums.render([drums.Hit(0.0, 3, 0.8), drums.Hit(0.1, 2, 0.8)], kit, length)
    closed = drums.render([drums.Hit(0.1, 2, 0.8)], kit, length)
    cut = 4800 + 10
    np.testing.assert_allclose(choked[:, cut:], closed[:, cut:], atol=1e-7)  # the open hat stopped
    assert np.abs(opened[:, cut:]).max() > 0.01
    # a groove following a piece keeps its bar length and a drummer's tempo
    for beat, beats in ((1.6, 1), (0.27, 4), (0.5, 4), (1.2, 3)):
        fitted, count = drums.fit_tempo(beat, beats)
        assert 70 <= 60 / fitted <= 170 and count >= 2
        assert fitted * count == pytest.approx(beat * beats) or beats == 1


def test_packing_trimming_and_loudness():
    rng = np.random.default_rng(0)
    rate = 1000
    lengths = [int(rate * s) for s in rng.uniform(0.3, 1.2, 60)]
    packs = clips.plan_packs(lengths, rate, rng, (3.0, 6.0))
    assert sorted(i for p in packs for i in p) == list(range(60))
    gaps = 0.35 * rate
    for p in packs:
        total = sum(lengths[i] for i in p)
        assert total + gaps * (len(p) - 1) >= 3.0 * rate or len(packs) == 1
        assert total <= 6.0 * rate + 2 * max(lengths) + 3 * rate  # a short remainder may join the last
    x = np.concatenate([np.zeros(4410), harmonic_tone(44100, 1.0)[0], np.zeros(8820)])[None]
    y = clips.trim_silence(x.astype(np.float32), 44100)
    assert 44100 <= y.shape[1] <= 44100 + 2 * 0.03 * 44100 + 441
    loud = clips.normalize_loudness(y * 0.01, 44100)
    meter = LoudnessMeter(44100, 1)
    meter.update(loud)
    assert meter.integrated() == pytest.approx(clips.TARGET_LUFS, abs=0.2) or \
        np.abs(loud).max() == pytest.approx(10 ** (clips.PEAK_CEILING_DBFS / 20), rel=1e-3)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed (not a Debian system)")
def test_package_cache_unpacks_a_cached_deb_once(tmp_path):
    package = tmp_path / "pkg"
    (package / "DEBIAN").mkdir(parents=True)
    (package / "DEBIAN/control").write_text("Package: fake-audio\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: t <t@example.org>\nDescription: test\n")
    (package / "usr/share/doc/fake-audio").mkdir(parents=True)
    (package / "usr/share/doc/fake-audio/copyright").write_text(KLETTRES_COPYRIGHT)
    (tmp_path / "cache/debs").mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--build", str(package), str(tmp_path / "cache/debs/fake-audio_1.0_all.deb")],
                   check=True, capture_output=True)
    cache = PackageCache(tmp_path / "cache")
    tree = cache.tree("fake-audio")
    assert (tree / "usr/share/doc/fake-audio/copyright").is_file()
    assert cache.copyright("fake-audio") == KLETTRES_COPYRIGHT
    (tmp_path / "cache/debs/fake-audio_1.0_all.deb").unlink()
    assert cache.tree("fake-audio") == tree  # complete: no second unpack needed


def test_missing_apt_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("audio_upscaler.train.corpus.debian.shutil.which", lambda tool: None)
    with pytest.raises(UpscalerError, match="apt-get.*Debian/Ubuntu"):
        PackageCache(tmp_path).tree("klettres-data")


# ----------------------------------------------------------------- the built corpus


def test_files_match_their_manifest_entries(corpus):
    config, summary = corpus
    entries = read_manifest(config.out)
    assert entries == summary.entries and len(entries) >= 8
    for e in entries:
        info = sf.info(str(config.out / e.path))
        assert (info.samplerate, info.channels) == (e.sample_rate, e.channels)
        assert info.duration == pytest.approx(e.duration, abs=1e-3)
        assert info.subtype == "PCM_24" and e.job and e.licence
    kinds = {(e.source, e.kind, e.subset) for e in entries}
    assert ("klettres-data", "speech", "main") in kinds and ("fillets-ng-data", "speech", "speech_22k") in kinds
    assert {("hydrogen-drumkits", "music", "main"), ("sonic-pi-samples", "music", "main")} <= kinds


def test_speech_keeps_only_full_band_clips_of_natural_voices(corpus):
    config, summary = corpus
    speech = [e for e in summary.entries if e.kind == "speech" and e.subset == "main"]
    assert all(e.bandwidth_hz >= 19000 and e.params["min_clip_bandwidth_hz"] >= 19000 for e in speech)
    used = [c for e in speech for c in e.params["clips"]]
    assert used and not any("_lp" in c for c in used)  # the 11 kHz clips are gone
    assert {e.item for e in speech} == {"en", "it", "de", "Default", "Pirate"}  # no fr, no Robot
    for e in speech:  # clips of one voice joined, about 3-6 s
        assert e.sample_rate == 44100 and e.channels == 1
        x, rate = sf.read(str(config.out / e.path))
        assert estimate_cutoff(x[None], rate).hz >= 19000
    en = [e for e in speech if e.item == "en"]
    assert sum(len(e.params["clips"]) for e in en) == 3 and all(e.duration >= 2.5 for e in en)
    fillets = [e for e in summary.entries if e.source == "fillets-ng-data"]
    assert {e.item for e in fillets} == {"city"} and all(e.sample_rate == 22050 for e in fillets)


def test_split_by_item_with_pinned_validation(corpus):
    _, summary = corpus
    entries = summary.entries
    assert split_conflicts(entries) == set()
    it = {e.split for e in entries if e.source == "klettres-data" and e.item == "it"}
    assert it == {"validation"}
    for source in ("klettres-data", "hedgewars-data"):  # the split is drawn among usable voices
        items = {e.item: e.split for e in entries if e.source == source}
        assert set(items.values()) == {"train", "validation"}, source
    # one split per item: every file of an item is on the same side
    sides = {}
    for e in entries:
        sides.setdefault(e.key, set()).add(e.split)
    assert all(len(s) == 1 for s in sides.values())


def test_licences_come_from_the_copyright_files(corpus):
    config, summary = corpus
    by_source = {}
    for e in summary.entries:
        by_source.setdefault(e.source, set()).add(e.licence)
    assert by_source["klettres-data"] == {"GPL-2+"}
    assert by_source["hedgewars-data"] == {"GFDL-1.3"}
    assert by_source["fillets-ng-data"] == {"GPL-2"}  # not machine-readable: the fallback
    kit_licences = {e.item: e.licence for e in summary.entries if e.source.startswith("hydrogen")}
    assert kit_licences == {"KitA": "CC0", "KitB": "CC-BY-3.0", "KitC": "CC0"}
    assert (config.out / "licences/hedgewars-data.txt").read_text() == HEDGEWARS_COPYRIGHT


def test_manifest_round_trip_and_bad_lines(corpus, tmp_path):
    _, summary = corpus
    path = write_manifest(tmp_path / "m.jsonl", summary.entries)
    assert read_manifest(path) == summary.entries
    line = json.loads(path.read_text().splitlines()[0])
    del line["split"]
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(UpscalerError, match="m.jsonl:1.*split"):
        read_manifest(path)


def test_second_build_does_no_work_and_other_settings_are_refused(corpus):
    config, summary = corpus
    manifest = (config.out / "manifest.jsonl").read_bytes()
    times = {e.path: (config.out / e.path).stat().st_mtime_ns for e in summary.entries}
    again = build_corpus(config)
    assert again.ran == 0 and again.skipped > 0 and again.entries == summary.entries
    assert (config.out / "manifest.jsonl").read_bytes() == manifest
    assert {p: (config.out / p).stat().st_mtime_ns for p in times} == times
    other = BuildConfig(out=config.out, cache=config.cache, sources=SOURCES, seed=1, jobs=1, quiet=True)
    with pytest.raises(UpscalerError, match="other settings"):
        build_corpus(other)
    with pytest.raises(UpscalerError, match="unknown source"):
        build_corpus(BuildConfig(out=config.out, sources=("nope",)))


def test_build_refuses_nan_hours_no_sources_and_a_file_as_the_folder(tmp_path):
    """``--hours-music nan`` built a corpus with no music at all (NaN passed the ``< 0`` check),
    ``--sources ,`` built nothing and reported success, and ``--out`` naming a file was an
    internal FileExistsError."""
    out = tmp_path / "corpus"
    for changes, message in (({"hours_music": float("nan")}, "hours must be >= 0"),
                             ({"hours_drums": float("nan")}, "hours must be >= 0"),
                             ({"sources": ()}, "no source named")):
        with pytest.raises(UpscalerError, match=message):
            build_corpus(BuildConfig(out=out, jobs=1, quiet=True, **changes))
    assert not out.exists()
    (tmp_path / "afile").write_text("x")
    for target, message in ((tmp_path / "afile", "is a file, not a corpus folder"),
                            (tmp_path / "afile" / "sub", "cannot create the corpus folder")):
        with pytest.raises(UpscalerError, match=message):
            build_corpus(BuildConfig(out=target, sources=("klettres",), jobs=1, quiet=True))
    assert (tmp_path / "afile").read_text() == "x"


# ----------------------------------------------------------------- music (needs fluidsynth and music21)


def tiny_soundfont(path: Path, rate: int = 44100) -> None:
    """A minimal SoundFont 2: one looped band-limited sawtooth, presets for all 128 programs."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return tag + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")

    def name(text: str) -> bytes:
        return text.encode().ljust(20, b"\0")

    t = np.arange(rate) / rate
    k = np.arange(1, 45)[:, None]
    saw = (np.sin(2 * np.pi * 441 * k * t) / k).sum(0)
    pcm = (saw / np.abs(saw).max() * 20000).astype("<i2")
    header = struct.Struct("<HHHIII")
    sample = struct.Struct("<IIIIIBbHH")
    pdta = b"".join(chunk(tag, data) for tag, data in [
        (b"phdr", b"".join(name(f"p{p}") + header.pack(p, 0, p, 0, 0, 0) for p in range(128))
         + name("EOP") + header.pack(0, 0, 128, 0, 0, 0)),
        (b"pbag", b"".join(struct.pack("<HH", p, 0) for p in range(129))),
        (b"pmod", b"\0" * 10),
        (b"pgen", struct.pack("<HH", 41, 0) * 128 + struct.pack("<HH", 0, 0)),
        (b"inst", name("saw") + struct.pack("<H", 0) + name("EOI") + struct.pack("<H", 1)),
        (b"ibag", struct.pack("<HHHH", 0, 0, 2, 0)),
        (b"imod", b"\0" * 10),
        (b"igen", struct.pack("<HHHHHH", 54, 1, 53, 0, 0, 0)),
        (b"shdr", name("saw") + sample.pack(0, len(pcm), 1000, 44000, rate, 69, 0, 0, 1)
         + name("EOS") + sample.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)),
    ])
    info = chunk(b"ifil", struct.pack("<HH", 2, 1)) + chunk(b"isng", b"EMU8000\0") + chunk(b"INAM", b"tiny\0\0")
    body = (b"sfbk" + chunk(b"LIST", b"INFO" + info) + chunk(b"LIST", b"sdta" + chunk(b"smpl", pcm.tobytes() + b"\0" * 92))
            + chunk(b"LIST", b"pdta" + pdta))
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="fluidsynth is not installed (apt-get install fluidsynth)")


@needs_fluidsynth
def test_fluidsynth_renders_with_effects_and_valid_settings(tmp_path):
    from audio_upscaler.train.corpus.arrange import Performance
    from audio_upscaler.train.corpus.music import fluidsynth_command, render_performance

    tiny_soundfont(tmp_path / "tiny.sf2")
    effects = Effects(reverb={"room-size": 0.7, "damp": 0.3, "width": 0.8, "level": 0.6},
                      chorus={"nr": 3, "level": 2.0, "speed": 0.4, "depth": 8.0})
    notes = [NoteEvent(0.5 * i, 0.5 * i + 0.4, 0, 57 + i, 100) for i in range(6)]
    perf = Performance(notes, [ChannelSetup(0, 0, reverb=80, chorus=40)], effects, 3.4, 0.5, 4, False, 0.0)
    context = JobContext(out=tmp_path, soundfont=tmp_path / "tiny.sf2")
    command = fluidsynth_command("fluidsynth", tmp_path / "tiny.sf2", tmp_path / "a.mid", tmp_path / "a.wav",
                                 48000, effects)
    assert command.count("-o") == 3 + 8 and "-R" in command and "-C" in command
    audio = render_performance(perf, context, tmp_path)
    assert audio.shape[0] == 2 and audio.shape[1] >= 48000 * (3.4 + 2.0)  # the tail is rendered
    assert np.abs(audio[:, : 48000 * 3]).max() > 0.01  # (an unknown setting would make fluidsynth fail)


@needs_fluidsynth
def test_a_score_renders_with_a_drum_groove(tmp_path):
    pytest.importorskip("music21", reason="music21 is in the [train] extra")
    from audio_upscaler.train.corpus.music import DrumMix, PieceJob

    tiny_soundfont(tmp_path / "tiny.sf2")
    kit = make_kit(tmp_path / "kits/KitA", NEW_KIT, KIT_A_FILES).parent
    context = JobContext(out=tmp_path / "data", soundfont=tmp_path / "tiny.sf2", max_piece_seconds=20.0)
    (tmp_path / "data").mkdir()
    job = PieceJob("bach/bwv66.6.mxl", "validation", DrumMix(str(kit), "hydrogen-drumkits:KitA", "CC0"))
    [entry] = job.run(context)
    assert entry.split == "validation" and entry.components == ["hydrogen-drumkits:KitA"]
    assert entry.sample_rate == 48000 and entry.channels == 2 and 15 <= entry.duration <= 25
    assert entry.params["drums"]["kit"] == "hydrogen-drumkits:KitA" and entry.params["parts"]
    assert "MIT" in entry.licence and "CC0" in entry.licence
    assert [e.path for e in job.run(context)] == [entry.path]  # same seed, same file
    assert not any(p.name.startswith(".render-") for p in (tmp_path / "data").iterdir())
