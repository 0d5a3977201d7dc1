"""Tests of the compatibility math (polymimic.compat.scores) on inputs with known answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from polymimic.compat import scores
from polymimic.policies.heads import GMMHead

# --------------------------------------------------------------------------- novelty


def test_agreeing_members_have_zero_novelty() -> None:
    members = np.tile(np.array([[0.5, -0.2], [0.1, 0.9]]), (5, 1, 1))  # (K=5, N=2, A=2)
    np.testing.assert_array_equal(scores.ensemble_novelty(members), [0.0, 0.0])


def test_disagreeing_members_give_the_population_std_averaged_over_dims() -> None:
    # Two members. Step 0: dim 0 is 0 / 1 (std 0.5, ddof 0), dim 1 agrees -> (0.5 + 0) / 2.
    # Step 1: dim 0 is 1 / 3 (std 1), dim 1 agrees -> 0.5.
    members = np.array([[[0.0, 0.0], [1.0, 5.0]], [[1.0, 0.0], [3.0, 5.0]]])
    np.testing.assert_allclose(scores.ensemble_novelty(members), [0.25, 0.5])
    three = np.array([[[1.0]], [[2.0]], [[3.0]]])
    np.testing.assert_allclose(scores.ensemble_novelty(three), [math.sqrt(2.0 / 3.0)])


# --------------------------------------------------------------------------- likelihood


def test_action_near_the_base_is_likely_and_far_is_not() -> None:
    members = np.full((3, 2, 2), 0.2)  # every member predicts (0.2, 0.2) at both steps
    actions = np.array([[0.2, 0.2], [-0.8, 0.2]])  # near, far in one dimension
    np.testing.assert_allclose(scores.mismatch_likelihood(members, actions), [0.0, 0.5])


def test_likelihood_averages_over_members_and_dims() -> None:
    members = np.array([[[0.0, 0.0]], [[0.5, -0.5]]])
    actions = np.array([[0.5, 0.5]])
    # member 0: (0.25 + 0.25) / 2; member 1: (0 + 1) / 2 -> mean 0.375
    np.testing.assert_allclose(scores.mismatch_likelihood(members, actions), [0.375])


def test_likelihood_clips_predictions_and_actions_to_the_action_space() -> None:
    members = np.array([[[1.5], [0.0]], [[3.0], [0.0]]])
    actions = np.array([[7.0], [-1.5]])
    # Both clip to 1 at step 0; at step 1 the action counts as -1: (0 - (-1))^2 = 1.
    np.testing.assert_allclose(scores.mismatch_likelihood(members, actions), [0.0, 1.0])
    wide = scores.mismatch_likelihood(members, actions, low=-5.0, high=5.0)
    np.testing.assert_allclose(wide, [((1.5 - 5.0) ** 2 + (3.0 - 5.0) ** 2) / 2, 1.5**2])


def test_gmm_log_likelihood_matches_the_policy_head() -> None:
    head = GMMHead(action_dim=2, modes=3)
    raw = torch.randn(7, head.raw_dim, generator=torch.Generator().manual_seed(0))
    target = torch.randn(7, 2, generator=torch.Generator().manual_seed(1))
    means, stds, log_weights = (t.numpy() for t in head.mixture(raw))
    ours = scores.gmm_log_likelihood(means, stds, log_weights, target.numpy())
    np.testing.assert_allclose(ours, head.log_likelihood(raw, target).numpy(), rtol=1e-5)


def test_gmm_nll_of_one_mode_is_the_gaussian_and_averages_over_members() -> None:
    means = np.array([[[[0.0]]], [[[1.0]]]])  # K=2, N=1, M=1, A=1
    stds = np.full_like(means, 0.5)
    log_weights = np.zeros((2, 1, 1))
    nll = scores.gmm_nll_likelihood(means, stds, log_weights, np.array([[0.0]]))

    def gaussian_nll(x: float, mu: float, sigma: float) -> float:
        return 0.5 * ((x - mu) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)

    expected = (gaussian_nll(0, 0, 0.5) + gaussian_nll(0, 1, 0.5)) / 2
    np.testing.assert_allclose(nll, [expected])


def test_mixture_mean_weights_the_modes() -> None:
    means = np.array([[[-1.0], [1.0]]])  # N=1, M=2, A=1
    log_weights = np.log(np.array([[0.25, 0.75]]))
    np.testing.assert_allclose(scores.mixture_mean(means, log_weights), [[0.5]])


# --------------------------------------------------------------------------- verdicts


def test_incompatible_only_in_familiar_states() -> None:
    lik = np.array([2.0, 2.0, 0.5, 0.5])
    nov = np.array([0.1, 5.0, 0.1, 5.0])  # familiar, novel, familiar, novel
    np.testing.assert_array_equal(scores.step_incompatible(lik, nov, 1.0, 1.0), [1, 0, 0, 0])
    np.testing.assert_array_equal(scores.step_weights(lik, nov, 1.0, 1.0), [0, 1, 1, 1])
    np.testing.assert_array_equal(scores.clearly_compatible(lik, nov, 2.0, 1.0), [0, 0, 0, 1])


def test_display_score_is_the_papers() -> None:
    np.testing.assert_allclose(scores.display_score(np.array([0.0, 1.0, 2.0, 8.0]), 2.0),
                               [1.0, 0.5, 0.0, 0.0])  # fmt: skip
    with pytest.raises(ValueError, match="lambda > 0"):
        scores.display_score(np.array([1.0]), -1.0)


def test_excess_sign_is_the_rule_and_novel_steps_never_pass() -> None:
    rng = np.random.default_rng(0)
    lik, nov = rng.normal(size=500), rng.uniform(size=500)
    excess = scores.step_excess(lik, nov, 0.3, 0.5)
    np.testing.assert_array_equal(excess > 0, scores.step_incompatible(lik, nov, 0.3, 0.5))
    assert (excess[nov >= 0.5] <= 0).all()
    familiar = nov < 0.5
    np.testing.assert_allclose(excess[familiar], lik[familiar] - 0.3)


def test_demo_scores_by_hand() -> None:
    # Demo 0: 10 steps, 3 above 0 -> fraction 0.3 > 0.2, rejected; k = floor(2) + 1 = 3,
    # the third largest excess is 0.5. Demo 1: 10 steps, 2 above 0 -> 0.2, kept; score is
    # its third largest, -0.1.
    demo0 = [2.0, 1.0, 0.5, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
    demo1 = [-0.1, 3.0, -2.0, 4.0, -5.0, -5.0, -5.0, -5.0, -5.0, -5.0]
    excess = np.array(demo1 + demo0)  # steps need not be sorted by demo
    index = np.array([1] * 10 + [0] * 10)
    result = scores.demo_scores(excess, index, 2, max_fraction=0.2)
    np.testing.assert_array_equal(result.steps, [10, 10])
    np.testing.assert_array_equal(result.incompatible_steps, [3, 2])
    np.testing.assert_allclose(result.incompatible_fraction, [0.3, 0.2])
    np.testing.assert_allclose(result.score, [0.5, -0.1])
    np.testing.assert_array_equal(result.rejected, [True, False])


@pytest.mark.parametrize("max_fraction", [0.0, 0.05, 0.1, 0.2, 0.5, 0.95])
def test_demo_score_threshold_is_the_fraction_rule(max_fraction: float) -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 60, size=40)
    index = np.repeat(np.arange(40), lengths)
    excess = rng.normal(loc=-1.0, size=len(index)) * rng.uniform(0, 3, size=40)[index]
    result = scores.demo_scores(excess, index, 40, max_fraction)
    np.testing.assert_array_equal(result.rejected, result.incompatible_fraction > max_fraction)
    np.testing.assert_array_equal(result.score > 0, result.rejected)


def test_demo_scores_refuses_demos_without_steps_and_bad_fractions() -> None:
    with pytest.raises(ValueError, match="needs steps"):
        scores.demo_scores(np.zeros(3), np.array([0, 0, 2]), 3, 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        scores.demo_scores(np.zeros(3), np.zeros(3, int), 1, 1.0)


def test_calibration_takes_the_percentiles_of_the_heldout_steps() -> None:
    lik = np.arange(1.0, 101.0)  # 1..100: the 95th percentile interpolates to 95.05
    nov = np.linspace(0.0, 1.0, 101)  # the 90th percentile of 0, 0.01, ... 1 is 0.9
    lam, eta = scores.calibrate_thresholds(lik, nov, 95, 90)
    assert lam == pytest.approx(95.05) and eta == pytest.approx(0.9)
    # The base's own held-out steps: ~5 % above lambda, ~10 % at or above eta.
    assert (lik > lam).mean() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="none"):
        scores.calibrate_thresholds(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="percentiles"):
        scores.calibrate_thresholds(lik, nov, 101)


# --------------------------------------------------------------------------- ground truth


def test_auroc_by_hand_with_ties() -> None:
    # Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs: 0.9 beats both (2); each 0.5
    # ties 0.5 (1/2) and beats 0.1 (1): 2 + 2 * 1.5 = 5 of 6.
    auc = scores.auroc(np.array([0.9, 0.5, 0.5, 0.5, 0.1]), np.array([1, 1, 1, 0, 0], bool))
    assert auc == pytest.approx(5 / 6)


def test_auroc_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 5, size=30).astype(float)  # many ties
    truth = rng.uniform(size=30) < 0.4
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0)
             for p, n in itertools.product(values[truth], values[~truth])]  # fmt: skip
    assert scores.auroc(values, truth) == pytest.approx(np.mean(pairs))


def test_auroc_extremes() -> None:
    truth = np.array([1, 1, 0, 0], bool)
    assert scores.auroc(np.array([3.0, 2.0, 1.0, 0.0]), truth) == 1.0
    assert scores.auroc(np.array([0.0, 1.0, 2.0, 3.0]), truth) == 0.0
    assert scores.auroc(np.ones(4), truth) == 0.5
    assert math.isnan(scores.auroc(np.ones(2), np.array([True, True])))


def test_precision_recall_and_false_positive_rate() -> None:
    pred, truth = np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)
    assert scores.precision_recall(pred, truth) == (0.5, 0.5)
    precision, recall = scores.precision_recall(np.zeros(4, bool), truth)
    assert math.isnan(precision) and recall == 0.0
    assert scores.false_positive_rate(np.array([1, 0, 1], bool), np.array([0, 0, 1], bool)) == 0.5
    assert math.isnan(scores.false_positive_rate(pred, np.ones(4, bool)))
