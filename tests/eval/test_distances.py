"""Known answers of the sliced Wasserstein distance."""

from __future__ import annotations

import numpy as np
import pytest

from polymimic.eval.distances import random_directions, sliced_wasserstein, wasserstein_1d


def test_identical_and_permuted_sets_are_at_distance_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    assert sliced_wasserstein(x, x) == 0.0
    assert sliced_wasserstein(x, x[rng.permutation(500)]) == pytest.approx(0.0, abs=1e-12)


def test_one_dimensional_shift_is_the_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 1))
    y = rng.permutation(x) + 0.7  # W_p of a translated set is the translation, in any order
    assert sliced_wasserstein(x, y, p=2.0) == pytest.approx(0.7, rel=1e-9)
    assert sliced_wasserstein(x, y, p=1.0) == pytest.approx(0.7, rel=1e-9)


@pytest.mark.parametrize("dim", [2, 4, 16])
def test_shifted_gaussians_give_delta_over_root_dim(dim: int) -> None:
    rng = np.random.default_rng(dim)
    delta = 2.0
    x = rng.normal(size=(8_000, dim))
    y = rng.normal(size=(8_000, dim))
    y[:, 0] += delta
    directions = random_directions(dim, 1000, np.random.default_rng(7))
    found = sliced_wasserstein(x, y, directions=directions)
    assert found == pytest.approx(delta / np.sqrt(dim), rel=0.05)
    # and not the unsliced distance (delta) nor the W_1 slice average (delta*E|theta_1|)
    assert abs(found - delta) > 0.25 * delta


def test_unequal_sizes_use_the_quantile_functions() -> None:
    # Same distribution, other sizes: 0. A point against two points: W_2^2 = (0 + 1)/2.
    assert wasserstein_1d(np.array([0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0])) == 0.0
    assert wasserstein_1d(np.array([0.0]), np.array([0.0, 1.0])) == pytest.approx(np.sqrt(0.5))
    assert wasserstein_1d(np.array([0.0]), np.array([0.0, 1.0]), p=1.0) == pytest.approx(0.5)
    # thirds against halves: quantiles 0,1,2 vs 0,3 on (0,1/3],(1/3,1/2],(1/2,2/3],(2/3,1]
    expected = np.sqrt(0 * (1 / 3) + 1 * (1 / 6) + 4 * (1 / 6) + 1 * (1 / 3))
    assert wasserstein_1d(np.array([2.0, 0.0, 1.0]), np.array([3.0, 0.0])) == pytest.approx(expected)
    x = np.random.default_rng(3).normal(size=(300, 3))
    assert sliced_wasserstein(x, np.concatenate([x, x])) == pytest.approx(0.0, abs=1e-12)


def test_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match="point sets"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
