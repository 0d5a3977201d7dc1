"""Loading and one epoch of batches: polymimic's WindowDataset against robomimic's SequenceDataset.

Both read the same Push file (by default a 1,000-demo generation, ``--demos-per-operator
167``, made on the first run and reused afterwards) with the same observation keys, the
``train`` mask and the same amount of data per item: 10 observations and 10 actions
(robomimic: ``seq_length=10``, ``frame_stack=1``, ``hdf5_cache_mode="all"``, as its BC-RNN
configs use; polymimic: ``obs_horizon=10``, ``action_horizon=10``).

Each measurement runs in a fresh Python process, which reports:

* **load**: seconds to construct the dataset (imports excluded);
* **epoch**: seconds for one epoch of shuffled batches of ``--batch-size`` (ragged tail
  dropped) through a torch ``DataLoader`` with no worker processes: robomimic's
  ``DataLoader(dataset, batch_size, shuffle=True)`` as its trainer builds it, polymimic's
  training-loop loader (``policies.train.make_loader``: one gather per batch);
* **peak RSS**: ``getrusage(RUSAGE_SELF).ru_maxrss`` of that process at the end, the honest
  memory cost of holding the data, plus the same for a process that only imports the
  side's libraries, so ``data RSS = peak - imports`` isolates the dataset.

The two sides alternate ``--repeats`` times (so a change of machine load hits both) and
medians are compared: ratios are polymimic / robomimic, target <= 1.0x.

    python benchmarks/dataset_load.py [--file F] [--demos-per-operator 167] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OBS_KEYS = ("tip_pos", "tip_target", "red_block", "green_block")
SEQ = 10
DATASET = "polymimic/push/multi-operator-v1"
RESULTS = Path("results/benchmarks")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _polymimic(path: str, batch_size: int) -> dict[str, Any]:
    from polymimic.datasets.windows import WindowDataset
    from polymimic.policies.train import EpochBatchSampler, make_loader

    start = time.perf_counter()
    dataset = WindowDataset(path, OBS_KEYS, "train", obs_horizon=SEQ, action_horizon=SEQ)
    loaded = time.perf_counter()
    sampler = EpochBatchSampler(len(dataset), batch_size, seed=0)
    batches, checksum = 0, 0.0
    for batch in make_loader(dataset, sampler, pin_memory=False):
        checksum += float(batch["actions"][0, 0, 0])  # touch the batch
        batches += 1
        if batches == sampler.batches_per_epoch:  # its sampler is endless
            break
    done = time.perf_counter()
    return {"load_s": loaded - start, "epoch_s": done - loaded, "items": len(dataset),
            "batches": batches}


def _robomimic(path: str, batch_size: int) -> dict[str, Any]:
    from robomimic.utils import obs_utils
    from robomimic.utils.dataset import SequenceDataset
    from torch.utils.data import DataLoader

    obs_utils.initialize_obs_modality_mapping_from_dict({"low_dim": list(OBS_KEYS)})
    start = time.perf_counter()
    dataset = SequenceDataset(
        hdf5_path=path, obs_keys=OBS_KEYS, dataset_keys=("actions",), load_next_obs=False,
        frame_stack=1, seq_length=SEQ, pad_frame_stack=True, pad_seq_length=True,
        get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all", hdf5_use_swmr=True,
        hdf5_normalize_obs=False, filter_by_attribute="train",
    )
    loaded = time.perf_counter()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)
    batches, checksum = 0, 0.0
    for batch in loader:
        checksum += float(batch["actions"][0, 0, 0])
        batches += 1
    done = time.perf_counter()
    return {"load_s": loaded - start, "epoch_s": done - loaded, "items": len(dataset),
            "batches": batches}


def _imports_only(side: str) -> dict[str, Any]:
    if side == "polymimic":
        import polymimic.datasets.windows  # noqa: F401
        import polymimic.policies.train  # noqa: F401
    else:
        import robomimic.utils.dataset  # noqa: F401
        import torch.utils.data  # noqa: F401
    return {}


def worker(mode: str, path: str, batch_size: int) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    runners = {"polymimic": _polymimic, "robomimic": _robomimic}
    if mode.startswith("imports-"):
        result = _imports_only(mode.removeprefix("imports-"))
    else:
        result = runners[mode](path, batch_size)
    print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb()}))


def _measure(mode: str, path: Path, batch_size: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", mode, "--file", str(path),
               "--batch-size", str(batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_file(path: Path | None, demos_per_operator: int, workers: int) -> Path:
    """The file to read: ``path`` if it exists, else a generation (reused when present)."""
    from polymimic.datasets.generate import generate_dataset
    from polymimic.datasets.registry import data_home, dataset_spec

    if path is not None and path.exists():
        return path
    if path is None:
        path = data_home() / "benchmarks" / f"push-{demos_per_operator}-per-operator.hdf5"
    print(f"generating {path} ({demos_per_operator} demos per operator, {workers} workers)")
    return generate_dataset(dataset_spec(DATASET), path, demos_per_operator, workers=workers,
                            if_exists="reuse", progress=True)


def compare(path: Path, batch_size: int, repeats: int) -> dict[str, Any]:
    """Alternate fresh-process measurements of both sides; medians and ratios."""
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in ("polymimic", "robomimic")}
    imports = {s: _measure(f"imports-{s}", path, batch_size)["peak_rss_mb"] for s in runs}
    for _ in range(repeats):
        for side in runs:
            runs[side].append(_measure(side, path, batch_size))
    medians = {}
    for side, rows in runs.items():
        medians[side] = {k: statistics.median(r[k] for r in rows)
                         for k in ("load_s", "epoch_s", "peak_rss_mb")}
        medians[side]["imports_rss_mb"] = imports[side]
        medians[side]["data_rss_mb"] = medians[side]["peak_rss_mb"] - imports[side]
        medians[side]["items"], medians[side]["batches"] = rows[0]["items"], rows[0]["batches"]
    p, r = medians["polymimic"], medians["robomimic"]
    ratios = {k: p[k] / r[k] for k in ("load_s", "epoch_s", "peak_rss_mb", "data_rss_mb")}
    ratios["load_plus_epoch_s"] = (p["load_s"] + p["epoch_s"]) / (r["load_s"] + r["epoch_s"])
    return {"runs": runs, "median": medians, "ratios": ratios}


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'':10} {'load s':>8} {'epoch s':>8} {'peak MB':>8} {'data MB':>8}"]
    for side, m in result["median"].items():
        lines.append(f"{side:10} {m['load_s']:8.2f} {m['epoch_s']:8.2f} "
                     f"{m['peak_rss_mb']:8.0f} {m['data_rss_mb']:8.0f}")
    q = result["ratios"]
    lines.append(f"{'ratio':10} {q['load_s']:7.2f}x {q['epoch_s']:7.2f}x "
                 f"{q['peak_rss_mb']:7.2f}x {q['data_rss_mb']:7.2f}x   (polymimic / robomimic)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=None, help="existing file (else generate)")
    parser.add_argument("--demos-per-operator", type=int, default=167)
    parser.add_argument("--workers", type=int, default=2, help="processes for generation")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "dataset_load.json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, str(args.file), args.batch_size)
        return
    from polymimic.datasets.validate import validate_dataset
    from polymimic.io import atomic_write_json, library_versions

    path = ensure_file(args.file, args.demos_per_operator, args.workers)
    summary = validate_dataset(path)
    result = compare(path, args.batch_size, args.repeats)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    table = _table(result)
    print(table)
    versions = library_versions()
    versions["robomimic"] = _version("robomimic")
    atomic_write_json(args.out, {
        "command": command, "file": str(path), "num_demos": summary.num_demos,
        "num_steps": summary.total_samples, "batch_size": args.batch_size, "seq_length": SEQ,
        "obs_keys": list(OBS_KEYS), "repeats": args.repeats, **result, "versions": versions,
    })
    args.out.with_suffix(".txt").write_text(
        f"$ {command}\n{summary.num_demos} demos, {summary.total_samples} steps, batch "
        f"{args.batch_size}, 10 obs + 10 actions per item, median of {args.repeats}\n{table}\n"
    )


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
