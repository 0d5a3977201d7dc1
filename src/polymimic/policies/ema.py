"""An exponential moving average of a network's weights, kept as buffers of a frozen copy.

Diffusion Policy (Chi et al., "Diffusion Policy: Visuomotor Policy Learning via Action
Diffusion", RSS 2023) samples with an EMA of the denoiser's weights, updated after every
optimiser step ``k`` with the warm-up decay of its ``EMAModel`` (inv_gamma 1, power 0.75,
max 0.9999)::

    decay_k = 0                                 for k = 1 (the average starts at theta_1)
    decay_k = min(max_decay, 1 - k ** -power)   for k >= 2
    shadow <- decay_k * shadow + (1 - decay_k) * theta

The update itself is diffusers' ``EMAModel`` (``use_ema_warmup=True``). What polymimic adds
is where the state lives, so a checkpoint stays safetensors + JSON and resuming is exact:

- the shadow weights are the *buffers* of a frozen copy of the network (``shadow``), so they
  are in ``model.safetensors`` next to the raw weights, under the same names with an
  ``ema.shadow.`` prefix, and ``load_state_dict`` restores them in place;
- the step counter is the training loop's own step, which ``training_state.json`` holds:
  :meth:`EMAWeights.update` hands it to diffusers at every call, so the decay after a
  resume continues where it stopped without a counter of its own.

A learner that keeps an EMA evaluates (and so is evaluated with) the shadow network; the
raw weights are in the checkpoint only so that training can resume.
"""

from __future__ import annotations

import copy

import torch
from diffusers.training_utils import EMAModel
from torch import nn


def frozen_copy(network: nn.Module) -> nn.Module:
    """A deep copy of ``network`` whose parameters are buffers: saved with the state dict,
    moved with ``.to``, never returned by ``parameters()`` (so no optimiser sees them)."""
    shadow = copy.deepcopy(network)
    for module in shadow.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            delattr(module, name)
            module.register_buffer(name, param.detach().clone())
    return shadow.requires_grad_(False)


class EMAWeights(nn.Module):
    """The EMA of one network: ``shadow`` is the averaged network, called like the original."""

    def __init__(self, network: nn.Module, power: float = 0.75, max_decay: float = 0.9999) -> None:
        """Start the average at ``network``'s current weights."""
        super().__init__()
        self.shadow = frozen_copy(network)
        self._names = [name for name, _ in network.named_parameters()]
        # The updater holds no tensors of its own: its shadow list is pointed at our buffers
        # at every update (``.to()`` replaces buffer tensors, so a list kept from __init__
        # would go stale).
        self._updater = EMAModel(
            [], decay=max_decay, use_ema_warmup=True, inv_gamma=1.0, power=power, foreach=True
        )

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        """Move the average towards ``network``'s weights after training step ``step`` (1-based).

        The decay depends only on ``step``, so a resumed run continues the same sequence.
        """
        self._updater.shadow_params = [self.shadow.get_buffer(name) for name in self._names]
        self._updater.optimization_step = step - 1  # EMAModel.step counts it up to ``step``
        self._updater.step(network.parameters())

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        """The averaged network's output."""
        return self.shadow(*args, **kwargs)
