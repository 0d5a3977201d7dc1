"""Export to Minari 0.5.4 and read the result back with Minari's own loader."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from polymimic.cli.main import main
from polymimic.datasets.minari_export import MinariNotInstalledError, export_minari

DATASET_ID = "polymimic/push/multi-operator-v1"


def test_export_round_trips_through_minari_load_dataset(
    tiny_push_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minari = pytest.importorskip("minari")
    root = tmp_path / "minari"
    out = export_minari(tiny_push_dataset, DATASET_ID, out_dir=root)
    assert out == root.resolve() / DATASET_ID
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    dataset = minari.load_dataset(DATASET_ID)
    with h5py.File(tiny_push_dataset, "r") as f:
        names = sorted(f["data"], key=lambda n: int(n[5:]))
        assert dataset.total_episodes == len(names)
        assert dataset.total_steps == int(f["data"].attrs["total"])
        metadata = list(dataset.storage.get_episode_metadata(range(len(names))))
        for name, episode, meta in zip(names, dataset.iterate_episodes(), metadata, strict=True):
            demo = f["data"][name]
            length = int(demo.attrs["num_samples"])
            for key in demo["obs"]:
                observed = episode.observations[key]
                assert observed.shape[0] == length + 1  # Minari keeps T + 1 observations
                np.testing.assert_array_equal(observed[:length], demo["obs"][key][()])
                np.testing.assert_array_equal(observed[length], demo["next_obs"][key][-1])
            np.testing.assert_array_equal(episode.actions, demo["actions"][()])
            np.testing.assert_array_equal(episode.rewards, demo["rewards"][()])
            np.testing.assert_array_equal(episode.terminations, demo["terminations"][()])
            assert meta["polymimic_demo"] == name
            assert meta["operator"] == demo.attrs["operator"]
            assert meta["seed"] == demo.attrs["seed"]
    assert dataset.recover_environment().spec.id == "polymimic/Push-v1"


def test_export_of_a_filter_key_and_refusal_of_an_existing_id(
    tiny_push_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minari = pytest.importorskip("minari")
    root = tmp_path / "minari"
    export_minari(tiny_push_dataset, "polymimic/push/valid-v0", out_dir=root, filter_key="valid")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    with h5py.File(tiny_push_dataset, "r") as f:
        assert minari.load_dataset("polymimic/push/valid-v0").total_episodes == len(f["mask/valid"])
    with pytest.raises(ValueError, match="already exists"):
        export_minari(tiny_push_dataset, "polymimic/push/valid-v0", out_dir=root)


def test_missing_minari_is_one_line_naming_the_extra(
    tiny_push_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "minari", None)  # makes `import minari` fail
    with pytest.raises(MinariNotInstalledError, match=r"pip install 'polymimic\[minari\]'"):
        export_minari(tiny_push_dataset, DATASET_ID, out_dir=tmp_path)
    argv = ["data", "export-minari", str(tiny_push_dataset), "--dataset-id", DATASET_ID]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pip install 'polymimic[minari]'" in err and err.count("\n") == 1
