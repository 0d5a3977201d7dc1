"""``polymimic eval``: evaluate a checkpoint headless; write eval_info.json and a video."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from polymimic.cli.options import Parser, check_option, int_in
from polymimic.datasets.validate import dataset_info
from polymimic.envs.allowlist import check_env_args, check_env_request
from polymimic.eval.rollout import FINAL_EVAL_SEED_START, evaluate, write_eval_info
from polymimic.io import prepare_output_dir
from polymimic.policies.checkpoint import load_checkpoint, read_checkpoint_config

MAX_EPISODES = 100_000


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="polymimic eval", description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    parser.add_argument(
        "--episodes", type=int_in(1, MAX_EPISODES), default=50, help="episodes (one per seed)"
    )
    parser.add_argument(
        "--seed-start", type=int_in(0, 2**31 - 1 - MAX_EPISODES), default=FINAL_EVAL_SEED_START,
        help="first seed; final evaluation seeds are disjoint from dataset and training-time seeds",
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="default: <checkpoint>/eval")
    parser.add_argument(
        "--video-episodes", type=int_in(0, 100), default=2, help="episodes in the mp4 (0: none)"
    )
    parser.add_argument(
        "--env", default=None, help="a polymimic task id (default: the policy's own)"
    )
    parser.add_argument("--dataset", type=Path, default=None, help="dataset for the KL reference")
    parser.set_defaults(run=run)
    return parser


def _env_of(checkpoint_config: dict[str, Any], override: str | None) -> tuple[str, dict[str, Any]]:
    """The env to evaluate in: ``--env``, else the checkpoint's, checked by the allowlist."""
    if override is not None:
        return check_env_request(override)
    env_args = checkpoint_config.get("env_args")
    check_option(
        env_args is not None,
        "the checkpoint does not record its environment; pass --env, e.g. --env polymimic/Push-v0",
    )
    return check_env_args(env_args)


def _reference_distribution(path: Path | None) -> dict[str, float] | None:
    if path is None:
        return None
    counts = dataset_info(path)["label_counts"].get("behaviour", {})
    total = sum(counts.values())
    return {label: n / total for label, n in counts.items()} if total else None


def summary_lines(info: dict[str, Any]) -> list[str]:
    """Human-readable summary of an eval_info dict."""
    agg = info["aggregated"]
    lo, hi = agg["success_rate_ci95"]
    elo, ehi = agg["behaviour_entropy_ci95"]
    return [
        f"env {info['env']['id']}, {agg['num_episodes']} episodes",
        f"success rate      {agg['success_rate']:.3f}  (95% CI {lo:.3f}-{hi:.3f})",
        f"behaviour entropy {agg['behaviour_entropy']:.3f}  (95% CI {elo:.3f}-{ehi:.3f}, "
        f"normalised by log {agg['num_behaviours']})",
        f"behaviours        {agg['behaviour_counts']}",
        f"mean length       {agg['mean_length']:.1f} steps",
    ]


def run(args: argparse.Namespace) -> int:
    check_option(
        args.video_episodes <= args.episodes,
        f"--video-episodes {args.video_episodes} is more than --episodes {args.episodes}",
    )
    env_id, env_kwargs = _env_of(read_checkpoint_config(args.checkpoint), args.env)
    policy = load_checkpoint(args.checkpoint)
    reference = _reference_distribution(args.dataset)  # a bad file fails before any output
    out_dir = prepare_output_dir(args.out_dir or args.checkpoint / "eval")
    video = out_dir / "rollouts.mp4" if args.video_episodes > 0 else None
    seeds = range(args.seed_start, args.seed_start + args.episodes)
    info = evaluate(
        env_id, env_kwargs, policy, seeds, video_path=video,
        max_video_episodes=args.video_episodes, reference_distribution=reference,
    )
    info["checkpoint"] = str(args.checkpoint)
    write_eval_info(out_dir / "eval_info.json", info)
    print("\n".join(summary_lines(info)))
    print(f"wrote {out_dir / 'eval_info.json'}" + (f" and {video}" if video else ""))
    return 0
