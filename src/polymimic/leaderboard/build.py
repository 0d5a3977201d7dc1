"""``polymimic leaderboard build RUN_DIR``: a submission bundle from a training run.

A run directory of ``polymimic train`` holds ``train_config.json`` and
``checkpoints/last/`` (``model.safetensors`` + ``config.json``, whose ``dataset`` field names
the training file). The bundle takes the checkpoint as it is, the run's config as
``training_config``, the claimed metrics from an ``eval_info.json`` of ``polymimic eval``
(by default ``checkpoints/last/eval/eval_info.json``), the library versions of this
machine, and the dataset's id and content hash: for a generated dataset the same hash the
named datasets' manifests give (``manifest.combined_digest``), so a full-size named dataset
qualifies for the fixed-data track; for any other file the sha256 of its bytes.

The finished bundle is read back through :func:`bundle.read_bundle`, so ``build`` never
writes a bundle the server would refuse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from polymimic.datasets.reader import DatasetError, open_dataset, read_json_attr
from polymimic.errors import OptionError, OutputPathError
from polymimic.io import atomic_write, library_versions
from polymimic.leaderboard.bundle import MEMBERS, SUBMISSION_FILE, BundleLimits, read_bundle
from polymimic.leaderboard.schema import CLAIMED_METRICS, SCHEMA_VERSION
from polymimic.policies.checkpoint import CONFIG_FILE, MODEL_FILE, read_checkpoint_config


def dataset_identity(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(id, content sha256) of a training dataset file.

    Raises:
        OptionError: the file does not exist.
    """
    from polymimic.datasets.manifest import combined_digest, file_digests

    path = Path(path)
    if not path.is_file():
        raise OptionError(f"dataset {path} does not exist; pass --dataset PATH (the file the "
                          "run trained on)")
    try:
        with open_dataset(path) as f:
            name = read_json_attr(f, "polymimic_metadata").get("dataset_name")
        return str(name or path.name), combined_digest(file_digests(path))
    except DatasetError:
        # Not a generated dataset (no per-demo keys): hash the file's bytes instead.
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return path.name, digest.hexdigest()


def _claims(eval_info: Path) -> dict[str, float | None]:
    if not eval_info.is_file():
        raise OptionError(f"no {eval_info}: evaluate the checkpoint first (`polymimic eval "
                          "--checkpoint DIR`) or pass --eval-info FILE")
    aggregated = json.loads(eval_info.read_text(encoding="utf-8")).get("aggregated") or {}
    return {key: aggregated.get(key) for key in CLAIMED_METRICS}


def submission_document(
    run_dir: Path, checkpoint: Path, name: str, eval_info: Path, dataset: Path | None,
    links: dict[str, str],
) -> dict[str, Any]:
    """``submission.json`` for a run (checked later, with the rest, by ``read_bundle``)."""
    config = read_checkpoint_config(checkpoint)
    train_config_path = run_dir / "train_config.json"
    if not train_config_path.is_file():
        raise OptionError(f"{run_dir} has no train_config.json; pass the run directory that "
                          "`polymimic train` wrote (hydra.run.dir)")
    dataset_id, dataset_sha = dataset_identity(dataset or config.get("dataset", ""))
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "task": (config.get("env_args") or {}).get("env_name"),
        "policy_type": config.get("policy_type"),
        "dataset": {"id": dataset_id, "sha256": dataset_sha},
        "training_config": json.loads(train_config_path.read_text(encoding="utf-8")),
        "claimed_metrics": _claims(eval_info),
        "versions": library_versions(),
        "links": links,
    }


def _write(out: Path, files: dict[str, bytes]) -> None:
    if out.suffix == ".zip":
        def write_zip(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in MEMBERS:
                    archive.writestr(name, files[name])

        atomic_write(out, write_zip)
        return
    out.mkdir(parents=True)
    for name in MEMBERS:
        (out / name).write_bytes(files[name])


def build_bundle(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    name: str,
    eval_info: str | os.PathLike[str] | None = None,
    dataset: str | os.PathLike[str] | None = None,
    links: dict[str, str] | None = None,
    limits: BundleLimits | None = None,
) -> Path:
    """Write a bundle (a directory, or a zip when ``out`` ends in ``.zip``) for a run.

    Raises:
        OptionError: a missing run file, dataset or eval_info.json.
        OutputPathError: ``out`` exists.
        SubmissionError: the result would be refused by the server (it is removed).
    """
    run_dir, out = Path(run_dir), Path(out)
    checkpoint = run_dir / "checkpoints" / "last"
    if out.exists():
        raise OutputPathError(f"{out} exists; choose another output path or remove it")
    eval_path = Path(eval_info) if eval_info else checkpoint / "eval" / "eval_info.json"
    document = submission_document(run_dir, checkpoint, name, eval_path,
                                   Path(dataset) if dataset else None, links or {})
    files = {
        SUBMISSION_FILE: (json.dumps(document, indent=2, allow_nan=False) + "\n").encode(),
        CONFIG_FILE: (checkpoint / CONFIG_FILE).read_bytes(),
        MODEL_FILE: (checkpoint / MODEL_FILE).read_bytes(),
    }
    _write(out, files)
    try:
        read_bundle(out, limits)
    except BaseException:
        shutil.rmtree(out) if out.is_dir() else out.unlink(missing_ok=True)
        raise
    return out
