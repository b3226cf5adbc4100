"""Small text-file helpers shared by the benchmark, the corpus builder and the CLI."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path


def fsync_path(path: str | Path) -> None:
    """Flush a closed file's data to disk (so a rename after a power cut never shows a torn file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) through a temp file in the same folder and ``os.replace``; the temp
    file is created with mode 0666 less the umask, the permissions of any new file.  A lone
    surrogate (a file name that is not UTF-8, as ``os.listdir`` gives it) is written as its
    ``\\udcXX`` escape, as :func:`to_json` does, instead of failing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _finite(obj):
    """Make floats JSON-safe anywhere in dicts/lists: NaN -> ``None``, +-inf -> ``"inf"``/``"-inf"``."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        return obj if math.isfinite(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj, indent: int | None = None) -> str:
    """Strict JSON: NaN becomes ``null``, infinities the strings ``"inf"``/``"-inf"`` (which
    ``float()`` parses); unknown types are written as ``str``.  A lone surrogate (a file name
    that is not UTF-8, as ``os.listdir`` gives it) is written as its ``\\udcXX`` escape, so the
    text can be encoded and ``json.loads`` gives the same name back."""
    text = json.dumps(_finite(obj), indent=indent, allow_nan=False, default=str, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def load_yaml(text: str):
    """``yaml.safe_load`` that also reads ``1e-4`` / ``3E+2`` as floats (YAML 1.2 style; PyYAML's
    YAML 1.1 rules would give the string ``"1e-4"``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
        list("-+0123456789."))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
