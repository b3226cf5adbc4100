"""Type checks of the settings that fill a config dataclass (training sections, model configs),
so that ``optim.lr=abc`` or ``model.dim=big`` is a clear :class:`UpscalerError` rather than a
``TypeError`` from deep inside the model or the training loop."""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from .errors import UpscalerError

_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
          dict: "a mapping", type(None): "null"}


def finite_number(value: Any, what: str) -> float:
    """``value`` as a finite float, or :class:`UpscalerError` naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UpscalerError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise UpscalerError(f"{what} must be finite, got {value!r}")
    return number


def checked_fields(cls: type, values: dict, where: str) -> dict:
    """``values`` for dataclass ``cls``, each checked against its field's type (``bool``, ``int``,
    ``float``, ``str``, ``list``, ``dict``, optionally ``| None``; ``Any`` takes anything). A whole
    float such as ``1e5`` for an ``int`` field becomes an ``int``. ``where`` prefixes the key in
    the message (``optim`` -> ``optim.lr``)."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for key, value in values.items():
        hint = hints.get(key, Any)
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if Any in allowed or any(t not in _NAMES for t in allowed):
            continue
        if isinstance(value, float) and int in allowed and float not in allowed and value.is_integer():
            out[key] = value = int(value)
        if not any(_fits(value, t) for t in allowed):
            wanted = " or ".join(_NAMES[t] for t in allowed)
            raise UpscalerError(f"{where}.{key} must be {wanted}, got {value!r}")
    return out


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
