"""Tests for polymimic.datasets.hdf5 on real HDF5 files (no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from polymimic.datasets.episode import Episode
from polymimic.datasets.hdf5 import (
    FORMAT_VERSION,
    DatasetError,
    dataset_info,
    demo_names,
    get_mask,
    mask_keys,
    open_dataset,
    read_episode,
    validate_dataset,
    write_dataset,
    write_masks,
)

ENV_ARGS = {
    "env_name": "polymimic/Push-v1",
    "type": 4,
    "env_kwargs": {"obs_mode": "state"},
    "env_version": "0.1.0",
}


def make_episode(length: int, rng_seed: int, **attrs) -> Episode:
    rng = np.random.default_rng(rng_seed)
    obs = {"tip_pos": rng.normal(size=(length, 2)), "block_red": rng.normal(size=(length, 4))}
    terminations = np.zeros(length, dtype=bool)
    terminations[-1] = attrs.get("success", True)
    return Episode(
        obs=obs,
        next_obs={k: v + 1.0 for k, v in obs.items()},
        actions=rng.normal(size=(length, 2)).astype(np.float32),
        rewards=rng.normal(size=length),
        terminations=terminations,
        truncations=~terminations & (np.arange(length) == length - 1),
        states=rng.normal(size=(length, 11)),
        attrs=attrs,
    )


def make_episodes() -> list[Episode]:
    return [
        make_episode(5, 0, operator="alice", strategy="left", style="curved", behaviour="L",
                     seed=10, success=True, quality="better"),
        make_episode(7, 1, operator="bob", strategy="right", style="straight", behaviour="R",
                     seed=11, success=True, quality="okay"),
        make_episode(9, 2, operator="alice", strategy="left", style="straight", behaviour="L",
                     seed=12, success=True, noise=0.25),
    ]  # fmt: skip


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "push.hdf5", make_episodes(), ENV_ARGS, {"task": "push"})


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    assert a.obs.keys() == b.obs.keys() and a.next_obs.keys() == b.next_obs.keys()
    for key in a.obs:
        np.testing.assert_array_equal(a.obs[key], b.obs[key])
        np.testing.assert_array_equal(a.next_obs[key], b.next_obs[key])
    for field in ("actions", "rewards", "terminations", "truncations", "states"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype, field
        np.testing.assert_array_equal(x, y)
    assert a.attrs == b.attrs
    assert {k: type(v) for k, v in a.attrs.items()} == {k: type(v) for k, v in b.attrs.items()}


# ----------------------------------------------------------------------------- writing


def test_round_trip_preserves_arrays_dtypes_and_attrs(dataset: Path) -> None:
    originals = make_episodes()
    assert demo_names(dataset) == ["demo_0", "demo_1", "demo_2"]
    with open_dataset(dataset) as f:
        for i, original in enumerate(originals):
            assert_episodes_equal(read_episode(f, f"demo_{i}"), original)
    # attrs come back as plain Python types, not numpy scalars
    attrs = read_episode(dataset, "demo_2").attrs
    assert attrs["success"] is True and type(attrs["seed"]) is int
    assert type(attrs["noise"]) is float and type(attrs["operator"]) is str


def test_float64_actions_stay_float64(tmp_path: Path) -> None:
    episode = make_episode(4, 3)
    episode.actions = episode.actions.astype(np.float64)
    path = write_dataset(tmp_path / "d.hdf5", [episode], ENV_ARGS)
    assert read_episode(path, "demo_0").actions.dtype == np.float64


def test_large_image_obs_are_compressed_and_round_trip(tmp_path: Path) -> None:
    episode = make_episode(6, 7)
    rng = np.random.default_rng(0)
    episode.obs["agentview_image"] = rng.integers(0, 8, size=(6, 64, 64, 3), dtype=np.uint8)
    episode.next_obs["agentview_image"] = episode.obs["agentview_image"][::-1].copy()
    path = write_dataset(tmp_path / "img.hdf5", [episode], ENV_ARGS)
    with h5py.File(path, "r") as f:
        assert f["data/demo_0/obs/agentview_image"].compression == "gzip"
        assert f["data/demo_0/actions"].compression is None  # tiny arrays stay plain
    assert_episodes_equal(read_episode(path, "demo_0"), episode)
    assert dataset_info(path)["obs_shapes"]["agentview_image"] == [64, 64, 3]


def test_layout_is_what_robomimic_sequence_dataset_reads(dataset: Path) -> None:
    """Mirror robomimic's SequenceDataset/get_dataset_info reads with raw h5py."""
    with h5py.File(dataset, "r") as f:
        env_meta = json.loads(f["data"].attrs["env_args"])
        assert {"env_name", "type", "env_kwargs"} <= env_meta.keys()
        assert env_meta["env_name"] == "polymimic/Push-v1"
        demos = list(f["data"].keys())
        inds = np.argsort([int(elem[5:]) for elem in demos])  # robomimic's ordering
        assert [demos[i] for i in inds] == ["demo_0", "demo_1", "demo_2"]
        total = 0
        for ep in demos:
            n = int(f[f"data/{ep}"].attrs["num_samples"])
            assert n == f[f"data/{ep}/actions"].shape[0]
            for key in ("tip_pos", "block_red"):
                assert f[f"data/{ep}/obs/{key}"].shape[0] == n
                assert f[f"data/{ep}/next_obs/{key}"].shape[0] == n
            for key in ("rewards", "dones", "states"):
                assert f[f"data/{ep}/{key}"].shape[0] == n
            total += n
        assert int(f["data"].attrs["total"]) == total == 21
        train = [elem.decode("utf-8") for elem in np.array(f["mask/train"][:])]
        valid = [elem.decode("utf-8") for elem in np.array(f["mask/valid"][:])]
        assert all(isinstance(e, bytes) for e in f["mask/train"][:])
        assert set(train) <= set(demos) and set(valid) <= set(demos)
        assert not set(train) & set(valid)
        assert set(train) | set(valid) == set(demos)  # all three demos succeed
        assert len(valid) == 1  # 10% of 3 rounds to 0, but one valid demo is guaranteed
        np.testing.assert_array_equal(f["data/demo_0/dones"][:], [0, 0, 0, 0, 1])
        assert f["data"].attrs["polymimic_format_version"] == FORMAT_VERSION
        meta = json.loads(f["data"].attrs["polymimic_metadata"])
    assert meta["task"] == "push"
    assert {"python", "numpy", "mujoco", "h5py", "polymimic"} <= meta["versions"].keys()


def test_failed_demos_are_excluded_from_train_and_valid(tmp_path: Path) -> None:
    episodes = make_episodes() + [make_episode(6, 4, operator="carol", success=False)]
    episodes.append(make_episode(3, 5, operator="bob", success=np.bool_(False)))
    path = write_dataset(tmp_path / "d.hdf5", episodes, ENV_ARGS, valid_fraction=0.5)
    train, valid = get_mask(path, "train"), get_mask(path, "valid")
    assert sorted(train + valid) == ["demo_0", "demo_1", "demo_2"]
    assert not set(train) & set(valid) and len(valid) == 2  # round(0.5 * 3) = 2
    assert get_mask(path, "operator_alice") == ["demo_0", "demo_2"]
    assert get_mask(path, "operator_bob") == ["demo_1", "demo_4"]
    assert get_mask(path, "operator_carol") == ["demo_3"]


def test_split_is_deterministic_in_the_seed(tmp_path: Path) -> None:
    episodes = [make_episode(3, i, success=True) for i in range(20)]

    def split(name: str, seed: int) -> list[str]:
        path = write_dataset(tmp_path / name, episodes, ENV_ARGS, split_seed=seed)
        return get_mask(path, "valid")

    first, again = split("a.hdf5", 0), split("b.hdf5", 0)
    assert first == again and len(first) == 2
    assert any(split(f"s{s}.hdf5", s) != first for s in range(1, 6))


def test_zero_valid_fraction_puts_all_successes_in_train(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "d.hdf5", make_episodes(), ENV_ARGS, valid_fraction=0.0)
    assert get_mask(path, "train") == ["demo_0", "demo_1", "demo_2"]
    assert get_mask(path, "valid") == []


def test_crash_mid_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    def crashing():
        yield make_episode(4, 0)
        raise RuntimeError("operator crashed")

    target = tmp_path / "d.hdf5"
    with pytest.raises(RuntimeError, match="operator crashed"):
        write_dataset(target, crashing(), ENV_ARGS)
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_overwrite_keeps_old_file_intact(dataset: Path) -> None:
    before = dataset.read_bytes()

    def crashing():
        yield make_episode(4, 0)
        yield make_episode(4, 1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(dataset, crashing(), ENV_ARGS)
    assert dataset.read_bytes() == before
    assert list(dataset.parent.iterdir()) == [dataset]
    validate_dataset(dataset)


def test_write_rejects_bad_inputs_without_leaving_files(tmp_path: Path) -> None:
    target = tmp_path / "d.hdf5"
    bad_length = make_episode(5, 0)
    bad_length.rewards = bad_length.rewards[:4]
    with pytest.raises(ValueError, match="rewards"):
        write_dataset(target, [make_episode(3, 1), bad_length], ENV_ARGS)
    with pytest.raises(ValueError, match="noise"):
        write_dataset(target, [make_episode(3, 1, noise=[1, 2])], ENV_ARGS)
    with pytest.raises(ValueError, match="env_version"):
        write_dataset(target, make_episodes(), {"env_name": "x", "type": 4, "env_kwargs": {}})
    with pytest.raises(ValueError, match="no episodes"):
        write_dataset(target, [], ENV_ARGS)
    assert list(tmp_path.iterdir()) == []


def test_write_masks_adds_and_replaces(dataset: Path) -> None:
    write_masks(dataset, {"compatible": ["demo_2", "demo_0"], "incompatible": ["demo_1"]})
    assert get_mask(dataset, "compatible") == ["demo_0", "demo_2"]
    write_masks(dataset, {"compatible": ["demo_1"]})
    assert get_mask(dataset, "compatible") == ["demo_1"]
    assert demo_names(dataset, filter_key="incompatible") == ["demo_1"]
    assert "compatible" in mask_keys(dataset) and not any(
        k.startswith(".") for k in mask_keys(dataset)
    )
    assert dataset_info(dataset)["mask_counts"]["compatible"] == 1
    with pytest.raises(DatasetError, match="demo_7"):
        write_masks(dataset, {"compatible": ["demo_7"]})
    assert get_mask(dataset, "compatible") == ["demo_1"]


# ----------------------------------------------------------------------------- summary


def test_dataset_info_summarises_the_file(dataset: Path) -> None:
    info = dataset_info(dataset)
    json.dumps(info)  # plain data a CLI can print
    assert info["num_demos"] == 3 and info["total_samples"] == 21
    assert (info["min_length"], info["max_length"], info["mean_length"]) == (5, 9, 7.0)
    assert info["obs_shapes"] == {"block_red": [4], "tip_pos": [2]}
    assert info["action_dim"] == 2
    assert info["mask_counts"]["operator_alice"] == 2
    assert info["mask_counts"]["train"] + info["mask_counts"]["valid"] == 3
    assert info["label_counts"]["operator"] == {"alice": 2, "bob": 1}
    assert info["label_counts"]["behaviour"] == {"L": 2, "R": 1}
    assert info["label_counts"]["quality"] == {"better": 1, "okay": 1}
    assert info["env_args"] == ENV_ARGS
    assert info["format_version"] == FORMAT_VERSION and info["metadata"]["task"] == "push"


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist.*polymimic data generate"):
        validate_dataset(tmp_path / "nope.hdf5")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.hdf5"
    path.write_text("just some text\n" * 100)
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        open_dataset(path)


def test_truncated_file(dataset: Path) -> None:
    data = dataset.read_bytes()
    dataset.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated") as info:
        validate_dataset(dataset)
    assert "polymimic data generate" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_data_group(tmp_path: Path) -> None:
    path = tmp_path / "empty.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("other")
    with pytest.raises(DatasetError, match="no 'data' group"):
        validate_dataset(path)


@pytest.mark.parametrize("version", [0, 2])
def test_other_format_version(dataset: Path, version: int) -> None:
    with h5py.File(dataset, "r+") as f:
        f["data"].attrs["polymimic_format_version"] = version
    with pytest.raises(DatasetError) as info:
        read_episode(dataset, "demo_0")
    message = str(info.value)
    assert f"format version {version}" in message
    assert f"reads format version {FORMAT_VERSION}" in message
    assert "polymimic data generate" in message and "install" in message


def test_missing_format_version(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        del f["data"].attrs["polymimic_format_version"]
    with pytest.raises(DatasetError, match="not written by polymimic"):
        open_dataset(dataset)


@pytest.mark.parametrize("entry", ["actions", "states", "obs", "next_obs", "dones"])
def test_missing_demo_entry(dataset: Path, entry: str) -> None:
    with h5py.File(dataset, "r+") as f:
        del f[f"data/demo_1/{entry}"]
    with pytest.raises(DatasetError, match=f"demo_1 lacks required entries.*'{entry}'"):
        validate_dataset(dataset)
    with pytest.raises(DatasetError, match="lacks required"):
        read_episode(dataset, "demo_1")
    read_episode(dataset, "demo_0")  # the sound demos stay readable


def test_num_samples_disagrees_with_actions(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        f["data/demo_2"].attrs["num_samples"] = 8
    with pytest.raises(DatasetError, match="demo_2/actions has 9 rows but num_samples is 8"):
        validate_dataset(dataset)


def test_obs_length_disagrees(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        short = f["data/demo_0/next_obs/tip_pos"][:3]
        del f["data/demo_0/next_obs/tip_pos"]
        f["data/demo_0/next_obs"].create_dataset("tip_pos", data=short)
    with pytest.raises(DatasetError, match=r"next_obs/tip_pos has 3 rows but num_samples is"):
        validate_dataset(dataset)


def test_total_mismatch(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        f["data"].attrs["total"] = 22
    with pytest.raises(DatasetError, match=r"total'\] is 22 but the demos hold 21"):
        validate_dataset(dataset)


def test_missing_mask_key_lists_available(dataset: Path) -> None:
    with pytest.raises(DatasetError, match="no mask 'better'") as info:
        get_mask(dataset, "better")
    assert "'train'" in str(info.value) and "'operator_bob'" in str(info.value)
    with pytest.raises(DatasetError, match="no mask 'better'"):
        demo_names(dataset, filter_key="better")


def test_mask_naming_unknown_demo(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        del f["mask/valid"]
        f["mask"].create_dataset("valid", data=np.array([b"demo_9"], dtype="S"))
    with pytest.raises(DatasetError, match="mask 'valid' names demos that do not exist.*demo_9"):
        validate_dataset(dataset)


def test_unknown_demo(dataset: Path) -> None:
    with pytest.raises(DatasetError, match="no demo 'demo_5'.*3 demos"):
        read_episode(dataset, "demo_5")
