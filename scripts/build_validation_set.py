"""Build the small, fixed benchmark set from the validation split (DESIGN.md section 6).

Output: ``OUT/speech/*.flac`` and ``OUT/music/*.flac`` (48 kHz FLAC, 24-bit by default, ``--per-kind`` clips
of ``--seconds`` each) and ``OUT/manifest.jsonl`` in the corpus manifest format (split
``validation``), which ``audio-upscaler benchmark OUT`` reads. The selection is deterministic.

Two sources:

``--corpus CORPUS``: the validation entries (subset ``main``) of a corpus built by
``audio_upscaler.train.corpus``, in a fixed hash order of their paths, one clip per source item
before any item gets a second; each clip is the loudest ``--seconds`` window of its file (with
``--min-bandwidth``, a clip measured narrower is passed over). The committed
``tests/data/validation_corpus`` was made with

    python scripts/build_validation_set.py --corpus CORPUS --out tests/data/validation_corpus \\
        --per-kind 8 --seconds 3 --bits 16 --mono --min-bandwidth 19000

``--debs DEBS``: straight from the unpacked Debian packages (``klettres-data``,
``musescore-general-soundfont-lossless``; ``fluidsynth`` and ``music21`` installed), for use
before a corpus is built: spoken letters of the klettres ``it`` voice (pinned to validation) and
Bach chorales whose split hash puts them on the validation side (BWV 66.6, used by the bundled
examples, left out), rendered with fluidsynth. The committed test fixture was made with

    python scripts/build_validation_set.py --debs /tmp/debs/x --out tests/data/validation \\
        --per-kind 2 --seconds 1.75 --bits 16 --mono
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_upscaler.analysis import estimate_cutoff
from audio_upscaler.dsp.resample import resample
from audio_upscaler.train.corpus.manifest import Entry, item_key, read_manifest, write_manifest
from audio_upscaler.train.corpus.split import DEFAULT_FRACTION, PINNED_VALIDATION, unit_hash

RATE = 48_000
KINDS = ("speech", "music")
FADE_SECONDS = 0.01
HOP_SECONDS = 0.1
KLETTRES_VOICE = "it"
KLETTRES_LICENCE = "GPL-2+"
MUSIC_LICENCE = ("score: BSD-3-Clause (music21 corpus encodings of public-domain works); sounds: MIT "
                 "(MuseScore General SoundFont; parts public domain or CC0)")
EXCLUDED_SCORES = ("bach/bwv66.6.mxl",)  # the bundled examples' piece
#: General MIDI programs of the four chorale voices, one ensemble per music clip (cycled).
ENSEMBLES = ((40, 41, 0, 42), (73, 68, 71, 70), (19, 19, 19, 19))  # strings+piano; winds; organ


# ---------------------------------------------------------------------------- shared


def loudest_window(x: np.ndarray, rate: int, seconds: float) -> tuple[int, np.ndarray]:
    """``(start sample, [C, seconds * rate])``: the window with the most energy (hops of 0.1 s),
    with 10 ms fades; shorter input is returned whole."""
    n = int(seconds * rate)
    if x.shape[1] <= n:
        return 0, _fade(x.copy(), rate)
    energy = np.concatenate([[0.0], np.cumsum((x.astype(np.float64) ** 2).sum(axis=0))])
    starts = np.arange(0, x.shape[1] - n + 1, int(HOP_SECONDS * rate))
    start = int(starts[np.argmax(energy[starts + n] - energy[starts])])
    return start, _fade(x[:, start : start + n].copy(), rate)


def _fade(x: np.ndarray, rate: int) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, int(FADE_SECONDS * rate), dtype=np.float32)
    x[:, : ramp.size] *= ramp
    x[:, x.shape[1] - ramp.size :] *= ramp[::-1]
    return x


def at_output_rate(x: np.ndarray, rate: int, mono: bool) -> np.ndarray:
    """``[C, T]`` at ``rate`` -> float32 ``[C or 1, T']`` at 48 kHz, down-mixed with ``mono``."""
    x = x.mean(axis=0, keepdims=True) if mono else x
    return resample(np.ascontiguousarray(x, dtype=np.float32), rate, RATE)


def write_clip(out: Path, relative: str, x: np.ndarray, rate: int, bits: int, mono: bool, *,
               split: str = "validation", job: str = "validation-set", **fields) -> Entry:
    """Write ``[C, T]`` as 48 kHz FLAC (``bits`` 16 or 24; down-mixed with ``mono``) at
    ``out/relative``; return its manifest entry."""
    x = at_output_rate(x, rate, mono)
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(x, -1.0, 1.0 - 2.0 ** (1 - bits)).T, RATE, format="FLAC", subtype=f"PCM_{bits}")
    return Entry(path=relative, duration=round(x.shape[1] / RATE, 3), sample_rate=RATE, channels=x.shape[0],
                 bandwidth_hz=round(float(estimate_cutoff(x, RATE).hz), 1), split=split, job=job, **fields)


def peak_normalize(x: np.ndarray, peak: float) -> np.ndarray:
    return (x * (peak / max(float(np.abs(x).max()), 1e-9))).astype(np.float32)


# ---------------------------------------------------------------------------- from a corpus


def from_corpus(corpus: Path, out: Path, per_kind: int, seconds: float, bits: int,
                mono: bool, min_bandwidth_hz: float = 0.0) -> list[Entry]:
    """Clips of ``per_kind`` validation files per kind, in :func:`pick` order; a clip whose own
    measured bandwidth (of its window) is under ``min_bandwidth_hz`` is passed over."""
    entries = read_manifest(corpus)
    written = []
    for kind in KINDS:
        pool = [e for e in entries if e.split == "validation" and e.subset == "main" and e.kind == kind
                and e.duration >= seconds and e.bandwidth_hz >= min_bandwidth_hz]
        taken = 0
        for entry in pick(pool, len(pool)):
            if taken == per_kind:
                break
            x, rate = sf.read(corpus / entry.path, dtype="float32", always_2d=True)
            start, clip = loudest_window(x.T, rate, seconds)
            if estimate_cutoff(at_output_rate(clip, rate, mono), RATE).hz < min_bandwidth_hz:
                continue
            relative = f"{kind}/{Path(entry.path).with_suffix('').as_posix().replace('/', '_')}.flac"
            written.append(write_clip(out, relative, clip, rate, bits, mono, source=entry.source, item=entry.item,
                                      kind=kind, licence=entry.licence, components=entry.components,
                                      params={"from": entry.path, "start_s": round(start / rate, 3)}))
            taken += 1
    return written


def pick(pool: list[Entry], count: int) -> list[Entry]:
    """``count`` entries in hash order of their paths, one per source item before repeats."""
    ordered = sorted(pool, key=lambda e: unit_hash(e.path))
    first = [e for i, e in enumerate(ordered) if e.key not in {o.key for o in ordered[:i]}]
    rest = [e for e in ordered if e not in first]
    return (first + rest)[:count]


# ---------------------------------------------------------------------------- from the packages


def from_debs(debs: Path, out: Path, per_kind: int, seconds: float, bits: int,
                mono: bool) -> list[Entry]:
    klettres = next(debs.rglob(f"usr/share/klettres/{KLETTRES_VOICE}"))
    soundfont = next(debs.rglob("MuseScore_General_Full.sf2"))
    assert item_key("klettres-data", KLETTRES_VOICE) in PINNED_VALIDATION
    written = []
    for number, (letters, clip) in enumerate(speech_clips(klettres, per_kind, seconds), 1):
        written.append(write_clip(out, f"speech/klettres_{KLETTRES_VOICE}_{number}.flac", clip, 44100, bits, mono,
                                  source="klettres-data", item=KLETTRES_VOICE, kind="speech",
                                  licence=KLETTRES_LICENCE, params={"letters": letters}))
    for number, score in enumerate(validation_chorales()[:per_kind]):
        programs = ENSEMBLES[number % len(ENSEMBLES)]
        start, clip = loudest_window(render(score, soundfont, programs), RATE, seconds)
        written.append(write_clip(out, f"music/{Path(score).stem.replace('.', '_')}.flac", clip, RATE, bits, mono,
                                  source="music21", item=score, kind="music", licence=MUSIC_LICENCE,
                                  params={"programs": list(programs), "start_s": round(start / RATE, 3)}))
    return written


def speech_clips(folder: Path, count: int, seconds: float):
    """``count`` clips of spoken letters (hash order, 0.15 s apart), each ``seconds`` long (44.1 kHz)."""
    files = sorted((folder / "alpha").glob("*.ogg"), key=lambda f: unit_hash(f"{folder.name}/{f.stem}"))
    gap = np.zeros((1, int(0.15 * 44100)), np.float32)
    for _ in range(count):
        parts, letters = [], []
        while sum(p.shape[1] for p in parts) < seconds * 44100 and files:
            f = files.pop(0)
            x, rate = sf.read(f, dtype="float32", always_2d=True)
            assert rate == 44100, f"{f}: {rate} Hz"
            voiced = np.nonzero(np.abs(x[:, 0]) > 0.01 * np.abs(x).max())[0]
            parts += [x[voiced[0] : voiced[-1] + 1].T.mean(axis=0, keepdims=True), gap]
            letters.append(f.stem)
        clip = np.concatenate(parts, axis=1)[:, : int(seconds * 44100)]
        yield letters, _fade(peak_normalize(clip, 0.7), 44100)


def validation_chorales() -> list[str]:
    """Bach chorales on the validation side of the split, in hash order."""
    import music21

    root = Path(music21.__file__).parent / "corpus"
    scores = [p.relative_to(root).as_posix() for p in sorted((root / "bach").glob("*.mxl"))]
    keyed = [(unit_hash(item_key("music21", s)), s) for s in scores if s not in EXCLUDED_SCORES]
    return [s for h, s in sorted(keyed) if h < DEFAULT_FRACTION]


def render(score_path: str, soundfont: Path, programs: tuple[int, ...], tempo: int = 96) -> np.ndarray:
    """A music21 score rendered by fluidsynth at 48 kHz: float32 ``[2, T]``, peak 0.8."""
    import music21

    score = music21.corpus.parse(score_path)
    for part, program in zip(score.parts, programs):
        part.insert(0, music21.instrument.instrumentFromMidiProgram(program))
    score.insert(0, music21.tempo.MetronomeMark(number=tempo))
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        score.write("midi", fp=midi)
        subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", str(RATE), "-F", str(wav), str(soundfont), str(midi)],
                       check=True, capture_output=True)
        x, _ = sf.read(wav, dtype="float32", always_2d=True)
    return peak_normalize(x.T, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", type=Path, help="a corpus folder (with manifest.jsonl)")
    source.add_argument("--debs", type=Path, help="folder with the unpacked Debian packages")
    parser.add_argument("--out", type=Path, required=True, help="output folder (an earlier set there is replaced)")
    parser.add_argument("--per-kind", type=int, default=8, help="clips of speech and of music (default 8)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each clip (default 6 s)")
    parser.add_argument("--bits", type=int, choices=(16, 24), default=24, help="FLAC bit depth (default 24)")
    parser.add_argument("--mono", action="store_true", help="down-mix every clip to mono")
    parser.add_argument("--min-bandwidth", type=float, default=0.0, metavar="HZ",
                        help="with --corpus: only files whose measured bandwidth reaches this (a reference for band "
                             "extension needs a top band to restore)")
    args = parser.parse_args()
    readme = None  # an earlier set's README.md describes the set: kept across a rebuild
    if args.out.exists():
        if any(args.out.iterdir()) and not (args.out / "manifest.jsonl").is_file():
            parser.error(f"{args.out} is not empty and holds no validation set; choose another --out")
        if (args.out / "README.md").is_file():
            readme = (args.out / "README.md").read_text()
        shutil.rmtree(args.out)
    if args.corpus:
        entries = from_corpus(args.corpus, args.out, args.per_kind, args.seconds, args.bits, args.mono,
                              args.min_bandwidth)
    else:
        entries = from_debs(args.debs, args.out, args.per_kind, args.seconds, args.bits, args.mono)
    write_manifest(args.out / "manifest.jsonl", entries)
    if readme is not None:
        (args.out / "README.md").write_text(readme)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    for entry in sorted(entries, key=lambda e: e.path):
        print(f"{entry.path}: {entry.duration:.2f} s, {entry.channels} ch, bandwidth {entry.bandwidth_hz / 1000:.1f} kHz")
    print(f"{len(entries)} clips, {total / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
