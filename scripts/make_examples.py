"""Rebuild the bundled example files in ``examples/`` from the allowed sources (DESIGN.md section 6).

Needs the unpacked Debian packages ``klettres-data`` and ``musescore-general-soundfont-lossless``
(``apt-get download`` + ``dpkg-deb -x`` into ``--debs``), ``fluidsynth`` on the PATH and the
``music21`` package. The examples come from items kept out of training (the validation split):
the Italian klettres voice and Bach chorale BWV 66.6.

    python scripts/make_examples.py --debs /tmp/debs/x
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audio_upscaler.audio import Audio
from audio_upscaler.io import output_format_for, write_audio

SPEECH_ITEMS = ["c", "i", "a", "o", "m", "e", "r", "t", "u", "s"]


def speech_clip(klettres: Path) -> np.ndarray:
    """About 5 s (at most 6 s) of Italian spoken letters at 44.1 kHz, mono, with short pauses."""
    parts = []
    for letter in SPEECH_ITEMS:
        x, sr = sf.read(klettres / "it" / "alpha" / f"{letter}.ogg", always_2d=True)
        assert sr == 44100
        x = x.mean(axis=1)
        voiced = np.nonzero(np.abs(x) > 0.01 * np.abs(x).max())[0]
        parts += [x[voiced[0] : voiced[-1] + 1], np.zeros(int(0.12 * sr))]
    y = np.concatenate(parts)[: 6 * 44100]
    return (y / np.abs(y).max() * 0.7).astype(np.float32)


def music_clip(soundfont: Path, seconds: float = 8.0) -> np.ndarray:
    """A Bach chorale rendered with strings + piano at 44.1 kHz, stereo ``[2, T]``."""
    import music21

    score = music21.corpus.parse("bach/bwv66.6")
    programs = [40, 41, 0, 42]  # violin, viola, piano, cello (General MIDI)
    for part, program in zip(score.parts, programs):
        instrument = music21.instrument.instrumentFromMidiProgram(program)
        part.insert(0, instrument)
    score.insert(0, music21.tempo.MetronomeMark(number=96))
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "piece.mid"
        wav = Path(tmp) / "piece.wav"
        score.write("midi", fp=midi)
        subprocess.run(
            ["fluidsynth", "-ni", "-g", "0.6", "-r", "44100", "-F", str(wav), str(soundfont), str(midi)],
            check=True, capture_output=True,
        )
        x, sr = sf.read(wav, always_2d=True)
    x = x[int(0.2 * sr) : int((0.2 + seconds) * sr)].T
    fade = np.linspace(0, 1, int(0.05 * sr))
    x[:, -fade.size :] *= fade[::-1]
    return (x / np.abs(x).max() * 0.8).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, required=True, help="folder with the unpacked packages")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    args = parser.parse_args()
    klettres = next(args.debs.rglob("usr/share/klettres"))
    soundfont = next(args.debs.rglob("MuseScore_General_Full.sf2"))
    args.out.mkdir(exist_ok=True)

    speech = speech_clip(klettres)
    tel = soxr.resample(speech, 44100, 8000, quality="VHQ")
    write_audio(args.out / "speech_8k.wav", Audio(tel, 8000, {"title": "Spoken letters (telephone band)", "artist": "KLettres (it)"}),
                output_format_for("x.wav", bit_depth=16), overwrite=True)

    music = music_clip(soundfont)
    tags = {"title": "Chorale BWV 66.6 (excerpt)", "artist": "J. S. Bach, rendered with MuseScore General"}
    write_audio(args.out / "music_mp3_128k.mp3", Audio(music, 44100, tags),
                output_format_for("x.mp3", bitrate_kbps=128), overwrite=True)
    low = soxr.resample(music.T, 44100, 22050, quality="VHQ").T
    write_audio(args.out / "music_22k.flac", Audio(low, 22050, tags), output_format_for("x.flac", bit_depth=16), overwrite=True)
    for f in sorted(args.out.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
