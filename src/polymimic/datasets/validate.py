"""Whole-file validation of a polymimic dataset and the summary the CLI prints.

Built on the reading functions of :mod:`polymimic.datasets.hdf5`; only shapes and attributes
are read, never the arrays, so validating a large file is cheap.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.hdf5 import (
    _REGENERATE,
    PathLike,
    _corrupt,
    _decode_attr,
    _error,
    _raise_for_demo,
    demo_names,
    get_mask,
    mask_keys,
    open_dataset,
)

#: Ground-truth demo labels that ``dataset_info`` counts when the demos carry them.
LABEL_KEYS = ("operator", "strategy", "style", "quality", "behaviour")


@dataclasses.dataclass
class DatasetSummary:
    """What a validated dataset holds; plain data so a CLI can print it as JSON."""

    path: str  # the file that was validated
    format_version: int  # its polymimic_format_version
    num_demos: int
    total_samples: int  # sum of num_samples over demos (== data.attrs["total"])
    mean_length: float
    min_length: int
    max_length: int
    obs_shapes: dict[str, list[int]]  # observation key -> per-step shape
    action_dim: int
    mask_counts: dict[str, int]  # mask key -> number of demos it names
    label_counts: dict[str, dict[str, int]]  # operator/strategy/... -> value -> demos
    env_args: dict[str, Any]  # decoded env_args JSON
    metadata: dict[str, Any]  # decoded polymimic_metadata JSON (library versions, ...)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def validate_dataset(path: PathLike) -> DatasetSummary:
    """Check a dataset end to end (structure, lengths, totals, masks) and summarise it.

    Only shapes and attributes are read, not the arrays, so this is cheap on big files.

    Raises:
        DatasetError: the first problem found, with what to do about it.
    """
    with open_dataset(path) as f:
        try:
            return _summarise(f)
        except OSError as exc:
            raise _corrupt(f.filename, "data could not be read", exc) from None


def dataset_info(path: PathLike, diagnostics: bool = False) -> dict[str, Any]:
    """robomimic ``get_dataset_info``-like facts about a dataset, as a JSON-ready dict.

    Args:
        path: the dataset file.
        diagnostics: also read the arrays and add ``"diagnostics"``: per-operator episode
            length, RMS jerk and Markov check (``polymimic.datasets.diagnostics``). Off by
            default because it reads every demo (about a second per few hundred demos).

    Raises:
        DatasetError: the file fails validation.
    """
    info = validate_dataset(path).to_dict()
    if diagnostics:
        # Imported here: validation stays cheap for callers that only want counts.
        from polymimic.datasets.diagnostics import operator_diagnostics

        info["diagnostics"] = operator_diagnostics(path)
    return info


def _summarise(f: h5py.File) -> DatasetSummary:
    data = f["data"]
    names = demo_names(f)
    if not names:
        raise _error(f.filename, "'data' holds no demos")
    lengths = _check_demos(f, names)
    total = data.attrs.get("total")
    if total is None or int(total) != sum(lengths):
        problem = f"data.attrs['total'] is {total} but the demos hold {sum(lengths)} samples"
        raise _error(f.filename, f"{problem}; the file was modified or written incompletely")
    masks = {key: get_mask(f, key) for key in mask_keys(f)}
    for key, members in masks.items():
        unknown = sorted(set(members) - set(names))
        if unknown:
            problem = f"mask '{key}' names demos that do not exist: {unknown[:5]}"
            raise _error(f.filename, problem, f"Rewrite the mask with write_masks(). {_REGENERATE}")
    first = data[names[0]]
    return DatasetSummary(
        path=str(f.filename),
        format_version=int(data.attrs["polymimic_format_version"]),
        num_demos=len(names),
        total_samples=int(total),
        mean_length=float(np.mean(lengths)),
        min_length=int(min(lengths)),
        max_length=int(max(lengths)),
        obs_shapes={k: list(v.shape[1:]) for k, v in first["obs"].items()},
        action_dim=int(first["actions"].shape[-1]),
        mask_counts={key: len(members) for key, members in masks.items()},
        label_counts=_label_counts(data, names),
        env_args=_json_attr(f, "env_args"),
        metadata=_json_attr(f, "polymimic_metadata"),
    )


def _check_demos(f: h5py.File, names: list[str]) -> list[int]:
    """Validate every demo and that all share obs keys/shapes and action dim; return lengths."""
    data = f["data"]
    reference = None
    lengths = []
    for name in names:
        demo = data[name]
        _raise_for_demo(f, demo)
        signature = (
            {k: v.shape[1:] for k, v in demo["obs"].items()},
            demo["actions"].shape[1:],
        )
        reference = reference or signature
        if signature != reference:
            problem = f"{name} has obs/action shapes {signature} but {names[0]} has {reference}"
            raise _error(f.filename, f"{problem}; all demos must match")
        lengths.append(int(demo.attrs["num_samples"]))
    return lengths


def _label_counts(data: h5py.Group, names: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for name in names:
        attrs = data[name].attrs
        for label in LABEL_KEYS:
            if label in attrs:
                value = str(_decode_attr(attrs[label]))
                counts.setdefault(label, Counter())[value] += 1
    return {label: dict(sorted(c.items())) for label, c in counts.items()}


def _json_attr(f: h5py.File, key: str) -> dict[str, Any]:
    raw = f["data"].attrs.get(key)
    try:
        value = json.loads(_decode_attr(raw))
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise _error(f.filename, f"data.attrs['{key}'] is missing or not a JSON object")
    return value
