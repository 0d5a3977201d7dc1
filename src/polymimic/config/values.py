"""Typed, bounded config values: what a config file (or a checkpoint's config.json) may say.

Config dataclasses declare each field's type with a hint and, where a size or rate is
involved, its bounds with :func:`bounded`. :func:`config_from_values` rebuilds a dataclass
from JSON-like values after checking every value against both, so a file from a stranger
cannot ask for a 10^12-unit layer, a negative horizon or a NaN learning rate: the check
runs before anything is built. The same check serves the command line (Hydra overrides) and
checkpoint loading.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from polymimic.errors import UserError

#: Longest list (tuple) field and longest string field a config may hold.
MAX_SEQUENCE = 64
MAX_STRING = 256


class ConfigValueError(UserError):
    """A config value of the wrong type, outside its bounds, or a field that does not exist."""


def bounded(default: Any, low: float, high: float, high_open: bool = False) -> Any:
    """A dataclass field whose numbers (or each element of a tuple) lie in [low, high].

    ``high_open`` makes the interval ``[low, high)`` (a dropout probability, say).
    """
    metadata = {"bounds": (low, high, high_open)}
    if isinstance(default, list):  # a mutable default needs a factory
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def config_from_values(config_class: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build ``config_class`` from JSON-like ``values`` after checking each against its field.

    Lists become tuples where the field is a tuple; ints are accepted for float fields.

    Args:
        config_class: a dataclass with type hints (and optional ``bounded`` metadata).
        values: field name -> value, e.g. a checkpoint's ``config`` object.
        where: names the source in error messages (a file path, ``policy``...).

    Raises:
        ConfigValueError: an unknown field, a value of the wrong type, or out of bounds.
    """
    if not isinstance(values, dict):
        kind = type(values).__name__
        raise ConfigValueError(f"{where}: the config must be a JSON object, got {kind}")
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(str(k) for k in set(values) - set(fields))
    if unknown:
        raise ConfigValueError(
            f"{where}: {unknown} are not fields of {config_class.__name__} (fields: "
            f"{', '.join(fields)})"
        )
    hints = typing.get_type_hints(config_class)
    kwargs = {}
    for name, value in values.items():
        bounds = fields[name].metadata.get("bounds")
        kwargs[name] = _checked(hints[name], value, bounds, f"{where}: {name}")
    return config_class(**kwargs)


def _checked(hint: Any, value: Any, bounds: tuple | None, label: str) -> Any:
    """``value`` converted to ``hint`` (list -> tuple, int -> float), or ConfigValueError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _checked(inner[0], value, bounds, label) if len(inner) == 1 else value
    if origin in (tuple, list) or hint in (tuple, list):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigValueError(f"{label} must be a list, got {value!r:.80}")
        if len(value) > MAX_SEQUENCE:
            raise ConfigValueError(f"{label} has {len(value)} entries (at most {MAX_SEQUENCE})")
        item = args[0] if args else Any
        items = [_checked(item, v, bounds, f"{label}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin or hint) is tuple else items
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigValueError(f"{label} must be true or false, got {value!r:.80}")
        return value
    if hint in (int, float):
        return _number(hint, value, bounds, label)
    if hint is str:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise ConfigValueError(f"{label} must be a string of at most {MAX_STRING} characters")
        return value
    return value  # Any and other hints are not config fields polymimic declares


def _number(hint: type, value: Any, bounds: tuple | None, label: str) -> int | float:
    kinds = (int,) if hint is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if hint is int else "a number"
        raise ConfigValueError(f"{label} must be {kind}, got {value!r:.80}")
    if not math.isfinite(value):
        raise ConfigValueError(f"{label} must be finite, got {value!r}")
    if bounds is not None:
        low, high, high_open = bounds
        above = value >= high if high_open else value > high
        if value < low or above:
            raise ConfigValueError(
                f"{label} = {value!r} is outside [{low}, {high}{')' if high_open else ']'}"
            )
    return hint(value)
