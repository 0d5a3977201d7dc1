"""Typed Hydra configs, registered in Hydra's ConfigStore (YAML files only override them).

Groups:
    policy: one node per registered learner (``policy=bc_mlp``), its config dataclass plus a
        ``type`` field naming the registry entry and a ``preset`` field naming where its
        values started (``default``: the dataclass defaults). ``obs_keys``, ``obs_dim`` and
        ``action_dim`` in it are filled from the dataset when the policy is built.
    policy/<learner>: one node per named preset of that learner (``Policy.presets``), selected
        as ``policy=bc_gmm/reference`` or ``policy=bc_gmm/cpu_small``; it lands in the same
        ``policy`` package, so ``policy.lr=...`` overrides still apply on top of it.
Primary configs:
    train: :class:`TrainRunConfig`, the ``polymimic train`` command.

Never the ``${eval:...}`` resolver: configs are data, they run no code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from polymimic.policies import registered_policies
from polymimic.policies.base import policy_class
from polymimic.policies.train import TrainConfig

# Hydra settings every polymimic command shares: outputs grouped per command, no chdir
# (relative dataset paths keep meaning what the user typed).
# No ``.hydra/`` folder and no log file in the run directory: polymimic writes the resolved
# config itself, and a refused run must leave the run directory untouched.
_HYDRA_DEFAULTS: dict[str, Any] = {
    "job": {"name": "train", "chdir": False},
    "output_subdir": None,
    "run": {"dir": "outputs/train/${now:%Y-%m-%d_%H-%M-%S}"},
    "sweep": {"dir": "multirun/train/${now:%Y-%m-%d_%H-%M-%S}", "subdir": "${hydra.job.num}"},
}


@dataclasses.dataclass
class TrainRunConfig:
    """Everything one ``polymimic train`` run needs."""

    # Hydra's defaults list: this node first, then the chosen policy group entry.
    defaults: list[Any] = dataclasses.field(
        default_factory=lambda: [
            "_self_", {"policy": "bc_mlp"}, {"override hydra/job_logging": "stdout"}
        ]
    )
    dataset: str = MISSING  # path of a robomimic-layout HDF5 file (required)
    filter_key: str | None = "train"  # mask/<filter_key> selecting the training demos; null = all
    # Drop training items whose action has every component below this (an operator's pause;
    # datasets.windows.active_steps); 0 keeps every step.
    idle_below: float = 0.0
    # Demos held out of training (a mask, e.g. robomimic's `valid`) whose loss is logged as
    # valid/<term> at every evaluation (train.eval_every and the last step); null: none.
    valid_filter_key: str | None = None
    obs_keys: list[str] = dataclasses.field(
        default_factory=list
    )  # empty = every obs key of the file
    policy: Any = MISSING  # a node of the `policy` group, e.g. policy=bc_mlp
    # seed and device are set once at the top level and interpolated into the loop settings.
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(seed="${seed}", device="${device}")
    )
    seed: int = 0  # seeds weight initialisation, batch order and all RNGs
    device: str = "auto"  # "auto" = cuda if available else cpu
    eval_episodes: int = 0  # rollouts at each evaluation (train.eval_every, and at the end); 0: none
    hydra: Any = dataclasses.field(default_factory=lambda: dict(_HYDRA_DEFAULTS))


#: The ``preset`` a plain ``policy=<learner>`` records: the config dataclass's defaults.
DEFAULT_PRESET = "default"


def policy_node_class(name: str) -> type:
    """The Hydra node of a registered learner: its config dataclass plus ``type: str = name``
    and ``preset: str = "default"``."""
    config_class = policy_class(name).config_class
    return dataclasses.make_dataclass(
        f"{config_class.__name__}Node",
        [
            ("type", str, dataclasses.field(default=name)),
            ("preset", str, dataclasses.field(default=DEFAULT_PRESET)),
        ],
        bases=(config_class,),
    )


def preset_node(name: str, preset: str) -> Any:
    """The node of learner ``name``'s preset ``preset``: its values over the defaults."""
    values = policy_class(name).presets[preset]
    return policy_node_class(name)(**values, preset=preset)


def register_configs() -> None:
    """Store the primary configs, one ``policy`` group entry per registered learner and one
    ``policy/<learner>`` entry per preset of it."""
    store = ConfigStore.instance()
    store.store(name="train", node=TrainRunConfig)
    for name in registered_policies():
        store.store(group="policy", name=name, node=policy_node_class(name))
        for preset in policy_class(name).presets:
            store.store(group=f"policy/{name}", name=preset, node=preset_node(name, preset))


register_configs()
