"""``polymimic train``: build a dataset and a learner from a Hydra config and train it.

Usage::

    polymimic train dataset=data/push.hdf5 policy=bc_mlp train.num_steps=5000
    polymimic train dataset=data/push.hdf5 policy=bc_rnn/cpu_small   # a learner's named preset
    polymimic train dataset=data/push.hdf5 --multirun seed=0,1,2 policy.hidden_dims=[512,512]

The run directory (``hydra.run.dir``, default ``outputs/train/<timestamp>``) receives
``resolved_config.yaml`` / ``train_config.json`` (what the run used, every value filled in),
``train_log.jsonl`` and ``checkpoints/last/`` (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from polymimic.cli.options import USER_ERROR_EXIT
from polymimic.config import schema  # noqa: F401  (registers the configs with Hydra)
from polymimic.config.schema import DEFAULT_PRESET
from polymimic.config.values import config_from_values
from polymimic.datasets.reader import read_env_args
from polymimic.datasets.windows import WindowDataset, dataset_dims
from polymimic.envs.allowlist import check_env_args
from polymimic.errors import OptionError, UserError
from polymimic.eval.rollout import TRAIN_EVAL_SEED_START, evaluate, write_eval_info
from polymimic.io import prepare_output_dir
from polymimic.policies.base import Policy, config_to_dict, policy_class
from polymimic.policies.checkpoint import atomic_write, atomic_write_json
from polymimic.policies.train import (
    Evaluator,
    TrainConfig,
    loss_summary,
    run_directory_lock,
    seed_everything,
    select_device,
    train,
)


def build_policy(
    policy_cfg: dict[str, Any], obs_keys: tuple[str, ...], obs_dim: int, action_dim: int
) -> Policy:
    """Instantiate the registered learner ``policy_cfg["type"]`` sized for the data.

    Raises:
        UserError: an unknown type, or config values of the wrong type or out of bounds.
    """
    values = dict(policy_cfg)
    cls = policy_class(str(values.pop("type")))
    values.pop("preset", None)  # names where the values started; not a learner setting
    values.update(obs_keys=list(obs_keys), obs_dim=obs_dim, action_dim=action_dim)
    config = config_from_values(cls.config_class, values, where="policy")
    try:
        return cls(config)
    except ValueError as exc:  # a learner's own check of its config (activation name, ...)
        raise OptionError(f"policy: {exc}") from None


def write_resolved_config(run_dir: Path, resolved: dict[str, Any]) -> None:
    """Write the run's fully resolved config as YAML and JSON (LeRobot's train_config.json)."""
    yaml_text = OmegaConf.to_yaml(OmegaConf.create(resolved))
    atomic_write(run_dir / "resolved_config.yaml", lambda tmp: tmp.write_text(yaml_text))
    atomic_write_json(run_dir / "train_config.json", resolved)


def prepare_run(
    cfg: DictConfig,
) -> tuple[dict[str, Any], WindowDataset, WindowDataset | None, Policy, TrainConfig]:
    """Check every option and the dataset, build the policy and load its batches (training
    and, with ``valid_filter_key``, held-out); touches no file.

    Raises:
        UserError: no or a bad dataset, a config value out of bounds, env args outside the
            allowlist.
    """
    if OmegaConf.is_missing(cfg, "dataset"):
        raise OptionError("no dataset given: pass dataset=<path to a robomimic-layout .hdf5 file>")
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    train_cfg = config_from_values(TrainConfig, resolved["train"], where="train")
    select_device(train_cfg.device)  # a bad device string fails here, before any file is written
    # The dataset's env args travel into the checkpoint, where `polymimic eval` makes the
    # env from them: refuse ones outside the allowlist now, not after hours of training.
    env_id, env_kwargs = check_env_args(read_env_args(resolved["dataset"]))
    obs_keys, obs_dim, action_dim = dataset_dims(resolved["dataset"], resolved["obs_keys"])
    seed_everything(resolved["seed"])  # before building: the seed fixes the initial weights
    policy = build_policy(resolved["policy"], obs_keys, obs_dim, action_dim)
    dataset = WindowDataset(
        resolved["dataset"], obs_keys, resolved["filter_key"], spec=policy.batch_spec(),
        idle_below=float(resolved["idle_below"]),
    )
    dataset.env_args = {**dataset.env_args, "env_name": env_id, "env_kwargs": env_kwargs}
    policy.set_normalization(dataset.stats())
    held_out = held_out_split(resolved, obs_keys, policy)
    resolved["obs_keys"] = list(obs_keys)
    preset = resolved["policy"].get("preset", DEFAULT_PRESET)
    resolved["policy"] = {"type": policy.name, "preset": preset, **config_to_dict(policy.config)}
    return resolved, dataset, held_out, policy, train_cfg


def held_out_split(
    resolved: dict[str, Any], obs_keys: tuple[str, ...], policy: Policy
) -> WindowDataset | None:
    """The items of ``valid_filter_key``'s demos (None when unset), windowed like training's.

    Raises:
        UserError: the mask is missing, or shares demos with the training mask.
    """
    key = resolved.get("valid_filter_key")
    if key is None:
        return None
    if key == resolved["filter_key"]:
        raise OptionError(
            f"valid_filter_key={key!r} is the training mask; give a mask of held-out demos "
            "(e.g. valid)"
        )
    return WindowDataset(
        resolved["dataset"], obs_keys, key, spec=policy.batch_spec(),
        idle_below=float(resolved["idle_below"]),
    )


def make_evaluator(
    env_id: str, env_kwargs: dict[str, Any], episodes: int, run_dir: Path
) -> Evaluator:
    """Rollouts during training: ``episodes`` seeds from ``TRAIN_EVAL_SEED_START`` (never the
    final evaluation's), ``eval/step_<k>/eval_info.json`` per evaluation, scalars for the log."""
    seeds = range(TRAIN_EVAL_SEED_START, TRAIN_EVAL_SEED_START + episodes)

    def run(step: int, policy: Policy) -> dict[str, float | None]:
        info = evaluate(env_id, env_kwargs, policy, seeds)
        write_eval_info(run_dir / "eval" / f"step_{step}" / "eval_info.json", info)
        aggregated = info["aggregated"]
        return {
            "success_rate": aggregated["success_rate"],
            "behaviour_entropy": aggregated["behaviour_entropy"],
            "mean_length": aggregated["mean_length"],
        }

    return run


def run_training(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Build the dataset and the policy from ``cfg``, train, and record the run in ``run_dir``.

    Nothing is written into ``run_dir`` before every option has been checked, a run that
    finds a checkpoint there without ``train.resume=true`` is refused before it writes, and
    the run holds a lock on ``run_dir`` so two runs cannot write into it at once.
    """
    resolved, dataset, held_out, policy, train_cfg = prepare_run(cfg)
    episodes = resolved["eval_episodes"]
    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 0 <= episodes <= 10**5:
        raise OptionError(f"eval_episodes={episodes!r} must be an integer in [0, 100000]")
    evaluator = None
    if episodes > 0:
        env = dataset.env_args
        evaluator = make_evaluator(env["env_name"], env["env_kwargs"], episodes, run_dir)
    with run_directory_lock(run_dir, resume=train_cfg.resume):
        # Written before training, so an interrupted run still says what it was doing.
        write_resolved_config(run_dir, resolved)
        extra = {
            "dataset": str(resolved["dataset"]),
            "filter_key": resolved["filter_key"],
            "env_args": dataset.env_args,
            "policy_preset": resolved["policy"]["preset"],
        }
        metrics = train(
            policy, dataset, train_cfg, run_dir, checkpoint_extra=extra, evaluator=evaluator,
            held_out=held_out,
        )
        atomic_write_json(run_dir / "train_metrics.json", metrics)
    return metrics


def check_preset_choice(cfg: DictConfig, choice: str | None) -> None:
    """Refuse a ``policy.preset`` that is not the preset Hydra composed (``policy=<learner>``
    records ``default``, ``policy=<learner>/<preset>`` records ``<preset>``): the label in
    the run's record must say where its values came from.

    Raises:
        OptionError: ``policy.preset`` was overridden by hand.
    """
    if choice is None or OmegaConf.is_missing(cfg, "policy"):
        return
    expected = choice.split("/", 1)[1] if "/" in choice else DEFAULT_PRESET
    given = cfg.policy.get("preset", DEFAULT_PRESET)
    if given != expected:
        raise OptionError(
            f"policy.preset={given!r} does not match the composed config ({choice!r}); choose "
            f"a preset with policy=<learner>/<preset> instead of overriding policy.preset"
        )


@hydra.main(version_base="1.3", config_path=None, config_name="train")
def hydra_main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point; the run directory is Hydra's output dir (no chdir)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        check_preset_choice(cfg, HydraConfig.get().runtime.choices.get("policy"))
        metrics = run_training(cfg, run_dir)
    except UserError as exc:
        # Problems the user can fix (bad dataset, option, existing run) get one line; other
        # exceptions are bugs and keep Hydra's report.
        print(f"polymimic train: error: {exc}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None
    print(f"trained to step {metrics['step']} ({loss_summary(metrics)}); run dir {run_dir}")
    return metrics


def _check_run_dir_override(args: list[str]) -> None:
    """Check ``hydra.run.dir=...`` before Hydra creates it (its own failure is a traceback)."""
    for arg in args:
        if arg.startswith("hydra.run.dir="):
            prepare_output_dir(arg.split("=", 1)[1], "run directory (hydra.run.dir)")


def main(argv: list[str] | None = None) -> None:
    """Run ``polymimic train`` with Hydra overrides ``argv`` (default: ``sys.argv[1:]``).

    A malformed override or an unknown config option is a user error too: Hydra is asked to
    raise it (``HYDRA_FULL_ERROR``) instead of printing its multi-line report, and it is
    printed here as one line with exit code 1. Anything else keeps its traceback.
    """
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = ["polymimic train", *(sys.argv[1:] if argv is None else argv)]
    try:
        _check_run_dir_override(sys.argv[1:])
    except UserError as exc:
        sys.argv = saved_argv
        print(f"polymimic train: error: {exc}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc).split("Config search path")[0]
        if isinstance(exc.__cause__, OmegaConfBaseException):  # e.g. the failed conversion
            message += ": " + str(exc.__cause__).splitlines()[0]
        message = " ".join(message.split())  # Hydra's messages span several lines
        print(f"polymimic train: error: {message} (see `polymimic train --help`)", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error


if __name__ == "__main__":
    main()
