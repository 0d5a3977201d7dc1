"""``polymimic data``: generate, inspect and validate multi-operator datasets."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from polymimic.cli.data_tools import add_tool_commands
from polymimic.cli.options import Parser, float_in, int_in
from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.manifest import check_manifest, load_manifest
from polymimic.datasets.registry import (
    DATA_HOME_ENV,
    DATASETS,
    MAX_DATASET_SEEDS,
    dataset_path,
    dataset_spec,
)
from polymimic.datasets.validate import dataset_info, validate_dataset
from polymimic.io import check_output_file

GENERATE_HELP = f"""Generate a named dataset into an HDF5 file.

By default the file goes to the data home, <home>/<dataset name>/data/demos.hdf5, where
<home> is ${DATA_HOME_ENV} or ~/.polymimic/datasets; --out writes elsewhere. Demos are
recorded into <out>.partial/ first: rerunning a killed generation resumes it. An existing
file of the same dataset and demo count is reused (--overwrite regenerates it). Afterwards
every demo is checked against the dataset's committed content-hash manifest.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="polymimic data", description=__doc__)
    commands = parser.add_subparsers(dest="action", required=True)

    generate = commands.add_parser(
        "generate", help="generate a named dataset into an HDF5 file (resumable)",
        description=GENERATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_generate_arguments(generate)
    generate.set_defaults(run=_generate)

    info = commands.add_parser("info", help="counts, keys, labels and env args of a file (JSON)")
    info.add_argument("path", type=Path)
    info.add_argument(
        "--no-diagnostics", action="store_true",
        help="skip the per-operator jerk / Markov diagnostics (reads only attributes)",
    )
    info.set_defaults(run=_info)

    validate = commands.add_parser("validate", help="check schema and format version")
    validate.add_argument("path", type=Path)
    validate.set_defaults(run=_validate)
    add_tool_commands(commands)
    return parser


def _add_generate_arguments(generate: argparse.ArgumentParser) -> None:
    generate.add_argument(
        "--dataset", default="polymimic/push/multi-operator-v1",
        help=(
            f"named dataset (known: {', '.join(sorted(DATASETS))}; and a same-skill style "
            "pair at any distance d in [0, 1]: polymimic/<task>/style-pair-d<d>-v1; the "
            "compatibility benchmark at any d: polymimic/<task>/compat-d<d>-v1)"
        ),
    )
    generate.add_argument(
        "--out", type=Path, default=None,
        help="output .hdf5 path (default: the dataset's place in the data home)",
    )
    generate.add_argument(
        "--demos-per-operator", type=int_in(1, MAX_DATASET_SEEDS), default=None,
        help="fewer demos than the named dataset's default (the first of each operator)",
    )
    generate.add_argument(
        "--workers", type=int_in(1, 256), default=1, help="parallel processes"
    )
    generate.add_argument(
        "--valid-fraction", type=float_in(0.0, 1.0, high_open=True), default=0.1,
        help="share of successful demos in mask/valid, in [0, 1)",
    )
    generate.add_argument(
        "--overwrite", action="store_true",
        help="regenerate even if the output exists (it is replaced only once complete)",
    )
    generate.add_argument(
        "--strict", action="store_true",
        help="exit non-zero unless every demo matches the dataset's manifest",
    )
    generate.add_argument("--no-progress", action="store_true", help="no progress bar")


def _generate(args: argparse.Namespace) -> int:
    spec = dataset_spec(args.dataset)
    # The generator reports resumption and re-recorded demos through logging.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = check_output_file(args.out if args.out is not None else dataset_path(spec.name))
    start = time.perf_counter()
    path = generate_dataset(
        spec, out, args.demos_per_operator, workers=args.workers,
        valid_fraction=args.valid_fraction,
        if_exists="overwrite" if args.overwrite else "reuse",
        progress=not args.no_progress,
    )
    summary = validate_dataset(path)
    behaviours = summary.label_counts.get("behaviour", {})
    print(
        f"{path}: {summary.num_demos} demos, {summary.total_samples} steps, "
        f"behaviours {behaviours}, {summary.mask_counts.get('failed', 0)} failed "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return _report_manifest(path, spec.name, args.strict)


def _report_manifest(path: Path, dataset: str, strict: bool) -> int:
    """Check the file against its manifest; the exit code (non-zero only with ``strict``)."""
    manifest = load_manifest(dataset)
    if manifest is None:
        print(f"no manifest for {dataset}: its content cannot be checked against reference data")
        return 1 if strict else 0
    check = check_manifest(path, manifest)
    print(check.describe(), file=sys.stdout if check.matches else sys.stderr)
    return 1 if strict and not check.matches else 0


def _info(args: argparse.Namespace) -> int:
    info = dataset_info(args.path, diagnostics=not args.no_diagnostics)
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0


def _validate(args: argparse.Namespace) -> int:
    summary = validate_dataset(args.path)
    print(f"{args.path}: valid (format {summary.format_version}, {summary.num_demos} demos)")
    return 0
