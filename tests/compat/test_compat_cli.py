"""``polymimic compat score`` end to end on a tiny benchmark file, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from polymimic.cli.main import main
from polymimic.compat.outputs import read_scoring, scoring_names
from polymimic.datasets.hdf5 import write_masks
from polymimic.datasets.reader import demo_names, get_mask

FAST = ["--steps", "20", "--members", "2", "--batch-size", "64"]


def score(path: Path, *args: str) -> int:
    """The exit code of ``polymimic compat score PATH ARGS`` (argparse's errors exit)."""
    try:
        return main(["compat", "score", str(path), *args])
    except SystemExit as exc:
        return int(exc.code)


def test_score_writes_masks_attrs_and_report(benchmark_copy: Path, tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    assert score(benchmark_copy, "--base-operators", "base", *FAST, "--report-dir", str(reports)) == 0
    out = capsys.readouterr().out
    for operator, cls in [("base", "base"), ("conflict", "incompatible"),
                          ("noisy", "noisy_compatible"), ("newmode", "new_mode")]:  # fmt: skip
        assert f"operator {operator} [{cls}]: 3 demos" in out
    assert "ground truth over 9 non-base demos (3 incompatible): AUROC" in out
    (name,) = scoring_names(benchmark_copy)
    assert name.startswith("compat_paper_")
    keep, reject = get_mask(benchmark_copy, f"{name}_keep"), get_mask(benchmark_copy, f"{name}_reject")
    assert sorted(keep + reject) == sorted(demo_names(benchmark_copy)) and not set(keep) & set(reject)
    written = read_scoring(benchmark_copy, name)
    assert written["record"]["members"] == 2 and written["record"]["base"]["source"] == "operators base"
    assert len(written["record"]["base"]["heldout"]) == 1  # 20 % of 3 base demos, at least 1
    assert all(set(v) == {"score", "incompatible_fraction", "incompatible_steps", "rejected"}
               for v in written["demos"].values())  # fmt: skip
    with h5py.File(benchmark_copy, "r") as f:
        steps = f["data/demo_0/actions"].shape[0]
        assert f[f"data/demo_0/compat/{name}_weight"].shape == (steps,)
    assert (reports / f"{name}_scatter.png").read_bytes()[:4] == b"\x89PNG"
    table = json.loads((reports / f"{name}_report.json").read_text())
    assert {row["operator"] for row in table["operators"]} == {"base", "conflict", "noisy", "newmode"}
    assert "| operator | class |" in (reports / f"{name}_report.md").read_text()

    # The same scoring again is refused before any work; --overwrite replaces it.
    assert score(benchmark_copy, "--base-operators", "base", *FAST, "--report-dir", str(reports)) == 1
    assert "already holds the scoring" in capsys.readouterr().err
    assert score(benchmark_copy, "--base-operators", "base", *FAST, "--report-dir", str(reports),
                 "--overwrite") == 0  # fmt: skip
    # The kept members score again when loaded; another name, so both scorings stay.
    members = sorted((reports / f"{name}_members").iterdir())
    assert score(benchmark_copy, "--base-operators", "base", "--report-dir", str(reports),
                 "--checkpoints", *map(str, members)) == 0  # fmt: skip
    assert len(scoring_names(benchmark_copy)) == 2


def test_multimodal_scorer_runs(benchmark_copy: Path, tmp_path: Path, capsys) -> None:
    write_masks(benchmark_copy, {"trusted": get_mask(benchmark_copy, "operator_base")})
    assert score(benchmark_copy, "--base-mask", "trusted", "--scorer", "multimodal", *FAST,
                 "--report-dir", str(tmp_path), "--lambda", "50") == 0  # fmt: skip
    (name,) = scoring_names(benchmark_copy)
    record = read_scoring(benchmark_copy, name)["record"]
    assert record["policy_type"] == "bc_gmm" and record["thresholds"]["lambda"] == 50.0
    assert record["thresholds"]["lambda_source"] == "given"
    assert record["thresholds"]["eta_source"] == "calibrated"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base-mask", "nope"], "no mask 'nope'"),
        (["--base-operators", "alice"], "no demo of operator(s) ['alice']"),
        (["--base-mask", "one"], "at least 2"),
        (["--base-operators", "base", "--members", "1"], "--members"),
        (["--base-operators", "base", "--scorer", "best"], "unknown scorer 'best'"),
        (["--base-operators", "base", "--checkpoints", "/nonexistent/ckpt"], "at least 2 members"),
        (["--base-operators", "base", "--checkpoints", "/no/a", "/no/b"], "does not exist"),
        (["--base-mask", "one", "--base-operators", "base"], "not allowed with"),
    ],
)
def test_bad_input_is_one_line(benchmark_copy: Path, args: list[str], message: str, capsys) -> None:
    write_masks(benchmark_copy, {"one": ["demo_0"]})
    assert score(benchmark_copy, *args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_file_and_wrong_checkpoints(benchmark_copy: Path, tmp_path: Path, capsys) -> None:
    assert score(tmp_path / "missing.hdf5", "--base-operators", "base") == 1
    assert "does not exist" in capsys.readouterr().err
    reports = tmp_path / "reports"
    assert score(benchmark_copy, "--base-operators", "base", *FAST, "--report-dir", str(reports)) == 0
    members = sorted(next(reports.glob("*_members")).iterdir())
    assert score(benchmark_copy, "--base-operators", "base", "--scorer", "multimodal",
                 "--checkpoints", *map(str, members)) == 1  # fmt: skip
    assert "needs 'bc_gmm' members" in capsys.readouterr().err
    assert not (benchmark_copy.parent / "scored_compat").exists()  # refused before any output
