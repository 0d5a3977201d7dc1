"""A scoring written into its dataset, atomically, beside everything already there.

For a scoring named ``<name>`` (``compat_<scorer>_<hash8>``, ``compat.scoring``):

- ``data.attrs[<name>]``: the full record as JSON (base demos and split, scorer, K, seed,
  thresholds and where they came from, checkpoints' sha256, library versions);
- ``data/demo_i.attrs``: ``<name>_score`` (the continuous per-demo score, > 0 iff
  rejected), ``<name>_incompatible_fraction``, ``<name>_incompatible_steps`` and
  ``<name>_rejected``;
- ``data/demo_i/compat/<name>_weight`` (float32 per step: 0 for an incompatible step, 1
  otherwise; step-level filtering), ``<name>_likelihood`` and ``<name>_novelty``;
- ``mask/<name>_keep`` (kept demos) and ``mask/<name>_reject``, robomimic filter keys:
  ``polymimic train filter_key=<name>_keep`` trains on the filtered data.

The file is copied next to itself, the copy is modified and then moved over the original
with ``os.replace`` (``polymimic.io.atomic_write``): a reader sees the old file or the
complete new one, and an interruption leaves the original untouched. Nothing else in the
file changes. A scoring whose name is already in the file is refused unless ``overwrite``
(then its entries, and only those, are replaced); a different scoring has a different name,
so it is written beside the first. HDF5 does not return the space of deleted entries, so
overwriting grows the file a little.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polymimic.compat.scoring import NAME_PREFIX, ScoringResult
from polymimic.datasets.hdf5 import write_masks
from polymimic.datasets.reader import PathLike, demo_attrs, demo_names, open_dataset, read_json_attr
from polymimic.errors import UserError
from polymimic.io import atomic_write

STEP_GROUP = "compat"
STEP_FIELDS = ("weight", "likelihood", "novelty")
DEMO_FIELDS = ("score", "incompatible_fraction", "incompatible_steps", "rejected")
MASK_SUFFIXES = ("keep", "reject")


class ScoringExistsError(UserError):
    """The dataset already holds a scoring of this name."""


def scoring_names(path: PathLike) -> list[str]:
    """The names of the scorings recorded in a dataset, sorted."""
    with open_dataset(path) as f:
        return sorted(k for k in f["data"].attrs if str(k).startswith(NAME_PREFIX))


def check_writable(path: PathLike, name: str, overwrite: bool) -> None:
    """Refuse, before any work, a name the file already holds (unless ``overwrite``).

    Raises:
        ScoringExistsError: naming the scoring and the way out.
    """
    if not overwrite and name in scoring_names(path):
        raise _exists(path, name)


def _exists(path: PathLike, name: str) -> ScoringExistsError:
    return ScoringExistsError(
        f"{path} already holds the scoring {name} (the same base, scorer, members, seed "
        "and thresholds); pass --overwrite to replace it, or change a setting"
    )


def write_scoring(path: PathLike, result: ScoringResult, overwrite: bool = False) -> dict[str, list[str]]:
    """Write ``result`` into ``path`` atomically (module docstring).

    Returns:
        The masks written: ``{<name>_keep: demos, <name>_reject: demos}``.

    Raises:
        ScoringExistsError: the name exists and ``overwrite`` is False.
        DatasetError: an unreadable file, or demos of the result the file does not hold.
    """
    check_writable(path, result.name, overwrite)
    rejected = result.per_demo.rejected
    masks = {
        f"{result.name}_keep": [d for d, r in zip(result.demos, rejected, strict=True) if not r],
        f"{result.name}_reject": [d for d, r in zip(result.demos, rejected, strict=True) if r],
    }

    def write(tmp: Path) -> None:
        shutil.copyfile(path, tmp)
        with open_dataset(tmp, mode="r+") as f:
            if result.name in f["data"].attrs:
                if not overwrite:  # written by another process since the check above
                    raise _exists(path, result.name)
                remove_scoring(f, result.name)
            write_demo_entries(f, result)
            f["data"].attrs[result.name] = json.dumps(result.record, sort_keys=True)
        write_masks(tmp, masks)

    atomic_write(path, write)
    return masks


def remove_scoring(f: h5py.File, name: str) -> None:
    """Delete every entry of the scoring ``name`` from an open file, and nothing else."""
    prefix = f"{name}_"
    for demo in demo_names(f):
        group = f["data"][demo]
        for key in [k for k in group.attrs if str(k).startswith(prefix)]:
            del group.attrs[key]
        if STEP_GROUP in group:
            for key in [k for k in group[STEP_GROUP] if k.startswith(prefix)]:
                del group[STEP_GROUP][key]
    for suffix in MASK_SUFFIXES:
        if "mask" in f and f"{prefix}{suffix}" in f["mask"]:
            del f["mask"][f"{prefix}{suffix}"]
    if name in f["data"].attrs:
        del f["data"].attrs[name]


def write_demo_entries(f: h5py.File, result: ScoringResult) -> None:
    """Every demo's attrs and per-step datasets of ``result`` (module docstring)."""
    per_demo = result.per_demo
    step_values = {"weight": result.weights.astype(np.float32),
                   "likelihood": result.likelihood, "novelty": result.novelty}  # fmt: skip
    for i, demo in enumerate(result.demos):
        group = f["data"][demo]
        attrs = {
            "score": np.float64(per_demo.score[i]),
            "incompatible_fraction": np.float64(per_demo.incompatible_fraction[i]),
            "incompatible_steps": np.int64(per_demo.incompatible_steps[i]),
            "rejected": np.bool_(per_demo.rejected[i]),
        }
        for key, value in attrs.items():
            group.attrs[f"{result.name}_{key}"] = value
        steps = group.require_group(STEP_GROUP)
        rows = result.demo_index == i
        for key, values in step_values.items():
            steps.create_dataset(f"{result.name}_{key}", data=values[rows])


def read_scoring(path: PathLike, name: str) -> dict[str, Any]:
    """A scoring as written: ``{"record": ..., "demos": {demo: {field: value}}}``.

    Raises:
        UserError: no scoring of that name (the message lists those there are).
    """
    known = scoring_names(path)
    if name not in known:
        raise UserError(f"{path} holds no scoring {name!r}; scorings: {known or 'none'}")
    record = read_json_attr(path, name)
    with open_dataset(path) as f:
        demos = {}
        for demo in demo_names(f):
            attrs = demo_attrs(f["data"][demo])
            demos[demo] = {k: attrs[f"{name}_{k}"] for k in DEMO_FIELDS if f"{name}_{k}" in attrs}
    return {"record": record, "demos": demos}
