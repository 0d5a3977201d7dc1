"""The compatibility scorer's math: plain, typed numpy functions with known answers.

Gandhi, Karamcheti, Liao, Sadigh, "Eliciting Compatible Demonstrations for Multi-Human
Imitation Learning", CoRL 2022. A base policy, an ensemble of K members trained on trusted
demonstrations, judges each step ``(s, a)`` of a candidate demonstration by two terms:

- **likelihood** ``lik(s, a)``: how unlikely the action is under the base. The paper's is
  an action-mismatch MSE (:func:`mismatch_likelihood`); the multimodal scorer's is a
  mixture negative log-likelihood (:func:`gmm_nll_likelihood`). High = unlikely action.
- **novelty** ``nov(s)``: the members' disagreement, the std over members of their
  predicted actions averaged over action dimensions (:func:`ensemble_novelty`). High =
  unfamiliar state.

A step is *incompatible* when ``lik > lambda`` and ``nov < eta`` (a familiar state and an
unlikely action, :func:`step_incompatible`); novel states count as compatible whatever the
action. A demonstration is rejected when too many of its steps are incompatible
(:func:`demo_scores`). Nothing here imports torch, an env or a simulator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------- step terms


def mismatch_likelihood(
    member_actions: np.ndarray, actions: np.ndarray, low: float = -1.0, high: float = 1.0
) -> np.ndarray:
    """The paper's likelihood term, an action-mismatch MSE (high = unlikely action)::

        lik(s, a) = (1/K) sum_k (1/A) sum_d (clip(pi_k(s)_d) - clip(a_d))^2

    with ``clip`` to the env's action space ``[low, high]`` (polymimic's tasks: [-1, 1]).
    Clipping both sides, as the paper, means an out-of-range prediction or action counts
    only as far as the env would execute it.

    Args:
        member_actions: ``(K, N, A)`` the members' predicted actions, in action space.
        actions: ``(N, A)`` the demonstrated actions.
        low, high: the action space's bounds.

    Returns:
        ``(N,)`` float64.
    """
    predicted = np.clip(np.asarray(member_actions, dtype=np.float64), low, high)
    demonstrated = np.clip(np.asarray(actions, dtype=np.float64), low, high)
    return np.square(predicted - demonstrated[None]).mean(axis=(0, 2))


def ensemble_novelty(member_actions: np.ndarray) -> np.ndarray:
    """The novelty term: the members' disagreement (high = unfamiliar state)::

        nov(s) = (1/A) sum_d std_k(pi_k(s)_d),   std with ddof = 0 (population std)

    Args:
        member_actions: ``(K, N, A)`` the members' actions (or mixture means), action space.

    Returns:
        ``(N,)`` float64; 0 where every member predicts the same action.
    """
    return np.asarray(member_actions, dtype=np.float64).std(axis=0, ddof=0).mean(axis=-1)


def gmm_log_likelihood(
    means: np.ndarray, stds: np.ndarray, log_weights: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """``log p(target)`` under diagonal Gaussian mixtures (``policies.heads.GMMHead``'s)::

        log p(a) = logsumexp_m [ log pi_m + sum_d log N(a_d; mu_md, sigma_md) ]

    Args:
        means, stds: ``(..., M, A)`` per-mode means and standard deviations.
        log_weights: ``(..., M)`` log mixture weights (log-softmax of the logits).
        target: ``(..., A)`` the points to evaluate.

    Returns:
        ``(...)`` float64.
    """
    means, stds = np.asarray(means, np.float64), np.asarray(stds, np.float64)
    z = (np.asarray(target, np.float64)[..., None, :] - means) / stds
    log_normal = -0.5 * (np.square(z) + _LOG_2PI).sum(-1) - np.log(stds).sum(-1)
    joint = np.asarray(log_weights, np.float64) + log_normal
    peak = joint.max(axis=-1, keepdims=True)  # logsumexp without overflow
    return (peak + np.log(np.exp(joint - peak).sum(axis=-1, keepdims=True)))[..., 0]


def gmm_nll_likelihood(
    means: np.ndarray, stds: np.ndarray, log_weights: np.ndarray, actions: np.ndarray
) -> np.ndarray:
    """The multimodal scorer's likelihood term: mean negative log-likelihood over members::

        lik(s, a) = -(1/K) sum_k log sum_m pi_km(s) N(a; mu_km(s), diag sigma_km(s)^2)

    evaluated in each member's normalised action space (``(a - offset) / scale``, its
    ``action_normalizer``): that is where ``bc_gmm`` fits its mixture. It differs from the
    density in action space by the constant ``sum_d log scale_d`` of each member, the same
    at every step when the members share the base's normalisation statistics, so the
    thresholds calibrated from the same members absorb it. An action on any mode of the
    base is likely, so a second way of doing the task is not mistaken for a conflict.

    Args:
        means, stds: ``(K, N, M, A)`` each member's mixture at each step.
        log_weights: ``(K, N, M)`` log mixture weights.
        actions: ``(N, A)`` or ``(K, N, A)`` demonstrated actions in the members'
            normalised units (per member when their normalisations differ).

    Returns:
        ``(N,)`` float64 (can be negative: a density above 1).
    """
    actions = np.asarray(actions, np.float64)
    if actions.ndim == 2:
        actions = np.broadcast_to(actions, (np.shape(means)[0], *actions.shape))
    return -gmm_log_likelihood(means, stds, log_weights, actions).mean(axis=0)


def mixture_mean(means: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """The mixture's mean action ``sum_m pi_m mu_m``: ``(..., M, A)``, ``(..., M)`` -> ``(..., A)``."""
    weights = np.exp(np.asarray(log_weights, np.float64))
    return (weights[..., None] * np.asarray(means, np.float64)).sum(axis=-2)


# --------------------------------------------------------------------------- verdicts


def step_incompatible(
    lik: np.ndarray, nov: np.ndarray, lam: float, eta: float
) -> np.ndarray:
    """The paper's rule: ``lik > lambda`` and ``nov < eta`` (familiar state, unlikely action).

    Novel states (``nov >= eta``) are compatible whatever the action: the base knows too
    little there to judge.

    Returns:
        ``(N,)`` bool.
    """
    return (np.asarray(lik) > lam) & (np.asarray(nov) < eta)


def clearly_compatible(lik: np.ndarray, nov: np.ndarray, lam: float, eta: float) -> np.ndarray:
    """The paper's "clearly good" steps: ``lik < lambda / 2`` and ``nov > 1.5 eta``.

    Meaningful for a positive ``lambda`` (the paper's MSE); ``(N,)`` bool.
    """
    return (np.asarray(lik) < lam / 2.0) & (np.asarray(nov) > 1.5 * eta)


def display_score(lik: np.ndarray, lam: float) -> np.ndarray:
    """The per-step score the paper shows a person: ``max(0, 1 - lik / lambda)``.

    1 for an action the base would take, 0 at and beyond the threshold. Needs
    ``lambda > 0`` (the paper's MSE likelihood).

    Raises:
        ValueError: ``lam <= 0``.
    """
    if not lam > 0:
        raise ValueError(f"the display score needs lambda > 0, got {lam}")
    return np.maximum(0.0, 1.0 - np.asarray(lik, np.float64) / lam)


def step_weights(lik: np.ndarray, nov: np.ndarray, lam: float, eta: float) -> np.ndarray:
    """Per-step filtering weights (post-hoc step filtering drops incompatible pairs)::

        w(s, a) = 0 if lik > lambda and nov < eta else 1

    Returns:
        ``(N,)`` float32.
    """
    return (~step_incompatible(lik, nov, lam, eta)).astype(np.float32)


def step_excess(lik: np.ndarray, nov: np.ndarray, lam: float, eta: float) -> np.ndarray:
    """A continuous per-step incompatibility whose sign is the paper's rule::

        e(s, a) = lik - lambda                 if nov < eta   (familiar state)
                  min(lik - lambda, 0)         otherwise      (novel: never above 0)

    so ``e > 0`` exactly when the step is incompatible (:func:`step_incompatible`). A
    difference, not the ratio ``lik / lambda``, because the multimodal likelihood (a
    negative log-likelihood) and so its ``lambda`` can be negative.

    Returns:
        ``(N,)`` float64.
    """
    excess = np.asarray(lik, np.float64) - lam
    return np.where(np.asarray(nov) < eta, excess, np.minimum(excess, 0.0))


@dataclasses.dataclass(frozen=True)
class DemoScores:
    """Per-demonstration results of :func:`demo_scores`; arrays of shape ``(D,)``.

    Attributes:
        steps: steps of each demo.
        incompatible_steps: its steps with ``e > 0``.
        incompatible_fraction: ``incompatible_steps / steps`` (the paper ranks by the count).
        score: the continuous score (see :func:`demo_scores`); higher = less compatible.
        rejected: ``incompatible_fraction > max_fraction``, i.e. ``score > 0``.
    """

    steps: np.ndarray
    incompatible_steps: np.ndarray
    incompatible_fraction: np.ndarray
    score: np.ndarray
    rejected: np.ndarray


def rejection_rank(steps: int, max_fraction: float) -> int:
    """``k = floor(max_fraction * T) + 1``: a demo of ``T`` steps is rejected when at least
    ``k`` of its steps are incompatible (``1 <= k <= T`` for ``max_fraction`` in [0, 1))."""
    return int(np.floor(max_fraction * steps)) + 1


def demo_scores(
    excess: np.ndarray, demo_index: np.ndarray, num_demos: int, max_fraction: float
) -> DemoScores:
    """Per-demo verdicts and a continuous score from the per-step excess (:func:`step_excess`).

    The paper rejects a demo with more than a set number of incompatible steps (15 on its
    real robot, over horizons of several hundred steps); here the number is a fraction of
    the demo's length ``T``: rejected when ``incompatible_fraction > max_fraction``.

    The continuous score, for ranking and AUROC, is the ``k``-th largest step excess of the
    demo, ``k = floor(max_fraction * T) + 1`` (:func:`rejection_rank`)::

        score(demo) = e_(k),   e_(1) >= e_(2) >= ... >= e_(T)

    Its threshold at 0 is exactly the paper's rule: ``score > 0`` iff at least ``k`` steps
    have ``e > 0`` iff ``count > floor(max_fraction * T)`` iff ``count / T > max_fraction``.
    It ranks rejected demos by how strongly their k-th worst step conflicts, and kept demos
    by how close that step comes to the threshold.

    Args:
        excess: ``(N,)`` per-step excess.
        demo_index: ``(N,)`` ints in ``[0, num_demos)``, the demo of each step.
        num_demos: D; every demo must have at least one step.
        max_fraction: in [0, 1).

    Raises:
        ValueError: a fraction outside [0, 1), or a demo without steps.
    """
    if not 0.0 <= max_fraction < 1.0:
        raise ValueError(f"max_fraction must lie in [0, 1), got {max_fraction}")
    excess, demo_index = np.asarray(excess, np.float64), np.asarray(demo_index)
    steps = np.bincount(demo_index, minlength=num_demos)
    if len(steps) != num_demos or (steps == 0).any():
        raise ValueError(f"every one of the {num_demos} demos needs steps; got counts {steps}")
    count = np.bincount(demo_index, weights=excess > 0, minlength=num_demos).astype(np.int64)
    order = np.lexsort((-excess, demo_index))  # by demo, then descending excess
    starts = np.concatenate([[0], np.cumsum(steps)[:-1]])
    ranks = np.array([rejection_rank(int(t), max_fraction) for t in steps])
    score = excess[order][starts + ranks - 1]
    return DemoScores(steps, count, count / steps, score, score > 0)


def calibrate_thresholds(
    lik_heldout: np.ndarray,
    nov_heldout: np.ndarray,
    lik_percentile: float = 95.0,
    nov_percentile: float = 95.0,
) -> tuple[float, float]:
    """``(lambda, eta)`` from the base's own held-out demonstrations::

        lambda = percentile_P(lik over held-out base steps)
        eta    = percentile_Q(nov over held-out base steps)

    An action as unlikely as the base's own least likely (100 - P) % is the line; a state
    at least as familiar as Q % of the base's own held-out states counts as familiar. The
    held-out demos were not trained on, so they show how the members judge fresh data of
    the trusted operator. By construction about (100 - P) % of held-out base steps lie above
    ``lambda``: a demo-level ``max_fraction`` below that rejects the base itself.

    Raises:
        ValueError: no steps, non-finite values, or a percentile outside [0, 100].
    """
    lik, nov = np.asarray(lik_heldout, np.float64), np.asarray(nov_heldout, np.float64)
    if lik.size == 0 or nov.size == 0:
        raise ValueError("calibration needs the held-out base demos' steps; got none")
    if not (np.isfinite(lik).all() and np.isfinite(nov).all()):
        raise ValueError("calibration got NaN or infinite likelihood or novelty values")
    for p in (lik_percentile, nov_percentile):
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentiles must lie in [0, 100], got {p}")
    return float(np.percentile(lik, lik_percentile)), float(np.percentile(nov, nov_percentile))


# --------------------------------------------------------------------------- ground truth


def precision_recall(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)`` of boolean predictions.

    NaN where undefined (nothing predicted positive; no true positives to find).
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float((pred & truth).sum())
    precision = tp / pred.sum() if pred.any() else float("nan")
    recall = tp / truth.sum() if truth.any() else float("nan")
    return float(precision), float(recall)


def false_positive_rate(pred: np.ndarray, truth: np.ndarray) -> float:
    """``FPR = FP / (FP + TN)``: the share of true negatives predicted positive (NaN if none)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    negatives = ~truth
    return float((pred & negatives).sum() / negatives.sum()) if negatives.any() else float("nan")


def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve, the Mann-Whitney statistic with ties counted 1/2::

        AUROC = (1 / (|P| |N|)) sum_{i in P} sum_{j in N} ([s_i > s_j] + 1/2 [s_i = s_j])
              = (R_P - |P| (|P| + 1) / 2) / (|P| |N|)

    with ``R_P`` the sum of the positives' mid-ranks (tied scores share their mean rank).
    The probability that a random positive outscores a random negative. NaN when either
    class is empty.
    """
    scores, truth = np.asarray(scores, np.float64), np.asarray(truth, bool)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid_ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based mean rank of each tie group
    rank_sum = float(mid_ranks[truth].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
