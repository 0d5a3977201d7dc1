"""``scripts/learner_table.py`` end to end on tiny settings: two learners on the
better-operator subset, seconds of training, 2 evaluation episodes; then a rerun that skips
finished runs, and one that resumes an interrupted run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "learner_table.py"


@pytest.fixture(scope="module")
def learner_table():
    spec = importlib.util.spec_from_file_location("learner_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(run_dir: Path) -> list[str]:
    return [x for x in (run_dir / "commands.txt").read_text().splitlines() if not x.startswith("#")]


def test_runner_trains_evaluates_tabulates_and_resumes(
    learner_table, tiny_push_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = shutil.copy(tiny_push_dataset, tmp_path / "push.hdf5")
    out = tmp_path / "out"
    argv = [
        "--dataset", str(data), "--out", str(out), "--work-dir", str(tmp_path / "work"),
        "--learners", "bc_mlp", "bc_rnn", "--subsets", "better", "--minutes", "0.02",
        "--calibrate-steps", "4", "--protocol", "cpu", "--contexts", "1", "--rollouts", "2",
    ]  # fmt: skip
    assert learner_table.main(argv) == 0

    # The better subset: the train demos of quality "better", written as mask/better_train.
    with open_dataset(data) as f:
        better = [n for n in demo_names(f, "train")
                  if demo_attrs(f["data"][n])["quality"] == "better"]  # fmt: skip
        assert better and demo_names(f, "better_train") == better
        assert not set(better) & set(demo_names(f, "valid"))
    for learner in ("bc_mlp", "bc_rnn"):
        run_dir = out / learner / "better"
        plan = json.loads((run_dir / "plan.json").read_text())
        assert plan["filter_key"] == "better_train" and plan["minutes"] == 0.02
        assert plan["calibration"]["steps"] == 4 and plan["calibration"]["steps_per_s"] > 0
        assert not (tmp_path / "work" / "calibration" / f"{learner}_better").exists()
        resolved = json.loads((run_dir / "train_config.json").read_text())
        assert resolved["policy"]["type"] == learner and resolved["policy"]["preset"] == "cpu_small"
        assert resolved["filter_key"] == "better_train"
        assert resolved["train"]["max_minutes"] == 0.02
        assert resolved["train"]["num_steps"] == plan["num_steps"]
        metrics = json.loads((run_dir / "train_metrics.json").read_text())
        assert metrics["stopped_by"] in ("max_minutes", "num_steps")
        assert metrics["step"] >= 1 and (run_dir / "train_log.jsonl").exists()
        info = json.loads((run_dir / "eval_info.json").read_text())
        assert info["aggregated"]["num_episodes"] == 2
        assert info["protocol"]["split"] == "test"
        assert info["checkpoint"]["path"] == str(run_dir / "checkpoints" / "last")
        ran = commands(run_dir)
        assert [c.split()[1] for c in ran] == ["train", "train", "eval"]  # calibration first
        assert "train.resume=true" not in ran[1]

    table = (out / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith(("| bc_mlp", "| bc_rnn"))]
    assert len(rows) == 2 and all("/2 = " in row for row in rows)  # successes/episodes

    # A rerun finds both runs finished and runs nothing.
    before = {learner: commands(out / learner / "better") for learner in ("bc_mlp", "bc_rnn")}
    assert learner_table.main(argv) == 0
    assert {learner: commands(out / learner / "better") for learner in before} == before

    # An interrupted run (checkpoint, no final metrics, no evaluation) is resumed, then
    # evaluated: it had finished (budget or steps), so it resumes at the saved step and stops.
    run_dir = out / "bc_mlp" / "better"
    finished = json.loads((run_dir / "train_metrics.json").read_text())
    (run_dir / "train_metrics.json").unlink()
    (run_dir / "eval_info.json").unlink()
    assert learner_table.main(argv) == 0
    ran = commands(run_dir)
    assert [c.split()[1] for c in ran[3:]] == ["train", "eval"]
    assert "train.resume=true" in ran[3]
    metrics = json.loads((run_dir / "train_metrics.json").read_text())
    assert (metrics["step"], metrics["stopped_by"]) == (finished["step"], finished["stopped_by"])
    assert (run_dir / "eval_info.json").exists()
    assert commands(out / "bc_rnn" / "better") == before["bc_rnn"]
