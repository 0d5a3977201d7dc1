"""Metrics checked on inputs whose answers are known by hand."""

import math
import subprocess
import sys

import numpy as np
import pytest

from polymimic.eval import metrics


def test_success_rate_counts_true_fraction():
    assert metrics.success_rate([True, False, True, True]) == 0.75
    assert metrics.success_rate(np.array([0, 0, 1, 0])) == 0.25


def test_success_rate_rejects_empty():
    with pytest.raises(ValueError, match="at least one"):
        metrics.success_rate([])


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        # Reference values of the Wilson score interval at 95% (z = 1.959964).
        (0, 10, (0.0, 0.27754)),
        (10, 10, (0.72246, 1.0)),
        (5, 10, (0.23659, 0.76341)),
        (1, 10, (0.01788, 0.40415)),
        (45, 50, (0.78640, 0.95653)),
    ],
)
def test_wilson_interval_known_values(k, n, expected):
    lower, upper = metrics.wilson_interval(k, n)
    assert lower == pytest.approx(expected[0], abs=5e-5)
    assert upper == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_narrows_with_n_and_widens_with_confidence():
    small = metrics.wilson_interval(5, 10)
    large = metrics.wilson_interval(50, 100)
    assert large[1] - large[0] < small[1] - small[0]
    wide = metrics.wilson_interval(5, 10, confidence=0.99)
    assert wide[0] < small[0] and wide[1] > small[1]


def test_wilson_interval_edge_cases():
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        metrics.wilson_interval(11, 10)
    with pytest.raises(ValueError):
        metrics.wilson_interval(1, 10, confidence=1.0)


def test_behaviour_distribution_pools_unknown_labels_as_other():
    dist = metrics.behaviour_distribution(["a", "b", "a", "zzz"], ["a", "b", "c"])
    assert dist == {"a": 0.5, "b": 0.25, "c": 0.0, "other": 0.25}
    assert list(dist) == ["a", "b", "c", "other"]


def test_behaviour_distribution_empty_is_all_zero():
    assert metrics.behaviour_distribution([], ["a", "b"]) == {"a": 0.0, "b": 0.0, "other": 0.0}


def test_behaviour_entropy_known_answers():
    assert metrics.behaviour_entropy(["a", "b", "c", "d"] * 3, 4) == pytest.approx(1.0)
    assert metrics.behaviour_entropy(["a"] * 7, 4) == 0.0
    # Two equally likely out of four: log_4(2) = 0.5.
    assert metrics.behaviour_entropy(["a", "b"] * 5, 4) == pytest.approx(0.5)
    # p = (3/4, 1/4) over |B| = 2: -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278...
    assert metrics.behaviour_entropy(["a", "a", "a", "b"], 2) == pytest.approx(0.8112781245)


def test_behaviour_entropy_conventions_and_errors():
    assert metrics.behaviour_entropy([], 4) == 0.0
    assert metrics.behaviour_entropy(["a", "a"], 1) == 0.0
    with pytest.raises(ValueError, match="distinct labels"):
        metrics.behaviour_entropy(["a", "b", "c"], 2)
    with pytest.raises(ValueError):
        metrics.behaviour_entropy(["a"], 0)


def test_conditional_entropy_separates_lookup_table_from_real_diversity():
    # Marginally uniform over 2 behaviours, but each context always takes the same one.
    labels = ["a", "a", "b", "b"]
    lookup_contexts = [0, 0, 1, 1]
    assert metrics.behaviour_entropy(labels, 2) == pytest.approx(1.0)
    assert metrics.conditional_behaviour_entropy(labels, lookup_contexts, 2) == 0.0
    # Each context takes both behaviours equally often.
    assert metrics.conditional_behaviour_entropy(labels, [0, 1, 0, 1], 2) == pytest.approx(1.0)


def test_conditional_entropy_averages_over_contexts():
    # context 0: uniform over 4 (H=1); context 1: two of four (H=0.5); context 2: one (H=0).
    labels = ["a", "b", "c", "d", "a", "b", "c"]
    contexts = [0, 0, 0, 0, 1, 1, 2]
    expected = (1.0 + 0.5 + 0.0) / 3
    assert metrics.conditional_behaviour_entropy(labels, contexts, 4) == pytest.approx(expected)
    assert metrics.conditional_behaviour_entropy([], [], 4) == 0.0
    with pytest.raises(ValueError):
        metrics.conditional_behaviour_entropy(["a"], [], 4)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    values = list(rng.normal(3.0, 1.0, size=200))

    def mean(sample):
        return float(np.mean(sample))

    first = metrics.bootstrap_interval(mean, values, n_resamples=500, seed=7)
    again = metrics.bootstrap_interval(mean, values, n_resamples=500, seed=7)
    other = metrics.bootstrap_interval(mean, values, n_resamples=500, seed=8)
    assert first == again
    assert first != other
    assert first[0] < np.mean(values) < first[1]
    # The bootstrap standard error of a mean is about sigma/sqrt(n) = 0.0707:
    # a 95% interval is about 2 * 1.96 * 0.0707 = 0.277 wide.
    assert first[1] - first[0] == pytest.approx(0.277, abs=0.05)


def test_behaviour_entropy_interval():
    assert metrics.behaviour_entropy_interval([], 4) == (0.0, 0.0)
    # Only one behaviour ever observed: every resample has entropy 0.
    assert metrics.behaviour_entropy_interval(["a"] * 20, 4) == (0.0, 0.0)
    labels = ["a", "b", "c", "d"] * 25
    lower, upper = metrics.behaviour_entropy_interval(labels, 4, n_resamples=300, seed=0)
    assert 0.9 < lower < upper <= 1.0
    assert metrics.behaviour_entropy_interval(labels, 4, n_resamples=300, seed=0) == (
        lower,
        upper,
    )


def test_kl_divergence_known_values():
    assert metrics.kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert metrics.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    # Unnormalised counts are normalised first.
    assert metrics.kl_divergence([2, 2], [1, 3]) == pytest.approx(expected)


def test_kl_divergence_aligns_mappings_and_floors_missing_modes():
    p = {"a": 1.0}
    q = {"b": 0.5, "a": 0.5}
    assert metrics.kl_divergence(p, q) == pytest.approx(math.log(2.0))
    # A mode the reference never shows: finite thanks to eps, and large.
    kl = metrics.kl_divergence({"a": 0.5, "b": 0.5}, {"a": 1.0}, eps=1e-6)
    assert kl == pytest.approx(0.5 * math.log(0.5 / 1.0) + 0.5 * math.log(0.5 / 1e-6))
    with pytest.raises(TypeError):
        metrics.kl_divergence({"a": 1.0}, [1.0])
    with pytest.raises(ValueError):
        metrics.kl_divergence([0.0, 0.0], [0.5, 0.5])


def test_metrics_imports_no_env_or_simulator_code():
    # Load the module file on its own: importing it through the package would run
    # polymimic/__init__.py, which registers the envs, and hide what metrics.py imports.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('metrics', {metrics.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(','.join(m for m in ('mujoco', 'gymnasium', 'torch', 'polymimic') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
