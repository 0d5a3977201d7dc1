"""Tests of writing a scoring into its dataset (polymimic.compat.outputs)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from demo_files import random_demos, write_demo_file
from polymimic.compat import outputs, scores
from polymimic.compat.scoring import ScoringResult
from polymimic.datasets.reader import get_mask
from polymimic.datasets.validate import validate_dataset
from polymimic.datasets.windows import WindowDataset

NAME = "compat_paper_0123abcd"


def fake_result(name: str = NAME, seed: int = 0, demos: int = 4, steps: int = 20) -> ScoringResult:
    """A scoring of ``demos`` demos of ``steps`` steps, without any ensemble."""
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(demos), steps)
    lik, nov = rng.uniform(0, 1.2, len(index)), rng.uniform(0, 1, len(index))
    lik[index == 0] += 5.0  # demo_0 conflicts everywhere, nov < 1 = eta: rejected
    excess = scores.step_excess(lik, nov, 1.0, 1.0)
    return ScoringResult(
        name=name, record={"name": name, "seed": seed}, demos=tuple(f"demo_{i}" for i in range(demos)),
        demo_index=index, likelihood=lik, novelty=nov,
        weights=scores.step_weights(lik, nov, 1.0, 1.0), excess=excess,
        per_demo=scores.demo_scores(excess, index, demos, 0.5), lam=1.0, eta=1.0,
    )  # fmt: skip


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    demos = random_demos(count=4, steps=20)
    return write_demo_file(tmp_path / "demos.hdf5", demos, {"train": ["demo_0", "demo_1"]})


def snapshot(path: Path, skip_prefix: str = "compat_") -> dict[str, Any]:
    """Every dataset's bytes and every attribute, except entries of scorings (and the
    per-demo ``compat`` groups that hold their per-step datasets)."""
    found: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        if skip_prefix in name or name.endswith(f"/{outputs.STEP_GROUP}"):
            return
        if isinstance(obj, h5py.Dataset):
            found[name] = (obj.dtype.str, obj.shape, np.asarray(obj[()]).tobytes())
        found[name + "@attrs"] = {k: np.asarray(v).tobytes() for k, v in obj.attrs.items()
                                  if not str(k).startswith(skip_prefix)}  # fmt: skip

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        found["@attrs"] = dict(f.attrs)
    return found


def test_write_puts_attrs_steps_masks_and_record(dataset: Path) -> None:
    result = fake_result()
    masks = outputs.write_scoring(dataset, result)
    assert masks == {f"{NAME}_keep": ["demo_1", "demo_2", "demo_3"], f"{NAME}_reject": ["demo_0"]}
    assert get_mask(dataset, f"{NAME}_reject") == ["demo_0"]
    written = outputs.read_scoring(dataset, NAME)
    assert written["record"] == {"name": NAME, "seed": 0}
    assert written["demos"]["demo_0"]["rejected"] is True
    assert written["demos"]["demo_2"]["score"] == pytest.approx(result.per_demo.score[2])
    with h5py.File(dataset, "r") as f:
        np.testing.assert_array_equal(f[f"data/demo_3/compat/{NAME}_weight"][()],
                                      result.weights[result.demo_index == 3])  # fmt: skip
        assert f[f"data/demo_3/compat/{NAME}_weight"].dtype == np.float32
    # Still a valid dataset that trains, on the kept demos too.
    assert validate_dataset(dataset).num_demos == 4
    assert WindowDataset(dataset, filter_key=f"{NAME}_keep").demo_names == ["demo_1", "demo_2", "demo_3"]


def test_the_same_name_is_refused_unless_overwrite(dataset: Path) -> None:
    outputs.write_scoring(dataset, fake_result())
    before = hashlib.sha256(dataset.read_bytes()).hexdigest()
    with pytest.raises(outputs.ScoringExistsError, match="--overwrite"):
        outputs.write_scoring(dataset, fake_result(seed=1))
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == before
    replacement = fake_result(seed=1)
    outputs.write_scoring(dataset, replacement, overwrite=True)
    written = outputs.read_scoring(dataset, NAME)
    assert written["record"]["seed"] == 1
    assert written["demos"]["demo_1"]["score"] == pytest.approx(replacement.per_demo.score[1])
    assert outputs.scoring_names(dataset) == [NAME]


def test_a_different_scoring_coexists_and_nothing_else_changes(dataset: Path) -> None:
    untouched = snapshot(dataset)
    outputs.write_scoring(dataset, fake_result())
    other = "compat_multimodal_99999999"
    outputs.write_scoring(dataset, fake_result(name=other, seed=2))
    assert outputs.scoring_names(dataset) == [other, NAME]
    assert outputs.read_scoring(dataset, NAME)["record"]["seed"] == 0
    assert outputs.read_scoring(dataset, other)["record"]["seed"] == 2
    assert snapshot(dataset) == untouched  # every other dataset and attribute byte-identical


def test_an_interrupted_write_leaves_the_original(dataset: Path, monkeypatch) -> None:
    outputs.write_scoring(dataset, fake_result())
    before = dataset.read_bytes()
    real = outputs.write_demo_entries

    def fail_midway(f: h5py.File, result: ScoringResult) -> None:
        half = dataclasses.replace(result, demos=result.demos[:2])
        real(f, half)  # half of the demos written into the copy, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "write_demo_entries", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_scoring(dataset, fake_result(name="compat_paper_ffffffff"))
    assert dataset.read_bytes() == before
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["demos.hdf5"]  # no temp file left


def test_reading_an_unknown_scoring_names_the_known_ones(dataset: Path) -> None:
    outputs.write_scoring(dataset, fake_result())
    with pytest.raises(outputs.UserError, match=NAME):
        outputs.read_scoring(dataset, "compat_paper_00000000")
