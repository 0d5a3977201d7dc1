"""The Push learner table (issue 17): every learner's ``cpu_small`` preset, one seed, trained
for a wall-clock budget on the full ``train`` mask and on the better-operator subset, its last
checkpoint evaluated with the evaluation protocol.

Usage (``results/learners/run.sh`` holds the exact commands of the committed table)::

    python scripts/learner_table.py --dataset /tmp/polymimic_learners/push_v1.hdf5 --minutes 45

For every (learner, subset) the run directory ``<out>/<learner>/<subset>/`` receives what
``polymimic train`` writes (``train_log.jsonl``, ``resolved_config.yaml``,
``train_config.json``, ``train_metrics.json``, ``checkpoints/last/``: not committed), the
``eval_info.json`` of ``polymimic eval`` on ``checkpoints/last`` (the last checkpoint, its EMA
weights where the learner keeps an EMA: that is what the checkpoint's model holds), the
runner's ``plan.json`` and ``commands.txt`` (every command it ran, in order, with its start
time). ``<out>/table.md`` is rewritten after every step from what is on disk.

**Subsets.** ``train``: the file's ``mask/train`` (successful demos outside ``mask/valid``).
``better``: those of them whose demo attribute ``quality`` is ``better`` (robomimic's
better-operator split), written to the file as ``mask/better_train`` if it is missing.
``mask/valid`` stays held out of both.

**Budget.** A short calibration run (``--calibrate-steps`` steps in a scratch directory,
deleted afterwards) measures the learner's steps/s; ``train.num_steps`` is set to what the
budget would hold at that speed, so learning-rate schedules that depend on the run length
(the diffusion learners' cosine) end near the budget, and ``train.max_minutes`` stops the run
when the budget is spent whichever comes first. Both go into ``plan.json`` once and are
reused by every later resume, so a resumed run is the same run.

**Resuming.** Rerunning skips runs whose ``eval_info.json`` exists, evaluates runs whose
training finished (``train_metrics.json`` says so), and continues interrupted training with
``train.resume=true`` from the last checkpoint (the budget counts the training time the
checkpoint recorded). Runs are done one at a time, each with one torch thread.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py

from polymimic.datasets.hdf5 import write_masks
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset

LEARNERS = (
    "bc_mlp", "bc_gmm", "bc_rnn", "bc_transformer", "bet", "diffusion", "diffusion_transformer",
)  # fmt: skip
#: subset name -> the mask it trains on
SUBSETS = {"train": "train", "better": "better_train"}
REPO = Path(__file__).resolve().parent.parent
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def polymimic_command() -> list[str]:
    """The ``polymimic`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "polymimic"
    return [str(script)] if script.exists() else [sys.executable, "-m", "polymimic.cli.main"]


def ensure_subset_masks(dataset: Path) -> dict[str, int]:
    """Write ``mask/better_train`` (``train`` demos of ``better`` quality) if it is missing or
    differs; return the number of demos of every subset's mask."""
    with open_dataset(dataset) as f:
        train = demo_names(f, "train")
        better = [n for n in train if demo_attrs(f["data"][n]).get("quality") == "better"]
        existing = demo_names(f, "better_train") if "mask/better_train" in f else None
    if not better:
        raise SystemExit(f"{dataset}: no train demo has quality 'better'")
    if existing != better:
        write_masks(dataset, {"better_train": better})
    return {"train": len(train), "better": len(better)}


def mask_steps(dataset: Path, filter_key: str) -> int:
    """Training items of a mask: the summed length of its demos (``len(WindowDataset)``)."""
    with open_dataset(dataset) as f:
        return sum(int(f["data"][n]["actions"].shape[0]) for n in demo_names(f, filter_key))


def dataset_identity(dataset: Path) -> dict[str, Any]:
    """What identifies the data of the table: the named dataset and its generation code."""
    with h5py.File(dataset, "r") as f:
        metadata = json.loads(f["data"].attrs.get("polymimic_metadata", "{}"))
    generation = metadata.get("generation", {})
    return {
        "path": str(dataset),
        "dataset": metadata.get("dataset_name"),
        "generation_code": generation.get("code"),
    }


def run_logged(command: list[str], run_dir: Path, output_name: str) -> int:
    """Run ``command`` with one torch thread, its output appended to ``run_dir/output_name``,
    the command line appended to ``run_dir/commands.txt``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open(run_dir / "commands.txt", "a") as log:
        log.write(f"# {stamp}\n{shlex.join(command)}\n")
    with open(run_dir / output_name, "a") as out:
        result = subprocess.run(command, cwd=REPO, env={**os.environ, **THREAD_ENV},
                                stdout=out, stderr=subprocess.STDOUT, check=False)  # fmt: skip
    return result.returncode


def train_overrides(args: argparse.Namespace, learner: str, filter_key: str) -> list[str]:
    return [
        f"dataset={args.dataset}", f"filter_key={filter_key}", f"policy={learner}/cpu_small",
        f"seed={args.seed}", "device=cpu", "train.progress_bar=false",
    ]  # fmt: skip


def calibrate(args: argparse.Namespace, learner: str, subset: str, run_dir: Path) -> dict:
    """Steps/s of the learner from a short run in a scratch directory (deleted afterwards)."""
    scratch = args.work_dir / "calibration" / f"{learner}_{subset}"
    shutil.rmtree(scratch, ignore_errors=True)
    steps = args.calibrate_steps
    command = [
        *polymimic_command(), "train", *train_overrides(args, learner, SUBSETS[subset]),
        f"train.num_steps={steps}", f"train.log_every={max(1, steps // 2)}", "train.save_every=0",
        f"hydra.run.dir={scratch}",
    ]  # fmt: skip
    if run_logged(command, run_dir, "calibration_output.txt") != 0:
        raise RuntimeError(f"calibration of {learner}/{subset} failed; see {run_dir}")
    lines = [json.loads(line) for line in (scratch / "train_log.jsonl").read_text().splitlines()]
    # The last interval: the first pays for start-up (k-means bins, first allocations).
    rate = float([line for line in lines if "steps_per_s" in line][-1]["steps_per_s"])
    shutil.rmtree(scratch, ignore_errors=True)
    return {"steps": steps, "steps_per_s": rate}


def plan_run(args: argparse.Namespace, learner: str, subset: str, run_dir: Path) -> dict:
    """The run's fixed settings: made once (with a calibration), then read back."""
    path = run_dir / "plan.json"
    if path.exists():
        return json.loads(path.read_text())
    calibration = calibrate(args, learner, subset, run_dir)
    budget_steps = calibration["steps_per_s"] * args.minutes * 60.0
    num_steps = max(args.calibrate_steps, min(args.max_steps, math.ceil(budget_steps)))
    plan = {
        "learner": learner, "preset": "cpu_small", "subset": subset,
        "filter_key": SUBSETS[subset], "seed": args.seed, "minutes": args.minutes,
        "calibration": calibration, "num_steps": num_steps,
        # about 30 checkpoints per budget: an interruption loses ~1/30 of it
        "save_every": max(1, num_steps // 30), "log_every": max(1, num_steps // 200),
    }  # fmt: skip
    path.write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def training_finished(run_dir: Path, plan: dict) -> bool:
    path = run_dir / "train_metrics.json"
    if not path.exists():
        return False
    metrics = json.loads(path.read_text())
    return metrics.get("stopped_by") == "max_minutes" or metrics.get("step") == plan["num_steps"]


def train_run(args: argparse.Namespace, plan: dict, run_dir: Path) -> None:
    resume = (run_dir / "checkpoints" / "last").is_dir() or (
        run_dir / "checkpoints" / "last.previous"
    ).is_dir()
    command = [
        *polymimic_command(), "train",
        *train_overrides(args, plan["learner"], plan["filter_key"]),
        f"train.num_steps={plan['num_steps']}", f"train.max_minutes={plan['minutes']}",
        f"train.save_every={plan['save_every']}", f"train.log_every={plan['log_every']}",
        f"hydra.run.dir={run_dir}", *(["train.resume=true"] if resume else []),
    ]  # fmt: skip
    if run_logged(command, run_dir, "train_output.txt") != 0:
        raise RuntimeError(f"training {run_dir} failed; see {run_dir / 'train_output.txt'}")


def eval_run(args: argparse.Namespace, run_dir: Path) -> None:
    command = [
        *polymimic_command(), "eval", "--checkpoint", str(run_dir / "checkpoints" / "last"),
        "--protocol", args.protocol, "--workers", str(args.workers),
        "--video-episodes", str(args.video_episodes), "--out-dir", str(run_dir),
        "--dataset", str(args.dataset), "--overwrite",
    ]  # fmt: skip
    if args.contexts is not None:
        command += ["--contexts", str(args.contexts)]
    if args.rollouts is not None:
        command += ["--rollouts", str(args.rollouts)]
    if run_logged(command, run_dir, "eval_output.txt") != 0:
        raise RuntimeError(f"evaluating {run_dir} failed; see {run_dir / 'eval_output.txt'}")


# --------------------------------------------------------------------------------- the table


def _interval(value: float | None, interval: list | None) -> str:
    if value is None:
        return "n/a"
    if not interval or interval[0] is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def table_row(out: Path, learner: str, subset: str, items: dict[str, int]) -> str:
    run_dir = out / learner / subset
    plan = _read(run_dir / "plan.json")
    metrics = _read(run_dir / "train_metrics.json")
    info = _read(run_dir / "eval_info.json")
    config = _read(run_dir / "train_config.json")
    if metrics is None:  # interrupted or running: the log says how far it got
        log = run_dir / "train_log.jsonl"
        lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        losses = [line for line in lines if "train_wall_s" in line]
        metrics = {**losses[-1], "stopped_by": "(running)"} if losses else None
    cells = [learner, subset]
    if metrics is None:
        return "| " + " | ".join(cells + ["pending"] + [""] * 6) + " |"
    batch = (config or {}).get("train", {}).get("batch_size", 256)
    epochs = metrics["step"] * batch / items[subset]
    cells += [
        f"{metrics['step']}" + (f" / {plan['num_steps']}" if plan else ""),
        f"{epochs:.1f}",
        f"{metrics.get('train_wall_s', float('nan')) / 60:.1f}",
        str(metrics.get("stopped_by", "")),
    ]
    if info is None:
        return "| " + " | ".join(cells + ["not evaluated", "", ""]) + " |"
    agg = info["aggregated"]
    cells += [
        f"{agg['num_successes']}/{agg['num_episodes']} = "
        + _interval(agg["success_rate"], agg["success_rate_ci95"]),
        _interval(agg["behaviour_entropy"], agg["behaviour_entropy_ci95"]),
        _interval(agg["conditional_behaviour_entropy"],
                  agg.get("conditional_behaviour_entropy_ci95")),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def write_table(args: argparse.Namespace, items: dict[str, int], demos: dict[str, int]) -> None:
    protocol = args.protocol if args.contexts is None and args.rollouts is None else (
        f"custom ({args.protocol} split, {args.contexts or 'all'} contexts x "
        f"{args.rollouts or 'all'} rollouts)"
    )  # fmt: skip
    identity = dataset_identity(args.dataset)
    lines = [
        "# Push learner table (issue 17)",
        "",
        f"Data: `{identity['dataset']}` (generation code `{identity['generation_code']}`); "
        + ", ".join(f"`{s}` = mask `{SUBSETS[s]}` ({demos[s]} demos, {items[s]} steps)"
                    for s in args.subsets) + ".",  # fmt: skip
        f"Every learner's `cpu_small` preset, seed {args.seed}, CPU with one torch thread, a "
        f"training budget of {args.minutes:g} min (`train.max_minutes`; `train.num_steps` "
        "from a calibration of the learner's speed, see each run's `plan.json`). The last "
        "checkpoint is evaluated (EMA weights where the learner keeps one), protocol "
        f"`{protocol}` of `polymimic/Push-v1` (test contexts).",
        "Success: successes/episodes with its 95% interval (the protocol's, clustered by "
        "context); behaviour entropy over successful episodes, log base = number of "
        "behaviours, with its 95% interval; conditional entropy: mean per-context entropy.",
        "Commands: `results/learners/run.sh`; each run's own commands in its `commands.txt`.",
        "",
        "| learner | subset | steps | epochs | train min | stopped by | success | "
        "behaviour entropy | conditional entropy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for learner in args.learners:
        for subset in args.subsets:
            lines.append(table_row(args.out, learner, subset, items))
    path = args.out / "table.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the Push v1 HDF5 file")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "learners")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/polymimic_learners"),
                        help="scratch space for the calibration runs")
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=LEARNERS)
    parser.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=list(SUBSETS))
    parser.add_argument("--minutes", type=float, default=45.0, help="training budget per run")
    parser.add_argument("--calibrate-steps", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=10**7,
                        help="cap on train.num_steps whatever the calibration says")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocol", default="full", choices=("full", "cpu", "selection"))
    parser.add_argument("--contexts", type=int, default=None, help="first S contexts only")
    parser.add_argument("--rollouts", type=int, default=None, help="R rollouts per context")
    parser.add_argument("--workers", type=int, default=1, help="evaluation environments")
    parser.add_argument("--video-episodes", type=int, default=0)
    parser.add_argument("--table-only", action="store_true", help="rewrite table.md and stop")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.dataset = args.dataset.resolve()
    args.out = args.out.resolve()
    demos = ensure_subset_masks(args.dataset)
    items = {subset: mask_steps(args.dataset, key) for subset, key in SUBSETS.items()}
    write_table(args, items, demos)
    if args.table_only:
        return 0
    for learner in args.learners:  # both subsets of a learner, then the next learner
        for subset in args.subsets:
            run_dir = args.out / learner / subset
            if (run_dir / "eval_info.json").exists():
                print(f"{learner}/{subset}: done", flush=True)
                continue
            plan = plan_run(args, learner, subset, run_dir)
            if not training_finished(run_dir, plan):
                print(f"{learner}/{subset}: training ({plan['num_steps']} steps, "
                      f"{plan['minutes']:g} min)", flush=True)  # fmt: skip
                train_run(args, plan, run_dir)
                write_table(args, items, demos)
            print(f"{learner}/{subset}: evaluating", flush=True)
            eval_run(args, run_dir)
            write_table(args, items, demos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
