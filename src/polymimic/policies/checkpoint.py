"""The one checkpoint format: ``model.safetensors`` + ``config.json``, never a pickle.

A checkpoint directory holds the policy's ``state_dict`` (normalisation buffers included)
in safetensors and a JSON document naming the registered policy type and its config. Loading
it runs no code from the checkpoint: the class comes from the registry and the tensors are
plain data, which is what lets the leaderboard accept submitted checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

# Training code imports atomic_write/atomic_write_json from here too (they live in polymimic.io).
from polymimic.errors import UserError
from polymimic.io import atomic_write, atomic_write_json
from polymimic.policies.base import Policy, config_to_dict, policy_class

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(UserError):
    """A checkpoint directory cannot be loaded; the message says what is wrong."""


def save_checkpoint(
    policy: Policy, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``policy`` to ``directory`` as ``model.safetensors`` and ``config.json``.

    Args:
        policy: a registered learner.
        directory: created if missing; existing checkpoint files are replaced.
        extra: JSON-serialisable fields added to ``config.json`` (training step, env args...);
            they cannot override ``policy_type``, ``config`` or ``format_version``.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    reserved = {"policy_type", "config", "format_version"} & set(extra or {})
    if reserved:
        raise ValueError(f"extra may not set reserved keys {sorted(reserved)}")
    # safetensors stores plain, unshared, contiguous CPU buffers; clone so that views or tied
    # weights do not trip its shared-memory check.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in policy.state_dict().items()}
    document = {
        "policy_type": policy.name,
        "config": config_to_dict(policy.config),
        "format_version": FORMAT_VERSION,
        **(extra or {}),
    }
    atomic_write(
        directory / MODEL_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"})
    )
    atomic_write_json(directory / CONFIG_FILE, document)
    return directory


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a checkpoint directory (no tensors are loaded).

    Raises:
        CheckpointError: missing directory or files, unreadable JSON, wrong format version.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (directory / name).is_file()]
    if missing:
        present = sorted(p.name for p in directory.iterdir()) or ["(nothing)"]
        raise CheckpointError(
            f"{directory} is not a polymimic checkpoint: missing {', '.join(missing)} "
            f"(found: {', '.join(present)}). Checkpoints are model.safetensors + config.json; "
            "pickled files (.pt, .pth, .pkl, .ckpt) are never loaded."
        )
    try:
        document = json.loads((directory / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{directory / CONFIG_FILE} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{directory / CONFIG_FILE} must hold a JSON object")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has checkpoint format_version {version!r}; this polymimic reads "
            f"version {FORMAT_VERSION}. Re-export it with the polymimic version that wrote it."
        )
    return document


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from its JSON form, turning lists back into tuples.

    Raises:
        CheckpointError: for fields the dataclass does not have.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise CheckpointError(f"config fields {unknown} are not fields of {config_class.__name__}")
    hints = typing.get_type_hints(config_class)
    kwargs = {}
    for name, value in values.items():
        is_tuple = typing.get_origin(hints[name]) is tuple or hints[name] is tuple
        kwargs[name] = tuple(value) if is_tuple and isinstance(value, list) else value
    return config_class(**kwargs)


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Policy:
    """Rebuild a policy from a checkpoint directory without unpickling anything.

    Args:
        directory: a directory written by :func:`save_checkpoint`.
        device: where to put the policy's tensors.

    Returns:
        The policy in eval mode.

    Raises:
        CheckpointError: missing files, unknown policy type, wrong format version, or tensors
            that do not match the policy the config describes.
    """
    directory = Path(directory)
    document = read_checkpoint_config(directory)
    try:
        cls = policy_class(str(document.get("policy_type")))
    except KeyError as err:
        raise CheckpointError(f"{directory}: {err.args[0]}") from None
    try:
        config = config_from_dict(cls.config_class, document.get("config") or {})
        policy = cls(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{directory}: cannot build {cls.name!r} from its config: {err}"
        ) from None
    try:
        state = load_file(str(directory / MODEL_FILE), device=str(device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{directory / MODEL_FILE} is not a readable safetensors file: {err}"
        ) from None
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{directory}: tensors do not match a {cls.name!r} policy: {err}"
        ) from None
    return policy.to(device).eval()
