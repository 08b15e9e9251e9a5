"""Small helpers that turn dictionaries into validated frozen dataclasses.

Used by strategy parameters, decoding settings and profiles so that all of them reject unknown
keys, wrong types and out-of-range values with the same kind of message.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["from_mapping", "validate_fields", "check_range", "check_choice", "bounded", "short",
           "show_key"]


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that an error message stays one short line
    whatever the value (a long list, a string with newlines: repr escapes them)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # deep nesting; an int of more than 4300 digits
        text = f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def show_key(key: Any) -> str:
    """A key as messages show it: plain when it is a short identifier-like string."""
    if isinstance(key, str) and key.isprintable() and len(key) <= 40:
        return key
    return short(key, 40)


def bounded(default: Any, *, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, choices: tuple | None = None,
            doc: str = "") -> Any:
    """A dataclass field carrying its allowed range (or choices) as metadata.

    ``low`` / ``high``: the bounds (None: unbounded on that side; a float field still refuses
    NaN and infinities); ``*_open``: the bound itself is excluded. Say why a bound is where it is
    in the field's ``doc`` or the class docstring."""
    meta = {"low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": choices, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["low"], meta["high"]
    left = "(" if meta["low_open"] else "["
    right = ")" if meta["high_open"] else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def check_range(where: str, name: str, value: float, meta: Mapping[str, Any]) -> None:
    """Refuse ``value`` outside the field's range; NaN and infinities are refused everywhere (a
    field without an upper bound still takes finite values only)."""
    lo, hi = meta.get("low"), meta.get("high")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: `{name}` is {value!r}; it must be a finite number in "
                          f"{_range_text(meta)}.")
    bad_low = lo is not None and (value <= lo if meta.get("low_open") else value < lo)
    bad_high = hi is not None and (value >= hi if meta.get("high_open") else value > hi)
    if bad_low or bad_high:
        raise ConfigError(f"{where}: `{name}` = {short(value)} is out of range; allowed range is "
                          f"{_range_text(meta)}.")


def check_choice(where: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{where}: `{name}` = {short(value)} is not one of "
                          f"{', '.join(map(repr, choices))}.")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is Any:
        return True
    return isinstance(value, origin or annotation)


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "")


def validate_fields(obj: Any, where: str) -> None:
    """Check every field of a dataclass instance against its type and range metadata."""
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        annotation = hints[field.name]
        if field.metadata.get("choices") is not None:
            check_choice(where, field.name, value, field.metadata["choices"])
            continue
        if not _type_ok(value, annotation):
            raise ConfigError(f"{where}: `{field.name}` must be {_type_name(annotation)}, "
                              f"got {type(value).__name__} {short(value)}.")
        if annotation is float and isinstance(value, int):  # JSON writes 1.0 as 1
            try:
                value = float(value)
            except OverflowError:  # e.g. 10**400
                raise ConfigError(f"{where}: `{field.name}` = {short(value)} is too large for a "
                                  "number.") from None
            object.__setattr__(obj, field.name, value)
        if value is not None and not isinstance(value, (bool, str)) and field.metadata:
            check_range(where, field.name, value, field.metadata)


def from_mapping(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys by name."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}.")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = [n for n in names if n.startswith(str(key)) or str(key).startswith(n)]
            close = close or difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            known = ", ".join(names) if names else "none"
            raise ConfigError(f"{where}: unknown key `{show_key(key)}`.{hint} Known keys: {known}.")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key `{missing[0]}`.")
    return cls(**data)
