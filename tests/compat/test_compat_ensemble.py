"""Tests of the base ensemble's plumbing (polymimic.compat.ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from demo_files import random_demos, write_demo_file
from polymimic.compat.ensemble import (
    MemberTraining,
    load_members,
    scored_steps,
    split_base,
    train_members,
)
from polymimic.datasets.reader import DatasetError
from polymimic.datasets.windows import dataset_dims
from polymimic.errors import UserError


def test_split_holds_out_a_seeded_fifth_of_at_least_one() -> None:
    names = [f"demo_{i}" for i in range(10)]
    split = split_base(list(reversed(names)), seed=3)
    assert len(split.heldout) == 2 and len(split.train) == 8
    assert sorted(split.train + split.heldout, key=lambda n: int(n[5:])) == names
    assert split == split_base(names, seed=3)  # order of the input does not matter
    assert split != split_base(names, seed=4)
    two = split_base(["demo_0", "demo_1"], seed=0)
    assert len(two.heldout) == 1 and len(two.train) == 1
    with pytest.raises(UserError, match="at least 2"):
        split_base(["demo_0"], seed=0)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ensemble") / "small.hdf5"
    return write_demo_file(path, random_demos(count=4, steps=6))


def test_scored_steps_window_observations_as_training_does(small_file: Path) -> None:
    keys, _, _ = dataset_dims(small_file)
    steps = scored_steps(small_file, ["demo_2", "demo_0"], keys, obs_horizon=2)
    assert steps.demos == ("demo_0", "demo_2")  # storage order
    assert steps.obs.shape == (12, 2, 6) and steps.actions.shape == (12, 2)
    np.testing.assert_array_equal(steps.demo_index, [0] * 6 + [1] * 6)
    first, second = steps.obs[6], steps.obs[7]  # demo_2's first two windows
    np.testing.assert_array_equal(first[0], first[1])  # padded with the first frame
    np.testing.assert_array_equal(second[0], first[1])
    with pytest.raises(DatasetError, match="demo_9"):
        scored_steps(small_file, ["demo_9"], keys, obs_horizon=1)


def test_members_differ_by_seed_and_are_checked_on_loading(small_file: Path, tmp_path: Path) -> None:
    dims = dataset_dims(small_file)
    how = MemberTraining("bc_mlp", steps=5, batch_size=8, overrides={"hidden_dims": (8,)})
    dirs = train_members(small_file, ["demo_0", "demo_1"], dims, how, 2, seed=0, work_dir=tmp_path)
    members = load_members(dirs, "bc_mlp", dims)
    window = torch.zeros(1, 1, dims[1])
    outputs = [m.predict_chunk(window, None) for m in members]
    assert not torch.equal(outputs[0], outputs[1])  # seeds 0 and 1
    again = train_members(small_file, ["demo_0", "demo_1"], dims, how, 1, seed=0,
                          work_dir=tmp_path / "again")  # fmt: skip
    torch.testing.assert_close(load_members(again, "bc_mlp", dims)[0].predict_chunk(window, None),
                               outputs[0])  # fmt: skip
    with pytest.raises(UserError, match="'bc_gmm' members"):
        load_members(dirs, "bc_gmm", dims)
    with pytest.raises(UserError, match="trained on observations"):
        load_members(dirs, "bc_mlp", (dims[0], dims[1], dims[2] + 1))
