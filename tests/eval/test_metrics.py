"""Metrics checked on inputs whose answers are known by hand."""

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polymimic.envs import TASK_IDS, labels
from polymimic.eval import intervals, metrics


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



def _binary_entropy(x: float) -> float:
    return -(x * math.log2(x) + (1 - x) * math.log2(1 - x))


# --------------------------------------------------------------------------- entropies


def test_behaviour_entropy_known_answers():
    # Uniform over |B| = 4: log_4 4 = 1.
    assert metrics.behaviour_entropy(["a", "b", "c", "d"] * 3, 4) == pytest.approx(1.0)
    # One behaviour only: 0.
    assert metrics.behaviour_entropy(["a"] * 7, 4) == 0.0
    # Two equally likely out of four: log_4(2) = 0.5.
    assert metrics.behaviour_entropy(["a", "b"] * 5, 4) == pytest.approx(0.5)
    # p = (3/4, 1/4) over |B| = 2: -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278...
    assert metrics.behaviour_entropy(["a", "a", "a", "b"], 2) == pytest.approx(0.8112781245)
    # p = (1/2, 1/4, 1/4) over |B| = 4: 1.5 bits / log2(4) = 2 bits -> 0.75 exactly.
    assert metrics.behaviour_entropy(["a", "a", "b", "c"], 4) == pytest.approx(0.75)
    # Label order does not matter.
    assert metrics.behaviour_entropy(["c", "a", "b", "a"], 4) == pytest.approx(0.75)


def test_behaviour_entropy_conventions_and_errors():
    assert metrics.behaviour_entropy([], 4) == 0.0
    assert metrics.behaviour_entropy(["a", "a"], 1) == 0.0
    with pytest.raises(ValueError, match="distinct labels"):
        metrics.behaviour_entropy(["a", "b", "c"], 2)
    with pytest.raises(ValueError):
        metrics.behaviour_entropy(["a"], 0)


def test_conditional_entropy_separates_lookup_table_from_real_diversity():
    # Marginally uniform over 2 behaviours, but each context always takes the same one.
    labels_ = ["a", "a", "b", "b"]
    assert metrics.behaviour_entropy(labels_, 2) == pytest.approx(1.0)
    assert metrics.conditional_behaviour_entropy(labels_, [0, 0, 1, 1], 2) == 0.0
    # Each context takes both behaviours equally often.
    assert metrics.conditional_behaviour_entropy(labels_, [0, 1, 0, 1], 2) == pytest.approx(1.0)


def test_conditional_entropy_counts_zero_success_contexts_as_zero():
    # D3IL: S = 3 contexts. ctx0: 2 successes a, b over |B| = 2 -> 1.0; ctx1: a, a -> 0.0;
    # ctx2: no success -> 0.0. H(beta | s0) = (1 + 0 + 0) / 3 = 1/3.
    labels_, contexts = ["a", "b", "a", "a"], [0, 0, 1, 1]
    value = metrics.conditional_behaviour_entropy(labels_, contexts, 2, all_contexts=[0, 1, 2])
    assert value == pytest.approx(1 / 3)
    # Duplicates in all_contexts are one context each.
    assert metrics.conditional_behaviour_entropy(
        labels_, contexts, 2, all_contexts=[0, 1, 2, 2, 0]
    ) == pytest.approx(1 / 3)
    # Without all_contexts only the contexts with a success count (the documented
    # approximation): (1 + 0) / 2.
    assert metrics.conditional_behaviour_entropy(labels_, contexts, 2) == pytest.approx(0.5)
    # No success anywhere: every context contributes 0.
    assert metrics.conditional_behaviour_entropy([], [], 2, all_contexts=[0, 1]) == 0.0
    with pytest.raises(ValueError, match="not in all_contexts"):
        metrics.conditional_behaviour_entropy(labels_, contexts, 2, all_contexts=[0, 2])


def test_conditional_entropy_averages_over_contexts():
    # context 0: uniform over 4 (H=1); context 1: two of four (H=0.5); context 2: one (H=0).
    labels_ = ["a", "b", "c", "d", "a", "b", "c"]
    contexts = [0, 0, 0, 0, 1, 1, 2]
    expected = (1.0 + 0.5 + 0.0) / 3
    assert metrics.conditional_behaviour_entropy(labels_, contexts, 4) == pytest.approx(expected)
    # A fourth context without any success: the same sum over S = 4.
    assert metrics.conditional_behaviour_entropy(
        labels_, contexts, 4, all_contexts=range(4)
    ) == pytest.approx(1.5 / 4)
    assert metrics.conditional_behaviour_entropy([], [], 4) == 0.0
    with pytest.raises(ValueError):
        metrics.conditional_behaviour_entropy(["a"], [], 4)


@pytest.mark.parametrize(("num_behaviours", "threshold"), [(1, 5), (2, 5), (6, 6), (24, 24)])
def test_min_successes_is_max_of_five_and_num_behaviours(num_behaviours, threshold):
    assert metrics.MIN_SUCCESSES_FOR_ENTROPY == 5
    assert metrics.min_successes_for_entropy(num_behaviours) == threshold
    assert not metrics.enough_successes(threshold - 1, num_behaviours)
    assert metrics.enough_successes(threshold, num_behaviours)


def test_entropy_or_none_reports_na_below_the_minimum():
    # |B| = 2: needs 5 successes.
    assert metrics.entropy_or_none(["a", "b", "a", "b"], 2) is None
    assert metrics.entropy_or_none(["a", "b", "a", "b", "a"], 2) == pytest.approx(
        _binary_entropy(0.4)
    )
    # |B| = 6: 5 successes are not enough, 6 are.
    assert metrics.entropy_or_none(list("abcde"), 6) is None
    assert metrics.entropy_or_none(list("abcdef"), 6) == pytest.approx(1.0)
    # Conditional route: ctx0 a, b, a, b (H=1), ctx1 a (H=0), ctx2 none -> 1/3.
    labels_, contexts = ["a", "b", "a", "b", "a"], [0, 0, 0, 0, 1]
    assert metrics.entropy_or_none(labels_, 2, contexts, [0, 1, 2]) == pytest.approx(1 / 3)
    assert metrics.entropy_or_none(labels_[:4], 2, contexts[:4], [0, 1, 2]) is None


# --------------------------------------------------------------------------- intervals


def test_interval_names_are_re_exported_from_metrics():
    for name in ("wilson_interval", "bootstrap_interval", "behaviour_entropy_interval",
                 "conditional_entropy_interval", "dirichlet_entropy_interval",
                 "across_seed_interval", "interquartile_mean", "JEFFREYS_PRIOR"):
        assert getattr(metrics, name) is getattr(intervals, name)
    from polymimic.eval.metrics import wilson_interval  # noqa: F401  (from-import works too)

    with pytest.raises(AttributeError):
        metrics.no_such_metric  # noqa: B018


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


def test_dirichlet_interval_rises_above_the_plug_in_for_few_successes():
    # 5 successes split 3:2 over |B| = 4: plug-in H = h2(0.6) / log2(4) = 0.4855.
    labels_ = ["a", "a", "a", "b", "b"]
    plug_in = metrics.behaviour_entropy(labels_, 4)
    assert plug_in == pytest.approx(_binary_entropy(0.6) / 2) and plug_in < 0.486
    lower, upper = metrics.behaviour_entropy_interval(labels_, 4)
    assert lower < plug_in < upper and upper > 0.485
    # Above 0.5 = log_4(2), the most two behaviours can give: mass on the two unseen ones.
    assert upper > 0.5
    # The percentile bootstrap cannot: no resample of a 3:2 sample beats the 3:2 split.
    boot = metrics.behaviour_entropy_interval(labels_, 4, method="bootstrap")
    assert boot[1] <= plug_in + 1e-12
    # Same posterior through the counts entry point (zero-padded to |B| = 4), and seeded.
    assert intervals.dirichlet_entropy_interval([3, 2], 4, n_samples=1000) == (lower, upper)
    assert metrics.behaviour_entropy_interval(labels_, 4) == (lower, upper)


def test_dirichlet_interval_gives_mass_to_unseen_behaviours():
    # One behaviour seen 20 times out of 4: the bootstrap says (0, 0), the posterior not.
    assert metrics.behaviour_entropy_interval(["a"] * 20, 4, method="bootstrap") == (0.0, 0.0)
    lower, upper = metrics.behaviour_entropy_interval(["a"] * 20, 4)
    assert 0.0 <= lower < upper and upper > 0.05
    # Plenty of uniform data: a narrow interval near 1.
    lower, upper = metrics.behaviour_entropy_interval(["a", "b", "c", "d"] * 25, 4)
    assert 0.9 < lower < upper <= 1.0
    # No data at all: the prior's own interval.
    assert metrics.behaviour_entropy_interval([], 4) == intervals.dirichlet_entropy_interval(
        [0, 0, 0, 0], n_samples=1000
    )
    assert metrics.behaviour_entropy_interval(["a"], 1) == (0.0, 0.0)


def test_dirichlet_interval_matches_closed_form_quantiles():
    # |B| = 2 and no data: p ~ Beta(a, a); normalised entropy = h2(p), symmetric about 1/2, so
    # P(h2(p) <= h2(x)) = 2 F(x) for x <= 1/2, and the quantiles are h2 at F^-1(0.0125) and
    # F^-1(0.4875).
    # Uniform prior a = 1: F(x) = x -> (h2(0.0125), h2(0.4875)) = (0.09694, 0.99955).
    lower, upper = intervals.dirichlet_entropy_interval([0, 0], prior=1.0, n_samples=200_000)
    assert lower == pytest.approx(0.09694, abs=0.004)
    assert upper == pytest.approx(0.99955, abs=0.0005)
    # Jeffreys (the default), Beta(1/2, 1/2): F(x) = (2/pi) arcsin(sqrt(x)), so
    # x = sin^2(0.025 pi / 4) = 0.000385 -> h2 = 0.00493, x = sin^2(0.975 pi / 4) = 0.48037
    # -> h2 = 0.99889.
    assert intervals.JEFFREYS_PRIOR == 0.5
    lower, upper = intervals.dirichlet_entropy_interval([0, 0], n_samples=200_000)
    assert lower == pytest.approx(0.00493, abs=0.001)
    assert upper == pytest.approx(0.99889, abs=0.0005)


def test_dirichlet_interval_validates():
    with pytest.raises(ValueError):
        intervals.dirichlet_entropy_interval([1, 2, 3], 2)  # more counts than behaviours
    with pytest.raises(ValueError):
        intervals.dirichlet_entropy_interval([1, -1])
    with pytest.raises(ValueError):
        intervals.dirichlet_entropy_interval([1, 1], prior=0.0)
    with pytest.raises(ValueError):
        metrics.behaviour_entropy_interval(["a"], 2, method="jackknife")


def test_conditional_entropy_interval_resamples_whole_contexts():
    # Every context has successes a, b (H = 1): resampling whole contexts always gives 1.
    # (Resampling single rollouts would sometimes draw a, a and drop below 1.)
    labels_ = ["a", "b"] * 4
    contexts = [0, 0, 1, 1, 2, 2, 3, 3]
    assert metrics.conditional_entropy_interval(labels_, contexts, 2) == (1.0, 1.0)
    # Five such contexts plus five without a success: D3IL's value is 5/10 = 0.5, and the
    # interval of a mean of ten 0/1 draws brackets it; dropping the zero-success contexts
    # would give (1, 1).
    labels_ = ["a", "b"] * 5
    contexts = [c for c in range(5) for _ in range(2)]
    lower, upper = metrics.conditional_entropy_interval(
        labels_, contexts, 2, all_contexts=range(10), n_resamples=4000
    )
    assert 0.1 <= lower < 0.5 < upper <= 0.9
    # Binomial standard error sqrt(0.25 / 10) = 0.158: the interval is about 0.6 wide.
    assert upper - lower == pytest.approx(0.6, abs=0.1)
    assert metrics.conditional_entropy_interval([], [], 2) == (0.0, 0.0)


def test_interquartile_mean_known_values():
    # N = 8: drop floor(8 / 4) = 2 from each end -> mean(2, 3, 4, 5) = 3.5, blind to the outlier.
    assert intervals.interquartile_mean(np.array([0, 1, 2, 3, 4, 5, 6, 100.0])) == 3.5
    # N = 12 (a 4 x 3 matrix, pooled): drop 3 from each end of the sorted values
    # 0 0 0 | 1 2 4 8 16 32 | 64 128 1000 -> 63 / 6 = 10.5.
    scores = np.array([[0, 1, 2], [0, 4, 8], [0, 16, 32], [64, 128, 1000.0]])
    assert intervals.interquartile_mean(scores) == pytest.approx(10.5)
    # Per row over axis 1 (N = 3, nothing dropped): the row means.
    assert intervals.interquartile_mean(scores, axis=(1,)) == pytest.approx(scores.mean(axis=1))


def test_across_seed_interval_constant_scores_have_zero_width():
    point, lower, upper = metrics.across_seed_interval(np.full((5, 3), 0.7))
    assert point == lower == upper == pytest.approx(0.7)


def test_across_seed_interval_is_stratified_by_column():
    # Column 0 is always 0, column 1 always 1: resampling seeds *within* each column keeps
    # the mean at exactly 0.5. A pooled bootstrap over all cells would not.
    scores = np.column_stack([np.zeros(6), np.ones(6)])
    for statistic in ("mean", "iqm"):
        point, lower, upper = metrics.across_seed_interval(scores, statistic, n_resamples=2000)
        assert point == lower == upper == pytest.approx(0.5)


def test_across_seed_interval_brackets_the_mean_with_the_expected_width():
    # Column 0 alternates 0, 1 over 20 seeds (population variance 0.25), column 1 is 0.5.
    # Mean = 0.5 (0.5 + 0.5) = 0.5; its stratified-bootstrap standard error is
    # 0.5 sqrt(0.25 / 20) = 0.0559, so a 95% interval is about 2 * 1.96 * 0.0559 = 0.219 wide.
    scores = np.column_stack([np.tile([0.0, 1.0], 10), np.full(20, 0.5)])
    point, lower, upper = metrics.across_seed_interval(scores, n_resamples=20_000)
    assert point == pytest.approx(0.5)
    assert lower < 0.5 < upper
    assert upper - lower == pytest.approx(0.219, abs=0.02)
    assert metrics.across_seed_interval(scores, n_resamples=500, seed=3) == (
        metrics.across_seed_interval(scores, n_resamples=500, seed=3)
    )


def test_across_seed_interval_iqm_point_and_errors():
    scores = np.array([0, 1, 2, 3, 4, 5, 6, 100.0])  # 1-D: one stratum of 8 seeds
    point, lower, upper = metrics.across_seed_interval(scores, "iqm", n_resamples=2000)
    assert point == 3.5 and lower <= 3.5 <= upper and upper < 100
    assert metrics.across_seed_interval(scores)[0] == pytest.approx(121 / 8)
    with pytest.raises(ValueError):
        metrics.across_seed_interval(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        metrics.across_seed_interval(scores, "median")


# --------------------------------------------------------------------------- KL divergence


def test_kl_divergence_known_values():
    assert metrics.kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert metrics.kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    # Unnormalised counts are normalised first.
    assert metrics.kl_divergence([2, 2], [1, 3]) == pytest.approx(expected)
    # Direction: KL(p || q) != KL(q || p).
    reverse = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert metrics.kl_divergence([0.25, 0.75], [0.5, 0.5]) == pytest.approx(reverse)
    assert reverse != pytest.approx(expected)


def test_kl_divergence_smooths_a_mode_the_dataset_never_shows():
    p = {"a": 1.0}
    q = {"b": 0.5, "a": 0.5}
    assert metrics.kl_divergence(p, q) == pytest.approx(math.log(2.0))
    # Stated rule: q_eps = (q + eps) / (1 + K eps) over the K = 2 aligned keys.
    kl = metrics.kl_divergence({"a": 0.5, "b": 0.5}, {"a": 1.0}, eps=1e-6)
    q_a, q_b = (1.0 + 1e-6) / (1 + 2e-6), 1e-6 / (1 + 2e-6)
    assert kl == pytest.approx(0.5 * math.log(0.5 / q_a) + 0.5 * math.log(0.5 / q_b), rel=1e-9)
    # Default eps: finite and large, about 0.5 ln(0.5 / 1e-12) = 13.5 nats; eps = 0: inf.
    default = metrics.kl_divergence({"a": 0.5, "b": 0.5}, {"a": 1.0})
    assert math.isfinite(default) and default == pytest.approx(
        0.5 * math.log(0.5) + 0.5 * math.log(0.5 / metrics.KL_EPS), rel=1e-6
    )
    assert metrics.kl_divergence({"a": 0.5, "b": 0.5}, {"a": 1.0}, eps=0.0) == math.inf
    with pytest.raises(TypeError):
        metrics.kl_divergence({"a": 1.0}, [1.0])
    with pytest.raises(ValueError):
        metrics.kl_divergence([0.0, 0.0], [0.5, 0.5])
    with pytest.raises(ValueError):
        metrics.kl_divergence([1.0], [1.0], eps=-1.0)


def test_dataset_distribution_laplace_smoothing_and_kl():
    # 10 successful training demos: 8 a, 2 b; behaviours a, b, c (+ other): N = 10, K = 4.
    # Laplace: (n + 1) / (N + K) -> a 9/14, b 3/14, c 1/14, other 1/14.
    demo_labels = ["a"] * 8 + ["b"] * 2
    q = metrics.dataset_behaviour_distribution(demo_labels, ["a", "b", "c"])
    assert q == pytest.approx({"a": 9 / 14, "b": 3 / 14, "c": 1 / 14, "other": 1 / 14})
    assert list(q) == ["a", "b", "c", "other"]
    # A rollout behaviour the dataset never shows: KL = 1 * ln(1 / (1/14)) = ln 14, finite.
    assert metrics.kl_divergence({"c": 1.0}, q) == pytest.approx(math.log(14), rel=1e-9)
    # Rollouts half a, half c: 0.5 ln(0.5 / (9/14)) + 0.5 ln(0.5 / (1/14)).
    expected = 0.5 * math.log(0.5 * 14 / 9) + 0.5 * math.log(0.5 * 14)
    assert metrics.kl_divergence({"a": 0.5, "c": 0.5}, q) == pytest.approx(expected)
    # Unknown labels pool under "other"; pseudocount 0 is the raw frequency.
    raw = metrics.dataset_behaviour_distribution(["a", "zzz"], ["a", "b"], pseudocount=0.0)
    assert raw == {"a": 0.5, "b": 0.0, "other": 0.5}
    # Without the behaviour list only the seen labels appear.
    assert metrics.dataset_behaviour_distribution(["a", "a", "b"]) == pytest.approx(
        {"a": 3 / 5, "b": 2 / 5}
    )
    with pytest.raises(ValueError):
        metrics.dataset_behaviour_distribution([], pseudocount=1.0)
    with pytest.raises(ValueError):
        metrics.dataset_behaviour_distribution(["a"], pseudocount=-1.0)


# --------------------------------------------------------------------------- D3IL scores


def test_d3il_scores_by_family():
    assert metrics.d3il_score("avoiding", 0.9, 0.5) == pytest.approx(0.8 * 0.9 + 0.2 * 0.5)
    assert metrics.d3il_score("pushing", 0.6, 0.3) == pytest.approx(0.45)
    assert metrics.d3il_score("aligning", 0.8, 0.2) == pytest.approx(0.5)
    assert metrics.d3il_score("sorting", 0.7, 0.9, kl=0.2) == pytest.approx(0.5)


def test_d3il_scores_by_task_id_and_missing_inputs():
    assert metrics.d3il_score("polymimic/Avoid-v1", 1.0, 0.0) == pytest.approx(0.8)
    assert metrics.d3il_score("polymimic/Push-v1", 0.2, 0.4) == pytest.approx(0.3)
    assert metrics.d3il_score("polymimic/Align-v1", 0.2, 0.4) == pytest.approx(0.3)
    for sort in ("polymimic/Sort2-v1", "polymimic/Sort4-v1", "polymimic/Sort6-v1"):
        assert metrics.d3il_score(sort, 0.7, None, kl=0.3) == pytest.approx(0.4)
        assert metrics.d3il_score(sort, 0.7, 0.5) is None  # sorting needs the KL
    # D3IL defines no combined Stacking score.
    assert metrics.d3il_score("polymimic/Stack-v1", 0.9, 0.5, kl=0.1) is None
    assert metrics.d3il_score("avoiding", 0.9, None) is None
    assert metrics.d3il_score("pushing", None, 0.5) is None
    with pytest.raises(ValueError):
        metrics.d3il_score("polymimic/Nope-v0", 0.5, 0.5)


def test_every_task_has_a_d3il_family():
    assert set(metrics.D3IL_TASK_FAMILIES) == set(TASK_IDS)
    assert metrics.d3il_task_family("polymimic/Sort6-v1") == "sorting"
    assert metrics.d3il_task_family("polymimic/Stack-v1") == "stacking"
    assert metrics.d3il_task_family("polymimic/Nope-v0") is None


# --------------------------------------------------------------------------- import hygiene


def _imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _assigns(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(target, ast.Name) and target.id == name
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    )


def test_other_behaviour_is_defined_once_in_envs():
    assert labels.OTHER_BEHAVIOUR == metrics.OTHER_BEHAVIOUR == "other"
    labels_path = Path(labels.__file__)
    # labels.py imports nothing but __future__, and is the only place the label is assigned.
    assert all(
        isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in _imports(labels_path)
    )
    package = labels_path.parents[1]
    assigning = [p.name for p in package.rglob("*.py") if _assigns(p, "OTHER_BEHAVIOUR")]
    assert assigning == ["labels.py"]
    # metrics re-exports it from envs; envs never import from eval/.
    assert any(
        isinstance(n, ast.ImportFrom) and n.module == "polymimic.envs.labels"
        for n in _imports(Path(metrics.__file__))
    )
    for path in (package / "envs").glob("*.py"):
        modules = [getattr(n, "module", None) or "" for n in _imports(path)]
        modules += [alias.name for n in _imports(path) for alias in n.names]
        assert not any(m.startswith("polymimic.eval") for m in modules), path.name


def test_metrics_imports_no_env_or_simulator_code():
    # Stand-in packages with the real __path__ let the submodules load without running
    # polymimic/__init__.py or envs/__init__.py (which register the envs and import MuJoCo):
    # what is then in sys.modules is what metrics, intervals and envs.labels import.
    src = Path(metrics.__file__).parents[2]
    code = (
        "import sys, types\n"
        "for name in ('polymimic', 'polymimic.envs', 'polymimic.eval'):\n"
        "    module = types.ModuleType(name)\n"
        f"    module.__path__ = [str(__import__('pathlib').Path({str(src)!r}, *name.split('.')))]\n"
        "    sys.modules[name] = module\n"
        "import importlib\n"
        "metrics = importlib.import_module('polymimic.eval.metrics')\n"
        "importlib.import_module('polymimic.eval.intervals')\n"
        "assert metrics.wilson_interval(1, 2) and metrics.OTHER_BEHAVIOUR == 'other'\n"
        "print(','.join(m for m in ('mujoco', 'gymnasium', 'torch', 'polymimic.envs.base') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_imports_without_a_cycle():
    for module in ("polymimic", "polymimic.eval.intervals", "polymimic.envs.labels"):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_design_effect_of_repeated_rollouts() -> None:
    from polymimic.eval.intervals import clustered_success_interval, design_effect, wilson_interval

    # A deterministic policy repeats each context's outcome: DEFF = R, evidence of S contexts.
    repeated = [[1] * 16] * 10 + [[0] * 16] * 20
    assert design_effect(repeated) == 16.0
    assert clustered_success_interval(repeated) == pytest.approx(wilson_interval(10, 30))
    # No spread at all: the ICC is taken as 1 (cautious), not 0.
    assert clustered_success_interval([[0] * 16] * 30) == pytest.approx(wilson_interval(0, 30))
    # Outcomes independent of the context: ICC clipped at 0, DEFF = 1, plain Wilson over N.
    alternating = [[1, 0, 1, 0]] * 6
    assert design_effect(alternating) == 1.0
    assert clustered_success_interval(alternating) == pytest.approx(wilson_interval(12, 24))
    # Hand-computed ANOVA: S=2, R=2, outcomes [1,1],[1,0]: means 1, .5; grand .75.
    # MSB = 2*((.25)^2+(.25)^2)/1 = .25; MSW = (0+.5)/(2*1) = .25 -> ICC 0 -> DEFF 1.
    assert design_effect([[1, 1], [1, 0]]) == pytest.approx(1.0)
