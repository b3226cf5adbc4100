"""A fixed train/validation split by source item (score, drum kit, language, voice pack).

The rule depends only on the item's name, never on crops or on the build order:

1. pinned items (``PINNED_VALIDATION``: the material behind the bundled examples) go to
   validation;
2. otherwise an item goes to validation when a hash of ``source:item`` falls below
   ``fraction`` (a uniform number in [0, 1) from SHA-256), so adding items never moves others;
3. a group with two or more items and no validation item yet gets its lowest-hash item moved
   to validation, so small sources (16 drum kits, 20 languages) are represented on both sides.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

from .manifest import item_key

#: Source items that must stay out of training (used for the bundled examples).
PINNED_VALIDATION = frozenset({
    item_key("music21", "bach/bwv66.6.mxl"),
    item_key("klettres-data", "it"),
})
DEFAULT_FRACTION = 0.1


def unit_hash(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (SHA-256, same on every machine and run)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def assign_splits(keys: Iterable[str], fraction: float = DEFAULT_FRACTION,
                  pinned: frozenset[str] = PINNED_VALIDATION) -> dict[str, str]:
    """``{key: "train" | "validation"}`` for one group of ``source:item`` keys (rules above)."""
    keys = sorted(set(keys))
    split = {k: "validation" if k in pinned or unit_hash(k) < fraction else "train" for k in keys}
    if len(keys) >= 2 and fraction > 0 and "validation" not in split.values():
        split[min(keys, key=unit_hash)] = "validation"
    return split
