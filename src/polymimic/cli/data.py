"""``polymimic data``: generate, inspect and validate multi-operator datasets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.registry import DATASETS, dataset_spec
from polymimic.datasets.validate import dataset_info, validate_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polymimic data", description=__doc__)
    commands = parser.add_subparsers(dest="action", required=True)

    generate = commands.add_parser("generate", help="generate a named dataset into an HDF5 file")
    generate.add_argument(
        "--dataset", default="polymimic/push/multi-operator-v0",
        help=f"named dataset (known: {', '.join(sorted(DATASETS))})",
    )
    generate.add_argument("--out", required=True, type=Path, help="output .hdf5 path")
    generate.add_argument(
        "--demos-per-operator", type=int, default=None,
        help="fewer demos than the named dataset's default, for quick runs",
    )
    generate.add_argument("--workers", type=int, default=1, help="parallel processes")
    generate.add_argument("--valid-fraction", type=float, default=0.1)
    generate.set_defaults(run=_generate)

    info = commands.add_parser("info", help="counts, keys, labels and env args of a file (JSON)")
    info.add_argument("path", type=Path)
    info.set_defaults(run=_info)

    validate = commands.add_parser("validate", help="check schema and format version")
    validate.add_argument("path", type=Path)
    validate.set_defaults(run=_validate)
    return parser


def _generate(args: argparse.Namespace) -> int:
    spec = dataset_spec(args.dataset)
    start = time.perf_counter()
    path = generate_dataset(
        spec, args.out, args.demos_per_operator, workers=args.workers,
        valid_fraction=args.valid_fraction,
    )
    summary = validate_dataset(path)
    behaviours = summary.label_counts.get("behaviour", {})
    print(
        f"wrote {path}: {summary.num_demos} demos, {summary.total_samples} steps, "
        f"behaviours {behaviours} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    print(json.dumps(dataset_info(args.path), indent=2, sort_keys=True))
    return 0


def _validate(args: argparse.Namespace) -> int:
    summary = validate_dataset(args.path)
    print(f"{args.path}: valid (format {summary.format_version}, {summary.num_demos} demos)")
    return 0
