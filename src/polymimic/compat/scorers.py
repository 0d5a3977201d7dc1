"""The scorers: one small interface, one registry (``SCORERS``), two entries.

A scorer names the learner its ensemble members are (``policy_type``) and turns the
members' outputs on every step into the two per-step terms (``StepTerms``): likelihood
(high = unlikely action) and novelty (high = unfamiliar state). Thresholds, verdicts and
outputs are the same for every scorer (``compat.scoring``).

- ``paper``: Gandhi et al. (CoRL 2022). ``bc_mlp`` members; likelihood = action-mismatch
  MSE against the members' predictions (``scores.mismatch_likelihood``), novelty = their
  std (``scores.ensemble_novelty``). An MLP regresses onto the mean of the base's actions,
  so where the base does a task two ways it predicts neither, and a demo of either way
  looks unlikely: a second mode is mistaken for a conflict.
- ``multimodal``: ``bc_gmm`` members (a mixture density head); likelihood = mean over
  members of the negative log-likelihood of the demonstrated action under the member's
  mixture, in its normalised action space (``scores.gmm_nll_likelihood``), so an action on
  any mode of the base is likely; novelty = std over members of each member's mixture mean
  action (in action space, clipped), averaged over action dimensions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from polymimic.compat import scores
from polymimic.compat.ensemble import batched_forward
from polymimic.policies.base import Policy
from polymimic.registry import lookup

#: polymimic's tasks all act in [-1, 1] (``envs.base.unit_action_space``).
ACTION_LOW, ACTION_HIGH = -1.0, 1.0


@dataclasses.dataclass(frozen=True)
class StepTerms:
    """The two per-step terms, ``(N,)`` float64 each."""

    likelihood: np.ndarray
    novelty: np.ndarray


class Scorer:
    """Turns ensemble members' outputs into per-step likelihood and novelty."""

    name: ClassVar[str] = ""
    policy_type: ClassVar[str] = ""  # the registered learner every member must be
    likelihood_name: ClassVar[str] = ""  # what the likelihood is, for reports and records

    def step_terms(
        self, members: Sequence[Policy], obs: np.ndarray, actions: np.ndarray
    ) -> StepTerms:
        """Likelihood and novelty of every step.

        Args:
            members: the K ensemble members (``policy_type``).
            obs: ``(N, obs_horizon, obs_dim)`` raw observation windows.
            actions: ``(N, A)`` demonstrated actions in action space.
        """
        raise NotImplementedError


SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a scorer available by its ``name``."""
    if not cls.name or (cls.name in SCORERS and SCORERS[cls.name] is not cls):
        raise ValueError(f"scorer name {cls.name!r} is empty or already registered")
    SCORERS[cls.name] = cls
    return cls


def scorer_class(name: str) -> type[Scorer]:
    """Look a scorer up by name, with an error listing the known ones."""
    return lookup(SCORERS, name, "scorer")


def _predicted_action(policy: Policy, window: torch.Tensor) -> np.ndarray:
    # bc_mlp's MSE head ignores generators: the prediction is deterministic.
    return policy.predict_chunk(window, None)[:, 0].float().cpu().numpy()


@register_scorer
class PaperScorer(Scorer):
    """Gandhi et al.'s scorer: MLP members, action-mismatch likelihood, their disagreement."""

    name = "paper"
    policy_type = "bc_mlp"
    likelihood_name = "action-mismatch MSE"

    def step_terms(
        self, members: Sequence[Policy], obs: np.ndarray, actions: np.ndarray
    ) -> StepTerms:
        predicted = np.stack(
            [np.concatenate(batched_forward(m, obs, _predicted_action)) for m in members]
        )  # (K, N, A)
        return StepTerms(
            likelihood=scores.mismatch_likelihood(predicted, actions, ACTION_LOW, ACTION_HIGH),
            novelty=scores.ensemble_novelty(np.clip(predicted, ACTION_LOW, ACTION_HIGH)),
        )


def _mixture(policy: Policy, window: torch.Tensor) -> tuple[np.ndarray, ...]:
    """The member's mixture at each step: means, stds ``(B, M, A)`` and log weights
    ``(B, M)``, in its normalised action units."""
    means, stds, log_weights = policy.head.mixture(policy(window))
    return tuple(t.float().cpu().numpy() for t in (means, stds, log_weights))


def _normaliser(policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """The member's action ``(offset, scale)``: ``normalised = (a - offset) / scale``."""
    n = policy.action_normalizer
    return n.offset.cpu().numpy().astype(np.float64), n.scale.cpu().numpy().astype(np.float64)


@register_scorer
class MultimodalScorer(Scorer):
    """Mixture members: a demo on any mode of the base is likely (see the module docstring)."""

    name = "multimodal"
    policy_type = "bc_gmm"
    likelihood_name = "mixture NLL, normalised units"

    def step_terms(
        self, members: Sequence[Policy], obs: np.ndarray, actions: np.ndarray
    ) -> StepTerms:
        parts = [batched_forward(m, obs, _mixture) for m in members]
        means, stds, log_weights = (
            np.stack([np.concatenate([batch[i] for batch in member]) for member in parts])
            for i in range(3)
        )  # (K, N, M, A), (K, N, M, A), (K, N, M)
        normalisers = [_normaliser(m) for m in members]
        offsets = np.stack([offset for offset, _ in normalisers])[:, None]  # (K, 1, A)
        scales = np.stack([scale for _, scale in normalisers])[:, None]
        # Each member's own normalisation of the demonstrated actions (K, N, A), and each
        # member's mixture mean taken back to action space.
        targets = (np.asarray(actions, np.float64)[None] - offsets) / scales
        mean_actions = scores.mixture_mean(means, log_weights) * scales + offsets
        return StepTerms(
            likelihood=scores.gmm_nll_likelihood(means, stds, log_weights, targets),
            novelty=scores.ensemble_novelty(np.clip(mean_actions, ACTION_LOW, ACTION_HIGH)),
        )
