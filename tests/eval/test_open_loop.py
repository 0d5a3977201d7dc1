"""The open-loop baseline: its distance, its replay, the rollout loop and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from polymimic.cli.main import main
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset, read_episode
from polymimic.eval.open_loop import OpenLoopPolicy
from polymimic.eval.vector import EpisodeSpec, make_vector_env, run_episodes

PUSH = "polymimic/Push-v1"


def small_policy() -> OpenLoopPolicy:
    """Three demos over keys a (2 values), tip_target (1) and const (1, constant)."""
    initial = np.array([
        # a[0]  a[1]  tip_target  const
        [0.0, 0.0, 0.0, 5.0],
        [3.0, 1.0, 9.0, 5.0],
        [10.0, 0.0, -9.0, 5.0],
    ])  # fmt: skip
    actions = [np.full((3, 2), 1.0), np.full((2, 2), 2.0), np.full((4, 2), 3.0)]
    return OpenLoopPolicy(["a", "tip_target", "const"], [2, 1, 1], initial, actions,
                          ["demo_0", "demo_1", "demo_2"])


def test_distance_is_standardised_euclidean_over_the_varying_non_target_dimensions() -> None:
    policy = small_policy()
    assert policy.config.distance_dims == ("a[0]", "a[1]")  # tip_target and constant dropped
    query = np.array([2.5, 0.0, 9.0, 5.0])  # tip_target equal to demo_1's
    s0, s1 = np.std([0.0, 3.0, 10.0]), np.std([0.0, 1.0, 0.0])
    expected = [np.hypot((2.5 - x) / s0, (0.0 - y) / s1) for x, y in [(0, 0), (3, 1), (10, 0)]]
    np.testing.assert_allclose(policy.distances(query), expected, rtol=1e-12)
    # Raw Euclidean picks demo_1 (1.12 against 2.5); standardised, a[1]'s small spread
    # makes its difference of 1 count: demo_0. tip_target plays no part.
    raw = np.linalg.norm(np.array([[0, 0], [3, 1], [10, 0]]) - query[:2], axis=1)
    assert (np.argmin(raw), np.argmin(expected)) == (1, 0)
    assert policy.nearest(query) == (0, pytest.approx(expected[0], rel=1e-12))
    assert policy.nearest(query * [1, 1, 0, 1] - [0, 0, 9, 0])[0] == 0


def test_replays_the_nearest_demo_then_holds_still_and_batches_row_by_row() -> None:
    starts = np.array([[0.1, 0.0, 0.0, 5.0], [3.1, 1.0, 0.0, 5.0], [9.9, 0.1, 0.0, 5.0]])
    batched, single = small_policy(), [small_policy() for _ in starts]
    steps = []
    for t in range(5):
        obs = starts + 100.0 * t  # later observations must not matter (no feedback)
        together = batched.predict_action(obs)
        alone = np.concatenate([p.predict_action(obs[i : i + 1]) for i, p in enumerate(single)])
        np.testing.assert_array_equal(together, alone)
        steps.append(together)
    actions = np.stack(steps)  # (T, B, 2)
    np.testing.assert_array_equal(actions[:, 0, 0], [1, 1, 1, 0, 0])  # demo_0: 3 actions, zeros
    np.testing.assert_array_equal(actions[:, 1, 0], [2, 2, 0, 0, 0])  # demo_1: 2 actions
    np.testing.assert_array_equal(actions[:, 2, 0], [3, 3, 3, 3, 0])  # demo_2: 4 actions
    # reset(env_ids) restarts the named environment only, from its next observation.
    batched.reset([1])
    after = batched.predict_action(np.array([[9, 9, 9, 9], [0.0, 0.0, 0.0, 5.0], [9, 9, 9, 9]]))
    np.testing.assert_array_equal(after[:, 0], [0, 1, 0])


def test_a_context_at_a_demos_start_replays_that_demo(tiny_push_dataset: Path) -> None:
    """Known answer: start from demo j's exact initial state -> demo j's actions, step for
    step, and the rollout ends as the demo did."""
    policy, env_args = OpenLoopPolicy.from_dataset(tiny_push_dataset)
    assert env_args["env_name"] == PUSH
    with open_dataset(tiny_push_dataset) as f:
        successful = [n for n in demo_names(f) if demo_attrs(f["data"][n])["success"]]
    assert list(policy.config.demos) == successful and len(successful) >= 3
    name = successful[-1]  # not the first: a policy always replaying demo 0 fails here
    demo = read_episode(tiny_push_dataset, name)

    class Recording:
        config = policy.config

        def __init__(self) -> None:
            self.actions: list[np.ndarray] = []

        def reset(self, env_ids=None) -> None:
            policy.reset(env_ids)

        def predict_action(self, obs, generators=None, row_by_row=False):
            action = policy.predict_action(obs, generators, row_by_row)
            self.actions.append(action[0].copy())
            return action

    first = np.concatenate([demo.obs[k][0].ravel() for k in policy.config.obs_keys])
    j, distance = policy.nearest(first)
    assert (policy.config.demos[j], distance) == (name, 0.0)
    recording = Recording()
    vec = make_vector_env(PUSH, {}, 1)
    try:
        (outcome,) = run_episodes(vec, recording, [EpisodeSpec(seed=0, initial_state=demo.states[0])])
    finally:
        vec.close()
    assert outcome.length == len(demo.actions)
    np.testing.assert_array_equal(np.stack(recording.actions), demo.actions.astype(np.float64))
    assert (outcome.success, outcome.behaviour) == (True, demo.attrs["behaviour"])


def _eval(*args: str) -> int:
    return main(["eval", "--protocol", "cpu", "--contexts", "1", "--rollouts", "2",
                 "--video-episodes", "0", *args])


def test_cli_writes_eval_info_with_the_nearest_demos(tiny_push_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ol"
    assert _eval("--open-loop", str(tiny_push_dataset), "--out-dir", str(out)) == 0
    info = json.loads((out / "eval_info.json").read_text())
    assert info["policy"]["name"] == "open_loop"
    assert info["env"]["id"] == PUSH and info["protocol"]["num_contexts"] == 1
    assert [(e["context"], e["rollout"]) for e in info["per_episode"]] == [(0, 0), (0, 1)]
    # No feedback and no randomness: both rollouts of a context play out identically.
    a, b = info["per_episode"]
    assert {k: v for k, v in a.items() if k != "rollout"} == {k: v for k, v in b.items()
                                                              if k != "rollout"}
    assert len(info["aggregated"]["success_rate_ci95"]) == 2
    section = info["open_loop"]
    assert section["num_demos"] == len(info["policy"]["config"]["demos"])
    (pick,) = section["per_context"]
    assert pick["demo"] in info["policy"]["config"]["demos"] and pick["distance"] > 0
    assert section["distance_stats"]["min"] == pick["distance"]


def _error_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        code = _eval(*args)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cli_refuses_bad_input_in_one_line(
    tiny_push_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = str(tiny_push_dataset), str(tmp_path / "x")
    assert "does not exist" in _error_of(capsys, "--open-loop", str(tmp_path / "no.hdf5"),
                                         "--out-dir", out)
    assert "not 'polymimic/Avoid-v1'" in _error_of(
        capsys, "--open-loop", data, "--env", "polymimic/Avoid-v1", "--out-dir", out)
    assert "no mask 'nope'" in _error_of(capsys, "--open-loop", data, "--filter-key", "nope",
                                         "--out-dir", out)
    empty = tmp_path / "empty_mask.hdf5"
    empty.write_bytes(tiny_push_dataset.read_bytes())
    with h5py.File(empty, "r+") as f:
        first = sorted(f["data"])[0]
        f["data"][first].attrs["success"] = False
        f.create_dataset("mask/only_failed", data=np.array([first.encode()]))
        f.create_dataset("mask/nothing", data=np.array([], dtype="S8"))
    assert "none succeeded" in _error_of(capsys, "--open-loop", str(empty), "--filter-key",
                                         "only_failed", "--out-dir", out)
    assert "holds 0 demos" in _error_of(capsys, "--open-loop", str(empty), "--filter-key",
                                        "nothing", "--out-dir", out)
    assert "needs --out-dir" in _error_of(capsys, "--open-loop", data)
    assert "needs --open-loop" in _error_of(capsys, "--checkpoint", out, "--filter-key", "train")
    assert "not allowed with" in _error_of(capsys, "--checkpoint", out, "--open-loop", data)
    assert not Path(out).exists()
