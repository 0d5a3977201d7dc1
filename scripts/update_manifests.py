"""Regenerate the committed content-hash manifests of the named datasets (maintainers only).

    python scripts/update_manifests.py [--dataset NAME ...] [--workers N]

Generates each named dataset in full (every operator, the spec's demos per operator) into a
scratch directory, hashes every demo and writes
``src/polymimic/datasets/manifests/<name>.json``. Run it after any change to the tasks,
operators or pinned library versions that changes the data, and commit the result with that
change: the manifests are what `polymimic data generate` calls the reference data.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from polymimic.datasets.generate import generate_dataset
from polymimic.datasets.manifest import (
    build_manifest,
    combined_digest,
    file_digests,
    load_manifest,
    manifest_dir,
    write_manifest,
)
from polymimic.datasets.registry import DATASETS, dataset_spec


def update_manifest(name: str, scratch: Path, workers: int, demos_per_operator: int | None) -> None:
    """Generate one dataset in ``scratch`` and write its manifest; print what changed."""
    spec = dataset_spec(name)
    start = time.perf_counter()
    path = generate_dataset(
        spec, scratch / name.replace("/", "__") / "demos.hdf5", demos_per_operator,
        workers=workers, if_exists="overwrite", progress=True,
    )
    manifest = build_manifest(path, name)
    old = load_manifest(name)
    written = write_manifest(manifest)
    changed = "new" if old is None else ("unchanged" if old["demos"] == manifest["demos"] else "changed")
    total = sum(len(v) for v in manifest["demos"].values())
    print(
        f"{written}: {name}, {total} demos, {changed}, combined sha256 "
        f"{combined_digest(file_digests(path))} ({time.perf_counter() - start:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", help="only these datasets (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="parallel recording processes")
    parser.add_argument(
        "--demos-per-operator", type=int, default=None,
        help="fewer demos than the spec (for trying the script; commit only full manifests)",
    )
    parser.add_argument(
        "--scratch", type=Path, default=None,
        help="keep the generated files here (resumable); default a temporary directory",
    )
    args = parser.parse_args()
    names = args.dataset or sorted(DATASETS)
    print(f"writing manifests into {manifest_dir()}")
    if args.scratch is not None:
        for name in names:
            update_manifest(name, args.scratch, args.workers, args.demos_per_operator)
        return
    with tempfile.TemporaryDirectory(prefix="polymimic-manifests-") as scratch:
        for name in names:
            update_manifest(name, Path(scratch), args.workers, args.demos_per_operator)


if __name__ == "__main__":
    main()
