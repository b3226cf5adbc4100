"""An open, reproducible training corpus built only from the sources in DESIGN.md section 6.

``build_corpus(BuildConfig(...))`` fetches the Debian packages (``debian``), renders music21
scores with fluidsynth (``music``), sequences hydrogen drum kits (``drums``), collects
sonic-pi samples (``samples``) and klettres/hedgewars/fillets-ng speech (``speech``), and
writes 24-bit FLAC files plus a manifest (``manifest``) with a fixed train/validation split
by source item (``split``). See docs/CORPUS.md.
"""

from .build import BuildConfig, BuildSummary, build_corpus
from .manifest import Entry, read_manifest, write_manifest

__all__ = ["BuildConfig", "BuildSummary", "Entry", "build_corpus", "read_manifest", "write_manifest"]
