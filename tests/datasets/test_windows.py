"""WindowDataset against hand-computed windows on a small robomimic-layout file."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from polymimic.datasets.windows import BatchSpec, DatasetError, WindowDataset
from polymimic.policies.normalize import normalization_params

DEMOS = [0, 1, 2, 10]  # demo_10 checks numeric (not string) ordering
STEPS = 20


def tip_pos(demo: int, t: np.ndarray) -> np.ndarray:
    return np.stack([demo * 100 + t, -(demo * 100 + t)], axis=-1).astype(np.float64)


def block_red(demo: int, t: np.ndarray) -> np.ndarray:
    # last column is constant over the whole file: its std must be treated as 1
    return np.stack([np.full_like(t, demo), t, 0.5 * t * t, np.ones_like(t)], axis=-1).astype(
        np.float64
    )


def action(demo: int, t: np.ndarray) -> np.ndarray:
    return np.stack([demo * 100 + t, 2.0 * t], axis=-1).astype(np.float64)


@pytest.fixture
def h5_path(tmp_path: Path, write_demo_file) -> Path:
    t = np.arange(STEPS, dtype=np.float64)
    demos = {
        f"demo_{i}": {
            "obs/tip_pos": tip_pos(i, t),
            "obs/block_red": block_red(i, t),
            "actions": action(i, t),
            "dones": (t == STEPS - 1).astype(np.int64),
        }
        for i in DEMOS
    }
    path = write_demo_file(
        tmp_path / "demos.hdf5", demos,
        {"train": ["demo_10", "demo_0", "demo_1"], "valid": ["demo_2"]},
        {"env_name": "polymimic/Push-v1", "type": 2, "env_kwargs": {"obs_mode": "state"},
         "env_version": "0.1.0"},
    )
    with h5py.File(path, "r+") as f:
        for i in DEMOS:
            f[f"data/demo_{i}"].attrs["operator"] = "must never be read"
    return path


def flat_obs(demo: int, t: int) -> np.ndarray:
    tt = np.array([t], dtype=np.float64)
    return np.concatenate([tip_pos(demo, tt), block_red(demo, tt)], axis=-1)[0].astype(np.float32)


def test_selects_mask_demos_in_numeric_order(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"])
    assert ds.demo_names == ["demo_0", "demo_1", "demo_10"]
    assert len(ds) == 3 * STEPS
    assert (ds.obs_dim, ds.action_dim) == (6, 2)
    assert ds.env_args["env_kwargs"] == {"obs_mode": "state"}
    assert len(WindowDataset(h5_path, ["tip_pos"], filter_key=None)) == 4 * STEPS


def test_padding_at_episode_start_and_end(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2, action_horizon=3)
    a = lambda demo, ts: action(demo, np.array(ts, dtype=np.float64)).astype(np.float32)  # noqa: E731
    expectations = {
        0: (0, [0, 0], [0, 1, 2]),  # first step: first obs repeated
        1: (0, [0, 1], [1, 2, 3]),
        18: (0, [17, 18], [18, 19, 19]),  # last action repeated past the end
        19: (0, [18, 19], [19, 19, 19]),
        20: (1, [0, 0], [0, 1, 2]),  # the next episode never sees the previous one
        59: (10, [18, 19], [19, 19, 19]),
    }
    for index, (demo, obs_ts, action_ts) in expectations.items():
        item = ds[index]
        assert item["obs"].dtype == torch.float32 and item["obs"].shape == (2, 6)
        assert item["actions"].shape == (3, 2)
        np.testing.assert_array_equal(
            item["obs"].numpy(), np.stack([flat_obs(demo, t) for t in obs_ts])
        )
        np.testing.assert_array_equal(item["actions"].numpy(), a(demo, action_ts))


def test_batched_gather_matches_items_and_dataloader(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=3, action_horizon=4)
    indices = [59, 0, 21, 40, 19]
    batch = ds.get_batch(indices)
    assert batch["obs"].shape == (5, 3, 6) and batch["actions"].shape == (5, 4, 2)
    for row, index in enumerate(indices):
        torch.testing.assert_close(batch["obs"][row], ds[index]["obs"], rtol=0, atol=0)
        torch.testing.assert_close(batch["actions"][row], ds[index]["actions"], rtol=0, atol=0)
    loaded = next(iter(DataLoader(ds, batch_size=7, shuffle=False)))
    assert loaded["obs"].shape == (7, 3, 6)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    on_device = ds.to_device(device)
    assert len(on_device) == len(ds)
    gathered = on_device.get_batch(indices)
    assert gathered["obs"].device.type == device
    for key in ("obs", "actions"):
        torch.testing.assert_close(gathered[key].cpu(), batch[key], rtol=0, atol=0)


def test_empty_obs_keys_means_all_keys_sorted(h5_path: Path) -> None:
    ds = WindowDataset(h5_path)
    assert ds.obs_keys == ("block_red", "tip_pos")
    np.testing.assert_array_equal(ds[1]["obs"][0, :4].numpy(), block_red(0, np.array([1.0]))[0])


def test_stats_match_numpy_over_train_demos(h5_path: Path) -> None:
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2, action_horizon=3)
    t = np.arange(STEPS, dtype=np.float64)
    train = [0, 1, 10]
    obs = np.concatenate([np.concatenate([tip_pos(i, t), block_red(i, t)], axis=-1) for i in train])
    actions = np.concatenate([action(i, t) for i in train])
    stats = ds.stats()
    assert all(v.dtype == np.float32 for key in stats.values() for v in key.values())
    for key, data in (("obs", obs), ("actions", actions)):
        np.testing.assert_allclose(stats[key]["mean"], data.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(stats[key]["std"], data.std(axis=0), rtol=1e-6)
        np.testing.assert_allclose(stats[key]["min"], data.min(axis=0), rtol=1e-6)
        np.testing.assert_allclose(stats[key]["max"], data.max(axis=0), rtol=1e-6)
    assert stats["obs"]["std"][-1] == 0.0  # a constant dimension; the normaliser keeps scale 1
    _, scale = normalization_params(stats["obs"], "mean_std")
    assert scale[-1] == 1.0 and np.all(scale[:-1] == stats["obs"]["std"][:-1])


def test_unknown_filter_key_names_it_and_lists_masks(h5_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no mask 'best'; available mask keys: \['train', 'valid'\]"):
        WindowDataset(h5_path, ["tip_pos"], filter_key="best")


def test_unknown_obs_key_and_missing_file(h5_path: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no 'obs/joint_pos'; available: \['block_red', 'tip_pos'\]"):
        WindowDataset(h5_path, ["tip_pos", "joint_pos"])
    with pytest.raises(DatasetError, match="does not exist"):
        WindowDataset(tmp_path / "nope.hdf5", ["tip_pos"])


def test_learner_data_is_blind_to_ground_truth_labels(
    tiny_push_dataset: Path, tmp_path: Path
) -> None:
    """Stripping every per-demo label leaves every batch, stat and demo selection unchanged."""
    stripped = tmp_path / "unlabelled.hdf5"
    shutil.copy(tiny_push_dataset, stripped)
    with h5py.File(stripped, "r+") as f:
        for demo in f["data"].values():
            labels = [k for k in demo.attrs if k != "num_samples"]
            assert {"operator", "quality", "behaviour", "success"} <= set(labels)
            for key in labels:
                del demo.attrs[key]
    with h5py.File(stripped, "r") as f:
        assert all(set(d.attrs) == {"num_samples"} for d in f["data"].values())
    for filter_key in ("train", None):
        kwargs = dict(filter_key=filter_key, obs_horizon=2, action_horizon=4)
        labelled = WindowDataset(tiny_push_dataset, **kwargs)
        blind = WindowDataset(stripped, **kwargs)
        assert blind.demo_names == labelled.demo_names
        everything = np.arange(len(labelled))
        assert len(blind) == len(labelled)
        for key, value in labelled.get_batch(everything).items():
            torch.testing.assert_close(blind.get_batch(everything)[key], value, rtol=0, atol=0)
        for key, value in labelled.stats().items():
            for name, array in value.items():
                np.testing.assert_array_equal(blind.stats()[key][name], array)


def test_declared_offsets_with_padding_at_both_edges(h5_path: Path) -> None:
    spec = BatchSpec({
        "obs": (-2, 0), "actions": (-1, 0, 2), "rewards": (0, 1), "next_obs": (0,),
        "terminations": (0,),
    })  # fmt: skip
    ds = WindowDataset(h5_path, ["tip_pos", "block_red"], spec=spec)
    batch = ds.get_batch([0, 1, 19, 20 + 18])  # demo_0 t=0, t=1, t=19; demo_1 t=18
    a = lambda demo, ts: action(demo, np.array(ts, dtype=np.float64)).astype(np.float32)  # noqa: E731
    expected_actions = [a(0, [0, 0, 2]), a(0, [0, 1, 3]), a(0, [18, 19, 19]), a(1, [17, 18, 19])]
    np.testing.assert_array_equal(batch["actions"].numpy(), np.stack(expected_actions))
    np.testing.assert_array_equal(
        batch["actions_is_pad"].numpy(),
        [[True, False, False], [False, False, False], [False, False, True], [False, False, True]],
    )
    np.testing.assert_array_equal(batch["obs"][0].numpy(), [flat_obs(0, 0), flat_obs(0, 0)])
    np.testing.assert_array_equal(batch["obs"][1].numpy(), [flat_obs(0, 0), flat_obs(0, 1)])
    np.testing.assert_array_equal(batch["obs_is_pad"].numpy()[:2], [[True, False], [True, False]])
    assert batch["rewards"].shape == (4, 2) and batch["rewards"].dtype == torch.float32
    np.testing.assert_array_equal(batch["rewards_is_pad"].numpy()[2], [False, True])
    assert batch["next_obs"].shape == (4, 1, 6) and batch["terminations"].shape == (4, 1)
    device = ds.to_device("cpu").get_batch([0, 1, 19, 38])
    assert set(device) == set(batch)
    for key, value in batch.items():
        torch.testing.assert_close(device[key], value, rtol=0, atol=0)


def test_extra_masks_add_their_demos_and_bad_specs_are_refused(h5_path: Path) -> None:
    spec = BatchSpec({"obs": (0,), "actions": (0,)}, extra_masks=("valid",))
    ds = WindowDataset(h5_path, ["tip_pos"], spec=spec)
    assert ds.demo_names == ["demo_0", "demo_1", "demo_2", "demo_10"]
    with pytest.raises(ValueError, match="must include 'obs'"):
        BatchSpec({"actions": (0,)})
    with pytest.raises(ValueError, match="come from"):
        BatchSpec({"obs": (0,), "images": (0,)})
    with pytest.raises(ValueError, match="1\\+ ints"):
        BatchSpec({"obs": ()})


def test_idle_steps_are_dropped_as_items_but_kept_as_context(h5_path: Path) -> None:
    """demo_0's first action is (0, 0): with idle_below it is no item, yet the next item's
    observation window still holds that step's frame, and every other step stays."""
    full = WindowDataset(h5_path, ["tip_pos", "block_red"], obs_horizon=2, action_horizon=3)
    active = WindowDataset(
        h5_path, ["tip_pos", "block_red"], obs_horizon=2, action_horizon=3, idle_below=1.5
    )
    assert len(full) == 60 and len(active) == 59
    first = active[0]
    np.testing.assert_array_equal(first["obs"].numpy(), np.stack([flat_obs(0, 0), flat_obs(0, 1)]))
    np.testing.assert_array_equal(first["actions"][0].numpy(), [1.0, 2.0])
    batch = active.get_batch(np.arange(len(active)))
    assert bool((batch["actions"][:, 0].abs().amax(dim=1) >= 1.5).all())
    np.testing.assert_array_equal(active[20]["obs"].numpy(), full[21]["obs"].numpy())
    with pytest.raises(DatasetError, match="every action is below"):
        WindowDataset(h5_path, ["tip_pos"], idle_below=1e9)
