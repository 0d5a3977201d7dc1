"""The one checkpoint format: ``model.safetensors`` + ``config.json``, never a pickle.

A checkpoint directory holds the policy's ``state_dict`` (normalisation buffers included)
in safetensors and a JSON document naming the registered policy type and its config. Loading
it runs no code from the checkpoint: the class comes from the registry and the tensors are
plain data, which is what lets the leaderboard accept submitted checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

# Training code imports atomic_write/atomic_write_json from here too (they live in polymimic.io).
from polymimic.config.values import ConfigValueError, config_from_values
from polymimic.errors import UserError
from polymimic.io import atomic_write, atomic_write_json
from polymimic.policies.base import Policy, config_to_dict, policy_class

FORMAT_VERSION = 2  # 2: per-key Normalizer buffers (obs_normalizer.offset/scale, ...)
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: Bounds on what a checkpoint file may make polymimic read or allocate.
MAX_CONFIG_BYTES = 1 << 20
MAX_MODEL_BYTES = 4 << 30
_SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}


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


def checkpoint_digest(directory: str | Path) -> str:
    """sha256 over ``config.json`` then ``model.safetensors``: names what was evaluated."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, MODEL_FILE):
        with open(Path(directory) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a checkpoint directory (no tensors are loaded).

    The file is plain JSON (never passed through an interpolating config loader), at most
    ``MAX_CONFIG_BYTES``, without NaN or infinite numbers.

    Raises:
        CheckpointError: missing directory or files, unreadable or oversized JSON, wrong
            format version.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (directory / name).is_file()]
    if missing:
        present = sorted(p.name for p in directory.iterdir())[:10] or ["(nothing)"]
        raise CheckpointError(
            f"{directory} is not a polymimic checkpoint: missing {', '.join(missing)} "
            f"(found: {', '.join(present)}). Checkpoints are model.safetensors + config.json; "
            "pickled files (.pt, .pth, .pkl, .ckpt) are never loaded."
        )
    config_path = directory / CONFIG_FILE
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{config_path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON: {err}") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object")
    version = document.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointError(
            f"{directory} has checkpoint format_version {version!r:.40}; this polymimic reads "
            f"version {FORMAT_VERSION}. Re-export it with the polymimic version that wrote it."
        )
    return document


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def config_from_dict(config_class: type, values: dict[str, Any], where: str = "config") -> Any:
    """Rebuild a config dataclass from its JSON form (types and bounds checked).

    Raises:
        CheckpointError: unknown fields, values of the wrong type or out of bounds.
    """
    try:
        return config_from_values(config_class, values, where)
    except ConfigValueError as err:
        raise CheckpointError(str(err)) from None


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> Policy:
    """Rebuild a policy from a checkpoint directory without unpickling anything.

    Order matters for files from strangers: the config is checked (types, bounds), the
    policy is built on PyTorch's ``meta`` device (no memory), the weight file's header is
    compared with it (names, shapes, dtypes), and only then are tensors read, checked for
    finite values and loaded.

    Args:
        directory: a directory written by :func:`save_checkpoint`.
        device: where to put the policy's tensors.

    Returns:
        The policy in eval mode.

    Raises:
        CheckpointError: missing or oversized files, unknown policy type, wrong format
            version, config values out of bounds, tensors that do not match the policy the
            config describes, or non-finite weights.
    """
    directory = Path(directory)
    document = read_checkpoint_config(directory)
    try:
        cls = policy_class(str(document.get("policy_type"))[:80])
    except KeyError as err:
        raise CheckpointError(f"{directory}: {err}") from None
    where = f"{directory / CONFIG_FILE} config"
    config = config_from_dict(cls.config_class, document.get("config") or {}, where)
    expected = _expected_tensors(cls, config, directory)
    model_path = directory / MODEL_FILE
    _check_weight_header(model_path, expected, cls.name)
    policy = _build(cls, config, directory)
    try:
        state = load_file(str(model_path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{model_path} is not a readable safetensors file: {err}") from None
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all())
    if bad:
        raise CheckpointError(f"{model_path} holds NaN or infinite values in {bad[:5]}")
    policy.load_state_dict(state, strict=True)
    return policy.to(device).eval()


def _build(cls: type[Policy], config: Any, directory: Path) -> Policy:
    try:
        return cls(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{directory}: cannot build {cls.name!r} from its config: {err}"
        ) from None


def _expected_tensors(cls: type[Policy], config: Any, directory: Path) -> dict[str, tuple]:
    """Name -> (shape, safetensors dtype) of the policy the config describes, built on the
    meta device (no memory), refused if it would exceed ``MAX_MODEL_BYTES``."""
    with torch.device("meta"):
        skeleton = _build(cls, config, directory)
    expected = {
        k: (tuple(v.shape), _SAFETENSORS_DTYPES.get(v.dtype, str(v.dtype)))
        for k, v in skeleton.state_dict().items()
    }
    size = sum(v.numel() * v.element_size() for v in skeleton.state_dict().values())
    if size > MAX_MODEL_BYTES:
        raise CheckpointError(
            f"{directory}: the config describes a {size / 2**30:.1f} GiB model (at most "
            f"{MAX_MODEL_BYTES / 2**30:.0f} GiB)"
        )
    return expected


def _check_weight_header(path: Path, expected: dict[str, tuple], name: str) -> None:
    """Compare the safetensors header (read without the data) with the expected tensors."""
    if path.stat().st_size > MAX_MODEL_BYTES + 2**20:
        raise CheckpointError(f"{path} is larger than {MAX_MODEL_BYTES} bytes")
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {
                k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                for k in f.keys()  # noqa: SIM118  (safe_open has no __iter__)
            }
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from None
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        unexpected = sorted(set(found) - set(expected))[:3]
        differ = [
            f"{k}: {found[k]} vs {expected[k]}"
            for k in sorted(set(found) & set(expected)) if found[k] != expected[k]
        ][:3]
        raise CheckpointError(
            f"{path}: tensors do not match a {name!r} policy of this config (missing "
            f"{missing}, unexpected {unexpected}, different shape/dtype {differ})"
        )
