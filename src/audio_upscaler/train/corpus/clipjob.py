"""One job per package made of short recorded clips (speech voices, sonic-pi samples).

The clips of each source item (a language, a voice pack, a sample category) are decoded,
trimmed, brought to one rate and measured; clips below ``min_bandwidth_hz`` are dropped. The
train/validation split is then drawn among the items that kept at least one clip (so a
source never ends up with its only validation item empty), and each item's clips are
shuffled and packed into longer files (speech: 3-6 s utterances). Clips below and above
``band_split_hz`` are packed separately, so one file never mixes full-band and band-limited
material.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ...io_formats import sf_name
from .clips import (finish, join_clips, measure_bandwidth, plan_packs, read_clip, resample, to_mono,
                    trim_silence)
from .jobs import JobContext, job_rng, make_entry, safe_name
from .manifest import Entry, item_key
from .split import assign_splits

MAX_RATE = 48000


@dataclass(frozen=True)
class ClipItem:
    """A source item: its name, its clip files (absolute paths) and its licence."""

    item: str
    files: tuple[str, ...]
    licence: str


@dataclass(frozen=True)
class ClipPackJob:
    """Measure, split and pack the clips of every item of ``source``.

    ``rate``: output rate (None: each item's most common input rate, at most 48 kHz);
    ``min_bandwidth_hz``: clips measured below it (at the output rate) are dropped;
    ``seconds``: length range of the packed files; ``mono``: downmix (else stereo);
    ``fraction``: validation share of the split (``split.assign_splits``).
    """

    source: str
    kind: str
    items: tuple[ClipItem, ...]
    folder: str
    fraction: float
    mono: bool = True
    rate: int | None = None
    min_bandwidth_hz: float | None = None
    band_split_hz: float = 19000.0
    seconds: tuple[float, float] = (3.0, 6.0)
    subset: str = "main"

    @property
    def key(self) -> str:
        return f"{self.source}:{self.folder}"

    def run(self, context: JobContext) -> list[Entry]:
        kept = {c.item: self._measure(c) for c in self.items}
        usable = [c for c in self.items if kept[c.item][1]]
        splits = assign_splits((item_key(self.source, c.item) for c in usable), self.fraction)
        entries = []
        for c in usable:
            rate, clips = kept[c.item]
            split = splits[item_key(self.source, c.item)]
            entries += self._pack(c, rate, clips, split, context)
        return entries

    def _rate(self, item: ClipItem) -> int:
        rates = Counter(sf.info(sf_name(f)).samplerate for f in item.files)
        return self.rate or min(rates.most_common(1)[0][0], MAX_RATE)

    def _prepare(self, path: str, rate: int) -> np.ndarray:
        """The clip as ``[C, T]`` at ``rate``: mono or stereo, leading/trailing silence trimmed."""
        x, r = read_clip(path)
        x = to_mono(x) if self.mono else (np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x[:2])
        return trim_silence(resample(x, r, rate), rate)

    def _measure(self, item: ClipItem) -> tuple[int, list[tuple[str, float]]]:
        """``(rate, [(file, bandwidth)])`` of the clips that pass the bandwidth bar."""
        rate = self._rate(item)
        kept = []
        for path in item.files:
            x = self._prepare(path, rate)
            if x.shape[1] < rate // 20:  # under 50 ms: silence or a click
                continue
            bandwidth = measure_bandwidth(x, rate)
            if self.min_bandwidth_hz is None or bandwidth >= self.min_bandwidth_hz:
                kept.append((path, bandwidth))
        return rate, kept

    def _pack(self, item: ClipItem, rate: int, clips: list[tuple[str, float]], split: str,
              context: JobContext) -> list[Entry]:
        rng = job_rng(context.seed, item_key(self.source, item.item))
        entries = []
        for band in ("full", "limited"):
            chosen = [c for c in clips if (c[1] >= self.band_split_hz) == (band == "full")]
            chosen = [chosen[i] for i in rng.permutation(len(chosen))]
            audio = [self._prepare(path, rate) for path, _ in chosen]
            for number, pack in enumerate(plan_packs([x.shape[1] for x in audio], rate, rng, self.seconds)):
                relative = f"{self.folder}/{safe_name(item.item)}/{band}-{number:03d}.flac"
                written = finish(join_clips([audio[i] for i in pack], rate, rng), rate, context.out,
                                 relative, trim=False)
                if written is not None:
                    names = ["/".join(Path(chosen[i][0]).parts[-2:]) for i in pack]
                    entries.append(make_entry(
                        written, self.key, self.source, item.item, self.kind, split, item.licence,
                        subset=self.subset, params={"clips": names, "min_clip_bandwidth_hz":
                                                    round(min(chosen[i][1] for i in pack), 1)}))
        return entries
