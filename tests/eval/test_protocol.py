"""The evaluation protocol: stored contexts, seed ranges, rollout seeds, and what a protocol
evaluation of the real ``polymimic/Push-v1`` records (small custom protocols, one worker)."""

from __future__ import annotations

import json
import types
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import polymimic  # noqa: F401  (registers the tasks)
from eval_policies import AGGREGATED_KEYS, Recorder, expert, untrained_bc
from polymimic.cli.evaluate import summary_lines
from polymimic.datasets.obs import flatten_obs
from polymimic.datasets.spec import MAX_DATASET_SEEDS
from polymimic.envs.allowlist import EnvRequestError
from polymimic.errors import UnknownNameError, UserError
from polymimic.eval import protocol as pr
from polymimic.eval.protocol import (
    PROTOCOL_VERSION,
    SELECTION_CONTEXTS,
    SPLIT_SEED_START,
    ProtocolError,
    load_contexts,
    protocol,
    rollout_seed,
)
from polymimic.eval.rollout import FINAL_EVAL_SEED_START, TRAIN_EVAL_SEED_START, evaluate_protocol

PUSH = "polymimic/Push-v1"
SHORT = {"max_episode_steps": 40}


@pytest.fixture(scope="module")
def push_env() -> Any:
    env = gym.make(PUSH)
    yield env
    env.close()


# ----------------------------------------------------------------------- protocol numbers


def test_named_protocols_and_custom_overrides() -> None:
    full = protocol(PUSH)
    assert (full.name, full.split, full.num_contexts, full.rollouts_per_context) == (
        "full", "test", 30, 16
    )
    assert full.num_episodes == 480 and full.version == PROTOCOL_VERSION
    cpu = protocol(PUSH, "cpu")
    assert (cpu.name, cpu.split, cpu.num_contexts, cpu.rollouts_per_context) == (
        "cpu", "test", 8, 4
    )
    selection = protocol(PUSH, "selection")
    assert (selection.split, selection.num_contexts, selection.rollouts_per_context) == (
        "selection", SELECTION_CONTEXTS, 16
    )
    custom = protocol(PUSH, "cpu", 2)
    assert (custom.name, custom.num_contexts, custom.rollouts_per_context) == ("custom", 2, 4)
    custom = protocol(PUSH, "selection", rollouts=3)
    assert (custom.split, custom.num_contexts, custom.rollouts_per_context) == (
        "selection", SELECTION_CONTEXTS, 3
    )
    assert custom.to_dict()["seed_start"] == SPLIT_SEED_START["selection"]
    for task, (s, r) in pr.FULL.items():
        assert task in gym.registry and s >= 1 and r >= 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("polymimic/Nope-v0", "full"), UnknownNameError),
        (("CartPole-v1", "cpu"), UnknownNameError),
        ((PUSH, "fast"), UnknownNameError),
        ((PUSH, "cpu", 0, None), ProtocolError),
        ((PUSH, "cpu", -3, None), ProtocolError),
        ((PUSH, "cpu", 9, None), ProtocolError),  # more contexts than the cpu protocol's 8
        ((PUSH, "cpu", None, 0), ProtocolError),
        ((PUSH, "cpu", None, 5), ProtocolError),
        ((PUSH, "full", 31, 1), ProtocolError),
        ((PUSH, "selection", SELECTION_CONTEXTS + 1, None), ProtocolError),
    ],
)
def test_protocol_refuses_unknown_names_and_out_of_range_overrides(
    args: tuple, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        protocol(*args)
    assert isinstance(caught.value, UserError)  # the CLI prints it as one line
    assert "\n" not in str(caught.value)


def test_rollout_seeds_differ_across_rollouts_and_are_stable() -> None:
    full = protocol(PUSH)
    seeds = {rollout_seed(full, c, r) for c in range(30) for r in range(16)}
    assert len(seeds) == 30 * 16
    assert all(0 <= s < 2**63 for s in seeds)  # fits torch.Generator.manual_seed
    # Stable: a change here changes every protocol result (bump PROTOCOL_VERSION).
    assert rollout_seed(full, 0, 0) == 1092804241761521678
    assert rollout_seed(full, 3, 5) == 3501608026453975876
    assert rollout_seed(full, 3, 5) == rollout_seed(full, 3, 5)
    # The seed depends on the split, context and rollout only: cpu replays full's first ones.
    assert rollout_seed(protocol(PUSH, "cpu"), 3, 2) == rollout_seed(full, 3, 2)
    assert rollout_seed(protocol("polymimic/Sort4-v1"), 3, 2) == rollout_seed(full, 3, 2)
    selection = protocol(PUSH, "selection")
    other = {rollout_seed(selection, c, r) for c in range(SELECTION_CONTEXTS) for r in range(16)}
    assert len(other) == SELECTION_CONTEXTS * 16 and not other & seeds


def test_seed_ranges_are_disjoint() -> None:
    """Dataset 0-9,999, training-time evaluation 10,000-99,999, seed-mode final evaluation,
    and each split's contexts: no two share a seed."""
    most_contexts = max(s for s, _ in pr.FULL.values())
    ranges = {
        "dataset": range(0, MAX_DATASET_SEEDS),
        "training_eval": range(TRAIN_EVAL_SEED_START, FINAL_EVAL_SEED_START),
        "final_eval": range(FINAL_EVAL_SEED_START, min(SPLIT_SEED_START.values())),
        "test": range(SPLIT_SEED_START["test"], SPLIT_SEED_START["test"] + most_contexts),
        "selection": range(SPLIT_SEED_START["selection"],
                           SPLIT_SEED_START["selection"] + SELECTION_CONTEXTS),
    }  # fmt: skip
    assert (MAX_DATASET_SEEDS, TRAIN_EVAL_SEED_START) == (10_000, 10_000)
    assert FINAL_EVAL_SEED_START == 100_000
    spans = sorted((r.start, r.stop, name) for name, r in ranges.items())
    for (_, stop, name), (start, _, next_name) in zip(spans, spans[1:], strict=False):
        assert stop <= start, f"{name} overlaps {next_name}"
    # The test contexts of every task fit below the selection range.
    assert SPLIT_SEED_START["test"] + most_contexts <= SPLIT_SEED_START["selection"]


# ----------------------------------------------------------------------- stored contexts


@pytest.mark.parametrize("task", sorted(pr.FULL))
def test_stored_contexts_load_and_match_their_seeds(task: str) -> None:
    env = gym.make(task)
    try:
        size = env.unwrapped.state_size
        for name in ("full", "selection"):
            wanted = protocol(task, name)
            states, digest = load_contexts(wanted, size)
            assert len(states) == wanted.num_contexts
            assert all(s.shape == (size,) and np.isfinite(s).all() for s in states)
            file_name = pr.contexts_file_name(task, wanted.split)
            document = json.loads(
                (resources.files("polymimic.eval.contexts") / file_name).read_text("utf-8")
            )
            assert document["task_id"] == task and document["split"] == wanted.split
            assert document["seed_start"] == SPLIT_SEED_START[wanted.split]
            assert document["protocol_version"] == PROTOCOL_VERSION
            assert len(document["states"]) == wanted.num_contexts
            stored = [np.asarray(s, dtype=np.float64) for s in document["states"]]
            assert digest == document["sha256"] == pr.states_digest(stored)
            assert len({s.tobytes() for s in states}) == len(states)  # distinct contexts
            # The stored states are what their seeds draw (regenerable, unchanged task).
            fresh = pr.make_context_states(env, document["seed_start"], 2)
            for a, b in zip(fresh, states[:2], strict=True):
                np.testing.assert_array_equal(a, b)
            # Stratified: state k starts in the task's discrete context k mod num_contexts.
            drawn = []
            for state in states:
                env.unwrapped.reset_to(state)
                drawn.append(env.unwrapped.context)
            num_contexts = env.unwrapped.num_contexts
            assert drawn == [k % num_contexts for k in range(len(states))]
        # A smaller protocol takes the first S of the stored set.
        first, _ = load_contexts(protocol(task, "cpu", 2, 1), size)
        np.testing.assert_array_equal(np.stack(first), np.stack(states_of(task, size)[:2]))
    finally:
        env.close()


def states_of(task: str, size: int) -> list[np.ndarray]:
    return load_contexts(protocol(task, "full"), size)[0]


@pytest.fixture
def contexts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``load_contexts`` at a folder of the test's own context files."""
    monkeypatch.setattr(pr, "resources", types.SimpleNamespace(files=lambda _package: tmp_path))
    return tmp_path


def test_load_contexts_refuses_sets_that_do_not_fit(contexts_dir: Path) -> None:
    small = protocol(PUSH, "cpu", 2, 1)
    name = pr.contexts_file_name(PUSH, "test")
    with pytest.raises(ProtocolError, match="no stored evaluation contexts"):
        load_contexts(small, 5)
    states = [np.arange(5, dtype=np.float64) + k for k in range(3)]
    pr.write_contexts(contexts_dir / name, PUSH, "test", states)
    loaded, digest = load_contexts(small, 5)
    assert digest == pr.states_digest(states) and len(loaded) == 2
    np.testing.assert_array_equal(loaded[1], states[1])  # floats read back exactly
    with pytest.raises(ProtocolError, match="size"):
        load_contexts(small, 6)  # the task's state changed size
    with pytest.raises(ProtocolError, match="states"):
        load_contexts(protocol(PUSH, "cpu", 4, 1), 5)  # too few stored
    document = json.loads((contexts_dir / name).read_text())
    document["states"][0][0] += 1e-9
    (contexts_dir / name).write_text(json.dumps(document))
    with pytest.raises(ProtocolError, match="sha256"):
        load_contexts(small, 5)


# ------------------------------------------------------------------ protocol evaluations


def test_rollouts_of_a_context_start_from_its_stored_state(push_env: Any) -> None:
    small = protocol(PUSH, "cpu", 2, 3)
    states, _ = load_contexts(small, push_env.unwrapped.state_size)
    keys = tuple(sorted(push_env.observation_space.spaces))
    expected_first, expected_context = [], []
    for state in states:
        expected_first.append(flatten_obs(push_env.unwrapped.reset_to(state), keys))
        expected_context.append(push_env.unwrapped.context)

    # A deterministic policy: the R rollouts of a context are the same trajectory.
    bc = Recorder(untrained_bc(push_env))
    info = evaluate_protocol(SHORT, bc, small)
    episodes, trajectories = info["per_episode"], [np.stack(e) for e in bc.played()]
    assert len(trajectories) == len(episodes) == 6
    for episode, trajectory in zip(episodes, trajectories, strict=True):
        c = episode["context"]
        assert episode["seed"] == SPLIT_SEED_START["test"] + c
        assert episode["env_context"] == expected_context[c]
        np.testing.assert_array_equal(trajectory[0], expected_first[c].astype(np.float32))
        np.testing.assert_array_equal(trajectory, trajectories[3 * c])  # rollout 0's
    assert not np.array_equal(trajectories[0][0], trajectories[3][0])  # two contexts

    # The scripted expert draws its intention from its rollout's generator: same start,
    # different rollouts.
    operator = Recorder(expert(push_env))
    info = evaluate_protocol({}, operator, small)
    episodes, trajectories = info["per_episode"], [np.stack(e) for e in operator.played()]
    for episode, trajectory in zip(episodes, trajectories, strict=True):
        c = episode["context"]
        assert episode["env_context"] == expected_context[c] and episode["success"]
        np.testing.assert_array_equal(trajectory[0], expected_first[c].astype(np.float32))
    differs = [
        any(not np.array_equal(trajectories[3 * c], trajectories[3 * c + r]) for r in (1, 2))
        for c in range(2)
    ]
    assert any(differs)
    # ... and reproducibly so: each rollout's generator is seeded by (split, context, rollout).
    again = evaluate_protocol({}, expert(push_env), small)
    assert again["per_episode"] == info["per_episode"]


def test_protocol_eval_info_with_no_successes(push_env: Any) -> None:
    small = protocol(PUSH, "cpu", 2, 2)
    info = evaluate_protocol(SHORT, untrained_bc(push_env), small)
    _, digest = load_contexts(small, push_env.unwrapped.state_size)
    assert info["protocol"] == {
        "name": "custom", "task_id": PUSH, "split": "test", "num_contexts": 2,
        "rollouts_per_context": 2, "version": PROTOCOL_VERSION,
        "seed_start": SPLIT_SEED_START["test"], "contexts_sha256": digest,
    }  # fmt: skip
    assert info["seeds"] == [200_000, 200_000, 200_001, 200_001]
    assert info["env"]["id"] == PUSH and info["env"]["kwargs"] == SHORT
    assert info["env"]["max_episode_steps"] == 40
    assert info["env"]["behaviours"] == list(push_env.unwrapped.behaviours)
    assert info["policy"]["name"] == "bc_mlp"
    agg = info["aggregated"]
    assert set(agg) >= AGGREGATED_KEYS
    assert (agg["num_episodes"], agg["num_successes"], agg["success_rate"]) == (4, 0, 0.0)
    assert agg["success_rate_ci95"][0] == 0.0 and agg["success_rate_ci95"][1] > 0.0
    assert agg["num_behaviours"] == 4 and agg["behaviour_counts"] == {}
    for key in ("behaviour_entropy", "behaviour_entropy_ci95", "conditional_behaviour_entropy",
                "conditional_behaviour_entropy_ci95", "kl_to_reference", "d3il_score"):  # fmt: skip
        assert agg[key] is None, key
    assert agg["mean_length"] == 40.0 and agg["num_invalid_action_episodes"] == 0
    assert isinstance(agg["design_effect"], float) and np.isfinite(agg["design_effect"])
    lines = summary_lines(info)
    assert f"protocol custom v{PROTOCOL_VERSION} (2 contexts x 2 rollouts)" in lines[0]
    assert any(line.startswith("behaviour entropy") and "n/a" in line for line in lines)
    assert any(line.startswith("conditional entropy") and "n/a" in line for line in lines)


def test_evaluate_protocol_checks_env_kwargs(push_env: Any) -> None:
    with pytest.raises(EnvRequestError, match="max_episode_steps"):
        evaluate_protocol({"max_episode_steps": 10**9}, untrained_bc(push_env),
                          protocol(PUSH, "cpu", 1, 1))  # fmt: skip
