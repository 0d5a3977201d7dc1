"""The one way every registry (tasks' operators, datasets, policies) answers a lookup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from polymimic.errors import UnknownNameError

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, kind: str) -> T:
    """``table[name]``, or an ``UnknownNameError`` (a KeyError) listing the known names."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "(none)"
        raise UnknownNameError(f"unknown {kind} {name!r}; known {kind}s: {known}") from None
