"""Tests for interpolate_style (polymimic.operators.style_blend): the style-distance knob."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polymimic.operators import style_blend
from polymimic.operators.align import ALIGN_STYLES
from polymimic.operators.avoid import AVOID_STYLES
from polymimic.operators.push import PUSH_STYLES
from polymimic.operators.sort import SORT_STYLES
from polymimic.operators.stack import STACK_STYLES
from polymimic.operators.style_blend import BlendedStyle, interpolate_style

TABLES = [PUSH_STYLES, AVOID_STYLES, ALIGN_STYLES, SORT_STYLES, STACK_STYLES]
PAIRS = [(a, b) for table in TABLES for a in table.values() for b in table.values() if a != b]


@pytest.mark.parametrize("a,b", PAIRS, ids=[f"{a.name}-{b.name}" for a, b in PAIRS])
def test_endpoints_are_the_styles_exactly(a: object, b: object) -> None:
    assert interpolate_style(a, b, 0.0) is a
    assert interpolate_style(a, b, 1.0) is b
    # The numeric form itself is exact at the ends, not only the shortcut.
    end = style_blend._numeric_blend(a, b, 1.0, b.name)
    categorical = style_blend.categorical_fields(a)
    assert dataclasses.replace(end, **{f: getattr(b, f) for f in categorical}) == b


def test_numeric_fields_are_linear_and_categorical_ones_drawn_per_episode() -> None:
    a, b = STACK_STYLES["vertical_fast"], STACK_STYLES["direct_fast"]
    blend = interpolate_style(a, b, 0.25)
    assert isinstance(blend, BlendedStyle) and blend.name == "vertical_fast~direct_fast@0.25"
    assert blend.numeric.pre_gap == pytest.approx(0.75 * a.pre_gap + 0.25 * b.pre_gap)
    assert blend.resolve(0.2).route == "direct" and blend.resolve(0.3).route == "vertical"
    assert blend.resolve(0.2).pre_gap == blend.numeric.pre_gap
    # Probability t per episode, and nested: an episode switched at t stays switched above.
    switched = {}
    for t in (0.25, 0.5, 0.75):
        styles = [interpolate_style(a, b, t).for_episode(7, seed)[0] for seed in range(400)]
        switched[t] = {k for k, s in enumerate(styles) if s.route == "direct"}
        assert len(switched[t]) / 400 == pytest.approx(t, abs=0.07)
    assert switched[0.25] <= switched[0.5] <= switched[0.75]


def test_labels_say_which_categorical_values_an_episode_used() -> None:
    blend = interpolate_style(PUSH_STYLES["direct_fast"], PUSH_STYLES["retreat_slow"], 0.5)
    labels = [blend.for_episode(3, seed)[1] for seed in range(50)]
    assert {lab["style_blend"] for lab in labels} == {0.5}
    assert {lab["style_categorical"] for lab in labels} == {"direct_fast", "retreat_slow"}
    style, label = blend.for_episode(3, 11)
    assert style.route == ("retreat" if label["style_categorical"] == "retreat_slow" else "direct")


def test_styles_with_equal_categorical_fields_blend_to_a_plain_style() -> None:
    a, b = AVOID_STYLES["direct"], AVOID_STYLES["smooth"]
    mid = interpolate_style(a, b, 0.5)
    assert type(mid) is type(a) and mid.name == "direct~smooth@0.5"
    assert mid.lookahead == pytest.approx(0.5 * (a.lookahead + b.lookahead))
    assert style_blend.resolve_for_episode(mid, 1, 2) == (mid, {})


def test_refuses_what_it_cannot_blend(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="cannot blend"):
        interpolate_style(PUSH_STYLES["direct_fast"], STACK_STYLES["direct_fast"], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_style(PUSH_STYLES["direct_fast"], PUSH_STYLES["curved"], 1.5)

    @dataclasses.dataclass(frozen=True)
    class Odd:
        name: str
        mode: str
        speed: float

    with pytest.raises(TypeError, match="no categorical-field declaration"):
        interpolate_style(Odd("x", "p", 1.0), Odd("y", "q", 2.0), 0.5)
    monkeypatch.setitem(style_blend.CATEGORICAL_FIELDS, Odd, ())
    with pytest.raises(ValueError, match="mode"):
        interpolate_style(Odd("x", "p", 1.0), Odd("y", "q", 2.0), 0.5)
    assert np.isclose(interpolate_style(Odd("x", "p", 1.0), Odd("y", "p", 2.0), 0.5).speed, 1.5)
