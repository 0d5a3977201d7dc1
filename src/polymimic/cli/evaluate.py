"""``polymimic eval``: evaluate a checkpoint headless; write eval_info.json and a video.

``polymimic eval --open-loop DATASET`` evaluates the open-loop baseline instead of a
checkpoint: each episode replays, without feedback, the actions of the dataset's successful
demo whose first observation is nearest (``polymimic.eval.open_loop``), through the same
protocol and rollout loop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from polymimic.cli.options import Parser, check_option, int_in
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset
from polymimic.envs.allowlist import check_env_args, check_env_request
from polymimic.errors import OutputPathError
from polymimic.eval.metrics import dataset_behaviour_distribution
from polymimic.eval.open_loop import OpenLoopPolicy, check_task, nearest_demo_section
from polymimic.eval.protocol import PROTOCOL_NAMES, protocol
from polymimic.eval.rollout import evaluate_protocol, write_eval_info
from polymimic.io import prepare_output_dir
from polymimic.policies.checkpoint import (
    checkpoint_digest,
    load_checkpoint,
    read_checkpoint_config,
)
from polymimic.policies.diffusion_base import MAX_DIFFUSION_STEPS, SAMPLERS, DiffusionBasePolicy


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="polymimic eval", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", type=Path, help="checkpoint directory")
    what.add_argument(
        "--open-loop", type=Path, default=None, metavar="DATASET",
        help="evaluate the open-loop baseline: replay the nearest successful demo of this "
        "dataset's actions without feedback (needs --out-dir)",
    )
    parser.add_argument("--filter-key", default=None,
                        help="with --open-loop: replay only the demos of this mask (e.g. train)")
    parser.add_argument(
        "--protocol", choices=PROTOCOL_NAMES, default="full",
        help="full: the task's S x R test protocol; cpu: 8 x 4 for quick runs; selection: "
        "its own contexts, for choosing hyper-parameters and checkpoints",
    )
    parser.add_argument("--contexts", type=int_in(1, 1000), default=None,
                        help="use only the first S contexts (a 'custom' protocol, for smoke tests)")
    parser.add_argument("--rollouts", type=int_in(1, 1000), default=None,
                        help="use only R rollouts per context ('custom')")
    parser.add_argument("--workers", type=int_in(1, 64), default=1,
                        help="parallel environments (results do not depend on it)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="default: <checkpoint>/eval (required with --open-loop)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing eval_info.json in the output directory")
    parser.add_argument(
        "--video-episodes", type=int_in(0, 64), default=4, help="episodes in the mp4 grid (0: none)"
    )
    parser.add_argument(
        "--env", default=None,
        help="a polymimic task id (default: the policy's own; with --open-loop: the dataset's, "
        "and another task is refused)"
    )
    parser.add_argument("--dataset", type=Path, default=None,
                        help="the training dataset: KL reference from its successful train demos")
    parser.add_argument(
        "--sampler", choices=SAMPLERS, default=None,
        help="diffusion learners: sample with DDIM or DDPM (built from the training "
        "scheduler's config) instead of the checkpoint's own sampler",
    )
    parser.add_argument(
        "--inference-steps", type=int_in(1, MAX_DIFFUSION_STEPS), default=None,
        help="diffusion learners: denoising steps per sample (default: the checkpoint's)",
    )
    parser.set_defaults(run=run)
    return parser


def _env_of(checkpoint_config: dict[str, Any], override: str | None) -> tuple[str, dict[str, Any]]:
    """The env to evaluate in: ``--env``, else the checkpoint's, checked by the allowlist."""
    if override is not None:
        return check_env_request(override)
    env_args = checkpoint_config.get("env_args")
    check_option(
        env_args is not None,
        "the checkpoint does not record its environment; pass --env, e.g. --env polymimic/Push-v1",
    )
    return check_env_args(env_args)


def _reference_distribution(path: Path | None) -> dict[str, float] | None:
    """Behaviour distribution of the dataset's successful ``train`` demos (None: no file)."""
    if path is None:
        return None
    with open_dataset(path) as f:
        labels = [
            str(attrs.get("behaviour"))
            for attrs in (demo_attrs(f["data"][name]) for name in demo_names(f, "train"))
            if attrs.get("success", True) and "behaviour" in attrs
        ]
    return dataset_behaviour_distribution(labels) if labels else None


def _override_sampler(policy: Any, sampler: str | None, steps: int | None) -> None:
    """Apply ``--sampler``/``--inference-steps`` to a diffusion learner (refused for others)."""
    if sampler is None and steps is None:
        return
    check_option(
        isinstance(policy, DiffusionBasePolicy),
        f"--sampler/--inference-steps apply to diffusion learners; this checkpoint holds "
        f"a {policy.name}",
    )
    try:
        policy.use_sampler(sampler or policy.config.sampler,
                           steps or policy.config.num_inference_steps)  # fmt: skip
    except ValueError as err:
        check_option(False, str(err))


def _fmt(value: float | None, interval: list[float] | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    return text if interval is None or interval[0] is None else (
        f"{text}  (95% CI {interval[0]:.3f}-{interval[1]:.3f})"
    )


def summary_lines(info: dict[str, Any]) -> list[str]:
    """Human-readable summary of an eval_info dict."""
    agg = info["aggregated"]
    protocol = info.get("protocol") or {}
    what = (f"protocol {protocol['name']} v{protocol['version']} ({protocol['num_contexts']} "
            f"contexts x {protocol['rollouts_per_context']} rollouts)") if protocol else "seeds"
    return [
        f"env {info['env']['id']}, {what}, {agg['num_episodes']} episodes, "
        f"{info.get('wall_s', 0.0):.0f} s",
        f"success rate          {_fmt(agg['success_rate'], agg['success_rate_ci95'])}",
        f"behaviour entropy     {_fmt(agg['behaviour_entropy'], agg['behaviour_entropy_ci95'])}"
        f"  [{agg['num_successes']} successes, design effect {agg.get('design_effect', 1.0):.1f}, "
        f"log base {agg['num_behaviours']}]",
        f"conditional entropy   {_fmt(agg['conditional_behaviour_entropy'], agg.get('conditional_behaviour_entropy_ci95'))}",
        f"KL to dataset         {_fmt(agg['kl_to_reference'])}",
        f"behaviours            {agg['behaviour_counts']}",
        f"mean length           {agg['mean_length']:.1f} steps",
    ]


def run(args: argparse.Namespace) -> int:
    check_option(args.filter_key is None or args.open_loop is not None,
                 "--filter-key selects the demos of --open-loop; it needs --open-loop DATASET")
    if args.open_loop is not None:
        check_option(args.out_dir is not None, "--open-loop needs --out-dir DIR")
        policy, env_args = OpenLoopPolicy.from_dataset(args.open_loop, args.filter_key)
        check_task(env_args, args.env, args.open_loop)
        env_id, env_kwargs = check_env_args(env_args)
    else:
        env_id, env_kwargs = _env_of(read_checkpoint_config(args.checkpoint), args.env)
    protocol_ = protocol(env_id, args.protocol, args.contexts, args.rollouts)
    check_option(
        args.video_episodes <= protocol_.num_episodes,
        f"--video-episodes {args.video_episodes} is more than the {protocol_.num_episodes} episodes",
    )
    check_option(
        (args.sampler is None and args.inference_steps is None) or args.open_loop is None,
        "--sampler/--inference-steps choose how a diffusion checkpoint samples; "
        "--open-loop replays actions",
    )
    if args.open_loop is None:
        policy = load_checkpoint(args.checkpoint)
        _override_sampler(policy, args.sampler, args.inference_steps)
    reference = _reference_distribution(args.dataset)  # a bad file fails before any output
    out_dir = prepare_output_dir(args.out_dir or args.checkpoint / "eval")
    if (out_dir / "eval_info.json").exists() and not args.overwrite:
        raise OutputPathError(
            f"{out_dir / 'eval_info.json'} exists; pass --overwrite or choose another --out-dir"
        )
    video = out_dir / "rollouts.mp4" if args.video_episodes > 0 else None
    info = evaluate_protocol(
        env_kwargs, policy, protocol_, workers=args.workers, video_path=video,
        max_video_episodes=args.video_episodes, reference_distribution=reference,
    )
    if args.open_loop is None:
        info["checkpoint"] = {"path": str(args.checkpoint),
                              "sha256": checkpoint_digest(args.checkpoint)}
    else:
        info["open_loop"] = nearest_demo_section(policy, env_id, env_kwargs, protocol_)
    if reference is not None:
        info["reference"]["source"] = str(args.dataset)
    write_eval_info(out_dir / "eval_info.json", info)
    print("\n".join(summary_lines(info)))
    if "open_loop" in info:
        stats = info["open_loop"]["distance_stats"]
        print(f"nearest-demo distance min {stats['min']:.3f}, median {stats['median']:.3f}, "
              f"max {stats['max']:.3f} over {info['open_loop']['num_demos']} demos")
    if info["video_error"]:
        print(f"video not written: {info['video_error']}", file=sys.stderr)
    print(f"wrote {out_dir / 'eval_info.json'}" + (f" and {info['video']}" if info["video"] else ""))
    return 0
