"""I(B; s0) of a population's behaviour choice: exact from the choice probabilities, sampled."""

from __future__ import annotations

import numpy as np
import pytest

from polymimic.operators import Operator, Skill, Strategy
from polymimic.operators.scene import choice_information, entropy_bits, plugin_information

LABELS = ("a", "b")


def _utilities(obs):  # the scene says which label is nearer: +1 for it, -1 for the other
    near = "a" if obs["x"][0] < 0 else "b"
    return {label: 1.0 if label == near else -1.0 for label in LABELS}


def _population(scene_weight: float) -> list[Operator]:
    strategy = Strategy("uniform", {"a": 1.0, "b": 1.0}, scene_weight=scene_weight)
    return [Operator(f"op{i}", strategy, None, Skill(), i) for i in range(2)]


SCENES = [{"x": np.array([x])} for x in np.linspace(-1, 1, 10)]


def test_a_choice_that_ignores_the_scene_carries_no_information() -> None:
    result = choice_information(_population(0.0), LABELS, _utilities, SCENES)
    assert result["I(B;s0)"] == pytest.approx(0.0, abs=1e-12)
    assert result["H(B)"] == pytest.approx(1.0)


def test_information_grows_with_the_scene_weight_and_matches_the_formula() -> None:
    weak = choice_information(_population(0.5), LABELS, _utilities, SCENES)["I(B;s0)"]
    strong = choice_information(_population(3.0), LABELS, _utilities, SCENES)
    p = 1 / (1 + np.exp(-6.0))  # utilities differ by 2, times the weight 3
    assert strong["I(B;s0)"] == pytest.approx(1.0 - entropy_bits(np.array([p, 1 - p])))
    assert 0 < weak < strong["I(B;s0)"] < 1.0  # soft: never fully determined by the scene


def test_plugin_estimate_of_information() -> None:
    rng = np.random.default_rng(0)
    contexts = rng.integers(0, 4, 4000)
    independent = rng.integers(0, 2, 4000)
    assert abs(plugin_information(independent, contexts)) < 0.01
    determined = contexts % 2  # behaviour is a function of the context: 1 bit
    assert plugin_information(determined, contexts) == pytest.approx(1.0, abs=0.01)


def test_draws_follow_the_documented_probabilities() -> None:
    strategy = Strategy("s", {"a": 1.0, "b": 0.25, "c": 0.0}, scene_weight=1.5)
    utilities = {"a": -1.0, "b": 1.0, "c": 1.0}
    p = strategy.probabilities(utilities)
    expected_b = 0.25 * np.exp(1.5) / (np.exp(-1.5) + 0.25 * np.exp(1.5))
    assert p == pytest.approx({"a": 1 - expected_b, "b": expected_b})  # "c" has weight 0
    rng = np.random.default_rng(0)
    draws = [strategy.draw(rng, utilities) for _ in range(4000)]
    assert np.mean([d == "b" for d in draws]) == pytest.approx(expected_b, abs=0.025)
    # A revision excludes the current intention.
    assert {strategy.draw(rng, utilities, exclude="b") for _ in range(50)} == {"a"}
    assert Strategy("one", {"a": 1.0}).draw(rng, None, exclude="a") is None
