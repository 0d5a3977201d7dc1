"""Scoring a dataset against a base set: members, step terms, thresholds, verdicts.

One call, :func:`score_dataset`, does what ``polymimic compat score`` does before writing:
choose the base demos (a mask or operator ids), split off the held-out part, train or load
the K members, compute every step's likelihood and novelty with the chosen scorer,
calibrate ``lambda`` and ``eta`` on the held-out base demos (unless given), and derive the
per-step weights and per-demo verdicts (``compat.scores``). Every demo of the file is
scored, the base's own included.

The result's ``name``, ``compat_<scorer>_<hash8>``, says what produced it: the hash covers
the base demos, the scorer, K, the seed, how members were made (training steps, preset,
overrides, or the loaded checkpoints' sha256) and the threshold settings (the percentiles,
or the explicit lambda / eta) and the demo-level fraction. It is known before any member is
trained, so a scoring that already exists is refused before the work starts, and a
different scoring never takes an existing one's name.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polymimic.compat import scores
from polymimic.compat.ensemble import (
    BaseSplit,
    MemberTraining,
    load_members,
    scored_steps,
    split_base,
    train_members,
)
from polymimic.compat.scorers import scorer_class
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset
from polymimic.datasets.windows import dataset_dims
from polymimic.errors import OptionError, UserError
from polymimic.io import library_versions
from polymimic.policies.checkpoint import checkpoint_digest, read_checkpoint_config
from polymimic.policies.train import select_device

#: The paper rejects demos with more than 15 incompatible steps of several hundred; the
#: default allows 10 %: twice the 5 % of its own steps a base demo has above a 95th-
#: percentile lambda (``scores.calibrate_thresholds``).
DEFAULT_MAX_FRACTION = 0.1
DEFAULT_MEMBERS = 5
#: Optimiser steps per member: ~5 s per member with the cpu_small presets on one core.
DEFAULT_STEPS = 2000
NAME_PREFIX = "compat_"


@dataclasses.dataclass(frozen=True)
class ScoringSettings:
    """Everything that decides a scoring (and so its name).

    Attributes:
        scorer: a ``SCORERS`` name.
        members: K; ignored (taken from ``checkpoints``) when checkpoints are given.
        seed: member ``k`` trains with ``seed + k``; the held-out split uses ``seed``.
        training: how members are trained (learner from the scorer).
        checkpoints: K checkpoint directories to load instead of training.
        lam, eta: explicit thresholds; None: calibrated.
        lik_percentile, nov_percentile: the calibration's percentiles.
        max_fraction: a demo is rejected above this fraction of incompatible steps.
    """

    scorer: str = "paper"
    members: int = DEFAULT_MEMBERS
    seed: int = 0
    training: MemberTraining | None = None
    checkpoints: tuple[Path, ...] = ()
    lam: float | None = None
    eta: float | None = None
    lik_percentile: float = 95.0
    nov_percentile: float = 95.0
    max_fraction: float = DEFAULT_MAX_FRACTION

    def member_count(self) -> int:
        return len(self.checkpoints) if self.checkpoints else self.members

    def member_training(self) -> MemberTraining:
        """The training settings, with the scorer's learner."""
        policy_type = scorer_class(self.scorer).policy_type
        return dataclasses.replace(self.training or MemberTraining(policy_type), policy_type=policy_type)


@dataclasses.dataclass
class ScoringResult:
    """Every step's terms and every demo's verdict, with the record of what produced them.

    Per-step arrays are ``(N,)`` over the steps of ``demos`` in order (``demo_index``);
    per-demo ones are ``scores.DemoScores`` over ``demos``.
    """

    name: str
    record: dict[str, Any]
    demos: tuple[str, ...]
    demo_index: np.ndarray
    likelihood: np.ndarray
    novelty: np.ndarray
    weights: np.ndarray
    excess: np.ndarray
    per_demo: scores.DemoScores
    lam: float
    eta: float
    member_dirs: list[Path] = dataclasses.field(default_factory=list)


def resolve_base(
    path: str | Path, base_mask: str | None = None, base_operators: Sequence[str] = ()
) -> tuple[list[str], str]:
    """The base demos and a description of where they came from.

    Raises:
        UserError: both or neither of a mask and operators, an unknown mask (from the
            reader, listing the masks), or an operator no demo has (listing those that do).
    """
    if (base_mask is None) == (not base_operators):
        raise OptionError("give the base as exactly one of --base-mask M or --base-operators a,b")
    with open_dataset(path) as f:
        if base_mask is not None:
            return demo_names(f, base_mask), f"mask {base_mask}"
        operators = {n: demo_attrs(f["data"][n]).get("operator") for n in demo_names(f)}
    known = sorted({str(op) for op in operators.values() if op is not None})
    unknown = [op for op in base_operators if op not in known]
    if unknown:
        raise UserError(
            f"{path}: no demo of operator(s) {unknown}; operators in the file: {known or 'none'}"
            " (see `polymimic data info`)"
        )
    wanted = set(base_operators)
    return [n for n, op in operators.items() if op in wanted], f"operators {','.join(base_operators)}"


def check_settings(settings: ScoringSettings) -> None:
    """Refuse settings no scoring can use, before any work.

    Raises:
        UserError: an unknown scorer, fewer than 2 members, a fraction outside [0, 1), an
            unusable device, a checkpoint directory that is not one or holds another learner.
    """
    scorer_class(settings.scorer)
    if settings.member_count() < 2:
        what = "checkpoints" if settings.checkpoints else "members"
        raise OptionError(
            f"the ensemble needs at least 2 members (got {settings.member_count()} {what}): "
            "novelty is the members' disagreement"
        )
    if not 0.0 <= settings.max_fraction < 1.0:
        raise OptionError(f"--max-incompatible-fraction must lie in [0, 1), got {settings.max_fraction}")
    how = settings.member_training()
    select_device(how.device)  # cuda asked for on a machine without it fails here
    for directory in settings.checkpoints:
        # Read from config.json alone, before any tensor: missing, foreign, other learner.
        found = read_checkpoint_config(directory).get("policy_type")
        if found != how.policy_type:
            raise UserError(
                f"{directory} holds a {found!r:.40} checkpoint; the {settings.scorer} scorer "
                f"needs {how.policy_type!r} members (choose the matching --scorer)"
            )


def scoring_identity(base: Sequence[str], settings: ScoringSettings) -> dict[str, Any]:
    """What the scoring's name hashes (module docstring); JSON-ready."""
    if settings.checkpoints:
        members: dict[str, Any] = {"checkpoints": [checkpoint_digest(d) for d in settings.checkpoints]}
    else:
        members = {"training": dataclasses.asdict(settings.member_training())}
        members["training"].pop("device")  # where it ran does not change what it is
    return {
        "base": sorted(set(base)),
        "scorer": settings.scorer,
        "members": settings.member_count(),
        "seed": settings.seed,
        **members,
        "thresholds": {
            "lambda": settings.lam, "eta": settings.eta,
            "lik_percentile": settings.lik_percentile, "nov_percentile": settings.nov_percentile,
        },  # fmt: skip
        "max_incompatible_fraction": settings.max_fraction,
    }


def scoring_name(identity: dict[str, Any]) -> str:
    """``compat_<scorer>_<first 8 hex of sha256(identity JSON)>``."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return f"{NAME_PREFIX}{identity['scorer']}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _thresholds(
    settings: ScoringSettings, lik: np.ndarray, nov: np.ndarray, heldout: np.ndarray
) -> tuple[float, float]:
    """Explicit thresholds where given, the held-out calibration for the rest."""
    lam, eta = scores.calibrate_thresholds(
        lik[heldout], nov[heldout], settings.lik_percentile, settings.nov_percentile
    )
    return (lam if settings.lam is None else settings.lam,
            eta if settings.eta is None else settings.eta)  # fmt: skip


def _members(
    path: Path, split: BaseSplit, dims: tuple, settings: ScoringSettings, work_dir: Path
) -> tuple[list[Any], list[Path]]:
    """Train (into ``work_dir``) or load the members; also their checkpoint directories."""
    how = settings.member_training()
    if settings.checkpoints:
        dirs = list(settings.checkpoints)
    else:
        dirs = train_members(path, split.train, dims, how, settings.members, settings.seed, work_dir)
    return load_members(dirs, how.policy_type, dims, how.device), dirs


def score_dataset(
    path: str | Path,
    base: Sequence[str],
    settings: ScoringSettings,
    work_dir: str | Path | None = None,
    base_source: str = "",
) -> ScoringResult:
    """Score every demo of ``path`` against the base demos ``base`` (module docstring).

    Args:
        path: the dataset.
        base: the base demos (``resolve_base``).
        settings: what to do.
        work_dir: where trained members' runs go (default: a temporary directory, removed
            afterwards; the result's ``member_dirs`` is then empty).
        base_source: how the base was chosen, for the record.

    Raises:
        UserError: bad settings, a base of fewer than 2 demos, unusable checkpoints, a bad
            file.
    """
    check_settings(settings)
    path = Path(path)
    split = split_base(base, settings.seed)
    dims = dataset_dims(path)
    identity = scoring_identity(split.train + split.heldout, settings)
    with tempfile.TemporaryDirectory(prefix="polymimic_compat_") as scratch:
        members, dirs = _members(path, split, dims, settings, Path(work_dir or scratch))
        with open_dataset(path) as f:
            every_demo = demo_names(f)
        steps = scored_steps(path, every_demo, dims[0], members[0].config.obs_horizon)
        terms = scorer_class(settings.scorer)().step_terms(members, steps.obs, steps.actions)
        digests = [checkpoint_digest(d) for d in dirs]
    lik, nov = terms.likelihood, terms.novelty
    if not (np.isfinite(lik).all() and np.isfinite(nov).all()):
        raise UserError(f"{path}: the members' likelihood or novelty is not finite; retrain them")
    heldout = np.isin(np.asarray(steps.demos)[steps.demo_index], split.heldout)
    lam, eta = _thresholds(settings, lik, nov, heldout)
    excess = scores.step_excess(lik, nov, lam, eta)
    per_demo = scores.demo_scores(excess, steps.demo_index, len(steps.demos), settings.max_fraction)
    record = _record(path, identity, split, base_source, settings, (lam, eta), dirs, digests)
    return ScoringResult(
        name=scoring_name(identity), record=record, demos=steps.demos,
        demo_index=steps.demo_index, likelihood=lik, novelty=nov,
        weights=scores.step_weights(lik, nov, lam, eta), excess=excess, per_demo=per_demo,
        lam=lam, eta=eta, member_dirs=dirs if work_dir is not None or settings.checkpoints else [],
    )  # fmt: skip


def _record(
    path: Path, identity: dict[str, Any], split: BaseSplit, base_source: str,
    settings: ScoringSettings, thresholds: tuple[float, float], dirs: list[Path],
    digests: list[str],
) -> dict[str, Any]:  # fmt: skip
    """The full record stored with the scoring (JSON-ready)."""
    lam, eta = thresholds
    scorer = scorer_class(settings.scorer)
    return {
        "name": scoring_name(identity),
        "identity": identity,
        "dataset": str(path),
        "scorer": settings.scorer,
        "policy_type": scorer.policy_type,
        "likelihood": scorer.likelihood_name,
        "base": {"source": base_source, "train": list(split.train), "heldout": list(split.heldout)},
        "members": settings.member_count(),
        "seed": settings.seed,
        "checkpoints": [{"path": str(d), "sha256": s} for d, s in zip(dirs, digests, strict=True)],
        "thresholds": {
            "lambda": lam, "eta": eta,
            "lambda_source": "given" if settings.lam is not None else "calibrated",
            "eta_source": "given" if settings.eta is not None else "calibrated",
            "lik_percentile": settings.lik_percentile, "nov_percentile": settings.nov_percentile,
        },  # fmt: skip
        "max_incompatible_fraction": settings.max_fraction,
        "demo_score": "k-th largest step excess, k = floor(max_fraction * T) + 1; "
                      "> 0 iff rejected (polymimic.compat.scores.demo_scores)",
        "versions": library_versions(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
