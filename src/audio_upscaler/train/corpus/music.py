"""Music: music21 corpus scores rendered with FluidSynth and the lossless MuseScore General .sf2.

``catalogue`` lists the scores in a fixed order that interleaves the corpus' collections
(Bach chorales, Palestrina, Monteverdi, Trecento, string quartets, folk tunes ...), so any
prefix of it is varied; ``PieceJob`` renders one score at 48 kHz with a drawn instrumentation,
tempo, dynamics and effects (``arrange``), optionally with a drum groove mixed in.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UpscalerError
from . import drums
from .arrange import Effects, Performance, ScoreData, ScoreNote, arrange
from .clips import finish, loudness_lufs, read_clip
from .drumkit import load_kit, parse_drumkit
from .jobs import JobContext, job_rng, make_entry, safe_name
from .manifest import Entry, item_key
from .midi import write_midi
from .split import unit_hash

SOURCE = "music21"
SOUNDFONT_PACKAGE = "musescore-general-soundfont-lossless"
SOUNDFONT_PATH = "usr/share/sounds/sf2/MuseScore_General_Full.sf2"
SOUNDFONT_LICENCE = "MIT (MuseScore General SoundFont; parts public domain or CC0)"
SCORE_LICENCE = "BSD-3-Clause (music21 corpus encodings of public-domain works)"
EXTENSIONS = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
SKIPPED_COLLECTIONS = ("demos", "theoryExercises")
#: Collections of single-line tunes get a smaller share of the rendering order.
MONOPHONIC = ("airdsAirs", "essenFolksong", "miscFolk", "nottingham-dataset", "oneills1850", "ryansMammoth")
MONOPHONIC_WEIGHT = 0.35
MIN_PIECE_SECONDS = 8.0
TAIL_SECONDS = 2.5  # release and reverb tail rendered after the last note


def corpus_root(music21) -> Path:
    return Path(music21.__file__).parent / "corpus"


def catalogue(root: Path) -> list[str]:
    """Score items (paths relative to the corpus root) in rendering order.

    Within a collection the order is a fixed hash order (independent of the split hash); collections are interleaved by
    stride scheduling with weight 1 (``MONOPHONIC_WEIGHT`` for single-line tune books).
    """
    groups: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        collection = relative.split("/", 1)[0]
        if path.suffix.lower() in EXTENSIONS and "/" in relative and collection not in SKIPPED_COLLECTIONS:
            groups.setdefault(collection, []).append(relative)
    # salted hash: the split uses the plain one, and the order must not follow the split
    queues = {name: sorted(items, key=lambda i: unit_hash("order:" + item_key(SOURCE, i)))
              for name, items in groups.items()}
    passes = {name: 0.0 for name in queues}
    order = []
    while queues:
        name = min(queues, key=lambda n: (passes[n], n))
        order.append(queues[name].pop(0))
        passes[name] += 1.0 / (MONOPHONIC_WEIGHT if name in MONOPHONIC else 1.0)
        if not queues[name]:
            del queues[name], passes[name]
    return order


def split_abc(text: str) -> tuple[str, list[str]]:
    """(file header, tunes) of an ABC tune book; each tune starts at an ``X:`` line."""
    header, tunes = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("X:"):
            tunes.append(line)
        elif tunes:
            tunes[-1] += line
        else:
            header.append(line)
    return "".join(header), tunes


def load_score(music21, root: Path, item: str, rng: np.random.Generator):
    """``(score, which)``: the parsed score of ``item`` (one tune/score of a book/opus)."""
    path = root / item
    which = None
    if path.suffix == ".abc":
        header, tunes = split_abc(path.read_text(encoding="latin-1"))
        if not tunes:
            raise UpscalerError(f"{item}: no tune")
        which = int(rng.integers(len(tunes)))
        score = music21.converter.parse(header + tunes[which], format="abc")
    else:
        score = music21.converter.parse(str(path))
    if isinstance(score, music21.stream.Opus):
        which = int(rng.integers(len(score.scores)))
        score = score.scores[which]
    return score, which


def score_data(music21, score) -> ScoreData:
    """Notes per part (ties merged, chords expanded, unpitched notes and chord symbols dropped),
    and the meter, marked tempo and first full bar of a music21 score."""
    stripped = score.stripTies(inPlace=False)
    parts = list(stripped.parts) if hasattr(stripped, "parts") and len(stripped.parts) else [stripped]
    out = []
    for part in parts:
        notes = []
        for element in part.flatten().notes:
            if not isinstance(element, (music21.note.Note, music21.chord.Chord)):
                continue
            if isinstance(element, (music21.percussion.PercussionChord, music21.harmony.Harmony)):
                continue  # unpitched, or a chord symbol (an annotation, not notes to play)
            duration = float(element.duration.quarterLength)
            for pitch in element.pitches:
                notes.append(ScoreNote(float(element.offset), duration, int(round(pitch.ps))))
        if notes:
            out.append(notes)
    data = ScoreData(out)
    marks = list(stripped.recurse().getElementsByClass(music21.tempo.MetronomeMark))
    if marks and marks[0].getQuarterBPM():
        data.tempo_qpm = float(marks[0].getQuarterBPM())
    meters = list(stripped.recurse().getElementsByClass(music21.meter.TimeSignature))
    if meters:
        data.beats_per_bar = max(1, int(meters[0].beatCount))
        data.beat_quarters = float(meters[0].beatDuration.quarterLength)
    measures = list(parts[0].getElementsByClass(music21.stream.Measure))
    if len(measures) >= 2:
        first = measures[0]
        if first.paddingLeft > 0 or first.duration.quarterLength < first.barDuration.quarterLength:
            data.first_bar = float(measures[1].offset)
    return data


def fluidsynth_command(fluidsynth: str, soundfont: Path, midi: Path, wav: Path, rate: int,
                       effects: Effects) -> list[str]:
    """FluidSynth fast (non-real-time) rendering of ``midi`` into a float WAV at ``rate``."""
    command = [fluidsynth, "-n", "-i", "-q", "-g", "0.4", "-r", str(rate), "-O", "float", "-T", "wav",
               "-F", str(wav), "-o", "synth.dynamic-sample-loading=1", "-o", "synth.polyphony=512",
               "-o", "synth.cpu-cores=1", "-R", "1" if effects.reverb else "0",
               "-C", "1" if effects.chorus else "0"]
    for group, settings in (("reverb", effects.reverb), ("chorus", effects.chorus)):
        for name, value in (settings or {}).items():
            command += ["-o", f"synth.{group}.{name}={value}"]
    return command + [str(soundfont), str(midi)]


def render_performance(performance: Performance, context: JobContext, workdir: Path) -> np.ndarray:
    """Render with FluidSynth; returns float32 ``[2, T]`` at ``context.music_rate``."""
    midi, wav = workdir / "piece.mid", workdir / "piece.wav"
    write_midi(midi, performance.notes, performance.channels, performance.duration + TAIL_SECONDS)
    command = fluidsynth_command(context.fluidsynth, context.soundfont, midi, wav,
                                 context.music_rate, performance.effects)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not wav.exists():
        raise UpscalerError(f"fluidsynth failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    audio, _ = read_clip(wav)
    return audio


@dataclass(frozen=True)
class DrumMix:
    """A drum kit to mix under a piece: its folder, ``source:item`` key and licence."""

    folder: str
    key: str
    licence: str


@dataclass(frozen=True)
class PieceJob:
    """Render one music21 score (``item``); ``drums``: a kit from the same split to mix in."""

    item: str
    split: str
    drums: DrumMix | None = None

    @property
    def key(self) -> str:
        return item_key(SOURCE, self.item)

    def run(self, context: JobContext) -> list[Entry]:
        from .tools import ensure_music21

        music21 = ensure_music21()
        rng = job_rng(context.seed, self.key)
        score, which = load_score(music21, corpus_root(music21), self.item, rng)
        data = score_data(music21, score)
        if not data.parts:
            return []
        performance = arrange(data, rng, context.max_piece_seconds)
        if performance.duration < MIN_PIECE_SECONDS:
            return []
        workdir = Path(tempfile.mkdtemp(prefix=".render-", dir=context.out))
        try:
            audio = render_performance(performance, context, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        params = {"tune": which, **performance.description}
        components, licence = [], f"score: {SCORE_LICENCE}; sounds: {SOUNDFONT_LICENCE}"
        if self.drums is not None:
            audio, params["drums"] = mix_drums(audio, performance, self.drums, context.music_rate, rng)
            components.append(self.drums.key)
            licence += f"; drums: {self.drums.licence}"
        relative = f"music/{SOURCE}/{safe_name(self.item.rsplit('.', 1)[0])}.flac"
        written = finish(audio, context.music_rate, context.out, relative)
        if written is None:
            return []
        return [make_entry(written, self.key, SOURCE, self.item, "music", self.split, licence,
                           components=components, params=params)]


def mix_drums(audio: np.ndarray, performance: Performance, kit: DrumMix, rate: int,
              rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Add a groove that follows the piece's tempo and meter, 3-18 dB below the music."""
    loaded = load_kit(parse_drumkit(Path(kit.folder) / "drumkit.xml"), rate)
    beat_seconds, beats_per_bar = drums.fit_tempo(performance.beat_seconds, performance.beats_per_bar)
    groove = drums.random_groove(
        rng, duration=performance.duration - performance.first_bar_seconds, beat_seconds=beat_seconds,
        beats_per_bar=beats_per_bar, compound=performance.compound, start=performance.first_bar_seconds)
    beat = drums.render(drums.sequence(groove, loaded, rng), loaded, audio.shape[1])
    level_db = float(rng.uniform(-18.0, -3.0))
    music, drum = loudness_lufs(audio, rate), loudness_lufs(beat, rate)
    if np.isfinite(music) and np.isfinite(drum):
        audio = audio + beat * np.float32(10 ** ((music + level_db - drum) / 20))
    return audio, {"kit": kit.key, "level_db": round(level_db, 1), **groove.to_dict()}
