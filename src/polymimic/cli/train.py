"""``polymimic train``: build a dataset and a learner from a Hydra config and train it.

Usage::

    polymimic train dataset=data/push.hdf5 policy=bc_mlp train.num_steps=5000
    polymimic train dataset=data/push.hdf5 --multirun seed=0,1,2 policy.hidden_dims=[512,512]

The run directory (``hydra.run.dir``, default ``outputs/train/<timestamp>``) receives
``resolved_config.yaml`` / ``train_config.json`` (what the run used, every value filled in),
``train_log.jsonl`` and ``checkpoints/last/`` (``model.safetensors`` + ``config.json``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from polymimic.config import schema  # noqa: F401  (registers the configs with Hydra)
from polymimic.datasets.windows import WindowDataset
from polymimic.policies.base import Policy, config_to_dict, policy_class
from polymimic.policies.checkpoint import atomic_write, atomic_write_json, config_from_dict
from polymimic.policies.train import TrainConfig, seed_everything, train


def build_policy(policy_cfg: dict[str, Any], dataset: WindowDataset) -> Policy:
    """Instantiate the registered learner ``policy_cfg["type"]`` sized for ``dataset``."""
    values = dict(policy_cfg)
    cls = policy_class(values.pop("type"))
    values.update(
        obs_keys=list(dataset.obs_keys), obs_dim=dataset.obs_dim, action_dim=dataset.action_dim
    )
    policy = cls(config_from_dict(cls.config_class, values))
    policy.set_normalization(dataset.stats())
    return policy


def write_resolved_config(run_dir: Path, resolved: dict[str, Any]) -> None:
    """Write the run's fully resolved config as YAML and JSON (LeRobot's train_config.json)."""
    yaml_text = OmegaConf.to_yaml(OmegaConf.create(resolved))
    atomic_write(run_dir / "resolved_config.yaml", lambda tmp: tmp.write_text(yaml_text))
    atomic_write_json(run_dir / "train_config.json", resolved)


def run_training(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Build the dataset and the policy from ``cfg``, train, and record the run in ``run_dir``."""
    if OmegaConf.is_missing(cfg, "dataset"):
        raise ValueError("no dataset given: pass dataset=<path to a robomimic-layout .hdf5 file>")
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    policy_cfg = resolved["policy"]
    dataset = WindowDataset(
        resolved["dataset"],
        obs_keys=resolved["obs_keys"],
        filter_key=resolved["filter_key"],
        obs_horizon=policy_cfg.get("obs_horizon", 1),
        action_horizon=policy_cfg.get("action_horizon", 1),
    )
    seed_everything(resolved["seed"])  # before building: the seed fixes the initial weights
    policy = build_policy(policy_cfg, dataset)
    resolved["obs_keys"] = list(dataset.obs_keys)
    resolved["policy"] = {"type": policy.name, **config_to_dict(policy.config)}
    run_dir.mkdir(parents=True, exist_ok=True)
    # Written before training, so an interrupted run still says what it was doing.
    write_resolved_config(run_dir, resolved)
    extra = {
        "dataset": str(resolved["dataset"]),
        "filter_key": resolved["filter_key"],
        "env_args": dataset.env_args,
    }
    metrics = train(
        policy, dataset, TrainConfig(**resolved["train"]), run_dir, checkpoint_extra=extra
    )
    atomic_write_json(run_dir / "train_metrics.json", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=None, config_name="train")
def hydra_main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point; the run directory is Hydra's output dir (no chdir)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = run_training(cfg, run_dir)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        # User-caused errors (bad dataset path, unknown policy, existing run) get one
        # line; SystemExit passes through Hydra's error reporting untouched.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"polymimic train: error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"trained to step {metrics['step']} (loss {metrics.get('loss', float('nan')):.4g}); run dir {run_dir}"
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Run ``polymimic train`` with Hydra overrides ``argv`` (default: ``sys.argv[1:]``)."""
    saved = sys.argv
    sys.argv = ["polymimic train", *(sys.argv[1:] if argv is None else argv)]
    try:
        hydra_main()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
