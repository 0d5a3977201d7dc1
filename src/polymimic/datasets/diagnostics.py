"""Per-operator diagnostics of a demonstration dataset: length, smoothness, Markovianity.

``polymimic data info`` reports, for each operator (the ``operator`` attr of its demos):

* **episode length** (mean/min/max steps) and the success rate, from the attrs;
* **RMS jerk** of the end effector, :func:`rms_jerk`, on the first observation key named
  ``tip_pos`` (end-effector position in metres, so the jerk is in m/s^3) or, when the file
  has no such key, on the actions (then in action units/s^3: comparable between operators
  of one file only). ``dt`` is the task's control period (Push: 25 x 2 ms = 0.05 s, 20 Hz);
* a **Markov check**, :func:`markov_check`: how well the next action is predicted from the
  current observation alone versus the observation plus the previous ``k`` actions.

Why the Markov check: a learner given a history of observations/actions (BC-RNN, diffusion
with ``obs_horizon > 1``, transformers) can beat a Markovian learner on a dataset for the
wrong reason: the operators' scripts carry hidden state (which block is being pushed, a
pause counter, a "lost the block" flag, slowly drifting aim errors) that the observation
does not show but recent actions reveal. A large gap between the two held-out R² flags such
non-Markovian operators, so a comparison of learners can be read with that in mind.

Everything here works on arrays and ``h5py`` reads only; the metric functions import no
simulator code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from polymimic.datasets.hdf5 import (
    PathLike,
    check_demo,
    demo_attrs,
    demo_names,
    open_dataset,
    read_demo_arrays,
    read_env_args,
)

#: Observation key used for the end-effector path when present.
END_EFFECTOR_KEY = "tip_pos"
#: Defaults of the Markov check (see ``markov_check``).
HISTORY = 4
NEIGHBOURS = 10
FOLDS = 5
MAX_TRAIN_ROWS = 3000
MAX_TEST_ROWS = 1500
# Standardisation leaves a (nearly) constant feature unscaled instead of blowing it up.
_STD_FLOOR = 1e-8
_ALL = "(all)"  # group name when demos carry no operator attr


@dataclasses.dataclass(frozen=True)
class MarkovCheck:
    """Held-out R² of a k-NN action regressor with and without action history.

    Attributes:
        r2_state: R² predicting a_t from o_t.
        r2_history: R² predicting a_t from (o_t, a_{t-1}, ..., a_{t-k}).
        gap: ``r2_history - r2_state``; large means history carries what the state lacks.
        cv: ``"episodes"`` (folds are whole episodes) or ``"time-blocks"`` (one episode cut
            into contiguous blocks: neighbouring steps leak, so both R² are optimistic).
        num_steps: steps the check was computed on.
    """

    r2_state: float
    r2_history: float
    gap: float
    cv: str
    num_steps: int


# --------------------------------------------------------------------------- metrics


def rms_jerk(paths: Sequence[np.ndarray], dt: float) -> float:
    """Root-mean-square jerk over a set of paths sampled every ``dt`` seconds.

    With ``p_t`` the position at step ``t``, the jerk is the third finite difference
    ``j_t = (p_{t+3} - 3 p_{t+2} + 3 p_{t+1} - p_t) / dt^3`` and the result is
    ``sqrt(mean_t ||j_t||^2)`` pooled over every step of every path (paths shorter than 4
    steps contribute nothing). Flash & Hogan (1985) use jerk as the smoothness cost of human
    reaching; a jittery or hesitating operator scores high.

    Args:
        paths: (T_i, D) arrays.
        dt: sampling period in seconds (> 0).

    Returns:
        The RMS jerk in position units / s^3, or NaN when no path has 4 steps.
    """
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    squared = [
        np.sum(np.diff(np.asarray(p, np.float64).reshape(len(p), -1), n=3, axis=0) ** 2, axis=1)
        for p in paths
        if len(p) >= 4
    ]
    if not squared:
        return float("nan")
    return float(np.sqrt(np.mean(np.concatenate(squared))) / dt**3)


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float:
    """Coefficient of determination pooled over output dimensions.

    ``R² = 1 - sum ||y_i - ŷ_i||^2 / sum ||y_i - ȳ||^2``: 1 is perfect, 0 is no better than
    predicting the mean, negative is worse than that. NaN when ``y`` is constant.
    """
    y = np.asarray(y, dtype=np.float64)
    total = float(np.sum((y - y.mean(axis=0)) ** 2))
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y - prediction) ** 2)) / total


def knn_regress(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, neighbours: int = NEIGHBOURS
) -> np.ndarray:
    """Mean target of the ``neighbours`` nearest training rows (Euclidean, standardised).

    Features are standardised with the training rows' mean and std, so no unit dominates.
    """
    mean, std = train_x.mean(axis=0), train_x.std(axis=0)
    std = np.where(std < _STD_FLOOR, 1.0, std)
    a, b = (train_x - mean) / std, (test_x - mean) / std
    k = min(neighbours, len(a))
    squared_a = np.sum(a * a, axis=1)
    out = np.empty((len(b), train_y.shape[1]))
    for start in range(0, len(b), 1024):  # chunks bound the distance matrix's memory
        chunk = b[start : start + 1024]
        distances = squared_a[None, :] - 2.0 * chunk @ a.T
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        out[start : start + len(chunk)] = train_y[nearest].mean(axis=1)
    return out


def history_features(obs: np.ndarray, actions: np.ndarray, history: int) -> np.ndarray:
    """Rows ``(o_t, a_{t-1}, ..., a_{t-history})``; actions before the episode start are 0."""
    parts = [obs]
    for lag in range(1, history + 1):
        lagged = np.zeros_like(actions)
        lagged[lag:] = actions[: max(len(actions) - lag, 0)]
        parts.append(lagged)
    return np.concatenate(parts, axis=1)


def _evenly(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices spread evenly over ``range(n)`` (deterministic subsample)."""
    if n <= limit:
        return np.arange(n)
    # Spacing > 1, so the rounded positions are distinct.
    return np.linspace(0, n - 1, limit).round().astype(np.int64)


def _cross_validated_r2(x: np.ndarray, y: np.ndarray, groups: np.ndarray, neighbours: int) -> float:
    """Pooled held-out R² of ``knn_regress`` with one fold per distinct group value."""
    truths, predictions = [], []
    for fold in np.unique(groups):
        train, test = np.flatnonzero(groups != fold), np.flatnonzero(groups == fold)
        train = train[_evenly(len(train), MAX_TRAIN_ROWS)]
        test = test[_evenly(len(test), MAX_TEST_ROWS // len(np.unique(groups)) + 1)]
        predictions.append(knn_regress(x[train], y[train], x[test], neighbours))
        truths.append(y[test])
    return r2_score(np.concatenate(truths), np.concatenate(predictions))


def markov_check(
    episodes: Sequence[tuple[np.ndarray, np.ndarray]],
    history: int = HISTORY,
    neighbours: int = NEIGHBOURS,
    folds: int = FOLDS,
) -> MarkovCheck | None:
    """Compare next-action prediction from the state alone and from state plus history.

    A k-nearest-neighbour regressor (k = ``neighbours``, Euclidean distance on features
    standardised per training fold) predicts ``a_t`` from ``o_t`` and, separately, from
    ``(o_t, a_{t-1}, ..., a_{t-history})``. Both are scored by held-out R² (``r2_score``)
    under grouped cross-validation: episode ``i`` is in fold ``i mod folds``, so no
    episode is in its own training set; a single episode is cut into ``folds``
    contiguous time blocks instead (optimistic, flagged by ``cv``). Training and test rows
    are subsampled evenly to at most ``MAX_TRAIN_ROWS``/``MAX_TEST_ROWS`` per check, which
    keeps the cost bounded and the result deterministic.

    k-NN rather than a linear model: a linear fit of a nonlinear (but Markovian) script
    would leave state-only R² low and let the previous action, which for a smooth policy
    is close to the current one, fill the gap. k-NN is consistent, so for a Markovian
    operator the gap shrinks with data. It does not vanish in finite samples (the last
    action of a smooth operator is a cheap, accurate estimate), so compare gaps between the
    operators of one file rather than against zero.

    Args:
        episodes: (observations (T, D), actions (T, A)) per episode, in a fixed order.
        history: number of previous actions in the history features.
        neighbours: k of the k-NN regressor.
        folds: number of cross-validation folds.

    Returns:
        The check, or None when there are fewer than ``2 * folds`` steps.
    """
    episodes = [(np.asarray(o, np.float64), np.asarray(a, np.float64)) for o, a in episodes]
    steps = sum(len(a) for _, a in episodes)
    if steps < 2 * folds or not episodes:
        return None
    if len(episodes) >= 2:
        cv = "episodes"
        groups = np.concatenate([np.full(len(a), i % folds) for i, (_, a) in enumerate(episodes)])
    else:
        cv = "time-blocks"
        groups = np.arange(steps) * folds // steps
    y = np.concatenate([a for _, a in episodes])
    state = np.concatenate([o for o, _ in episodes])
    with_history = np.concatenate([history_features(o, a, history) for o, a in episodes])
    r2_state = _cross_validated_r2(state, y, groups, neighbours)
    r2_history = _cross_validated_r2(with_history, y, groups, neighbours)
    return MarkovCheck(r2_state, r2_history, r2_history - r2_state, cv, steps)


# --------------------------------------------------------------------------- files


def control_dt(env_args: dict[str, Any]) -> float | None:
    """The env's control period in seconds, from its task class, without building it.

    polymimic tasks declare ``physics_timestep * substeps``. None for any id that is not a
    polymimic task: the id comes from the file, and looking up another id through Gymnasium
    could import code (``module:Env``), so it is never looked up.
    """
    from polymimic.envs import TASK_CLASSES

    name = env_args.get("env_name")
    cls = next((c for c in TASK_CLASSES if c.task_id == name), None)
    return None if cls is None else cls.physics_timestep * cls.substeps


def _low_dim_keys(demo: h5py.Group) -> list[str]:
    """Observation keys with at most one dimension per step (images are left out)."""
    return sorted(k for k, v in demo["obs"].items() if v.ndim <= 2)


def _read_groups(f: h5py.File, names: list[str]) -> dict[str, dict[str, list]]:
    """Per operator: flattened observations, actions, end-effector path, lengths, successes."""
    keys = _low_dim_keys(check_demo(f, names[0]))
    groups: dict[str, dict[str, list]] = {}
    for name in names:
        arrays = read_demo_arrays(f, name, ["actions", *(f"obs/{k}" for k in keys)])
        actions = arrays["actions"].reshape(len(arrays["actions"]), -1)
        obs = {k: arrays[f"obs/{k}"].reshape(len(actions), -1) for k in keys}
        attrs = demo_attrs(f["data"][name])
        operator = str(attrs["operator"]) if "operator" in attrs else _ALL
        group = groups.setdefault(operator, {"episodes": [], "paths": [], "success": []})
        group["episodes"].append((np.concatenate([obs[k] for k in keys], axis=1), actions))
        group["paths"].append(obs.get(END_EFFECTOR_KEY, actions))
        if "success" in attrs:
            group["success"].append(bool(attrs["success"]))
    return groups


def operator_diagnostics(path: PathLike, history: int = HISTORY) -> dict[str, Any]:
    """Length, jerk and Markov check of every operator in a dataset, as a JSON-ready dict.

    Returns:
        ``{"dt", "jerk_source", "jerk_units", "markov": {...settings}, "operators":
        {operator: {"num_demos", "success_rate", "length_mean", "length_min", "length_max",
        "rms_jerk", "markov_r2_state", "markov_r2_history", "markov_gap", "markov_cv"}}}``;
        R² values are None where a check had too few steps.

    Raises:
        DatasetError: an unreadable file.
    """
    with open_dataset(path) as f:
        names = demo_names(f)
        env_args = read_env_args(f)
        has_effector = END_EFFECTOR_KEY in f["data"][names[0]]["obs"]
        source = f"obs/{END_EFFECTOR_KEY}" if has_effector else "actions"
        groups = _read_groups(f, names)
    dt = control_dt(env_args)
    units = ("m" if source != "actions" else "action units") + ("/s^3" if dt else "/step^3")
    operators = {}
    for operator, group in sorted(groups.items()):
        lengths = [len(a) for _, a in group["episodes"]]
        check = markov_check(group["episodes"], history=history)
        successes = group["success"]
        operators[operator] = {
            "num_demos": len(lengths),
            "success_rate": float(np.mean(successes)) if successes else None,
            "length_mean": float(np.mean(lengths)),
            "length_min": int(min(lengths)),
            "length_max": int(max(lengths)),
            "rms_jerk": _finite_or_none(rms_jerk(group["paths"], dt or 1.0)),
            "markov_r2_state": _finite_or_none(check.r2_state) if check else None,
            "markov_r2_history": _finite_or_none(check.r2_history) if check else None,
            "markov_gap": _finite_or_none(check.gap) if check else None,
            "markov_cv": check.cv if check else None,
        }
    return {
        "dt": dt,
        "jerk_source": source,
        "jerk_units": units,
        "markov": {
            "regressor": f"{NEIGHBOURS}-NN on standardised features",
            "state": "all low-dim obs keys at t",
            "history": f"state + previous {history} actions",
            "score": f"held-out R^2, {FOLDS}-fold grouped by episode",
        },
        "operators": operators,
    }


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN; None says "could not be computed" unambiguously.
    return round(float(value), 4) if np.isfinite(value) else None
