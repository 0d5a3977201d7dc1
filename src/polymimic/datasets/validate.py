"""Whole-file validation of a polymimic dataset and the summary the CLI prints.

Built on the one reader (:mod:`polymimic.datasets.reader`): the same structure, dtype, shape,
size and value checks training applies, over every demo, with every array read (a few
seconds for a few hundred demos). ``validate_dataset`` reports every problem it finds (up to
``MAX_REPORTED``), not only the first.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import h5py
import numpy as np

from polymimic.datasets import schema
from polymimic.datasets.reader import (
    _REGENERATE,
    DatasetError,
    PathLike,
    _corrupt,
    _decode_attr,
    _error,
    all_array_keys,
    check_demo,
    demo_attrs,
    demo_names,
    get_mask,
    mask_keys,
    open_dataset,
    read_demo_arrays,
    read_env_args,
    read_json_attr,
)

#: At most this many problems are listed in one validation error.
MAX_REPORTED = 10
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


def validate_dataset(path: PathLike, check_values: bool = True) -> DatasetSummary:
    """Check a dataset end to end and summarise it.

    Checks the header (format version, no links out of the file), every demo's structure,
    dtypes, shapes and sizes, that all demos share observation keys and widths, the total,
    the masks, ``env_args`` and, with ``check_values``, that every float array is finite
    and every flag 0/1.

    Args:
        path: the dataset file.
        check_values: read every array to check its values (False: shapes and attributes only).

    Raises:
        DatasetError: listing every problem found (up to ``MAX_REPORTED``), with the fix.
    """
    with open_dataset(path) as f:
        try:
            return _summarise(f, check_values)
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


def _summarise(f: h5py.File, check_values: bool) -> DatasetSummary:
    data = f["data"]
    names = demo_names(f)
    if not names:
        raise _error(f.filename, "'data' holds no demos")
    lengths = _check_demos(f, names, check_values)
    total = _decode_attr(data.attrs.get("total"))
    whole = isinstance(total, int | float) and not isinstance(total, bool) and (
        np.isfinite(total) and float(total).is_integer()
    )
    if not whole or int(total) != sum(lengths):
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
        env_args=_allowed_env_args(f),
        metadata=read_json_attr(f, "polymimic_metadata"),
    )


def _check_demos(f: h5py.File, names: list[str], check_values: bool) -> list[int]:
    """Validate every demo and that all share obs keys/shapes and action dim; return lengths.

    Raises:
        DatasetError: listing up to ``MAX_REPORTED`` of the problems found.
    """
    reference, reference_name = None, names[0]
    lengths, problems = [], []
    for name in names:
        try:
            demo = check_demo(f, name)
            if check_values:
                read_demo_arrays(f, name, all_array_keys(f, name))
            demo_attrs(demo)
        except DatasetError as exc:
            problems.append(exc.problem or str(exc))
            lengths.append(0)
            continue
        signature = (
            {k: v.shape[1:] for k, v in demo["obs"].items()},
            demo["actions"].shape[1:],
        )
        if reference is None:
            reference, reference_name = signature, name
        elif signature != reference:
            problems.append(
                f"{name} has obs/action shapes {signature} but {reference_name} has {reference}"
            )
        lengths.append(int(demo.attrs["num_samples"]))
    if problems:
        listed = "; ".join(problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise _error(f.filename, f"{count}: {listed}{more}")
    if sum(lengths) > schema.MAX_TOTAL_STEPS:
        raise _error(f.filename, f"demos hold {sum(lengths)} steps (at most {schema.MAX_TOTAL_STEPS})")
    return lengths


def _allowed_env_args(f: h5py.File) -> dict[str, Any]:
    """The file's env_args, which must name a polymimic task with allowed kwargs."""
    from polymimic.envs.allowlist import EnvRequestError, check_env_args

    env_args = read_env_args(f)
    try:
        check_env_args(env_args)
    except EnvRequestError as exc:
        raise _error(f.filename, f"data.attrs['env_args'] is not allowed: {exc}") from None
    return env_args


def _label_counts(data: h5py.Group, names: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for name in names:
        attrs = data[name].attrs
        for label in LABEL_KEYS:
            if label in attrs:
                value = str(_decode_attr(attrs[label]))[:200]
                counts.setdefault(label, Counter())[value] += 1
    return {label: dict(sorted(c.items())) for label, c in counts.items()}
