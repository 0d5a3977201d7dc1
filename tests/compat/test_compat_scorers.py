"""A second mode: the multimodal scorer accepts it, the paper's scorer flags it.

The base acts at one state with actions -0.8 and +0.8 in equal shares (a task done two
ways). An MLP member regresses onto their mean, 0, so the paper's likelihood calls +0.8
unlikely and the average 0.0, which nobody demonstrated, likely; a mixture member puts a
mode on each, so +0.8 is likely and 0.0 is not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demo_files import write_demo_file
from polymimic.compat import scores
from polymimic.compat.ensemble import MemberTraining
from polymimic.compat.scorers import SCORERS, MultimodalScorer, PaperScorer, scorer_class
from polymimic.compat.scoring import ScoringSettings, score_dataset
from polymimic.errors import UnknownNameError

BASE = [f"demo_{i}" for i in range(10)]
SECOND_MODE, BETWEEN = "demo_10", "demo_11"


def test_registry() -> None:
    assert SCORERS == {"paper": PaperScorer, "multimodal": MultimodalScorer}
    assert (PaperScorer.policy_type, MultimodalScorer.policy_type) == ("bc_mlp", "bc_gmm")
    with pytest.raises(UnknownNameError, match="known scorers: multimodal, paper"):
        scorer_class("mlp")


def test_constructed_second_mode() -> None:
    """The same question on constructed members: MLPs predicting ~0, mixtures with modes at
    -0.8 and +0.8 (std 0.1); every state familiar."""
    actions = np.array([[0.8], [0.0]])
    mlp = np.array([[[0.01], [0.01]], [[-0.01], [-0.01]], [[0.0], [0.0]]])  # (K=3, N=2, A=1)
    paper = scores.step_incompatible(scores.mismatch_likelihood(mlp, actions),
                                     scores.ensemble_novelty(mlp), lam=0.3, eta=1.0)  # fmt: skip
    np.testing.assert_array_equal(paper, [True, False])  # +0.8 flagged, 0.0 accepted
    means = np.broadcast_to(np.array([[-0.8], [0.8]]), (3, 2, 2, 1))  # (K, N, M, A)
    log_weights = np.log(np.full((3, 2, 2), 0.5))
    nll = scores.gmm_nll_likelihood(means, np.full_like(means, 0.1), log_weights, actions)
    heldout = scores.gmm_nll_likelihood(means, np.full_like(means, 0.1), log_weights,
                                        np.array([[-0.8], [0.8]]))  # fmt: skip
    lam = heldout.max()
    np.testing.assert_array_equal(nll > lam, [False, True])  # +0.8 accepted, 0.0 flagged


@pytest.fixture(scope="module")
def two_mode_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state (observations jitter around it); base demos alternate -0.8 / +0.8;
    demo_10 acts +0.8 throughout, demo_11 0.0."""
    steps, rng = 20, np.random.default_rng(0)

    def obs() -> np.ndarray:
        # The jitter keeps likelihoods from tying exactly with the calibration's percentile.
        return rng.normal(scale=0.01, size=(steps, 2))

    alternating = np.where(np.arange(steps) % 2 == 0, 0.8, -0.8)[:, None]
    demos = {name: {"obs/tip_pos": obs(), "actions": alternating * (1 if i % 2 else -1)}
             for i, name in enumerate(BASE)}  # fmt: skip
    demos[SECOND_MODE] = {"obs/tip_pos": obs(), "actions": np.full((steps, 1), 0.8)}
    demos[BETWEEN] = {"obs/tip_pos": obs(), "actions": np.zeros((steps, 1))}
    path = tmp_path_factory.mktemp("two_modes") / "two_modes.hdf5"
    return write_demo_file(path, demos, {"base": BASE})


def _score(path: Path, scorer: str, steps: int, **thresholds: float) -> dict[str, bool]:
    overrides = {"hidden_dims": (16, 16)} | ({"gmm_modes": 2} if scorer == "multimodal" else {})
    training = MemberTraining("", steps=steps, batch_size=64, overrides=overrides)
    settings = ScoringSettings(scorer=scorer, members=3, training=training, eta=1.0,
                               max_fraction=0.5, **thresholds)  # fmt: skip
    result = score_dataset(path, BASE, settings)
    assert result.lam == pytest.approx(thresholds.get("lam", result.lam))
    return dict(zip(result.demos, result.per_demo.rejected.tolist(), strict=True))


def test_paper_scorer_flags_the_second_mode(two_mode_file: Path) -> None:
    # Any lambda under 0.64 = (0.8 - 0)^2: a base done one way would give such a lambda.
    rejected = _score(two_mode_file, "paper", steps=300, lam=0.3)
    assert rejected[SECOND_MODE] and not rejected[BETWEEN]


def test_multimodal_scorer_accepts_the_second_mode(two_mode_file: Path) -> None:
    # lambda calibrated: the 95th percentile of the held-out base steps (both modes are in
    # them); a demo is rejected when more than half its steps lie above it.
    rejected = _score(two_mode_file, "multimodal", steps=500, lik_percentile=95.0)
    assert not rejected[SECOND_MODE] and rejected[BETWEEN]
    assert not any(rejected[name] for name in BASE)
