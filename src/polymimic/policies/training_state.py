"""Resumable training state: optimisers, schedules and RNG streams beside the checkpoint.

A training checkpoint directory is a loadable checkpoint (``model.safetensors`` +
``config.json``) plus ``training_state.safetensors`` (optimiser moments, RNG states) and
``training_state.json`` (step, optimiser hyper-parameters and scheduler states by optimiser
name, RNG positions). Nothing is pickled. Restoring it and drawing the same batches makes a
resumed run step for step identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from polymimic.errors import UserError
from polymimic.io import atomic_write, atomic_write_json
from polymimic.policies.base import Policy
from polymimic.policies.checkpoint import MODEL_FILE, save_checkpoint
from polymimic.policies.optim import OptimizerSpec

TRAINING_STATE_TENSORS = "training_state.safetensors"
TRAINING_STATE_JSON = "training_state.json"


class ResumeError(UserError):
    """A run directory's training state does not fit the learner asked to resume it."""


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    _, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy_keys": torch.from_numpy(keys.astype(np.int64)),
    }
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    version, internal, gauss_next = random.getstate()
    meta = {
        "numpy": [int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", tensors["rng.numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss)
    )
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _optimizer_state(
    optimizer: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors (keys ``<prefix><param id>.<name>``) and JSON of one optimiser's state."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, param_state in state["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}{param_id}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{param_id}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _set_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    prefix: str,
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            param_id, name = key[len(prefix) :].split(".", 1)
            state.setdefault(int(param_id), {})[name] = value
    for key, value in meta["scalars"].items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    # JSON turned tuples (AdamW's betas) into lists; give the optimiser back what it wrote.
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _optimizers_state(
    specs: list[OptimizerSpec],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every optimiser's and scheduler's state: tensors ``optim.<name>.*``, JSON by name."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for spec in specs:
        spec_tensors, spec_meta = _optimizer_state(spec.optimizer, f"optim.{spec.name}.")
        tensors.update(spec_tensors)
        scheduler = None if spec.scheduler is None else spec.scheduler.state_dict()
        meta[spec.name] = {"optimizer": spec_meta, "scheduler": scheduler}
    return tensors, meta


def save_training_checkpoint(
    directory: Path,
    policy: Policy,
    specs: list[OptimizerSpec],
    step: int,
    extra: dict[str, Any] | None = None,
    train_wall_s: float = 0.0,
) -> None:
    """Write a loadable checkpoint plus the optimiser, schedule and RNG state to resume.

    ``train_wall_s`` (the run's training time so far) goes into ``training_state.json``, so
    a wall-clock budget carries over a resume (``saved_train_wall_s``).

    Files are written into a staging directory that then replaces ``directory``, so a crash
    never leaves weights from one step next to optimiser state from another. The learner's
    own training state (an EMA, target networks, their counters) lives in its buffers and
    parameters, so it is in ``model.safetensors``.
    """
    staging = directory.with_name(directory.name + ".staging")
    previous = directory.with_name(directory.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    save_checkpoint(policy, staging, {**(extra or {}), "step": step})
    optim_tensors, optim_meta = _optimizers_state(specs)
    rng_tensors, rng_meta = _rng_state()
    atomic_write(
        staging / TRAINING_STATE_TENSORS,
        lambda tmp: save_file({**optim_tensors, **rng_tensors}, str(tmp)),
    )
    document = {"step": step, "train_wall_s": float(train_wall_s), "optimizers": optim_meta,
                "rng": rng_meta}  # fmt: skip
    # allow_nan=False: a scheduler state JSON cannot hold must fail here, not on resume.
    atomic_write_json(staging / TRAINING_STATE_JSON, document, allow_nan=False)
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def load_training_state(directory: Path, policy: Policy, specs: list[OptimizerSpec]) -> int:
    """Restore weights, optimisers, schedules and RNG state from ``directory``; return its step.

    Raises:
        ResumeError: the directory's optimisers are not the learner's (another learner or
            config wrote it).
    """
    device = next(iter(policy.state_dict().values())).device
    policy.load_state_dict(load_file(str(directory / MODEL_FILE), device=str(device)), strict=True)
    tensors = load_file(str(directory / TRAINING_STATE_TENSORS), device="cpu")
    meta = json.loads((directory / TRAINING_STATE_JSON).read_text())
    saved = meta.get("optimizers", {})
    if sorted(saved) != sorted(spec.name for spec in specs):
        raise ResumeError(
            f"{directory} holds optimisers {sorted(saved)} but the learner has "
            f"{sorted(spec.name for spec in specs)}; resume with the config that wrote it"
        )
    on_device = {k: v.to(device) for k, v in tensors.items() if k.startswith("optim.")}
    for spec in specs:
        state = saved[spec.name]
        _set_optimizer_state(spec.optimizer, on_device, state["optimizer"], f"optim.{spec.name}.")
        if (spec.scheduler is None) != (state["scheduler"] is None):
            raise ResumeError(f"{directory}: optimiser {spec.name!r} was saved with another schedule")
        if spec.scheduler is not None:
            spec.scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(tensors, meta["rng"])
    return int(meta["step"])


def saved_train_wall_s(directory: Path) -> float:
    """The training time a checkpoint recorded (0.0 for checkpoints written before it was)."""
    meta = json.loads((directory / TRAINING_STATE_JSON).read_text())
    return float(meta.get("train_wall_s", 0.0))


def find_resume_dir(checkpoints: Path) -> Path | None:
    # ".previous" exists only if a crash hit the instant between the two renames of a save.
    for candidate in (checkpoints / "last", checkpoints / "last.previous"):
        if (candidate / TRAINING_STATE_JSON).is_file():
            return candidate
    return None
