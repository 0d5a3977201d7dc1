"""Per-operator diagnostics: the metrics on inputs with known answers, then on a real file."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from polymimic.datasets.diagnostics import (
    knn_regress,
    markov_check,
    operator_diagnostics,
    r2_score,
    rms_jerk,
)
from polymimic.datasets.validate import dataset_info

# --------------------------------------------------------------------------- metrics


def test_rms_jerk_of_a_cubic_is_its_constant_third_derivative() -> None:
    dt = 0.05
    s = np.arange(30) * dt
    # p(s) = (2 s^3, -s^3 + s): third derivative (12, -6), norm sqrt(180), for any dt.
    path = np.stack([2 * s**3, -(s**3) + s], axis=1)
    assert rms_jerk([path], dt) == pytest.approx(np.sqrt(180.0), rel=1e-6)
    assert rms_jerk([path[:, :1]], dt) == pytest.approx(12.0, rel=1e-6)
    # Pooled over paths: mean of squared jerks, not mean of per-path RMS.
    line = np.stack([s, s], axis=1)  # zero jerk, same number of steps
    assert rms_jerk([path, line], dt) == pytest.approx(np.sqrt(90.0), rel=1e-6)
    assert np.isnan(rms_jerk([path[:3]], dt))
    with pytest.raises(ValueError, match="dt"):
        rms_jerk([path], 0.0)


def test_r2_score_and_knn_on_known_cases() -> None:
    y = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.broadcast_to(y.mean(axis=0), y.shape)) == pytest.approx(0.0)
    x = np.random.default_rng(0).normal(size=(50, 3))
    # With one neighbour, every training row is its own nearest neighbour.
    targets = y.repeat(17, axis=0)[:50]
    np.testing.assert_allclose(knn_regress(x, targets, x, neighbours=1), targets)


def _episodes(policy, hidden_phase: bool, n: int = 20, steps: int = 100) -> list:
    """Random observations; actions from ``policy(obs)`` plus, optionally, a hidden phase."""
    rng = np.random.default_rng(1)
    episodes = []
    for _ in range(n):
        obs = rng.uniform(-1, 1, size=(steps, 3))
        actions = policy(obs)
        if hidden_phase:  # a script phase the observation never shows: flips every 15 steps
            actions = actions + np.where((np.arange(steps) // 15) % 2 == 0, 1.0, -1.0)[:, None]
        episodes.append((obs, actions))
    return episodes


def smooth_policy(obs: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(2 * obs[:, 0]), obs[:, 1] * obs[:, 2]], axis=1)


def test_markov_check_separates_markovian_from_hidden_phase_operators() -> None:
    markovian = markov_check(_episodes(smooth_policy, hidden_phase=False))
    hidden = markov_check(_episodes(lambda o: 0.1 * smooth_policy(o), hidden_phase=True))
    assert markovian.cv == "episodes" and markovian.num_steps == 2000
    assert markovian.r2_state > 0.8
    assert markovian.gap < 0.05  # history adds nothing when the state decides the action
    assert hidden.r2_state < 0.1  # the phase is invisible in the state
    assert hidden.r2_history > 0.6  # ... but the previous actions reveal it
    assert hidden.gap > 0.6
    assert markov_check(_episodes(smooth_policy, hidden_phase=False)) == markovian  # deterministic


def test_markov_check_single_episode_and_too_few_steps() -> None:
    single = markov_check(_episodes(smooth_policy, hidden_phase=False, n=1))
    assert single.cv == "time-blocks" and single.num_steps == 100
    assert markov_check(_episodes(smooth_policy, hidden_phase=False, n=1, steps=6)) is None


# --------------------------------------------------------------------------- files


def test_operator_diagnostics_on_the_tiny_push_file(tiny_push_dataset: Path) -> None:
    diagnostics = operator_diagnostics(tiny_push_dataset)
    assert diagnostics["jerk_source"] == "obs/tip_pos" and diagnostics["jerk_units"] == "m/s^3"
    assert diagnostics["dt"] == pytest.approx(0.05)  # 25 substeps x 2 ms
    operators = diagnostics["operators"]
    assert set(operators) == {f"op{i}" for i in range(1, 7)}
    with h5py.File(tiny_push_dataset, "r") as f:
        for name in f["data"]:
            demo = f["data"][name]
            row = operators[demo.attrs["operator"]]
            assert row["num_demos"] == 1
            assert row["length_min"] == row["length_max"] == demo.attrs["num_samples"]
            expected = rms_jerk([demo["obs"]["tip_pos"][()]], 0.05)
            assert row["rms_jerk"] == pytest.approx(expected, abs=1e-4)
            assert row["markov_cv"] == "time-blocks"
            assert row["markov_gap"] == pytest.approx(
                row["markov_r2_history"] - row["markov_r2_state"], abs=2e-4
            )


def test_jerk_falls_back_to_actions_without_tip_pos(
    tiny_push_dataset: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copy(tiny_push_dataset, tmp_path / "no_tip.hdf5"))
    with h5py.File(path, "r+") as f:
        for name in f["data"]:
            for group in ("obs", "next_obs"):
                f["data"][name][group].move("tip_pos", "effector")
        actions = f["data"]["demo_0"]["actions"][()]
        operator = f["data"]["demo_0"].attrs["operator"]
    info = dataset_info(path, diagnostics=True)
    assert info["diagnostics"]["jerk_source"] == "actions"
    row = info["diagnostics"]["operators"][operator]
    assert row["rms_jerk"] == pytest.approx(rms_jerk([actions], 0.05), abs=1e-4)
    assert "diagnostics" not in dataset_info(path)  # off by default: attributes only
