"""The one training loop for every learner.

The loop stays generic because learners own what differs (``policies.base``): the batch
they need (``batch_spec``), their optimisers, schedules and cadence
(``configure_optimizers``), a loss per optimiser (``compute_loss``) and a hook after each
step (``on_step_end``: EMA, target networks). Everything else lives here once: device,
mixed precision, seeding, gradient clipping, the non-finite check, logging, periodic
evaluation, checkpoints and resuming.

Before the first step of a fresh run the loop calls ``policy.fit_to_data(dataset, seed)``
(BeT's k-means bins). One training step: for each optimiser due this step (``step % every == 0``), in the order the
learner gave them, compute its loss, back-propagate, clip, step it and its schedule; then
``policy.on_step_end(step)``.

A wall-clock budget (``max_minutes``) ends a run early, cleanly: after the step during which the
run's training time (summed over resumes, evaluations excluded) reached the budget, the loop
evaluates, logs and saves a checkpoint as at the last step, and reports
``stopped_by: "max_minutes"``. The time is stored in the checkpoint, so a resumed run spends
only what is left of its budget; time after the last checkpoint of a killed run is not
counted (its steps are redone).

A held-out split (``held_out``: e.g. the demos of robomimic's ``valid`` mask) is scored at
every evaluation: the mean of each loss term over its items, logged as ``valid/<term>``
(``policies.held_out``). The training loss alone cannot show overfitting.

Resuming is exact: the checkpoint holds the weights (the learner's own EMA and target
networks included), every optimiser and schedule, and the RNG states, and batches are drawn
from a per-epoch permutation seeded by ``(seed, epoch)``, so step ``k`` sees the same batch
whether or not the run was interrupted before it. Nothing is pickled: tensors go to
safetensors and the rest to JSON (``policies.training_state``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from polymimic.config.values import bounded
from polymimic.errors import OptionError, UserError
from polymimic.io import exclusive_lock
from polymimic.policies.base import Policy
from polymimic.policies.held_out import held_out_loss
from polymimic.policies.optim import OptimizerSpec, check_optimizer_specs
from polymimic.policies.training_state import (
    find_resume_dir,
    load_training_state,
    save_training_checkpoint,
    saved_train_wall_s,
)

LOG_FILE = "train_log.jsonl"
#: Called with (step, policy) at evaluation steps; returns scalars for the log.
Evaluator = Callable[[int, Policy], dict[str, float | None]]
#: The clock of the wall-clock budget (a module attribute so tests can replace it).
_clock = time.perf_counter


def loss_summary(metrics: dict[str, Any]) -> str:
    """Every loss term of ``metrics`` (keys ending in ``loss``: ``loss`` for one optimiser,
    ``critic/loss``, ``actor/loss``, ... for several), ``"name value"`` joined by commas;
    ``"no loss logged"`` when there is none (a resumed run that had nothing left to do)."""
    terms = [f"{k} {float(v):.4g}" for k, v in metrics.items() if k.endswith("loss")]
    return ", ".join(terms) or "no loss logged"


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
    if find_resume_dir(run_dir / "checkpoints") is not None and not resume:
        raise RunDirectoryError(
            f"{run_dir} already holds a checkpoint; continue it with train.resume=true, or "
            "choose a new directory with hydra.run.dir=<path>"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    busy = RunDirectoryError(
        f"another training run is writing into {run_dir}; wait for it or choose a new "
        "directory with hydra.run.dir=<path>"
    )
    with exclusive_lock(run_dir, busy):  # on the directory itself: no lock file is written
        yield


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
    eval_every: int = bounded(0, 0, 10**9)  # evaluate every this many steps; 0: at the end only
    progress_bar: bool = True  # show a tqdm bar on stderr
    # Stop (checkpoint, final evaluation) once training time, summed over resumes and without
    # evaluations, reaches this many minutes (>= 0.001); None: num_steps alone ends the run.
    max_minutes: float | None = bounded(None, 1e-3, 1e9)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    # The legacy global generator is the one third-party code (augmentations, samplers) draws
    # from; seeding it is the point here, so NPY002's advice does not apply.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    """Resolve ``"auto"`` to cuda when available, else cpu; check explicit requests.

    Raises:
        OptionError: a string torch does not know as a device, or cuda without CUDA.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise OptionError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            f"device {name!r} requested but CUDA is not available; use device=auto or cpu"
        )
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"device={name!r}: polymimic trains on cpu or cuda")
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


# --- the loop --------------------------------------------------------------------------------
def train(
    policy: Policy,
    dataset: Dataset,
    cfg: TrainConfig,
    run_dir: str | Path,
    checkpoint_extra: dict[str, Any] | None = None,
    evaluator: Evaluator | None = None,
    held_out: Dataset | None = None,
) -> dict[str, Any]:
    """Train ``policy`` on ``dataset`` for ``cfg.num_steps`` training steps, or until the
    wall-clock budget ``cfg.max_minutes`` is spent, whichever comes first.

    Args:
        policy: any registered learner, normalisation statistics already set.
        dataset: items as ``policy.batch_spec()`` declares them; a ``get_batch(indices)``
            method, where present, fetches a whole batch at once.
        cfg: loop settings.
        run_dir: receives ``train_log.jsonl`` and ``checkpoints/last/``.
        checkpoint_extra: JSON fields stored in the checkpoint's config.json (env args, ...).
        evaluator: run every ``cfg.eval_every`` steps and after the last step (rollouts);
            its scalars are logged with prefix ``eval/``.
        held_out: items of held-out demos (same ``batch_spec``), scored at the same steps
            as the evaluator (``cfg.eval_every`` and the last step) by
            ``held_out.held_out_loss``, logged as ``valid/<term>``.

    Returns:
        Final metrics: ``step``, the mean of each loss term over the last log interval,
        ``wall_s`` (this call), ``train_wall_s`` (training time of the whole run, resumes
        included, evaluations excluded), ``stopped_by`` (``"num_steps"`` or
        ``"max_minutes"``), ``device`` and the last evaluation's scalars.

    Raises:
        RunDirectoryError: ``run_dir`` already holds a checkpoint and ``cfg.resume`` is False.
        NonFiniteLossError: the loss or gradient norm became NaN or infinite (checked at
            every log and checkpoint step, so no non-finite weights are ever saved).
        ResumeError: the checkpoint to resume has other optimisers than the learner.
    """
    run_dir = Path(run_dir)
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    policy.to(device).train()
    specs = policy.configure_optimizers(cfg.num_steps)
    check_optimizer_specs(specs)
    resume_dir = find_resume_dir(run_dir / "checkpoints")
    if resume_dir is not None and not cfg.resume:
        raise RunDirectoryError(
            f"{run_dir} already holds a checkpoint; continue it with resume=True "
            "(train.resume=true on the command line) or use a new run directory"
        )
    start_step = load_training_state(resume_dir, policy, specs) if resume_dir is not None else 0
    prior_wall_s = saved_train_wall_s(resume_dir) if resume_dir is not None else 0.0
    if start_step == 0:  # a resumed run's fitted state came back with its weights
        policy.fit_to_data(dataset, cfg.seed)
    sampler = EpochBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start_step)
    loop = _Loop(policy, specs, cfg, device, run_dir, checkpoint_extra, evaluator, held_out)
    batches = batch_stream(dataset, sampler, device, cfg.data_on_device)
    metrics = loop.run(batches, start_step, prior_wall_s)
    return {**metrics, "device": str(device)}


def _train_step(
    policy: Policy,
    specs: list[OptimizerSpec],
    batch: dict[str, torch.Tensor],
    step: int,
    cfg: TrainConfig,
    use_autocast: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One training step: each due optimiser on its own loss, then the learner's hook.

    Returns:
        The loss terms (prefixed ``<optimiser>/`` when there are several optimisers) and a
        device flag that is True when a loss or gradient norm was not finite.
    """
    device_type = next(iter(batch.values())).device.type
    losses: dict[str, torch.Tensor] = {}
    bad = torch.zeros((), dtype=torch.bool, device=next(iter(batch.values())).device)
    for spec in specs:
        if step % spec.every:
            continue
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=use_autocast):
            terms = policy.compute_loss(batch, spec.name)
        spec.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        params = [p for group in spec.optimizer.param_groups for p in group["params"]]
        if cfg.grad_clip_norm is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        bad = bad | ~torch.isfinite(terms["loss"].detach()) | ~torch.isfinite(grad_norm)
        spec.optimizer.step()
        if spec.scheduler is not None:
            spec.scheduler.step()
        prefix = f"{spec.name}/" if len(specs) > 1 else ""
        losses.update({f"{prefix}{k}": v.detach().float() for k, v in terms.items()})
    policy.on_step_end(step)
    return losses, bad


def _raise_if_nonfinite(nonfinite: torch.Tensor, first_unchecked: int, step: int) -> None:
    # Read back only at log and checkpoint steps: a per-step sync would stall a GPU.
    if bool(nonfinite):
        raise NonFiniteLossError(
            f"the loss or gradient became NaN or infinite between steps {first_unchecked} and "
            f"{step}; nothing was saved from those steps. Lower the learning rate, set "
            "train.grad_clip_norm, or check the data with `polymimic data validate`"
        )


class _Loop:
    """The steps of one ``train`` call, with its logging, evaluation and checkpoint state."""

    def __init__(
        self,
        policy: Policy,
        specs: list[OptimizerSpec],
        cfg: TrainConfig,
        device: torch.device,
        run_dir: Path,
        checkpoint_extra: dict[str, Any] | None,
        evaluator: Evaluator | None,
        held_out: Dataset | None = None,
    ) -> None:
        self.policy, self.specs, self.cfg, self.device = policy, specs, cfg, device
        self.run_dir, self.extra, self.evaluator = run_dir, checkpoint_extra, evaluator
        self.held_out = held_out
        self.sums: dict[str, torch.Tensor] = {}  # summed on device; read back when logging
        self.counts: dict[str, int] = {}
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.last: dict[str, Any] = {}
        self.last_eval: dict[str, float] = {}
        self.budget_s = None if cfg.max_minutes is None else cfg.max_minutes * 60.0
        self.eval_clock_s = 0.0  # budget-clock seconds spent evaluating (not training time)
        self.train_wall_s = 0.0  # the run's training time at the latest step

    def run(
        self, batches: Iterator[dict[str, torch.Tensor]], start_step: int, prior_wall_s: float = 0.0
    ) -> dict[str, Any]:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        use_autocast = cfg.mixed_precision and self.device.type == "cuda"
        self.last = {"step": start_step}
        self.train_wall_s = prior_wall_s
        first_unchecked, started = start_step + 1, time.perf_counter()
        self.interval_start = started
        if self.budget_s is not None and prior_wall_s >= self.budget_s and start_step < cfg.num_steps:
            # A resumed run whose budget is already spent: nothing left to do, nothing written.
            return {**self.last, "wall_s": 0.0, "train_wall_s": prior_wall_s,
                    "stopped_by": "max_minutes"}  # fmt: skip
        stopped_by = "num_steps"
        clock_start = _clock()
        # disable=None hides the bar when stderr is not a terminal (CI logs, make output).
        bar = tqdm(total=cfg.num_steps, initial=start_step, desc="train",
                   disable=None if cfg.progress_bar else True)  # fmt: skip
        with open(self.run_dir / LOG_FILE, "a") as log:
            for step in range(start_step + 1, cfg.num_steps + 1):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
                losses, bad = _train_step(self.policy, self.specs, batch, step, cfg, use_autocast)
                self.nonfinite |= bad
                for name, value in losses.items():
                    self.sums[name] = self.sums.get(name, 0.0) + value
                    self.counts[name] = self.counts.get(name, 0) + 1
                bar.update(1)
                # One clock read per step: the run's training time so far.
                self.train_wall_s = prior_wall_s + (_clock() - clock_start) - self.eval_clock_s
                out_of_time = self.budget_s is not None and self.train_wall_s >= self.budget_s
                last_step = step == cfg.num_steps or out_of_time
                if out_of_time and step < cfg.num_steps:
                    stopped_by = "max_minutes"
                save = (cfg.save_every > 0 and step % cfg.save_every == 0) or last_step
                evaluate = (self.evaluator is not None or self.held_out is not None) and (
                    last_step or (cfg.eval_every > 0 and step % cfg.eval_every == 0)
                )
                if save or evaluate or step % cfg.log_every == 0 or last_step:
                    _raise_if_nonfinite(self.nonfinite, first_unchecked, step)
                    first_unchecked = step + 1
                if evaluate:
                    self._evaluate(step, log)
                if step % cfg.log_every == 0 or last_step:
                    self._log(step, log, bar)
                if save:
                    save_training_checkpoint(
                        self.run_dir / "checkpoints" / "last", self.policy, self.specs, step,
                        self.extra, train_wall_s=self.train_wall_s,
                    )
                if last_step:
                    break
        bar.close()
        return {**self.last, **self.last_eval, "wall_s": time.perf_counter() - started,
                "train_wall_s": self.train_wall_s, "stopped_by": stopped_by}  # fmt: skip

    def _log(self, step: int, log: Any, bar: Any) -> None:
        elapsed = time.perf_counter() - self.interval_start
        steps = max(self.counts.values(), default=0)
        self.last = {"step": step, **{k: float(v) / self.counts[k] for k, v in self.sums.items()}}
        self.last["lr"] = self.specs[0].optimizer.param_groups[0]["lr"]
        self.last["steps_per_s"] = steps / max(elapsed, 1e-9)
        self.last["train_wall_s"] = self.train_wall_s
        log.write(json.dumps(self.last) + "\n")
        log.flush()
        bar.set_postfix_str(loss_summary(self.last))
        self.sums, self.counts, self.interval_start = {}, {}, time.perf_counter()

    def _evaluate(self, step: int, log: Any) -> None:
        started, clock_started = time.perf_counter(), _clock()
        scalars = {} if self.evaluator is None else self.evaluator(step, self.policy)
        valid = {}
        if self.held_out is not None:
            names = [spec.name for spec in self.specs]
            valid = held_out_loss(self.policy, self.held_out, names, self.cfg.batch_size, self.device)
        self.eval_clock_s += _clock() - clock_started
        self.policy.train()  # evaluation may have switched modes; training continues
        # None is a metric the evaluation could not estimate (an entropy without successes).
        self.last_eval = {f"eval/{k}": None if v is None else float(v) for k, v in scalars.items()}
        self.last_eval.update({f"valid/{k}": v for k, v in valid.items()})
        record = {"step": step, **self.last_eval, "eval_wall_s": time.perf_counter() - started}
        log.write(json.dumps(record) + "\n")
        log.flush()
        self.interval_start += time.perf_counter() - started  # not training time
