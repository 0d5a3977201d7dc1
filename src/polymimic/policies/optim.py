"""What a learner hands the training loop: its optimisers, their schedules and cadence.

A learner's ``configure_optimizers(num_training_steps)`` returns one :class:`OptimizerSpec`
per optimiser. The loop steps them in order, each on the loss the learner computes for it
(``compute_loss(batch, optimizer=spec.name)``), checkpoints all of them (state and
schedule) for an exact resume, and calls the learner's ``on_step_end(step)`` afterwards (EMA,
target networks). Several optimisers serve actor-critic learners (a critic every step, an
actor every ``every``-th step as in TD3); one serves behaviour cloning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch

#: Learning-rate schedules a config may name (diffusers' ``get_scheduler`` implements them).
LR_SCHEDULES = ("constant", "constant_with_warmup", "linear", "cosine")


@dataclasses.dataclass
class OptimizerSpec:
    """One optimiser of a learner.

    Attributes:
        name: names its loss (``compute_loss(batch, optimizer=name)``) and its checkpoint state.
        optimizer: over the parameters it updates (no parameter in two optimisers).
        scheduler: a ``torch.optim.lr_scheduler.LRScheduler`` stepped after each of this
            optimiser's steps, or None.
        every: step this optimiser on training steps divisible by ``every`` (1: every step).
    """

    name: str
    optimizer: torch.optim.Optimizer
    scheduler: Any | None = None
    every: int = 1


def adamw_with_schedule(
    name: str,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    weight_decay: float,
    schedule: str,
    warmup_steps: int,
    num_training_steps: int,
    every: int = 1,
    betas: tuple[float, float] = (0.9, 0.999),
) -> OptimizerSpec:
    """AdamW plus one of ``LR_SCHEDULES`` (None for ``constant`` without warm-up).

    The schedule comes from diffusers' ``get_scheduler`` (a ``LambdaLR``), the library
    Diffusion Policy uses for its cosine schedule with warm-up. ``params`` may be parameter
    groups (:func:`weight_decay_groups`); ``weight_decay`` is the default of groups that do
    not set their own.

    Raises:
        ValueError: an unknown schedule name.
    """
    optimizer = torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay, betas=(float(betas[0]), float(betas[1]))
    )
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose from {LR_SCHEDULES}")
    scheduler = None
    if schedule != "constant" or warmup_steps > 0:
        from diffusers.optimization import get_scheduler  # imported only when scheduling

        name_for_diffusers = "constant_with_warmup" if schedule == "constant" else schedule
        scheduler = get_scheduler(
            name_for_diffusers,
            optimizer,
            num_warmup_steps=warmup_steps,
            num_training_steps=max(num_training_steps // every, 1),
        )
    return OptimizerSpec(name, optimizer, scheduler, every)


def weight_decay_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW parameter groups: the weight matrices of linear and convolution layers
    decay, every other parameter (biases, norm scales, position embeddings) does not.

    minGPT's ``configure_optimizers`` rule (Karpathy), which BeT and Diffusion Policy's
    transformer use: decaying a norm's scale or a bias towards 0 only hurts.
    """
    decayed = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.ConvTranspose1d,
               torch.nn.MultiheadAttention)  # fmt: skip
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for sub in module.modules():
        for name, param in sub.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            weight = isinstance(sub, decayed) and name.endswith("weight")
            (decay if weight else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def check_optimizer_specs(specs: list[OptimizerSpec]) -> None:
    """Raise ValueError unless names are unique, ``every >= 1`` and no parameter is shared."""
    if not specs:
        raise ValueError("configure_optimizers returned no optimiser")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names) or not all(n and "." not in n for n in names):
        raise ValueError(f"optimiser names must be unique, non-empty, without '.': {names}")
    seen: set[int] = set()
    for spec in specs:
        if spec.every < 1:
            raise ValueError(f"optimiser {spec.name!r} has every={spec.every}; it must be >= 1")
        ids = {id(p) for group in spec.optimizer.param_groups for p in group["params"]}
        if ids & seen:
            raise ValueError(f"optimiser {spec.name!r} shares parameters with another")
        seen |= ids
