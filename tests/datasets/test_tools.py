"""Dataset tools: split, masks from attributes, playback, and their CLI, on the tiny Push file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import imageio.v2 as imageio
import numpy as np
import pytest

from polymimic.cli.main import main
from polymimic.datasets.hdf5 import DatasetError, get_mask, write_masks
from polymimic.datasets.tools import masks_from_attribute, playback, split_train_valid


@pytest.fixture
def dataset(tiny_push_dataset: Path, tmp_path: Path) -> Path:
    """A private copy: these tests write masks and attrs."""
    return Path(shutil.copy(tiny_push_dataset, tmp_path / "push.hdf5"))


def _attrs(path: Path, key: str) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {n: f["data"][n].attrs[key] for n in f["data"] if key in f["data"][n].attrs}


# --------------------------------------------------------------------------- split


def test_split_with_the_generators_fraction_and_seed_reproduces_its_masks(dataset: Path) -> None:
    generated = {key: get_mask(dataset, key) for key in ("train", "valid")}
    write_masks(dataset, {"train": [], "valid": []})  # make sure they are really rewritten
    assert split_train_valid(dataset, valid_fraction=0.1, seed=0) == generated
    assert {key: get_mask(dataset, key) for key in generated} == generated


def test_split_excludes_failed_demos_is_disjoint_complete_and_deterministic(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        for demo in f["data"].values():  # start from all-successful, whatever the operators did
            demo.attrs["success"] = True
        f["data"]["demo_2"].attrs["success"] = False  # failed by attribute
    write_masks(dataset, {"failed": ["demo_4"]})  # failed by mask only: the mask wins
    first = split_train_valid(dataset, valid_fraction=0.5, seed=3)
    train, valid = set(first["train"]), set(first["valid"])
    assert not train & valid
    assert train | valid == {"demo_0", "demo_1", "demo_3", "demo_5"}
    assert len(valid) == 2
    assert split_train_valid(dataset, valid_fraction=0.5, seed=3) == first
    seeds = {tuple(split_train_valid(dataset, 0.5, seed)["valid"]) for seed in range(8)}
    assert len(seeds) > 1  # the seed does choose
    with h5py.File(dataset, "r") as f:
        stored = f["mask"]["valid"][()]
    assert stored.dtype.kind == "S"  # byte strings, as robomimic reads them


def test_split_of_a_filter_key_writes_prefixed_masks_over_its_demos(dataset: Path) -> None:
    masks_from_attribute(dataset, "quality")
    before = get_mask(dataset, "train")
    split = split_train_valid(dataset, valid_fraction=0.5, seed=0, filter_key="better")
    assert set(split) == {"better_train", "better_valid"}
    assert sorted(split["better_train"] + split["better_valid"]) == get_mask(dataset, "better")
    assert get_mask(dataset, "train") == before  # robomimic leaves train/valid alone here


def test_split_errors_name_the_problem(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no mask 'best'.*available mask keys"):
        split_train_valid(dataset, filter_key="best")
    with pytest.raises(DatasetError, match="does not exist"):
        split_train_valid(tmp_path / "missing.hdf5")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        split_train_valid(dataset, valid_fraction=1.0)


# --------------------------------------------------------------------------- masks


def test_masks_by_quality_match_the_attributes(dataset: Path) -> None:
    masks = masks_from_attribute(dataset, "quality")
    quality = _attrs(dataset, "quality")
    assert set(masks) == set(quality.values()) == {"better", "okay", "worse"}
    for value in masks:
        expected = sorted((n for n, q in quality.items() if q == value), key=lambda n: int(n[5:]))
        assert get_mask(dataset, value) == expected


def test_masks_by_other_attributes_use_the_attribute_as_prefix(dataset: Path) -> None:
    masks = masks_from_attribute(dataset, "behaviour")
    behaviour = _attrs(dataset, "behaviour")
    assert set(masks) == {f"behaviour_{b}" for b in behaviour.values()}
    assert sum(len(v) for v in masks.values()) == len(behaviour)
    custom = masks_from_attribute(dataset, "operator", prefix="by_")
    assert get_mask(dataset, "by_op3") == custom["by_op3"] == get_mask(dataset, "operator_op3")


def test_masks_refuse_to_replace_train_valid_without_force(dataset: Path) -> None:
    with h5py.File(dataset, "r+") as f:
        for i, name in enumerate(sorted(f["data"])):
            f["data"][name].attrs["role"] = "train" if i % 2 else "other"
    before = get_mask(dataset, "train")
    with pytest.raises(DatasetError, match=r"overwrite the mask\(s\) \['train'\].*--force"):
        masks_from_attribute(dataset, "role", prefix="")
    assert get_mask(dataset, "train") == before
    masks_from_attribute(dataset, "role", prefix="", force=True)
    assert get_mask(dataset, "train") == ["demo_1", "demo_3", "demo_5"]


def test_masks_unknown_attribute_lists_the_known_ones(dataset: Path) -> None:
    with pytest.raises(DatasetError, match=r"'colour'; demo attributes are \[.*'quality'"):
        masks_from_attribute(dataset, "colour")


# --------------------------------------------------------------------------- playback


def _frames(video: Path) -> tuple[int, tuple[int, int]]:
    reader = imageio.get_reader(video)
    try:
        return reader.count_frames(), tuple(reader.get_meta_data()["size"])
    finally:
        reader.close()


def test_playback_of_states_writes_one_frame_per_state(dataset: Path, tmp_path: Path) -> None:
    video = tmp_path / "states.mp4"
    result = playback(dataset, video, num_demos=1, size=(48, 64))
    with h5py.File(dataset, "r") as f:
        length = int(f["data"]["demo_0"].attrs["num_samples"])
    assert result.demos == ["demo_0"] and result.max_state_divergence is None
    assert result.num_frames == length
    assert _frames(video) == (length, (64, 48))  # imageio reports (width, height)


def test_playback_of_actions_reproduces_the_states_exactly(dataset: Path, tmp_path: Path) -> None:
    result = playback(dataset, tmp_path / "a.mp4", demo="demo_0", use_actions=True, size=(48, 64))
    with h5py.File(dataset, "r") as f:
        length = int(f["data"]["demo_0"].attrs["num_samples"])
    assert result.max_state_divergence == 0.0
    assert result.num_frames == length + 1 == _frames(tmp_path / "a.mp4")[0]
    # A changed action must show up as divergence: the check is not vacuous.
    with h5py.File(dataset, "r+") as f:
        f["data"]["demo_0"]["actions"][10] = -f["data"]["demo_0"]["actions"][10]
    tampered = playback(dataset, tmp_path / "b.mp4", demo="demo_0", use_actions=True, size=(48, 64))
    assert tampered.max_state_divergence > 1e-4


def test_playback_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no demo 'demo_99'"):
        playback(dataset, tmp_path / "x.mp4", demo="demo_99")
    with pytest.raises(DatasetError, match="no mask 'best'"):
        playback(dataset, tmp_path / "x.mp4", filter_key="best")
    assert not (tmp_path / "x.mp4").exists()


# --------------------------------------------------------------------------- CLI


def test_cli_tools_end_to_end(dataset: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "masks", str(dataset), "--by", "quality"]) == 0
    assert "mask/better: 2 demos" in capsys.readouterr().out
    assert main(["data", "split", str(dataset), "--valid-fraction", "0.5", "--seed", "1"]) == 0
    train, valid = get_mask(dataset, "train"), get_mask(dataset, "valid")
    successful = 6 - len(get_mask(dataset, "failed"))
    assert len(train) + len(valid) == successful and len(valid) == round(0.5 * successful)
    assert f"mask/train: {len(train)} demos, mask/valid: {len(valid)} demos" in (
        capsys.readouterr().out
    )
    video = tmp_path / "cli.mp4"
    args = ["data", "playback", str(dataset), "--out", str(video), "--demo", "demo_0"]
    assert main([*args, "--size", "48x64", "--use-actions"]) == 0
    assert "max state divergence replaying actions: 0" in capsys.readouterr().out
    assert video.is_file()


def test_cli_errors_are_one_line(dataset: Path, tmp_path: Path, capsys) -> None:
    cases = [
        (["data", "masks", str(dataset), "--by", "colour"], "no demo has the attribute"),
        (["data", "split", str(dataset), "--filter-key", "best"], "no mask 'best'"),
        (["data", "playback", str(tmp_path / "no.hdf5"), "--out", "x.mp4"], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_info_has_diagnostics_unless_switched_off(dataset: Path, capsys) -> None:
    assert main(["data", "info", str(dataset), "--no-diagnostics"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert "diagnostics" not in fast and fast["num_demos"] == 6
    assert main(["data", "info", str(dataset)]) == 0
    full = json.loads(capsys.readouterr().out)
    assert set(full["diagnostics"]["operators"]) == {f"op{i}" for i in range(1, 7)}
    assert full["label_counts"]["quality"] == {"better": 2, "okay": 2, "worse": 2}
    assert np.isclose(full["diagnostics"]["dt"], 0.05)
