"""The one training loop for every learner.

It only calls ``policy.compute_loss(batch)``; everything a learner needs to be trained
(optimiser, device, mixed precision, seeding, logging, checkpoints, resuming) lives here once.

Resuming is exact: the checkpoint holds the weights, the optimiser state and the RNG states,
and batches are drawn from a per-epoch permutation seeded by ``(seed, epoch)``, so step ``k``
sees the same batch whether or not the run was interrupted before it. Nothing is pickled:
tensors go to safetensors and the rest to JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from polymimic.config.values import bounded
from polymimic.errors import UserError
from polymimic.policies.base import Policy
from polymimic.policies.checkpoint import atomic_write, atomic_write_json, save_checkpoint

LOG_FILE = "train_log.jsonl"
TRAINING_STATE_TENSORS = "training_state.safetensors"
TRAINING_STATE_JSON = "training_state.json"
DEFAULT_LR = 1e-4  # for learners whose config has no `lr` field
DEFAULT_WEIGHT_DECAY = 0.0


class RunDirectoryError(UserError):
    """A run directory that holds another run's checkpoint, or that another run is using."""


class NonFiniteLossError(UserError):
    """The loss or the gradient became NaN or infinite; training stopped without saving."""


@contextlib.contextmanager
def run_directory_lock(run_dir: Path, resume: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` after checking that this run may write there.

    Refuses, before writing anything, a directory holding a checkpoint unless ``resume``,
    and a directory another live run holds (the lock is ``flock`` on the directory itself, so
    it creates no file and is released if the process dies).

    Raises:
        RunDirectoryError: naming the directory and the override that resumes it.
    """
    if _find_resume_dir(run_dir / "checkpoints") is not None and not resume:
        raise RunDirectoryError(
            f"{run_dir} already holds a checkpoint; continue it with train.resume=true, or "
            "choose a new directory with hydra.run.dir=<path>"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"another training run is writing into {run_dir}; wait for it or choose a new "
                "directory with hydra.run.dir=<path>"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@dataclasses.dataclass
class TrainConfig:
    """Settings of the training loop (the learner's own hyperparameters live in its config)."""

    num_steps: int = bounded(1000, 1, 10**9)  # optimiser steps in all (incl. before a resume)
    batch_size: int = bounded(256, 1, 1 << 20)  # items per batch
    log_every: int = bounded(100, 1, 10**9)  # a train_log.jsonl line every this many steps
    save_every: int = bounded(1000, 0, 10**9)  # checkpoint every this many steps; 0 = at the end
    seed: int = bounded(0, 0, 2**63 - 1)  # seeds torch, numpy, random and the batch order
    device: str = "auto"  # "auto" = cuda if available else cpu; or any torch device string
    mixed_precision: bool = True  # bf16 autocast on CUDA; ignored on CPU (no speed-up there)
    # Copy an in-memory dataset (one with ``to_device``) to the training device once and
    # gather batches there; False: a DataLoader gathers on the host (pinned on CUDA).
    data_on_device: bool = True
    grad_clip_norm: float | None = bounded(None, 0.0, 1e12)  # clip the gradient norm; None: off
    resume: bool = False  # continue from run_dir/checkpoints/last if it exists
    progress_bar: bool = True  # show a tqdm bar on stderr


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    # The legacy global generator is the one third-party code (augmentations, samplers) draws
    # from; seeding it is the point here, so NPY002's advice does not apply.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    """Resolve ``"auto"`` to cuda when available, else cpu; check explicit cuda requests."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} requested but CUDA is not available; use device=auto or cpu"
        )
    return device


class EpochBatchSampler(Sampler[list[int]]):
    """Endless batches of indices; epoch ``e`` is a permutation seeded by ``(seed, e)``.

    Starting at ``start_step`` reproduces exactly the batches an uninterrupted run would
    draw from that step on, which makes resumed training identical to uninterrupted training.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int = 0) -> None:
        if num_items < 1 or batch_size < 1:
            raise ValueError(
                f"need num_items >= 1 and batch_size >= 1, got {num_items}, {batch_size}"
            )
        self.num_items = num_items
        self.batch_size = min(batch_size, num_items)
        self.batches_per_epoch = num_items // self.batch_size  # drop the ragged tail batch
        self.seed = seed
        self.start_step = start_step

    def __iter__(self) -> Iterator[list[int]]:
        epoch, perm = -1, None
        for step in itertools.count(self.start_step):
            this_epoch, offset = divmod(step, self.batches_per_epoch)
            if this_epoch != epoch:
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + this_epoch)
                epoch, perm = this_epoch, torch.randperm(self.num_items, generator=generator)
            yield perm[offset * self.batch_size : (offset + 1) * self.batch_size].tolist()


class _BatchFetcher(Dataset):
    """Adapter so ``DataLoader`` calls a dataset's vectorised ``get_batch(indices)`` once per batch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __getitem__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return self.dataset.get_batch(indices)


def make_loader(dataset: Dataset, sampler: EpochBatchSampler, pin_memory: bool) -> DataLoader:
    """Batches from ``sampler``; one ``get_batch`` gather where the dataset has it."""
    # Creating a DataLoader iterator draws a base seed from its generator, by default the
    # global torch RNG; that draw would shift dropout noise after a resume. Its own generator
    # keeps the global stream untouched.
    generator = torch.Generator().manual_seed(sampler.seed)
    # Data is in memory and batches are one numpy gather: worker processes would only add IPC.
    if hasattr(dataset, "get_batch"):
        return DataLoader(
            _BatchFetcher(dataset),
            sampler=sampler,
            batch_size=None,
            pin_memory=pin_memory,
            generator=generator,
        )
    return DataLoader(dataset, batch_sampler=sampler, pin_memory=pin_memory, generator=generator)


def batch_stream(
    dataset: Dataset, sampler: EpochBatchSampler, device: torch.device, data_on_device: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """The sampler's batches: gathered on ``device`` from a one-time copy of the dataset where
    it offers ``to_device`` (and ``data_on_device``), else through ``make_loader``. Both give
    the same values for the same indices, so resuming works across the two."""
    if data_on_device and hasattr(dataset, "to_device"):
        on_device = dataset.to_device(device)
        return (on_device.get_batch(indices) for indices in sampler)
    return iter(make_loader(dataset, sampler, pin_memory=device.type == "cuda"))


# --- resumable training state ---------------------------------------------------------------
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
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, param_state in state["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{param_id}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{param_id}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _set_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            param_id, name = key[len("optim.") :].split(".", 1)
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


def save_training_checkpoint(
    directory: Path,
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    step: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a loadable checkpoint plus the optimiser and RNG state needed to resume.

    Files are written into a staging directory that then replaces ``directory``, so a crash
    never leaves weights from one step next to optimiser state from another.
    """
    staging = directory.with_name(directory.name + ".staging")
    previous = directory.with_name(directory.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    save_checkpoint(policy, staging, {**(extra or {}), "step": step})
    optim_tensors, optim_meta = _optimizer_state(optimizer)
    rng_tensors, rng_meta = _rng_state()
    atomic_write(
        staging / TRAINING_STATE_TENSORS,
        lambda tmp: save_file({**optim_tensors, **rng_tensors}, str(tmp)),
    )
    atomic_write_json(
        staging / TRAINING_STATE_JSON, {"step": step, "optimizer": optim_meta, "rng": rng_meta}
    )
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def load_training_state(directory: Path, policy: Policy, optimizer: torch.optim.Optimizer) -> int:
    """Restore weights, optimiser and RNG state from ``directory``; return its step."""
    device = next(iter(policy.state_dict().values())).device
    policy.load_state_dict(
        load_file(str(directory / "model.safetensors"), device=str(device)), strict=True
    )
    tensors = load_file(str(directory / TRAINING_STATE_TENSORS), device="cpu")
    meta = json.loads((directory / TRAINING_STATE_JSON).read_text())
    _set_optimizer_state(
        optimizer,
        {k: v.to(device) for k, v in tensors.items() if k.startswith("optim.")},
        meta["optimizer"],
    )
    _set_rng_state(tensors, meta["rng"])
    return int(meta["step"])


def _find_resume_dir(checkpoints: Path) -> Path | None:
    # ".previous" exists only if a crash hit the instant between the two renames of a save.
    for candidate in (checkpoints / "last", checkpoints / "last.previous"):
        if (candidate / TRAINING_STATE_JSON).is_file():
            return candidate
    return None


# --- the loop --------------------------------------------------------------------------------
def train(
    policy: Policy,
    dataset: Dataset,
    cfg: TrainConfig,
    run_dir: str | Path,
    checkpoint_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``policy`` on ``dataset`` for ``cfg.num_steps`` optimiser steps.

    Args:
        policy: any registered learner, normalisation statistics already set.
        dataset: map-style dataset of items ``compute_loss`` expects (after collation); a
            ``get_batch(indices)`` method, where present, fetches a whole batch at once.
        cfg: loop settings.
        run_dir: receives ``train_log.jsonl`` and ``checkpoints/last/``.
        checkpoint_extra: JSON fields stored in the checkpoint's config.json (env args, ...).

    Returns:
        Final metrics: ``step``, the mean of each loss term over the last log interval,
        ``wall_s`` and ``device``.

    Raises:
        RunDirectoryError: ``run_dir`` already holds a checkpoint and ``cfg.resume`` is False.
        NonFiniteLossError: the loss or gradient norm became NaN or infinite (checked at
            every log and checkpoint step, so no non-finite weights are ever saved).
    """
    run_dir = Path(run_dir)
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    policy.to(device).train()
    optimizer = torch.optim.AdamW(
        policy.parameters(),
        lr=getattr(policy.config, "lr", DEFAULT_LR),
        weight_decay=getattr(policy.config, "weight_decay", DEFAULT_WEIGHT_DECAY),
    )
    resume_dir = _find_resume_dir(run_dir / "checkpoints")
    if resume_dir is not None and not cfg.resume:
        raise RunDirectoryError(
            f"{run_dir} already holds a checkpoint; continue it with resume=True "
            "(train.resume=true on the command line) or use a new run directory"
        )
    start_step = load_training_state(resume_dir, policy, optimizer) if resume_dir is not None else 0
    sampler = EpochBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step)
    metrics = _run_steps(
        policy, optimizer, batch_stream(dataset, sampler, device, cfg.data_on_device), cfg,
        device, run_dir, start_step, checkpoint_extra,
    )  # fmt: skip
    return {**metrics, "device": str(device)}


def _train_step(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    cfg: TrainConfig,
    use_autocast: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimiser step; returns the loss terms and the global gradient norm (on device)."""
    device_type = next(iter(batch.values())).device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=use_autocast):
        losses = policy.compute_loss(batch)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    if cfg.grad_clip_norm is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip_norm)
    else:
        grads = [p.grad for p in policy.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
    optimizer.step()
    return losses, grad_norm


def _raise_if_nonfinite(nonfinite: torch.Tensor, first_unchecked: int, step: int) -> None:
    # Read back only at log and checkpoint steps: a per-step sync would stall a GPU.
    if bool(nonfinite):
        raise NonFiniteLossError(
            f"the loss or gradient became NaN or infinite between steps {first_unchecked} and "
            f"{step}; nothing was saved from those steps. Lower the learning rate, set "
            "train.grad_clip_norm, or check the data with `polymimic data validate`"
        )


def _run_steps(
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[dict[str, torch.Tensor]],
    cfg: TrainConfig,
    device: torch.device,
    run_dir: Path,
    start_step: int,
    checkpoint_extra: dict[str, Any] | None,
) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    use_autocast = cfg.mixed_precision and device.type == "cuda"
    sums: dict[str, torch.Tensor] = {}  # summed on device; read back only when logging
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    first_unchecked = start_step + 1
    last: dict[str, Any] = {"step": start_step}
    started = interval_start = time.perf_counter()
    interval_steps = 0
    # disable=None hides the bar when stderr is not a terminal (CI logs, make output).
    bar = tqdm(
        total=cfg.num_steps, initial=start_step, desc="train", disable=None if cfg.progress_bar else True
    )
    with open(run_dir / LOG_FILE, "a") as log:
        for step in range(start_step + 1, cfg.num_steps + 1):
            batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
            losses, grad_norm = _train_step(policy, optimizer, batch, cfg, use_autocast)
            nonfinite |= ~torch.isfinite(losses["loss"].detach()) | ~torch.isfinite(grad_norm)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            interval_steps += 1
            bar.update(1)
            save = (cfg.save_every > 0 and step % cfg.save_every == 0) or step == cfg.num_steps
            if save or step % cfg.log_every == 0:
                _raise_if_nonfinite(nonfinite, first_unchecked, step)
                first_unchecked = step + 1
            if step % cfg.log_every == 0 or step == cfg.num_steps:
                elapsed = time.perf_counter() - interval_start
                last = {"step": step, **{k: float(v) / interval_steps for k, v in sums.items()}}
                last["lr"] = optimizer.param_groups[0]["lr"]
                last["steps_per_s"] = interval_steps / max(elapsed, 1e-9)
                log.write(json.dumps(last) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{last['loss']:.4g}")
                sums, interval_steps, interval_start = {}, 0, time.perf_counter()
            if save:
                save_training_checkpoint(
                    run_dir / "checkpoints" / "last", policy, optimizer, step, checkpoint_extra
                )
    bar.close()
    return {**last, "wall_s": time.perf_counter() - started}
