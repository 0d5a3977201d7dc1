"""Training samples/s: polymimic's ``bc_mlp``, ``bc_rnn``, ``iql``, ``cql`` and ``bcq`` against
robomimic 0.3.0's BC, BC-RNN, IQL, CQL and BCQ, on the same data, sizes, batch and torch
threads, in one run.

Both sides train on the ``train`` mask of one Push file with the same observation keys:

* **MLP**: polymimic ``bc_mlp`` (its ``cpu_small`` preset: 2x256 ReLU MLP, lr 1e-3, MSE)
  against robomimic's ``BC`` (``actor_layer_dims=(256, 256)``, lr 1e-3, no GMM), one
  observation per item (robomimic ``seq_length=1``).
* **RNN**: polymimic ``bc_rnn`` (its ``cpu_small`` preset: LSTM 2x128, 10 steps, 5-mode
  GMM head, no MLP after the LSTM) against robomimic's ``BC_RNN`` (``rnn.hidden_dim=128``,
  ``num_layers=2``, ``horizon=10``, ``gmm.num_modes=5``, ``actor_layer_dims=()``),
  robomimic ``seq_length=10``.
* **IQL** (``--models iql``): polymimic ``iql`` ``cpu_small`` (value, twin Q and Gaussian
  actor, 2x256 ReLU each) against robomimic's ``IQL`` (``iql_config.py``; ``actor.layer_dims``
  and ``critic.layer_dims`` (256, 256), which its value network uses too; ``ensemble.n=2``;
  Gaussian actor). One difference in kind: robomimic's actor outputs a per-state standard
  deviation, polymimic's (CORL's) learns one per action dimension.
* **CQL**: polymimic ``cql`` ``cpu_small`` (twin Q and tanh-Gaussian actor, 2x256; 10
  sampled actions per proposal in the log-sum-exp; fixed alpha, automatic entropy
  temperature) against robomimic's ``CQL`` (``cql_config.py``; layer dims (256, 256),
  ``ensemble.n=2``, ``num_random_actions=10``, ``num_action_samples=1``,
  ``target_q_gap=None`` so its CQL weight is fixed like polymimic's instead of the Lagrange
  variant it defaults to; its default batch 1024 set to 256).
* **BCQ**: polymimic ``bcq`` ``cpu_small`` (twin Q, perturbation actor, conditional VAE, all
  2x256; 10 VAE candidates per s' in the target) against robomimic's ``BCQ``
  (``bcq_config.py``; critic and actor (256, 256), ``actor.enabled=True`` (robomimic's default
  leaves the perturbation actor off; the paper's BCQ has it), VAE encoder/decoder (256, 256),
  latent 2 x action dim, latent clip 0.5, KL weight 0.5, ``num_action_samples=10``,
  ``ensemble.n=2`` with weight 0.75 = polymimic's lambda).

  The offline-RL items are single transitions on both sides: polymimic's learners declare
  ``obs, actions, rewards, next_obs, terminations, truncations`` (``policy.use_failed=false``,
  so they read the ``train`` mask only, as robomimic's ``filter_by_attribute="train"`` does);
  robomimic's ``SequenceDataset`` loads ``dataset_keys=("actions", "rewards", "dones")`` with
  ``load_next_obs=True`` (its ``config.train`` defaults for these algorithms) and
  ``seq_length=1`` (``n_step=1``: their ``process_batch_for_training`` takes step 0).

Batch 256. robomimic's data: ``SequenceDataset`` with ``hdf5_cache_mode="all"`` and its own
``DataLoader(shuffle=True)``; its training loop is its own ``TrainUtils.run_epoch``
(process batch, ``train_on_batch``, ``log_info``). polymimic's: ``WindowDataset`` through the
one training loop (``policies.train.train``). Observations are normalised exactly once on
each side: polymimic's normaliser (mean/std of the train demos) inside the learner;
robomimic's cached observations are standardised in place with the same statistics before
its item cache is built (``hdf5_normalize_obs`` is off: in 0.3.0 it fails a shape assertion
and, patched, normalises twice; robomimic PR #81), and no stats are passed to ``run_epoch``.
Dataset loading is not timed on either side.

Each measurement is a fresh Python process (torch threads set with ``torch.set_num_threads``
and ``OMP_NUM_THREADS``); the sides alternate ``--repeats`` times and medians are compared:
ratio = polymimic samples/s / robomimic samples/s (target >= 1.5x for the MLP). Each run
records ``os.getloadavg()`` when it started: on a shared machine other jobs slow both sides.

robomimic 0.3.0 is installed with ``--no-deps``; its algorithms import torchvision at module
level for image encoders these low-dimensional runs never build, so this script only puts a
minimal stand-in ``torchvision`` module in ``sys.modules`` before importing them. That
stand-in, robomimic's configs at these sizes and its standardised-once dataset live in
``benchmarks/robomimic_setup.py``, shared with ``scripts/robomimic_crosscheck.py``.

    python benchmarks/train_throughput.py --file push_v1.hdf5 [--threads 1 2] [--repeats 3]
    python benchmarks/train_throughput.py --file push_v1.hdf5 --models iql cql bcq \
        --out results/benchmarks/train_throughput_offline_rl.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import robomimic_setup  # benchmarks/robomimic_setup.py, beside this script

OBS_KEYS = ("green_block", "red_block", "tip_pos", "tip_target")
BATCH = 256
#: model -> (polymimic learner, robomimic algorithm)
MODELS = {"mlp": ("bc_mlp", "bc"), "rnn": ("bc_rnn", "bc"), "iql": ("iql", "iql"),
          "cql": ("cql", "cql"), "bcq": ("bcq", "bcq")}  # fmt: skip
OFFLINE_RL = robomimic_setup.OFFLINE_RL
NAMES = {"mlp": "bc_mlp vs BC", "rnn": "bc_rnn vs BC-RNN", "iql": "iql vs IQL",
         "cql": "cql vs CQL", "bcq": "bcq vs BCQ"}  # fmt: skip
RESULTS = Path("results/benchmarks")


def _polymimic(path: str, model: str, steps: int) -> dict[str, Any]:
    from polymimic.cli.train import build_policy
    from polymimic.datasets.windows import WindowDataset, dataset_dims
    from polymimic.policies.base import policy_class
    from polymimic.policies.train import TrainConfig, train

    name = MODELS[model][0]
    obs_keys, obs_dim, action_dim = dataset_dims(path, list(OBS_KEYS))
    values = {"type": name, **policy_class(name).presets["cpu_small"]}
    if model in OFFLINE_RL:
        values["use_failed"] = False  # the train mask only, as robomimic's filter
    policy = build_policy(values, obs_keys, obs_dim, action_dim)
    dataset = WindowDataset(path, obs_keys, "train", spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    config = TrainConfig(num_steps=steps, batch_size=BATCH, log_every=steps, save_every=0,
                         device="cpu", progress_bar=False)  # fmt: skip
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = train(policy, dataset, config, run_dir)
    # train_wall_s: the steps themselves (the final checkpoint write is not in it)
    return {"samples_per_s": steps * BATCH / metrics["train_wall_s"], "steps": steps,
            "wall_s": metrics["train_wall_s"], "items": len(dataset),
            "losses": {k: v for k, v in metrics.items() if k.endswith("loss")}}  # fmt: skip


def _robomimic(path: str, model: str, steps: int) -> dict[str, Any]:
    import h5py

    robomimic_setup.torchvision_stand_in()
    from robomimic.utils import train_utils

    with h5py.File(path, "r") as f:
        action_dim = int(f["data"][next(iter(f["data"]))]["actions"].shape[-1])
    config, seq = robomimic_setup.make_config(model, OBS_KEYS, BATCH, action_dim)
    dataset = robomimic_setup.standardised_dataset(
        path, OBS_KEYS, seq, "train", offline_rl=model in OFFLINE_RL
    )
    algo = robomimic_setup.make_algo(model, config, dataset, OBS_KEYS)
    loader = robomimic_setup.data_loader(dataset, BATCH)
    started = time.perf_counter()
    log = train_utils.run_epoch(algo, loader, epoch=1, num_steps=steps)
    wall = time.perf_counter() - started
    losses = {k: float(v) for k, v in log.items() if "loss" in k.lower()}
    return {"samples_per_s": steps * BATCH / wall, "steps": steps, "wall_s": wall,
            "items": len(dataset), "losses": losses, "algo": type(algo).__name__}  # fmt: skip


def worker(side: str, path: str, model: str, steps: int, threads: int) -> None:
    """One measurement in this (fresh) process, printed as JSON."""
    import torch

    torch.set_num_threads(threads)
    result = {"polymimic": _polymimic, "robomimic": _robomimic}[side](path, model, steps)
    print(json.dumps({**result, "threads": torch.get_num_threads()}))


def _measure(side: str, path: Path, model: str, steps: int, threads: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", side, "--file", str(path), "--model", model,
               "--steps", str(steps), "--threads", str(threads)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    load = os.getloadavg()  # other jobs on the machine slow a run; say how busy it was
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {model} run failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "loadavg_at_start": load}


def compare(path: Path, threads: list[int], repeats: int, steps: dict[str, int]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for model in steps:
        for t in threads:
            runs: dict[str, list[dict[str, Any]]] = {"polymimic": [], "robomimic": []}
            for _ in range(repeats):
                for side in runs:  # alternate: a change of machine load hits both sides
                    runs[side].append(_measure(side, path, model, steps[model], t))
            medians = {s: statistics.median(r["samples_per_s"] for r in rs) for s, rs in runs.items()}
            rows[f"{model}_threads{t}"] = {
                "model": model, "threads": t, "runs": runs, "median_samples_per_s": medians,
                "ratio": medians["polymimic"] / medians["robomimic"],
            }  # fmt: skip
    return rows


def _table(rows: dict[str, Any]) -> str:
    names = NAMES
    lines = [f"{'':18} {'threads':>7} {'polymimic/s':>12} {'robomimic/s':>12} {'ratio':>7}"]
    for row in rows.values():
        m = row["median_samples_per_s"]
        lines.append(f"{names[row['model']]:18} {row['threads']:7d} {m['polymimic']:12.0f} "
                     f"{m['robomimic']:12.0f} {row['ratio']:6.2f}x")  # fmt: skip
    return "\n".join(lines)


def _load(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True, help="a Push v1 file with mask/train")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlp-steps", type=int, default=400)
    parser.add_argument("--rnn-steps", type=int, default=100)
    parser.add_argument("--offline-rl-steps", type=int, default=200,
                        help="steps of each iql, cql and bcq measurement")
    parser.add_argument("--models", nargs="+", default=["mlp", "rnn"], choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, str(args.file), args.model, args.steps, args.threads[0])
        return
    from polymimic.io import atomic_write_json, library_versions

    steps = {"mlp": args.mlp_steps, "rnn": args.rnn_steps,
             **dict.fromkeys(OFFLINE_RL, args.offline_rl_steps)}  # fmt: skip
    load_before = os.getloadavg()
    rows = compare(args.file, args.threads, args.repeats, {m: steps[m] for m in args.models})
    load = {"before": load_before, "after": os.getloadavg()}
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    table = _table(rows)
    print(table)
    versions = {**library_versions(), "robomimic": robomimic_setup.robomimic_version()}
    atomic_write_json(args.out, {"command": command, "file": str(args.file), "batch_size": BATCH,
                                 "obs_keys": list(OBS_KEYS), "repeats": args.repeats,
                                 "loadavg": load, "rows": rows,
                                 "versions": versions})  # fmt: skip
    args.out.with_suffix(".txt").write_text(
        f"$ {command}\ntraining samples/s (batch {BATCH}, median of {args.repeats} fresh "
        f"processes per side, sides alternating; dataset loading not timed; "
        f"os.cpu_count()={os.cpu_count()}; os.getloadavg() before {_load(load['before'])}, "
        f"after {_load(load['after'])})\n{table}\n(ratio: polymimic / robomimic)\n"
    )


if __name__ == "__main__":
    main()
