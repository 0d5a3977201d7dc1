"""The loss on held-out demonstrations, scored by the training loop at each evaluation.

The training loss cannot show overfitting, and on small multi-operator datasets it
dominates: BC-MLP (2x256) on the 239 ``train`` demos of Push v1 fits its training actions
to R^2 0.96 after 979k steps while the R^2 on the 26 held-out ``valid`` demos falls from 0.27
at 3k steps to -0.08 (``results/learners/why``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from polymimic.policies.base import Policy

#: Held-out items scored at each evaluation, evenly spaced over the split: a stable mean at a
#: cost well below a log interval.
HELD_OUT_MAX_ITEMS = 4096
#: Seed of the held-out loss's own random draws (diffusion noise and timesteps, dropout).
HELD_OUT_SEED = 20240


@torch.no_grad()
def held_out_loss(
    policy: Policy,
    dataset: Any,
    optimizers: list[str],
    batch_size: int,
    device: torch.device,
    max_items: int = HELD_OUT_MAX_ITEMS,
) -> dict[str, float]:
    """Mean loss terms of ``policy`` over held-out ``dataset`` (up to ``max_items`` items,
    evenly spaced), in eval mode, for each optimiser's loss (prefixed ``<optimiser>/`` when
    there are several, as in the training log).

    A stochastic loss (diffusion's noise and timesteps) draws inside ``torch.random.fork_rng``
    from ``HELD_OUT_SEED``: every evaluation scores the same draws, and the training stream
    is untouched, so a run trains identically with and without a held-out split.
    """
    count = min(len(dataset), max_items)
    indices = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(np.int64))
    was_training = policy.training
    policy.eval()
    sums: dict[str, float] = {}
    forked = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(HELD_OUT_SEED)
            for start in range(0, len(indices), batch_size):
                rows = indices[start : start + batch_size].tolist()
                batch = _fetch(dataset, rows)
                batch = {k: v.to(device) for k, v in batch.items()}
                for name in optimizers:
                    prefix = f"{name}/" if len(optimizers) > 1 else ""
                    for term, value in policy.compute_loss(batch, name).items():
                        key = f"{prefix}{term}"
                        sums[key] = sums.get(key, 0.0) + float(value) * len(rows)
    finally:
        policy.train(was_training)
    return {key: total / len(indices) for key, total in sums.items()}


def _fetch(dataset: Any, rows: list[int]) -> dict[str, torch.Tensor]:
    if hasattr(dataset, "get_batch"):
        return dataset.get_batch(rows)
    return torch.utils.data.default_collate([dataset[i] for i in rows])
