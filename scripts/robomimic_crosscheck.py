"""Real-client cross-check (issue 17): robomimic 0.3.0's own BC and BC-RNN beside polymimic's
``bc_mlp`` and ``bc_rnn``: same data, network sizes, steps, batch and seed, rolled out with the
same evaluation protocol; success with its interval and loss curves side by side.

Where success is mid-range (Push v1 on the better-operator subset: polymimic ``bc_rnn``
``cpu_small`` reached 10/32 on the ``cpu`` protocol after 8.7k steps), agreement between the
two libraries says more than at 0 or 100 %.

Per learner (``--learners``; ``bc`` = robomimic ``BC`` vs polymimic ``bc_mlp``, ``bc_rnn`` =
robomimic ``BC_RNN`` (GMM) vs polymimic ``bc_rnn``):

* **robomimic** (in this process): its config at polymimic's ``cpu_small`` sizes, its
  ``SequenceDataset`` with the observations standardised once with the mask's statistics,
  its algorithm from ``algo_factory`` on CPU (all from ``benchmarks/robomimic_setup.py``,
  shared with ``benchmarks/train_throughput.py``; its docstring gives the sizes and why
  ``hdf5_normalize_obs`` stays off). Trained for ``--steps`` gradient steps by its own
  ``TrainUtils.run_epoch`` in epochs of ``--log-every`` steps (robomimic's
  ``experiment.epoch_every_n_steps``: each epoch iterates the shuffled loader afresh and
  ``on_epoch_end`` follows, as robomimic's ``train.py`` does), each epoch's mean loss
  appended to ``<work>/robomimic_<learner>/train_log.jsonl``. Nothing is saved: the model
  stays in memory and is rolled out in this process.
* **Adapter** (:class:`RobomimicPolicy`): polymimic's evaluable-policy interface
  (``reset(env_ids)``, ``predict_action(obs (B, obs_dim), generators)``, ``config.obs_keys``)
  around robomimic's own ``RolloutPolicy``: ``reset`` calls its ``start_episode()``
  (``set_eval()`` and the algorithm's ``reset()``, which clears BC-RNN's hidden state), and
  each flat observation is split into the dataset's observation keys and passed to it with
  the training statistics as ``obs_normalization_stats``, so it is standardised exactly as
  the training items were; ``get_action``'s action is clipped to [-1, 1]. robomimic samples
  its GMM from torch's global generator: each call runs under ``torch.random.fork_rng``
  seeded from the protocol's per-rollout generator, so rollouts are reproducible and leave
  the global stream alone. One environment at a time (robomimic keeps one hidden state):
  the protocol is played in this process with one worker.
* **polymimic**: ``polymimic train`` (``policy=<learner>/cpu_small``, same mask, steps,
  batch, seed, ``train.log_every=--log-every``) and ``polymimic eval`` of its last checkpoint
  on the same protocol, each a subprocess with one torch thread, logged in its run directory
  (``commands.txt``, ``train_output.txt``, ``eval_output.txt``); or an existing run
  (``--polymimic-run bc_rnn=DIR``: its training as it is, recorded with its own settings;
  its ``eval_info.json`` reused if it has the same protocol, else it is evaluated here).

Success on both sides comes from the same ``evaluate_protocol`` (``polymimic.eval.rollout``:
the protocol's stored contexts, rollout seeds, episode loop and ``aggregate``, whose interval
is clustered by context), so the numbers are comparable.

Two differences are the libraries' own and are kept: (1) **loss units**: robomimic's losses
are of raw actions, polymimic's of standardised ones (``action_normalization: mean_std``):
BC's MSE is scaled per action dimension by its variance, BC-RNN's GMM negative
log-likelihood is shifted by the sum of the log stds. That shift is exact, so polymimic's
BC-RNN curve is also recorded in raw-action units (``loss_curve_raw_actions``) and drawn on
robomimic's axis; an MSE does not convert from its mean, so BC's two curves get an axis each;
(2) **BC-RNN inference**: robomimic carries the LSTM state across steps and
re-initialises it every ``horizon`` (10) steps; polymimic's ``bc_rnn`` runs the LSTM over
the last 10 observations from a zero state at every step (its module docstring).

Outputs: ``--out`` (default ``results/learners/crosscheck/<task>_<mask>.json``), written
atomically after every side, with per learner and side: steps, loss curve, success with its
interval, episodes, config, versions and commands; the same name with ``.png``: the loss
curves (matplotlib Agg). Rerunning with the same settings keeps the sides already in the
JSON (``--overwrite`` redoes them); polymimic runs in the work directory are resumed or
reused. Work files (run directories, robomimic logs and ``eval_info.json``) go to
``--work-dir`` (default ``/tmp/polymimic_crosscheck/<out name>``).

Full run (about an hour of one CPU thread; ``results/learners/crosscheck/README.md``)::

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/robomimic_crosscheck.py \\
        --dataset /tmp/polymimic_learners/push_v1.hdf5 --mask better_train \\
        --learners bc bc_rnn --steps 10000 --protocol full --seed 0 \\
        --out results/learners/crosscheck/push-v1_better_train.json

robomimic 0.3.0 is installed with ``pip install --no-deps robomimic==0.3.0 six termcolor
psutil`` (as ``make test`` does); its algorithms' module-level torchvision import is met by
the stand-in of ``robomimic_setup.torchvision_stand_in`` (this script only).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "learners" / "crosscheck"
#: learner -> robomimic_setup model, polymimic learner, robomimic algorithm (as printed)
LEARNERS = {
    "bc": {"model": "mlp", "polymimic": "bc_mlp", "robomimic": "BC"},
    "bc_rnn": {"model": "rnn", "polymimic": "bc_rnn", "robomimic": "BC_RNN (GMM)"},
}
ROBOMIMIC_LOSS_SPACE = "raw actions"


def _load(name: str, path: Path) -> Any:
    """A module of this repository that is not in a package (a script or benchmark)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


setup = _load("robomimic_setup", REPO / "benchmarks" / "robomimic_setup.py")
learner_table = _load("learner_table", REPO / "scripts" / "learner_table.py")


# ------------------------------------------------------------------------------ the adapter


@dataclasses.dataclass(frozen=True)
class RobomimicPolicyConfig:
    """What polymimic's evaluation reads from a policy's config (and records)."""

    obs_keys: tuple[str, ...]
    obs_dim: int
    action_dim: int
    algo: str
    library: str = "robomimic"


class RobomimicPolicy:
    """A robomimic algorithm behind polymimic's evaluable-policy interface (module docstring).

    Args:
        algo: a trained robomimic ``Algo``.
        obs_stats: ``{key: {"mean", "std"}}`` of shape ``(1, dim)``: the statistics its
            training observations were standardised with (``dataset.standardisation_stats``).
        obs_keys: the order of the keys in polymimic's flat observation.
        widths: each key's width.
        action_dim: the action width.
    """

    def __init__(
        self,
        algo: Any,
        obs_stats: dict[str, dict[str, np.ndarray]],
        obs_keys: tuple[str, ...],
        widths: dict[str, int],
        action_dim: int,
    ) -> None:
        setup.torchvision_stand_in()
        from robomimic.algo import RolloutPolicy

        self.rollout = RolloutPolicy(algo, obs_normalization_stats=obs_stats)
        self.name = f"robomimic_{type(algo).__name__}"
        self.config = RobomimicPolicyConfig(
            tuple(obs_keys), sum(widths[k] for k in obs_keys), int(action_dim),
            type(algo).__name__,
        )  # fmt: skip
        bounds = np.cumsum([0] + [widths[k] for k in obs_keys])
        self._slices = {k: slice(int(bounds[i]), int(bounds[i + 1])) for i, k in enumerate(obs_keys)}

    def reset(self, env_ids: Any = None) -> None:
        """A new episode: robomimic's ``start_episode`` (eval mode, hidden state cleared)."""
        self.rollout.start_episode()

    def predict_action(
        self, obs: np.ndarray, generators: Any = None, row_by_row: bool = False
    ) -> np.ndarray:
        """``(1, obs_dim)`` raw observations -> ``(1, action_dim)`` actions in [-1, 1]."""
        import torch

        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != (1, self.config.obs_dim):
            raise ValueError(
                f"expected one observation (1, {self.config.obs_dim}), got {obs.shape}: robomimic "
                "keeps one hidden state, so play one environment at a time (workers=1)"
            )
        ob = {k: obs[0, s].copy() for k, s in self._slices.items()}
        with torch.no_grad():
            if generators is None:
                action = self.rollout(ob)
            else:
                seed = int(torch.randint(0, 2**62, (1,), generator=generators[0]))
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    action = self.rollout(ob)
        return np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0).reshape(1, -1)


# --------------------------------------------------------------------------- robomimic side


def train_robomimic(
    learner: str, dataset_path: Path, mask: str, obs_keys: tuple[str, ...], action_dim: int,
    steps: int, batch_size: int, log_every: int, seed: int, log_path: Path,
) -> tuple[Any, Any, Any, list[dict[str, float]], float]:  # fmt: skip
    """Train robomimic's algorithm with its own ``run_epoch``; the algorithm, its config, its
    dataset, the loss curve (one entry per epoch of ``log_every`` steps) and the training
    seconds. Each epoch's mean losses are appended to ``log_path`` (JSONL) as they come."""
    setup.torchvision_stand_in()  # before any robomimic module that imports its algorithms
    import torch
    from robomimic.utils import log_utils, train_utils

    from polymimic.policies.train import seed_everything

    model = LEARNERS[learner]["model"]
    seed_everything(seed)  # as polymimic train: weights, batch order
    config, seq = setup.make_config(model, obs_keys, batch_size, action_dim)
    with config.values_unlocked():  # so the recorded config says what this run did
        config.train.data = str(dataset_path)
        config.train.hdf5_filter_key = mask
        config.train.seed = seed
        config.experiment.epoch_every_n_steps = log_every
    with log_utils.silence_stdout():
        dataset = setup.standardised_dataset(str(dataset_path), obs_keys, seq, mask)
    if len(dataset) < batch_size:
        raise SystemExit(f"mask {mask} has {len(dataset)} items, fewer than a batch ({batch_size})")
    algo = setup.make_algo(model, config, dataset, obs_keys)
    loader = setup.data_loader(dataset, batch_size)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    curve: list[dict[str, float]] = []
    done, epoch, wall = 0, 1, 0.0
    with open(log_path, "w") as log_file:
        while done < steps:
            n = min(log_every, steps - done)
            started = time.perf_counter()
            with log_utils.silence_stdout():  # its tqdm bar writes to stdout
                log = train_utils.run_epoch(algo, loader, epoch=epoch, num_steps=n)
            algo.on_epoch_end(epoch)
            wall += time.perf_counter() - started
            done += n
            losses = {k: float(v) for k, v in log.items() if "loss" in k.lower()
                      or "likelihood" in k.lower()}  # fmt: skip
            line = {"step": done, "epoch": epoch, "loss": losses["Loss"], **losses,
                    "train_wall_s": wall, "threads": torch.get_num_threads()}  # fmt: skip
            log_file.write(json.dumps(line) + "\n")
            log_file.flush()
            curve.append({"step": done, "loss": _finite(losses["Loss"])})
            epoch += 1
    return algo, config, dataset, curve, wall


def robomimic_side(args: argparse.Namespace, learner: str, context: dict[str, Any]) -> dict:
    """Train, adapt and evaluate robomimic's algorithm; its record for the JSON."""
    from polymimic.eval.rollout import evaluate_protocol, write_eval_info

    side_dir = context["work_dir"] / f"robomimic_{learner}"
    obs_keys = context["obs_keys"]
    algo, config, dataset, curve, wall = train_robomimic(
        learner, args.dataset, args.mask, obs_keys, context["action_dim"], args.steps,
        args.batch_size, context["log_every"], args.seed, side_dir / "train_log.jsonl",
    )  # fmt: skip
    stats = dataset.standardisation_stats
    widths = {k: int(stats[k]["mean"].shape[-1]) for k in obs_keys}
    policy = RobomimicPolicy(algo, stats, obs_keys, widths, context["action_dim"])
    info = evaluate_protocol(context["env_kwargs"], policy, context["protocol"], workers=1,
                             reference_distribution=context["reference"])  # fmt: skip
    write_eval_info(side_dir / "eval_info.json", info)
    return {
        "library": "robomimic", "algo": type(algo).__name__, "steps": args.steps,
        "batch_size": args.batch_size, "items": len(dataset), "train_wall_s": wall,
        "loss_name": "Loss (robomimic log_info: BC's L2 loss, BC-RNN's GMM negative "
                     "log-likelihood)",
        "loss_space": ROBOMIMIC_LOSS_SPACE, "loss_curve": curve,
        "train_log": str(side_dir / "train_log.jsonl"),
        **_evaluation(info, side_dir / "eval_info.json"),
        "standardisation": {k: {"mean": stats[k]["mean"][0].tolist(),
                                "std": stats[k]["std"][0].tolist()} for k in obs_keys},
        "config": json.loads(config.dump()),
        "versions": {**info["versions"], "robomimic": setup.robomimic_version()},
        "command": context["command"],
    }  # fmt: skip


# --------------------------------------------------------------------------- polymimic side


def _finite(value: Any) -> float | None:
    """A loss for the JSON: None where it is NaN or infinite (reported, never written as NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _same_protocol(info: dict | None, protocol: Any) -> bool:
    recorded = (info or {}).get("protocol") or {}
    wanted = protocol.to_dict()
    keys = ("name", "task_id", "split", "num_contexts", "rollouts_per_context", "version")
    return bool(recorded) and all(recorded.get(k) == wanted[k] for k in keys)


def _same_checkpoint(info: dict, checkpoint: Path) -> bool:
    """Whether ``info`` evaluated ``checkpoint`` (a relative path is the repository's: the
    learner table runs its commands there)."""
    recorded = (info.get("checkpoint") or {}).get("path")
    return recorded is not None and (REPO / recorded).resolve() == checkpoint.resolve()


def _protocol_tag(protocol: Any) -> str:
    return f"{protocol.name}_{protocol.num_contexts}x{protocol.rollouts_per_context}"


def _save_every(steps: int) -> int:
    """Ten checkpoints a run (an interrupted run resumes from the last), none before step 1000."""
    return max(steps // 10, min(steps, 1000))


def train_command(args: argparse.Namespace, learner: str, run_dir: Path, log_every: int) -> list[str]:
    return [
        *learner_table.polymimic_command(), "train", f"dataset={args.dataset}",
        f"filter_key={args.mask}", f"policy={LEARNERS[learner]['polymimic']}/cpu_small",
        f"seed={args.seed}", "device=cpu", "train.progress_bar=false",
        f"train.num_steps={args.steps}", f"train.batch_size={args.batch_size}",
        f"train.log_every={log_every}", f"train.save_every={_save_every(args.steps)}",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip


def eval_command(args: argparse.Namespace, checkpoint: Path, out_dir: Path) -> list[str]:
    command = [
        *learner_table.polymimic_command(), "eval", "--checkpoint", str(checkpoint),
        "--protocol", args.protocol, "--workers", str(args.workers), "--video-episodes", "0",
        "--out-dir", str(out_dir), "--dataset", str(args.dataset), "--overwrite",
    ]  # fmt: skip
    if args.contexts is not None:
        command += ["--contexts", str(args.contexts)]
    if args.rollouts is not None:
        command += ["--rollouts", str(args.rollouts)]
    return command


def _check_own_run(args: argparse.Namespace, learner: str, run_dir: Path) -> None:
    """A run directory of this work dir must hold this cross-check's run, not another's."""
    config = _read(run_dir / "train_config.json")
    if config is None:
        return
    wanted = {"dataset": str(args.dataset), "filter_key": args.mask, "seed": args.seed,
              "num_steps": args.steps, "batch_size": args.batch_size,
              "type": LEARNERS[learner]["polymimic"], "preset": "cpu_small"}  # fmt: skip
    found = {"dataset": config.get("dataset"), "filter_key": config.get("filter_key"),
             "seed": config.get("seed"), **{k: config["train"].get(k) for k in
             ("num_steps", "batch_size")}, "type": config["policy"].get("type"),
             "preset": config["policy"].get("preset")}  # fmt: skip
    if found != wanted:
        raise SystemExit(
            f"{run_dir} holds another run ({found}, wanted {wanted}); choose another --work-dir"
        )


def gmm_offset_to_raw(config: dict[str, Any]) -> float:
    """What turns polymimic's GMM loss (NLL of standardised actions) into robomimic's units
    (NLL of raw actions): ``sum_d log scale_d`` of its action normaliser, exactly (an affine
    change of variables shifts a log-density by the log-determinant). The scales are
    recomputed as ``polymimic train`` set them: the run's dataset and mask, every step."""
    from polymimic.datasets.windows import WindowDataset
    from polymimic.policies.normalize import normalization_params

    dataset = WindowDataset(config["dataset"], tuple(config["obs_keys"]), config["filter_key"],
                            idle_below=float(config.get("idle_below", 0.0)))  # fmt: skip
    _, scale = normalization_params(dataset.stats()["actions"],
                                    config["policy"]["action_normalization"])  # fmt: skip
    return float(np.sum(np.log(scale.astype(np.float64))))


def polymimic_side(args: argparse.Namespace, learner: str, context: dict[str, Any]) -> dict:
    """Train (or take ``--polymimic-run``) and evaluate polymimic's learner; its record."""
    protocol = context["protocol"]
    given = context["polymimic_runs"].get(learner)
    commands: list[str] = []
    if given is None:
        run_dir = context["work_dir"] / f"polymimic_{learner}"
        _check_own_run(args, learner, run_dir)
        metrics = _read(run_dir / "train_metrics.json")
        if metrics is None or metrics.get("step") != args.steps:
            command = train_command(args, learner, run_dir, context["log_every"])
            if (run_dir / "checkpoints" / "last").is_dir():
                command.append("train.resume=true")
            commands.append(shlex.join(command))
            if learner_table.run_logged(command, run_dir, "train_output.txt") != 0:
                raise SystemExit(f"polymimic train failed; see {run_dir / 'train_output.txt'}")
        eval_dir = run_dir / f"eval_{_protocol_tag(protocol)}"
    else:
        run_dir = given
        if _same_protocol(_read(run_dir / "eval_info.json"), protocol):
            eval_dir = run_dir
        else:
            eval_dir = context["work_dir"] / f"polymimic_{learner}_eval_{_protocol_tag(protocol)}"
    checkpoint = run_dir / "checkpoints" / "last"
    info = _read(eval_dir / "eval_info.json")
    if not _same_protocol(info, protocol) or not _same_checkpoint(info, checkpoint):
        command = eval_command(args, checkpoint, eval_dir)
        commands.append(shlex.join(command))
        if learner_table.run_logged(command, run_dir if given is None else eval_dir,
                                    "eval_output.txt") != 0:  # fmt: skip
            raise SystemExit(f"polymimic eval failed; see {eval_dir}")
        info = _read(eval_dir / "eval_info.json")
    config = _read(run_dir / "train_config.json")
    metrics = _read(run_dir / "train_metrics.json") or {}
    log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines() if x]
    # A resumed run logs again the steps after its last checkpoint: the later line counts.
    by_step = {x["step"]: x for x in log if "loss" in x}
    curve = [{"step": k, "loss": _finite(by_step[k]["loss"])} for k in sorted(by_step)]
    if config["train"]["num_steps"] != args.steps or config["filter_key"] != args.mask:
        print(f"note: {run_dir} trained {config['train']['num_steps']} steps on mask "
              f"{config['filter_key']} (asked: {args.steps} on {args.mask})", file=sys.stderr)
    recorded = run_dir / "commands.txt"
    raw_units = {}
    if config["policy"].get("gmm_modes", 0) > 0:
        offset = gmm_offset_to_raw(config)
        raw_units = {
            "nll_offset_to_raw_actions": offset,
            "loss_curve_raw_actions": [
                {"step": p["step"], "loss": None if p["loss"] is None else p["loss"] + offset}
                for p in curve
            ],
        }
    return {
        "library": "polymimic", "learner": config["policy"]["type"],
        "preset": config["policy"].get("preset"), "run_dir": str(run_dir),
        "source": "this cross-check" if given is None else "--polymimic-run",
        "steps": metrics.get("step", curve[-1]["step"] if curve else None),
        "batch_size": config["train"]["batch_size"], "mask": config["filter_key"],
        "seed": config["seed"], "train_wall_s": metrics.get("train_wall_s"),
        "loss_name": "loss (train_log.jsonl: mean over each logging interval)",
        "loss_space": f"standardised actions ({config['policy'].get('action_normalization')})",
        "loss_curve": curve, **raw_units, "train_log": str(run_dir / "train_log.jsonl"),
        **_evaluation(info, eval_dir / "eval_info.json"),
        "config": config, "versions": info["versions"],
        "commands": commands or None,
        "commands_file": str(recorded) if recorded.exists() else None,
    }  # fmt: skip


# ------------------------------------------------------------------------------- reporting


def _evaluation(info: dict, path: Path) -> dict[str, Any]:
    agg = info["aggregated"]
    return {
        "success": agg["success_rate"], "interval": agg["success_rate_ci95"],
        "episodes": agg["num_episodes"], "successes": agg["num_successes"],
        "behaviour_entropy": agg["behaviour_entropy"],
        "behaviour_distribution": agg["behaviour_distribution"],
        "mean_length": agg["mean_length"], "eval_wall_s": info.get("wall_s"),
        "protocol": info["protocol"], "eval_info": str(path),
    }  # fmt: skip


def summary(document: dict[str, Any]) -> str:
    lines = [f"{'learner':8} {'side':10} {'steps':>6} {'last loss':>10} {'success':>24}"]
    for learner, sides in document["learners"].items():
        for side, r in sides.items():
            loss = r["loss_curve"][-1]["loss"] if r["loss_curve"] else None
            loss = float("nan") if loss is None else loss
            lo, hi = r["interval"]
            success = f"{r['successes']}/{r['episodes']} = {r['success']:.2f} [{lo:.2f}, {hi:.2f}]"
            lines.append(f"{learner:8} {side:10} {r['steps']!s:>6} {loss:10.4f} {success:>24}")
    return "\n".join(lines)


def plot_losses(document: dict[str, Any], path: Path) -> None:
    """Loss curves, one panel per learner, each side on its own y axis (units differ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from polymimic.io import atomic_write

    learners = list(document["learners"])
    fig, axes = plt.subplots(1, len(learners), figsize=(6 * len(learners), 4), squeeze=False)
    for ax, learner in zip(axes[0], learners, strict=True):
        sides = document["learners"][learner]
        # A GMM's NLL converts exactly to raw actions (gmm_offset_to_raw): one shared axis;
        # an MSE does not (each action dimension scales by its own variance): two axes.
        shared = "loss_curve_raw_actions" in sides.get("polymimic", {})
        twin = "robomimic" in sides and not shared
        axis = {"robomimic": ax, "polymimic": ax.twinx() if twin else ax}
        for side, r in sides.items():
            color = {"robomimic": "C0", "polymimic": "C1"}[side]
            curve = r["loss_curve_raw_actions"] if shared and side == "polymimic" else r["loss_curve"]
            steps = [p["step"] for p in curve]
            losses = [np.nan if p["loss"] is None else p["loss"] for p in curve]
            label = (f"{side} {r.get('algo') or r.get('learner')}: success "
                     f"{r['successes']}/{r['episodes']}")  # fmt: skip
            axis[side].plot(steps, losses, color=color, label=label)
            label_text = (
                "GMM NLL of raw actions (polymimic's + sum log action std)" if shared
                else f"{side} loss ({r['loss_space']})"
            )  # fmt: skip
            axis[side].set_ylabel(label_text, color="k" if shared else color, fontsize=8)
        ax.set_xlabel("gradient step")
        ax.set_title(f"{learner}: {LEARNERS[learner]['robomimic']} vs "
                     f"{LEARNERS[learner]['polymimic']}", fontsize=10)  # fmt: skip
        used = [a for i, a in enumerate(axis.values()) if a not in list(axis.values())[:i]]
        handles = [h for a in used for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, fontsize=8, loc="upper right")
    settings = document["settings"]
    fig.suptitle(f"{Path(settings['dataset']).name} mask {settings['mask']}, batch "
                 f"{settings['batch_size']}, seed {settings['seed']}", fontsize=10)  # fmt: skip
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


# ------------------------------------------------------------------------------------ main


def _polymimic_runs(values: list[str], learners: list[str]) -> dict[str, Path]:
    runs = {}
    for value in values:
        learner, _, directory = value.partition("=")
        if learner not in learners or not directory:
            raise SystemExit(f"--polymimic-run {value!r}: expected LEARNER=DIR with LEARNER in "
                             f"{learners}")  # fmt: skip
        path = Path(directory)
        if not (path / "checkpoints" / "last").is_dir() or not (path / "train_config.json").exists():
            raise SystemExit(f"--polymimic-run {value!r}: {path} has no checkpoints/last or "
                             "train_config.json (a `polymimic train` run directory)")  # fmt: skip
        runs[learner] = path.resolve()
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a polymimic HDF5 file")
    parser.add_argument("--mask", default="better_train",
                        help="training demos (better_train: written if missing, from the "
                        "train demos of quality 'better', as scripts/learner_table.py does)")
    parser.add_argument("--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS))
    parser.add_argument("--steps", type=int, default=10_000, help="gradient steps, each side")
    parser.add_argument("--log-every", type=int, default=None,
                        help="loss logged every this many steps (default steps/100)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--protocol", choices=("cpu", "full"), default="full")
    parser.add_argument("--contexts", type=int, default=None, help="first S contexts only")
    parser.add_argument("--rollouts", type=int, default=None, help="R rollouts per context")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes of polymimic eval (the robomimic side plays in this one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON (default results/learners/crosscheck/<task>_<mask>.json); "
                        "the figure goes beside it as .png")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="run directories and logs (default /tmp/polymimic_crosscheck/<name>)")
    parser.add_argument("--polymimic-run", action="append", default=[], metavar="LEARNER=DIR",
                        help="use this polymimic run directory for LEARNER instead of training")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo sides already in --out (by default they are kept)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or (args.log_every is not None and args.log_every < 1):
        parser.error("--steps, --batch-size and --log-every must be positive")
    args.dataset = args.dataset.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from polymimic.cli.evaluate import _reference_distribution  # what `polymimic eval` uses
    from polymimic.datasets.reader import demo_names, open_dataset, read_env_args
    from polymimic.datasets.windows import dataset_dims
    from polymimic.envs.allowlist import check_env_args
    from polymimic.eval.protocol import protocol as make_protocol
    from polymimic.eval.rollout import git_commit
    from polymimic.io import atomic_write_json, library_versions

    torch.set_num_threads(1)  # one torch thread, as the polymimic side (learner_table)
    with open_dataset(args.dataset) as f:
        has_mask = f"mask/{args.mask}" in f
    if not has_mask and args.mask == "better_train":
        learner_table.ensure_subset_masks(args.dataset)
        print(f"wrote mask/better_train into {args.dataset}", file=sys.stderr)
    with open_dataset(args.dataset) as f:
        demos = demo_names(f, args.mask)  # fails with the file's masks if it is missing
    env_id, env_kwargs = check_env_args(read_env_args(args.dataset))
    protocol = make_protocol(env_id, args.protocol, args.contexts, args.rollouts)
    obs_keys, obs_dim, action_dim = dataset_dims(args.dataset)
    name = f"{env_id.split('/')[-1].lower()}_{args.mask}"
    out = args.out or RESULTS / f"{name}.json"
    work_dir = args.work_dir or Path("/tmp/polymimic_crosscheck") / out.stem
    work_dir.mkdir(parents=True, exist_ok=True)
    log_every = args.log_every or max(1, args.steps // 100)
    given = sys.argv[1:] if argv is None else argv
    command = "python " + shlex.join(["scripts/robomimic_crosscheck.py", *given])
    settings = {
        "dataset": str(args.dataset), "mask": args.mask, "steps": args.steps,
        "log_every": log_every, "batch_size": args.batch_size, "seed": args.seed,
        "protocol": protocol.to_dict(), "obs_keys": list(obs_keys),
    }  # fmt: skip
    previous = _read(out) if out.exists() and not args.overwrite else None
    document = {
        "what": "issue 17 real-client cross-check: robomimic 0.3.0 BC / BC-RNN vs polymimic "
                "bc_mlp / bc_rnn (scripts/robomimic_crosscheck.py)",
        "command": command, "settings": settings,
        "dataset": {**learner_table.dataset_identity(args.dataset), "mask": args.mask,
                    "demos": len(demos), "env_id": env_id, "env_kwargs": env_kwargs},
        "pairs": {k: LEARNERS[k] for k in args.learners},
        "work_dir": str(work_dir), "learners": {},
        "versions": {**library_versions(), "robomimic": setup.robomimic_version(),
                     "git_commit": git_commit()},
    }  # fmt: skip
    if previous is not None and previous.get("settings") == settings:
        document["learners"] = {k: v for k, v in previous["learners"].items() if k in args.learners}
    context = {
        "work_dir": work_dir, "obs_keys": obs_keys, "action_dim": action_dim,
        "env_kwargs": env_kwargs, "protocol": protocol, "log_every": log_every,
        "reference": _reference_distribution(args.dataset), "command": command,
        "polymimic_runs": _polymimic_runs(args.polymimic_run, args.learners),
    }  # fmt: skip
    for learner in args.learners:
        for side, run in (("robomimic", robomimic_side), ("polymimic", polymimic_side)):
            done = document["learners"].get(learner, {})
            if side in done:
                print(f"{learner} {side}: kept from {out}")
                continue
            started = time.perf_counter()
            print(f"{learner} {side}: {args.steps} steps, then {protocol.num_episodes} episodes",
                  flush=True)  # fmt: skip
            record = run(args, learner, context)
            record["wall_s"] = time.perf_counter() - started
            document["learners"].setdefault(learner, {})[side] = record
            atomic_write_json(out, document, allow_nan=False)
            print(f"{learner} {side}: success {record['successes']}/{record['episodes']}, "
                  f"{record['wall_s']:.0f} s", flush=True)  # fmt: skip
    bad = [(k, s) for k, v in document["learners"].items() for s, r in v.items()
           if any(p["loss"] is None for p in r["loss_curve"])]  # fmt: skip
    if bad:
        print(f"warning: non-finite losses in {bad}", file=sys.stderr)
    plot_losses(document, out.with_suffix(".png"))
    print(summary(document))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
