"""``scripts/learner_table.py`` end to end on tiny settings: two learners on the
better-operator subset, seconds of training, 2 evaluation episodes; then a rerun that skips
finished runs, and one that resumes an interrupted run."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from polymimic.datasets.hdf5 import write_masks
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
        assert resolved["valid_filter_key"] == "valid"  # held-out loss logged, in the table
        assert isinstance(metrics["valid/loss"], float)
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
    held_out = [row.split(" | ")[6] for row in rows]  # "best (step) / last"
    assert all(re.fullmatch(r"\d+\.\d{3} \(\d+\) / \d+\.\d{3}", cell) for cell in held_out), held_out

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


def test_offline_rl_trains_in_legs_evaluates_each_and_keeps_other_rows(
    learner_table, tiny_push_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offline-RL run on ``train_failed``: three legs (1/3, 2/3, all of the budget), each
    leg's checkpoint kept and evaluated; the table shows the three successes with their
    steps and keeps an imitation row already on disk; a rerun redoes only what is missing."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = shutil.copy(tiny_push_dataset, tmp_path / "push.hdf5")
    with open_dataset(data) as f:  # one train demo turned failure: train_failed != train
        train = demo_names(f, "train")
        failed = next(n for n in train if demo_attrs(f["data"][n])["quality"] != "better")
    write_masks(data, {"train": [n for n in train if n != failed], "failed": [failed]})
    out = tmp_path / "out"
    # an imitation run's plan.json as the runs before offline RL wrote it
    old_plan = {"learner": "bc_mlp", "preset": "cpu_small", "subset": "train",
                "filter_key": "train", "seed": 0, "minutes": 45.0, "num_steps": 10,
                "calibration": {"steps": 4, "steps_per_s": 1.0}, "save_every": 1,
                "log_every": 1}  # fmt: skip
    (out / "bc_mlp" / "train").mkdir(parents=True)
    (out / "bc_mlp" / "train" / "plan.json").write_text(json.dumps(old_plan))
    # The calibration run is the imitation test's; here a fixed speed saves a process.
    monkeypatch.setattr(learner_table, "calibrate",
                        lambda *a: {"steps": 4, "steps_per_s": 1000.0})  # fmt: skip
    argv = [
        "--dataset", str(data), "--out", str(out), "--work-dir", str(tmp_path / "work"),
        "--learners", "iql", "--subsets", "train_failed", "--minutes", "0.03",
        "--calibrate-steps", "4", "--protocol", "cpu", "--contexts", "1", "--rollouts", "1",
    ]  # fmt: skip
    assert learner_table.main(argv) == 0

    run_dir = out / "iql" / "train_failed"
    plan = json.loads((run_dir / "plan.json").read_text())
    assert (plan["filter_key"], plan["use_failed"], plan["legs"]) == ("train", True, 3)
    ran = commands(run_dir)
    assert [c.split()[1] for c in ran] == ["train", "eval"] * 3  # each leg in turn
    trains = [c for c in ran if c.split()[1] == "train"]
    assert all("policy.use_failed=true" in c and "filter_key=train " in c for c in trains)
    assert [c for c in trains if "train.resume=true" in c] == trains[1:]  # legs 2, 3 resume
    assert all(f"train.num_steps={plan['num_steps']} " in c for c in trains)  # one schedule
    minutes = [float(c.split("train.max_minutes=")[1].split()[0]) for c in trains]
    assert minutes == pytest.approx([0.01, 0.02, 0.03])
    kept = json.loads((run_dir / "checkpoints.json").read_text())
    steps = [kept[f"budget_{k}of3"]["step"] for k in (1, 2, 3)]
    assert steps == sorted(steps) and steps[0] >= 1
    for k in (1, 2, 3):
        info = json.loads((run_dir / f"eval_{k}of3" / "eval_info.json").read_text())
        assert info["checkpoint"]["path"] == str(run_dir / "checkpoints" / f"budget_{k}of3")
        assert info["aggregated"]["num_episodes"] == 1
    last = json.loads((run_dir / "checkpoints" / "budget_3of3" / "config.json").read_text())
    assert last["config"]["use_failed"] is True and last["step"] == steps[2]

    table = (out / "table.md").read_text()
    assert "| bc_mlp | train | pending |" in table  # the row on disk survives this invocation
    row = next(line for line in table.splitlines() if line.startswith("| iql | train_failed"))
    assert row.count("/1 = ") == 3 and all(f"(step {s})" in row for s in steps)

    # The other subsets' switches, and the imitation learners' subsets (no switch there).
    args = learner_table.build_parser().parse_args(["--dataset", str(data)])
    assert "policy.use_failed=false" in learner_table.train_overrides(args, "iql", "better")
    assert "filter_key=better_train" in learner_table.train_overrides(args, "cql", "better")
    assert not any("use_failed" in o for o in learner_table.train_overrides(args, "bc_mlp", "train"))
    assert learner_table.subsets_of("bc_mlp") == ("train", "better")

    # A rerun runs nothing; with a middle evaluation gone it evaluates that one leg again.
    assert learner_table.main(argv) == 0 and commands(run_dir) == ran
    shutil.rmtree(run_dir / "eval_2of3")
    assert learner_table.main(argv) == 0
    again = commands(run_dir)[len(ran):]
    assert len(again) == 1 and f"--checkpoint {run_dir}/checkpoints/budget_2of3 " in again[0]
