"""Turning dict observations into the flat vectors learners consume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def flatten_obs(obs: Mapping[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """Concatenate low-dim observation keys along the last axis, in ``keys`` order.

    Works for one step (each value shaped (D_k,)) and for sequences ((T, D_k)).

    Raises:
        KeyError: naming the missing key and the keys that are present.
    """
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(f"observation keys {missing} not found; available keys: {sorted(obs)}")
    parts = [np.asarray(obs[k], dtype=np.float32) for k in keys]
    return np.concatenate([p.reshape(*p.shape[: p.ndim - 1 if p.ndim else 0], -1) for p in parts], axis=-1)
