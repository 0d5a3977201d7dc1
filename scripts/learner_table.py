"""The Push learner table (issues 17 and 14): every learner's ``cpu_small`` preset, one seed,
trained for a wall-clock budget on each of its subsets, evaluated with the evaluation protocol:
an imitation learner's last checkpoint; an offline-RL learner's checkpoints at 1/3, 2/3 and
the end of its budget (so the table shows whether its success still rises).

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
``mask/valid`` stays held out of all. Offline-RL learners (``iql``, ``cql``, ``td3_bc``,
``bcq``) get these two without failures (``policy.use_failed=false``: the very data of the
imitation rows) and a third, ``train_failed``: ``train`` plus the failed demonstrations of
``mask/failed`` (``policy.use_failed=true``, their default). ``better`` gets no failures: it
is the better operators' data, and on Push v1 only 1 of the 48 failed demos is of quality
``better`` (34 ``worse``, 13 ``okay``), so failures "of the better subset" would add nothing,
and all failures would make it a different subset.

**Checkpoints of offline-RL runs.** ``train.save_every`` only ever replaces
``checkpoints/last``, so an offline-RL run trains in three legs with budgets of 1/3, 2/3 and
all of ``--minutes`` (each leg resumes the previous one exactly; ``train.num_steps`` and so
every schedule is the whole run's), and after each leg ``checkpoints/last`` is copied to
``checkpoints/budget_<k>of3``; each copy is evaluated into ``eval_<k>of3/eval_info.json``;
``checkpoints.json`` records each copy's step and training time.

**Budget.** A short calibration run (``--calibrate-steps`` steps in a scratch directory,
deleted afterwards) measures the learner's steps/s; ``train.num_steps`` is set to what the
budget would hold at that speed, so learning-rate schedules that depend on the run length
(the diffusion learners' cosine) end near the budget, and ``train.max_minutes`` stops the run
when the budget is spent whichever comes first. Both go into ``plan.json`` once and are
reused by every later resume, so a resumed run is the same run.

**Resuming.** Rerunning skips runs whose evaluations exist, evaluates runs whose training
finished (``train_metrics.json`` says so; for offline RL, the leg's checkpoint copy exists),
and continues interrupted training with ``train.resume=true`` from the last checkpoint (the
budget counts the training time the checkpoint recorded). Runs are done one at a time, each
with one torch thread.
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

IMITATION = (
    "bc_mlp", "bc_gmm", "bc_rnn", "bc_transformer", "bet", "diffusion", "diffusion_transformer",
)  # fmt: skip
OFFLINE_RL = ("iql", "cql", "td3_bc", "bcq")
LEARNERS = IMITATION + OFFLINE_RL
#: subset name -> the mask it trains on
SUBSETS = {"train": "train", "train_failed": "train", "better": "better_train"}
#: subset -> policy.use_failed of an offline-RL learner (imitation learners have no such switch)
USE_FAILED = {"train": False, "train_failed": True, "better": False}
IMITATION_SUBSETS = ("train", "better")
#: an offline-RL run is evaluated after each of this many equal parts of its budget
LEGS = 3
REPO = Path(__file__).resolve().parent.parent
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def polymimic_command() -> list[str]:
    """The ``polymimic`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "polymimic"
    return [str(script)] if script.exists() else [sys.executable, "-m", "polymimic.cli.main"]


def subsets_of(learner: str) -> tuple[str, ...]:
    """The subsets a learner is trained on (``train_failed`` only for offline RL)."""
    return tuple(SUBSETS) if learner in OFFLINE_RL else IMITATION_SUBSETS


def subset_demos(f: h5py.File, subset: str) -> list[str]:
    """The demos a subset trains on: its mask, plus ``mask/failed`` for ``train_failed``."""
    names = demo_names(f, SUBSETS[subset])
    if subset == "train_failed" and "mask/failed" in f:
        names += [n for n in demo_names(f, "failed") if n not in set(names)]
    return names


def ensure_subset_masks(dataset: Path) -> dict[str, int]:
    """Write ``mask/better_train`` (``train`` demos of ``better`` quality) if it is missing or
    differs; return the number of demos of every subset."""
    with open_dataset(dataset) as f:
        train = demo_names(f, "train")
        better = [n for n in train if demo_attrs(f["data"][n]).get("quality") == "better"]
        existing = demo_names(f, "better_train") if "mask/better_train" in f else None
    if not better:
        raise SystemExit(f"{dataset}: no train demo has quality 'better'")
    if existing != better:
        write_masks(dataset, {"better_train": better})
    with open_dataset(dataset) as f:
        return {subset: len(subset_demos(f, subset)) for subset in SUBSETS}


def subset_steps(dataset: Path, subset: str) -> int:
    """Training items of a subset: the summed length of its demos (``len(WindowDataset)``)."""
    with open_dataset(dataset) as f:
        return sum(int(f["data"][n]["actions"].shape[0]) for n in subset_demos(f, subset))


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


def train_overrides(args: argparse.Namespace, learner: str, subset: str) -> list[str]:
    switch = [f"policy.use_failed={str(USE_FAILED[subset]).lower()}"] if learner in OFFLINE_RL else []
    return [
        f"dataset={args.dataset}", f"filter_key={SUBSETS[subset]}", f"policy={learner}/cpu_small",
        *switch, f"seed={args.seed}", "device=cpu", "train.progress_bar=false",
    ]  # fmt: skip


def calibrate(args: argparse.Namespace, learner: str, subset: str, run_dir: Path) -> dict:
    """Steps/s of the learner from a short run in a scratch directory (deleted afterwards)."""
    scratch = args.work_dir / "calibration" / f"{learner}_{subset}"
    shutil.rmtree(scratch, ignore_errors=True)
    steps = args.calibrate_steps
    command = [
        *polymimic_command(), "train", *train_overrides(args, learner, subset),
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
    if learner in OFFLINE_RL:
        plan.update(use_failed=USE_FAILED[subset], legs=LEGS)
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def training_finished(run_dir: Path, plan: dict) -> bool:
    path = run_dir / "train_metrics.json"
    if not path.exists():
        return False
    metrics = json.loads(path.read_text())
    return metrics.get("stopped_by") == "max_minutes" or metrics.get("step") == plan["num_steps"]


def train_run(args: argparse.Namespace, plan: dict, run_dir: Path, minutes: float) -> None:
    """Train (or resume) the run until ``minutes`` of training time or its last step."""
    resume = (run_dir / "checkpoints" / "last").is_dir() or (
        run_dir / "checkpoints" / "last.previous"
    ).is_dir()
    command = [
        *polymimic_command(), "train", *train_overrides(args, plan["learner"], plan["subset"]),
        f"train.num_steps={plan['num_steps']}", f"train.max_minutes={minutes}",
        f"train.save_every={plan['save_every']}", f"train.log_every={plan['log_every']}",
        f"hydra.run.dir={run_dir}", *(["train.resume=true"] if resume else []),
        # the held-out demos' loss 20 times per budget: overfitting shows in the table
        "valid_filter_key=valid", f"train.eval_every={max(1, plan['num_steps'] // 20)}",
    ]  # fmt: skip
    if run_logged(command, run_dir, "train_output.txt") != 0:
        raise RuntimeError(f"training {run_dir} failed; see {run_dir / 'train_output.txt'}")


def leg_checkpoint(run_dir: Path, leg: int, legs: int) -> Path:
    return run_dir / "checkpoints" / f"budget_{leg}of{legs}"


def leg_eval_dir(run_dir: Path, leg: int, legs: int) -> Path:
    return run_dir / f"eval_{leg}of{legs}"


def keep_leg_checkpoint(run_dir: Path, leg: int, legs: int) -> None:
    """Copy ``checkpoints/last`` to the leg's directory and record its step and training
    time in ``checkpoints.json``. The copy is staged and renamed last, so a leg whose
    directory exists is complete and recorded."""
    target = leg_checkpoint(run_dir, leg, legs)
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(run_dir / "checkpoints" / "last", staging)
    state = json.loads((staging / "training_state.json").read_text())
    path = run_dir / "checkpoints.json"
    record = _read(path) or {}
    record[target.name] = {"fraction": f"{leg}/{legs}", "step": state["step"],
                           "train_wall_s": state.get("train_wall_s")}  # fmt: skip
    path.write_text(json.dumps(record, indent=2) + "\n")
    staging.rename(target)


def eval_run(args: argparse.Namespace, run_dir: Path, checkpoint: Path, out_dir: Path) -> None:
    command = [
        *polymimic_command(), "eval", "--checkpoint", str(checkpoint),
        "--protocol", args.protocol, "--workers", str(args.workers),
        "--video-episodes", str(args.video_episodes), "--out-dir", str(out_dir),
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


def _success(info: dict) -> str:
    agg = info["aggregated"]
    return f"{agg['num_successes']}/{agg['num_episodes']} = " + _interval(
        agg["success_rate"], agg["success_rate_ci95"]
    )


def _entropies(info: dict | None) -> list[str]:
    if info is None:
        return ["", ""]
    agg = info["aggregated"]
    return [_interval(agg["behaviour_entropy"], agg["behaviour_entropy_ci95"]),
            _interval(agg["conditional_behaviour_entropy"],
                      agg.get("conditional_behaviour_entropy_ci95"))]  # fmt: skip


def training_cells(run_dir: Path, items: int, finished: bool) -> list[str] | None:
    """steps, epochs, training minutes, stopped by; from the final metrics once ``finished``,
    else from the log (interrupted or running); None before the first log line."""
    plan = _read(run_dir / "plan.json")
    metrics = _read(run_dir / "train_metrics.json") if finished else None
    if metrics is None:
        log = run_dir / "train_log.jsonl"
        lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        losses = [line for line in lines if "train_wall_s" in line]
        metrics = {**losses[-1], "stopped_by": "(running)"} if losses else None
    if metrics is None:
        return None
    config = _read(run_dir / "train_config.json")
    batch = (config or {}).get("train", {}).get("batch_size", 256)
    return [
        f"{metrics['step']}" + (f" / {plan['num_steps']}" if plan else ""),
        f"{metrics['step'] * batch / items:.1f}",
        f"{metrics.get('train_wall_s', float('nan')) / 60:.1f}",
        str(metrics.get("stopped_by", "")),
    ]


def held_out_cell(run_dir: Path) -> str:
    """``best (step) / last`` of the logged held-out loss (``valid/loss``); empty without."""
    log = run_dir / "train_log.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    scored = [(line["valid/loss"], line["step"]) for line in lines if "valid/loss" in line]
    if not scored:
        return ""
    best, step = min(scored)
    return f"{best:.3f} ({step}) / {scored[-1][0]:.3f}"


def table_row(out: Path, learner: str, subset: str, items: dict[str, int]) -> str:
    """An imitation learner's row: its last checkpoint's evaluation."""
    run_dir = out / learner / subset
    finished = (run_dir / "train_metrics.json").exists()
    training = training_cells(run_dir, items[subset], finished)
    if training is None:
        return "| " + " | ".join([learner, subset, "pending"] + [""] * 7) + " |"
    info = _read(run_dir / "eval_info.json")
    evaluated = [_success(info), *_entropies(info)] if info else ["not evaluated", "", ""]
    return "| " + " | ".join([learner, subset, *training, held_out_cell(run_dir), *evaluated]) + " |"


def offline_rl_row(out: Path, learner: str, subset: str, items: dict[str, int]) -> str:
    """An offline-RL learner's row: success at each kept checkpoint (with its step), the
    entropies of the last."""
    run_dir = out / learner / subset
    legs = (_read(run_dir / "plan.json") or {}).get("legs", LEGS)
    finished = leg_checkpoint(run_dir, legs, legs).is_dir()
    training = training_cells(run_dir, items[subset], finished)
    if training is None:
        return "| " + " | ".join([learner, subset, "pending"] + [""] * (5 + legs)) + " |"
    kept = _read(run_dir / "checkpoints.json") or {}
    cells = []
    for leg in range(1, legs + 1):
        step = kept.get(leg_checkpoint(run_dir, leg, legs).name, {}).get("step")
        info = _read(leg_eval_dir(run_dir, leg, legs) / "eval_info.json")
        cell = _success(info) if info else ("not evaluated" if step is not None else "")
        cells.append(cell + (f" (step {step})" if step is not None else ""))
    final = _read(leg_eval_dir(run_dir, legs, legs) / "eval_info.json")
    return "| " + " | ".join([learner, subset, *training, *cells, *_entropies(final)]) + " |"


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def table_runs(args: argparse.Namespace, learners: tuple[str, ...]) -> list[tuple[str, str]]:
    """(learner, subset) rows: those asked for and those already on disk (so a second
    invocation for other learners keeps the first one's rows)."""
    return [
        (learner, subset)
        for learner in learners
        if learner in args.learners or (args.out / learner).is_dir()
        for subset in subsets_of(learner)
        if subset in args.subsets or (args.out / learner / subset).is_dir()
    ]


def write_table(args: argparse.Namespace, items: dict[str, int], demos: dict[str, int]) -> None:
    protocol = args.protocol if args.contexts is None and args.rollouts is None else (
        f"custom ({args.protocol} split, {args.contexts or 'all'} contexts x "
        f"{args.rollouts or 'all'} rollouts)"
    )  # fmt: skip
    identity = dataset_identity(args.dataset)
    masks = {"train": "mask `train`", "train_failed": "masks `train` + `failed`",
             "better": "mask `better_train`"}  # fmt: skip
    lines = [
        "# Push learner table (issues 17 and 14)",
        "",
        f"Data: `{identity['dataset']}` (generation code `{identity['generation_code']}`); "
        + ", ".join(f"`{s}` = {masks[s]} ({demos[s]} demos, {items[s]} steps)"
                    for s in SUBSETS) + ".",  # fmt: skip
        f"Every learner's `cpu_small` preset, seed {args.seed}, CPU with one torch thread, a "
        f"training budget of {args.minutes:g} min (`train.max_minutes`; `train.num_steps` "
        "from a calibration of the learner's speed, see each run's `plan.json`). Evaluation "
        f"protocol `{protocol}` of `polymimic/Push-v1` (test contexts).",
        "Success: successes/episodes with its 95% interval (the protocol's, clustered by "
        "context); behaviour entropy over successful episodes, log base = number of "
        "behaviours, with its 95% interval; conditional entropy: mean per-context entropy.",
        "Commands: `results/learners/run.sh`; each run's own commands in its `commands.txt`.",
        "",
        "## Imitation learners",
        "",
        "The last checkpoint is evaluated (EMA weights where the learner keeps one). Held-out "
        "loss: the learner's own loss on the `valid` demos (never trained on), logged 20 "
        "times per budget: its lowest value (at step) / its last; a last far above the "
        "lowest is overfitting. Empty for runs made before it was logged.",
        "",
        "| learner | subset | steps | epochs | train min | stopped by | held-out loss | "
        "success | behaviour entropy | conditional entropy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [table_row(args.out, *run, items) for run in table_runs(args, IMITATION)]
    offline = table_runs(args, OFFLINE_RL)
    if offline:
        lines += [
            "", "## Offline RL learners", "",
            "Reward: the dataset's sparse success reward (1 at the success step, which "
            "terminates; 0 otherwise). `train` and `better` without failed demos "
            "(`policy.use_failed=false`, the imitation rows' data), `train_failed` with "
            "them. Each run is evaluated at the checkpoints after 1/3, 2/3 and all of its "
            "budget (the step in brackets); the entropies are the last checkpoint's.",
            "",
            "| learner | subset | steps | epochs | train min | stopped by | success 1/3 | "
            "success 2/3 | success end | behaviour entropy | conditional entropy |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        lines += [offline_rl_row(args.out, *run, items) for run in offline]
    path = args.out / "table.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def run_done(run_dir: Path, learner: str) -> bool:
    if learner not in OFFLINE_RL:
        return (run_dir / "eval_info.json").exists()
    legs = (_read(run_dir / "plan.json") or {}).get("legs", LEGS)
    return all((leg_eval_dir(run_dir, k, legs) / "eval_info.json").exists()
               for k in range(1, legs + 1))  # fmt: skip


def imitation_run(args: argparse.Namespace, plan: dict, run_dir: Path, refresh: Any) -> None:
    if not training_finished(run_dir, plan):
        print(f"{run_dir}: training ({plan['num_steps']} steps, {plan['minutes']:g} min)",
              flush=True)  # fmt: skip
        train_run(args, plan, run_dir, plan["minutes"])
        refresh()
    print(f"{run_dir}: evaluating", flush=True)
    eval_run(args, run_dir, run_dir / "checkpoints" / "last", run_dir)
    refresh()


def offline_rl_run(args: argparse.Namespace, plan: dict, run_dir: Path, refresh: Any) -> None:
    """Leg by leg: train to the leg's share of the budget, keep the checkpoint, evaluate it
    (so the table fills in while later legs train)."""
    legs = plan["legs"]
    for leg in range(1, legs + 1):
        kept = leg_checkpoint(run_dir, leg, legs)
        if not kept.is_dir():
            minutes = plan["minutes"] if leg == legs else plan["minutes"] * leg / legs
            print(f"{run_dir}: training leg {leg}/{legs} (to {minutes:g} min)", flush=True)
            train_run(args, plan, run_dir, minutes)
            keep_leg_checkpoint(run_dir, leg, legs)
            refresh()
        out_dir = leg_eval_dir(run_dir, leg, legs)
        if not (out_dir / "eval_info.json").exists():
            print(f"{run_dir}: evaluating {kept.name}", flush=True)
            eval_run(args, run_dir, kept, out_dir)
            refresh()


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
    items = {subset: subset_steps(args.dataset, subset) for subset in SUBSETS}
    write_table(args, items, demos)
    if args.table_only:
        return 0
    for learner in args.learners:  # every subset of a learner, then the next learner
        for subset in [s for s in args.subsets if s in subsets_of(learner)]:
            run_dir = args.out / learner / subset
            if run_done(run_dir, learner):
                print(f"{learner}/{subset}: done", flush=True)
                continue
            plan = plan_run(args, learner, subset, run_dir)
            run = offline_rl_run if learner in OFFLINE_RL else imitation_run
            run(args, plan, run_dir, lambda: write_table(args, items, demos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
