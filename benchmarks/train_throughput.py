"""Training samples/s: polymimic's ``bc_mlp`` and ``bc_rnn`` against robomimic 0.3.0's BC and
BC-RNN, on the same data, sizes, batch and torch threads, in one run.

Both sides train on the ``train`` mask of one Push file with the same observation keys:

* **MLP**: polymimic ``bc_mlp`` (its ``cpu_small`` preset: 2x256 ReLU MLP, lr 1e-3, MSE)
  against robomimic's ``BC`` (``actor_layer_dims=(256, 256)``, lr 1e-3, no GMM), one
  observation per item (robomimic ``seq_length=1``).
* **RNN**: polymimic ``bc_rnn`` (its ``cpu_small`` preset: LSTM 2x128, 10 steps, 5-mode
  GMM head, no MLP after the LSTM) against robomimic's ``BC_RNN`` (``rnn.hidden_dim=128``,
  ``num_layers=2``, ``horizon=10``, ``gmm.num_modes=5``, ``actor_layer_dims=()``),
  robomimic ``seq_length=10``.

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
ratio = polymimic samples/s / robomimic samples/s (target >= 1.5x for the MLP).

robomimic 0.3.0 is installed with ``--no-deps``; its algorithms import torchvision at module
level for image encoders these low-dimensional runs never build, so this script only puts a
minimal stand-in ``torchvision`` module in ``sys.modules`` before importing them.

    python benchmarks/train_throughput.py --file push_v1.hdf5 [--threads 1 2] [--repeats 3]
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
import types
from pathlib import Path
from typing import Any

OBS_KEYS = ("green_block", "red_block", "tip_pos", "tip_target")
BATCH = 256
SEQ_RNN = 10
RESULTS = Path("results/benchmarks")


def _polymimic(path: str, model: str, steps: int) -> dict[str, Any]:
    from polymimic.cli.train import build_policy
    from polymimic.datasets.windows import WindowDataset, dataset_dims
    from polymimic.policies.base import policy_class
    from polymimic.policies.train import TrainConfig, train

    name = {"mlp": "bc_mlp", "rnn": "bc_rnn"}[model]
    obs_keys, obs_dim, action_dim = dataset_dims(path, list(OBS_KEYS))
    policy = build_policy({"type": name, **policy_class(name).presets["cpu_small"]},
                          obs_keys, obs_dim, action_dim)  # fmt: skip
    dataset = WindowDataset(path, obs_keys, "train", spec=policy.batch_spec())
    policy.set_normalization(dataset.stats())
    config = TrainConfig(num_steps=steps, batch_size=BATCH, log_every=steps, save_every=0,
                         device="cpu", progress_bar=False)  # fmt: skip
    with tempfile.TemporaryDirectory() as run_dir:
        metrics = train(policy, dataset, config, run_dir)
    # train_wall_s: the steps themselves (the final checkpoint write is not in it)
    return {"samples_per_s": steps * BATCH / metrics["train_wall_s"], "steps": steps,
            "wall_s": metrics["train_wall_s"], "items": len(dataset),
            "loss": metrics["loss"]}  # fmt: skip


def _torchvision_stand_in() -> None:
    """A module tree that satisfies robomimic 0.3.0's module-level torchvision imports."""
    if "torchvision" in sys.modules:
        return
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    models = types.ModuleType("torchvision.models")

    class _Unavailable:  # Lambda, Compose, ...: only image pipelines would build them
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("torchvision stand-in: image models are not benchmarked")

    transforms.Lambda = transforms.Compose = _Unavailable
    transforms.functional = functional
    root.transforms, root.models = transforms, models
    sys.modules.update({"torchvision": root, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional,
                        "torchvision.models": models})  # fmt: skip


def _robomimic(path: str, model: str, steps: int) -> dict[str, Any]:
    import numpy as np

    _torchvision_stand_in()
    import torch
    from robomimic.algo import algo_factory
    from robomimic.config import config_factory
    from robomimic.utils import obs_utils, train_utils
    from robomimic.utils.dataset import SequenceDataset
    from torch.utils.data import DataLoader

    config = config_factory("bc")
    with config.values_unlocked():
        config.observation.modalities.obs.low_dim = list(OBS_KEYS)
        config.algo.optim_params.policy.learning_rate.initial = 1e-3
        config.train.batch_size = BATCH
        if model == "mlp":
            config.algo.actor_layer_dims = (256, 256)
            config.algo.gmm.enabled = False
            seq = 1
        else:
            config.algo.actor_layer_dims = ()
            config.algo.rnn.enabled = True
            config.algo.rnn.horizon = SEQ_RNN
            config.algo.rnn.hidden_dim = 128
            config.algo.rnn.num_layers = 2
            config.algo.gmm.enabled = True
            config.algo.gmm.num_modes = 5
            seq = SEQ_RNN
        config.train.seq_length = seq
    obs_utils.initialize_obs_utils_with_config(config)

    class StandardisedOnce(SequenceDataset):
        """Standardise the cached observations in place, before the item cache is built."""

        def load_dataset_in_memory(self, demo_list, hdf5_file, obs_keys, dataset_keys,
                                   load_next_obs):  # fmt: skip
            cache = super().load_dataset_in_memory(demo_list, hdf5_file, obs_keys,
                                                   dataset_keys, load_next_obs)  # fmt: skip
            for key in obs_keys:
                values = np.concatenate([cache[d]["obs"][key] for d in demo_list]).astype(np.float64)
                mean, std = values.mean(axis=0), values.std(axis=0)
                std = np.where(std < 1e-6, 1.0, std)  # polymimic's Normalizer guards the same
                for demo in demo_list:
                    cache[demo]["obs"][key] = ((cache[demo]["obs"][key] - mean) / std).astype(np.float32)
            return cache

    dataset = StandardisedOnce(
        hdf5_path=path, obs_keys=OBS_KEYS, dataset_keys=("actions",), load_next_obs=False,
        frame_stack=1, seq_length=seq, pad_frame_stack=True, pad_seq_length=True,
        get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all", hdf5_use_swmr=True,
        hdf5_normalize_obs=False, filter_by_attribute="train",
    )  # fmt: skip
    shapes = {k: dataset[0]["obs"][k].shape[1:] for k in OBS_KEYS}
    ac_dim = dataset[0]["actions"].shape[-1]
    algo = algo_factory("bc", config, obs_key_shapes=shapes, ac_dim=ac_dim, device=torch.device("cpu"))
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=0)
    started = time.perf_counter()
    log = train_utils.run_epoch(algo, loader, epoch=1, num_steps=steps)
    wall = time.perf_counter() - started
    return {"samples_per_s": steps * BATCH / wall, "steps": steps, "wall_s": wall,
            "items": len(dataset), "loss": float(log["Loss"]),
            "algo": type(algo).__name__}  # fmt: skip


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
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {model} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(path: Path, threads: list[int], repeats: int, steps: dict[str, int]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for model in ("mlp", "rnn"):
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
    names = {"mlp": "bc_mlp vs BC", "rnn": "bc_rnn vs BC-RNN"}
    lines = [f"{'':18} {'threads':>7} {'polymimic/s':>12} {'robomimic/s':>12} {'ratio':>7}"]
    for row in rows.values():
        m = row["median_samples_per_s"]
        lines.append(f"{names[row['model']]:18} {row['threads']:7d} {m['polymimic']:12.0f} "
                     f"{m['robomimic']:12.0f} {row['ratio']:6.2f}x")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, required=True, help="a Push v1 file with mask/train")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlp-steps", type=int, default=400)
    parser.add_argument("--rnn-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, str(args.file), args.model, args.steps, args.threads[0])
        return
    from polymimic.io import atomic_write_json, library_versions

    rows = compare(args.file, args.threads, args.repeats,
                   {"mlp": args.mlp_steps, "rnn": args.rnn_steps})  # fmt: skip
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    table = _table(rows)
    print(table)
    versions = library_versions()
    try:
        from importlib.metadata import version

        versions["robomimic"] = version("robomimic")
    except Exception:  # noqa: BLE001 - recorded as unknown, the run itself proved it imports
        versions["robomimic"] = None
    atomic_write_json(args.out, {"command": command, "file": str(args.file), "batch_size": BATCH,
                                 "obs_keys": list(OBS_KEYS), "repeats": args.repeats,
                                 "rows": rows, "versions": versions})  # fmt: skip
    args.out.with_suffix(".txt").write_text(
        f"$ {command}\ntraining samples/s (batch {BATCH}, median of {args.repeats} fresh "
        f"processes per side, sides alternating; dataset loading not timed; "
        f"os.cpu_count()={os.cpu_count()})\n{table}\n(ratio: polymimic / robomimic)\n"
    )


if __name__ == "__main__":
    main()
