"""Per-key normalisation with a declared mode, stored as buffers inside ``model.safetensors``.

Modes (``NORMALIZATION_MODES``), with ``x_n = (x - offset) / scale``:

- ``mean_std``: ``offset = mean``, ``scale = std`` (robomimic's and LeRobot's default for
  observations); a dimension with ``std < STD_EPS`` keeps ``scale = 1``.
- ``min_max``: ``offset = (max + min) / 2``, ``scale = (max - min) / 2``, which maps the data's
  range onto [-1, 1] (Diffusion Policy's choice for actions: its samples are clipped to
  [-1, 1]); a dimension whose half range is below ``STD_EPS`` keeps ``scale = 1``, so its
  constant value maps to 0.
- ``none``: ``offset = 0``, ``scale = 1``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from polymimic.datasets.windows import STD_EPS

NORMALIZATION_MODES = ("mean_std", "min_max", "none")


def normalization_params(
    stats: Mapping[str, np.ndarray], mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)`` for one key from its statistics (``mean``, ``std``, ``min``, ``max``).

    Raises:
        ValueError: an unknown mode.
    """
    if mode == "mean_std":
        offset, spread = np.asarray(stats["mean"]), np.asarray(stats["std"])
    elif mode == "min_max":
        low, high = np.asarray(stats["min"]), np.asarray(stats["max"])
        offset, spread = (high + low) / 2.0, (high - low) / 2.0
    elif mode == "none":
        offset = np.zeros_like(np.asarray(stats["mean"]))
        spread = np.ones_like(offset)
    else:
        raise ValueError(f"unknown normalisation {mode!r}; choose from {NORMALIZATION_MODES}")
    scale = np.where(spread < STD_EPS, 1.0, spread)
    return offset.astype(np.float32), scale.astype(np.float32)


class Normalizer(nn.Module):
    """``normalize(x) = (x - offset) / scale`` over the last dimension, and its inverse.

    ``offset`` and ``scale`` are buffers: they are saved with the weights and move with the
    module to its device.
    """

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        if mode not in NORMALIZATION_MODES:
            raise ValueError(f"unknown normalisation {mode!r}; choose from {NORMALIZATION_MODES}")
        self.mode = mode
        self.register_buffer("offset", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def set_stats(self, stats: Mapping[str, np.ndarray]) -> None:
        """Set offset and scale from the data's statistics, by this normaliser's mode."""
        offset, scale = normalization_params(stats, self.mode)
        self.offset.copy_(torch.as_tensor(offset))
        self.scale.copy_(torch.as_tensor(scale))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset) / self.scale

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset
