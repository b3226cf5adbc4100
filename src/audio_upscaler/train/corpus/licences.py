"""Licences from Debian copyright files (machine-readable DEP-5 format, or a given fallback).

DEP-5 ``Files:`` patterns name paths in the *upstream source tree*, which differ from the
installed paths (``etc/samples/x.flac`` is installed as ``usr/share/sonic-pi/samples/x.flac``).
A pattern therefore matches an installed path when the pattern, or its tail after dropping
leading folders (keeping at least two components), matches the end of the path. Because that
match is loose (``hedgewars/*`` also matches ``.../games/hedgewars/Data/...``), the most
specific matching pattern wins, later paragraphs winning ties as in DEP-5; ``Files: *`` is
the default.
"""

from __future__ import annotations

from fnmatch import fnmatchcase


def parse_dep5(text: str) -> list[tuple[list[str], str]]:
    """``[(patterns, licence short name)]`` of the ``Files:`` paragraphs, in file order.

    Returns an empty list when ``text`` is not in the machine-readable format.
    """
    if not text.lstrip().startswith("Format:"):
        return []
    paragraphs = []
    for block in text.split("\n\n"):
        fields = _fields(block)
        if "files" in fields and "license" in fields:
            paragraphs.append((fields["files"].split(), fields["license"].splitlines()[0].strip()))
    return paragraphs


def _fields(block: str) -> dict[str, str]:
    """Field name (lower case) -> value, with continuation lines appended."""
    fields: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def _specificity(pattern: str, path: str) -> int | None:
    """Literal characters of the longest pattern tail matching the end of ``path`` (None: no match)."""
    if pattern == "*":
        return 0
    parts = pattern.strip("/").split("/")
    tails = ["/".join(parts[k:]) for k in range(max(1, len(parts) - 1))]
    matching = [t for t in tails if fnmatchcase(path, t) or fnmatchcase(path, "*/" + t)]
    return max((len(t.replace("*", "").replace("?", "")) for t in matching), default=None)


def licence_for(copyright_text: str, path: str, fallback: str) -> str:
    """Licence of the installed file ``path`` (relative, POSIX) under a copyright file.

    The most specific matching pattern wins (later paragraphs win ties); ``fallback`` is
    returned for non-DEP-5 files or when no paragraph matches.
    """
    best, found = -1, fallback
    for patterns, licence in parse_dep5(copyright_text):
        score = max((x for p in patterns if (x := _specificity(p, path)) is not None), default=None)
        if score is not None and score >= best:
            best, found = score, licence
    return found
