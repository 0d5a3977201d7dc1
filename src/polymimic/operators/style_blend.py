"""Moving one operator style gradually towards another: ``interpolate_style`` (issue 13).

The compatibility work sweeps the distance between two conflicting styles of one task, so
a style ``t`` of the way from ``a`` to ``b`` must exist for every ``t`` in [0, 1], with
``t = 0`` exactly ``a`` and ``t = 1`` exactly ``b``. One generic function works over the
fields of any task's style dataclass:

* **numeric fields** (int or float, not bool) are linear: ``(1 - t) a + t b`` (this form
  gives both endpoints exactly in floating point; ints are rounded);
* **categorical fields** (declared per style class in ``CATEGORICAL_FIELDS``: Stack's and
  Push's route, Align's route and turn order, Sort's pick rule) cannot be averaged. They
  are blended *by probability per episode*: in each episode the operator uses ``b``'s
  categorical values with probability ``t`` and ``a``'s otherwise, all of them together
  (a route is one decision). The draw is a uniform ``u`` from the operator's seed and the
  episode seed on a stream of its own (``STYLE_STREAM``), switched when ``u < t``: the
  episodes switched at ``t`` are a subset of those switched at any larger ``t`` (common
  random numbers), so a sweep changes only what the knob changes. A switch at one point
  (say ``t = 0.5``) was the alternative; it would make the Stack and Push knobs a step,
  since their styles differ mostly in the route.
* ``name`` becomes ``"<a>~<b>@<t>"``; any other field must be equal in ``a`` and ``b``.

A blend whose categorical fields differ is a ``BlendedStyle``; ``OperatorEpisode``
resolves it to a concrete style once per episode (``for_episode``) before the task
script sees it, and records which categorical values the episode used.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from polymimic.operators.align import AlignStyle
from polymimic.operators.avoid import AvoidStyle
from polymimic.operators.push import PushStyle
from polymimic.operators.sort import SortStyle
from polymimic.operators.stack import StackStyle

#: Per task style class: the fields that name a choice rather than a quantity.
CATEGORICAL_FIELDS: dict[type, tuple[str, ...]] = {
    PushStyle: ("route",),
    AvoidStyle: (),
    AlignStyle: ("route", "turn_first"),
    SortStyle: ("pick",),
    StackStyle: ("route",),
}
#: Third element of the seed of the per-episode categorical draw; the hand uses 1
#: (``OperatorEpisode``), the operator's own choices the two-element seed.
STYLE_STREAM = 3


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def categorical_fields(style: Any) -> tuple[str, ...]:
    """The declared categorical fields of ``style``'s class (a clear error if undeclared)."""
    try:
        return CATEGORICAL_FIELDS[type(style)]
    except KeyError:
        known = ", ".join(cls.__name__ for cls in CATEGORICAL_FIELDS)
        raise TypeError(
            f"{type(style).__name__} has no categorical-field declaration; known: {known}"
        ) from None


def blend_name(a: Any, b: Any, t: float) -> str:
    """``"<a>~<b>@<t>"``: the label a blended style's demos carry."""
    return f"{a.name}~{b.name}@{t:.3f}".rstrip("0").rstrip(".")


def _numeric_blend(a: Any, b: Any, t: float, name: str) -> Any:
    """``a`` with every numeric field moved ``t`` of the way to ``b``; others from ``a``."""
    categorical = categorical_fields(a)
    changes: dict[str, Any] = {"name": name}
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "name" or field.name in categorical:
            continue
        if _is_numeric(x) and _is_numeric(y):
            value = (1.0 - t) * x + t * y
            changes[field.name] = round(value) if isinstance(x, int) else value
        elif x != y:
            raise ValueError(
                f"{type(a).__name__}.{field.name} differs ({x!r} vs {y!r}) but is neither "
                "numeric nor declared categorical (CATEGORICAL_FIELDS)"
            )
    return dataclasses.replace(a, **changes)


@dataclasses.dataclass(frozen=True)
class BlendedStyle:
    """A style ``t`` of the way from ``a`` to ``b`` whose categorical fields differ.

    ``numeric`` holds the interpolated numeric fields (with ``a``'s categorical values);
    each episode takes ``b``'s categorical values with probability ``t``
    (``for_episode``). Scripts never see this object, only what it resolves to.
    """

    name: str
    a: Any
    b: Any
    t: float
    numeric: Any

    def resolve(self, u: float) -> Any:
        """The concrete style of an episode whose categorical draw is ``u`` in [0, 1)."""
        source = self.b if u < self.t else self.a
        fields = {f: getattr(source, f) for f in categorical_fields(self.a)}
        return dataclasses.replace(self.numeric, **fields)

    def for_episode(self, operator_seed: int, episode_seed: int) -> tuple[Any, dict[str, Any]]:
        """The episode's concrete style and the labels that say what it used."""
        u = float(np.random.default_rng([operator_seed, episode_seed, STYLE_STREAM]).random())
        switched = u < self.t
        labels = {
            "style_blend": float(self.t),
            "style_categorical": (self.b if switched else self.a).name,
        }
        return self.resolve(u), labels


def interpolate_style(a: Any, b: Any, t: float) -> Any:
    """The style ``t`` of the way from ``a`` to ``b`` (module docstring: how).

    Args:
        a, b: two instances of the same task style dataclass.
        t: in [0, 1]; 0 returns ``a`` itself and 1 returns ``b`` itself.

    Returns:
        ``a``, ``b``, a concrete style of the same class (when the categorical fields
        agree), or a ``BlendedStyle`` resolved per episode.
    """
    if type(a) is not type(b):
        raise TypeError(f"cannot blend a {type(a).__name__} with a {type(b).__name__}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must lie in [0, 1], got {t}")
    name = blend_name(a, b, t)
    numeric = _numeric_blend(a, b, t, name)  # validates the fields even at the endpoints
    if t == 0.0:
        return a
    if t == 1.0:
        return b
    if all(getattr(a, f) == getattr(b, f) for f in categorical_fields(a)):
        return numeric
    return BlendedStyle(name, a, b, float(t), numeric)


def resolve_for_episode(style: Any, operator_seed: int, episode_seed: int) -> tuple[Any, dict]:
    """A style as an episode uses it, and labels for the demo (none for a plain style)."""
    if isinstance(style, BlendedStyle):
        return style.for_episode(operator_seed, episode_seed)
    return style, {}
