"""robomimic 0.3.0's own SequenceDataset reads a file made by our generator.

robomimic is a cross-check, not a dependency: ``make test`` installs it with
``pip install --no-deps robomimic==0.3.0 six termcolor psutil`` (its dataset module needs
neither torchvision nor matplotlib).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sequence = pytest.importorskip("robomimic.utils.dataset")
obs_utils = pytest.importorskip("robomimic.utils.obs_utils")

OBS_KEYS = ("tip_pos", "tip_target", "red_block", "green_block")


@pytest.mark.parametrize("filter_key", [None, "train", "operator_op3"])
def test_sequence_dataset_reads_generated_push_data(tiny_push_dataset: Path, filter_key) -> None:
    obs_utils.initialize_obs_modality_mapping_from_dict({"low_dim": list(OBS_KEYS)})
    ds = sequence.SequenceDataset(
        hdf5_path=str(tiny_push_dataset),
        obs_keys=OBS_KEYS,
        dataset_keys=("actions", "rewards", "dones"),
        load_next_obs=True,
        frame_stack=1,
        seq_length=10,
        pad_frame_stack=True,
        pad_seq_length=True,
        get_pad_mask=False,
        goal_mode=None,
        hdf5_cache_mode="all",
        hdf5_use_swmr=True,
        hdf5_normalize_obs=False,
        filter_by_attribute=filter_key,
    )
    with h5py.File(tiny_push_dataset, "r") as f:
        expected = (
            sorted(f["data"].keys(), key=lambda n: int(n[5:]))
            if filter_key is None
            else sorted((n.decode() for n in f["mask"][filter_key][:]), key=lambda n: int(n[5:]))
        )
        total = sum(f["data"][d].attrs["num_samples"] for d in expected)
        first_actions = f["data"][expected[0]]["actions"][:10]
        first_tip = f["data"][expected[0]]["obs"]["tip_pos"][:10]
    assert list(ds.demos) == expected
    assert len(ds) == total  # one sequence per step with padding at the ends
    item = ds[0]
    assert item["actions"].shape == (10, 2)
    np.testing.assert_allclose(item["actions"], first_actions)
    np.testing.assert_allclose(item["obs"]["tip_pos"], first_tip)


def test_robomimic_get_dataset_info_script_reads_generated_file(tiny_push_dataset: Path) -> None:
    """robomimic's own get_dataset_info script (run as robomimic runs it) agrees with the file."""
    command = [sys.executable, "-m", "robomimic.scripts.get_dataset_info"]
    with h5py.File(tiny_push_dataset, "r") as f:
        total = int(f["data"].attrs["total"])
        masks = {key: len(f["mask"][key]) for key in f["mask"]}
        num_demos = len(f["data"])
    out = subprocess.run(
        [*command, "--dataset", str(tiny_push_dataset)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert f"total transitions: {total}\n" in out
    assert f"total trajectories: {num_demos}\n" in out
    for key, count in masks.items():
        assert f"filter key {key} with {count} demos\n" in out
    assert '"env_name": "polymimic/Push-v1"' in out
    # Its per-filter-key mode, and its check that actions lie in [-1, 1] (it raises if not).
    train = subprocess.run(
        [*command, "--dataset", str(tiny_push_dataset), "--filter_key", "train"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert f"total trajectories: {masks['train']}\n" in train


def test_sequence_dataset_reads_image_observations(tmp_path: Path) -> None:
    """An image variant (obs_mode="state+rgb"): chunked, compressed, and robomimic reads it."""
    import dataclasses

    from polymimic.datasets.generate import generate_dataset
    from polymimic.datasets.registry import dataset_spec

    base = dataset_spec("polymimic/push/multi-operator-v1")
    spec = dataclasses.replace(
        base,
        name="test/push-rgb-v0",
        operators=base.operators[:1],
        env_kwargs={"obs_mode": "state+rgb", "cameras": ["front", "wrist"],
                    "camera_height": 48, "camera_width": 48},
    )
    path = generate_dataset(spec, tmp_path / "rgb.hdf5", demos_per_operator=1)
    with h5py.File(path, "r") as f:
        image = f["data/demo_0/obs/front_image"]
        assert image.dtype == np.uint8 and image.shape[1:] == (48, 48, 3)
        assert image.compression == "gzip" and image.chunks[0] <= 8
        first_frames = image[:10]
    keys = ("tip_pos", "front_image", "wrist_image")
    obs_utils.initialize_obs_modality_mapping_from_dict(
        {"low_dim": ["tip_pos"], "rgb": ["front_image", "wrist_image"]}
    )
    ds = sequence.SequenceDataset(
        hdf5_path=str(path), obs_keys=keys, dataset_keys=("actions",), load_next_obs=False,
        frame_stack=1, seq_length=10, pad_frame_stack=True, pad_seq_length=True,
        get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all", hdf5_use_swmr=True,
        hdf5_normalize_obs=False, filter_by_attribute=None,
    )
    item = ds[0]
    # robomimic 0.3.0's dataset serves the stored HWC uint8 frames; its algos convert later.
    np.testing.assert_array_equal(item["obs"]["front_image"], first_frames)
    assert item["obs"]["wrist_image"].shape == (10, 48, 48, 3)
