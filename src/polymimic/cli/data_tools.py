"""``polymimic data`` tools beyond generate/info/validate: playback, split, masks, export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polymimic.cli.options import float_in, int_in
from polymimic.datasets.tools import (
    masks_from_attribute,
    playback,
    split_train_valid,
)
from polymimic.envs.allowlist import CAMERAS

PLAYBACK_HELP = """Replay demos in their environment and write an mp4.

The env is re-created from the file's env_args. By default every recorded state is
restored (env.unwrapped.reset_to) and rendered; --use-actions instead steps the recorded
actions from the first state and reports how far the simulation drifts from the recorded
states (0.0 for polymimic's deterministic tasks)."""


def add_tool_commands(commands: argparse._SubParsersAction) -> None:
    """Register the tool subcommands on ``polymimic data``'s subparsers."""
    _add_playback(commands)

    split = commands.add_parser(
        "split", help="(re)write train/valid masks (robomimic split_train_val semantics)"
    )
    split.add_argument("path", type=Path)
    split.add_argument("--valid-fraction", type=float_in(0.0, 1.0, high_open=True), default=0.1)
    split.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    split.add_argument(
        "--filter-key", default=None,
        help="split only this mask's demos, into <key>_train and <key>_valid",
    )
    split.set_defaults(run=_split)

    masks = commands.add_parser("masks", help="write one mask per value of a demo attribute")
    masks.add_argument("path", type=Path)
    masks.add_argument(
        "--by", required=True,
        help="demo attribute: quality, operator, behaviour, style, strategy, ...",
    )
    masks.add_argument(
        "--prefix", default=None,
        help="mask-name prefix (default: none for quality, '<attribute>_' otherwise)",
    )
    masks.add_argument("--force", action="store_true", help="allow replacing train/valid/failed")
    masks.set_defaults(run=_masks)

    export = commands.add_parser(
        "export-minari", help="export to a Minari dataset (needs polymimic[minari])"
    )
    export.add_argument("path", type=Path)
    export.add_argument("--dataset-id", required=True, help="e.g. polymimic/push/multi-operator-v1")
    export.add_argument(
        "--out", type=Path, default=None,
        help="Minari datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)",
    )
    export.add_argument("--filter-key", default=None, help="export only this mask's demos")
    export.set_defaults(run=_export_minari)


def _add_playback(commands: argparse._SubParsersAction) -> None:
    playback_parser = commands.add_parser(
        "playback", help="replay demos (states or actions) and write an mp4",
        description=PLAYBACK_HELP,
    )
    playback_parser.add_argument("path", type=Path)
    playback_parser.add_argument("--out", type=Path, required=True, help="the mp4 to write")
    which = playback_parser.add_mutually_exclusive_group()
    which.add_argument(
        "--demos", type=int_in(1, 100_000), default=None, help="the first N demos (default all)"
    )
    which.add_argument("--demo", default=None, help="one demo by name, e.g. demo_3")
    playback_parser.add_argument("--filter-key", default=None, help="choose demos from this mask")
    playback_parser.add_argument(
        "--use-actions", action="store_true", help="replay actions from the first state"
    )
    playback_parser.add_argument("--camera", default="front", choices=CAMERAS)
    playback_parser.add_argument(
        "--size", type=_size, default=(240, 320), help="HEIGHTxWIDTH (default 240x320)"
    )
    playback_parser.add_argument(
        "--video-skip", type=int_in(1, 1000), default=1, help="keep every Nth frame"
    )
    playback_parser.set_defaults(run=_playback)


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 240x320, got {text!r}"
        ) from None
    from polymimic.envs.base import MAX_RENDER_HEIGHT, MAX_RENDER_WIDTH

    if not (1 <= height <= MAX_RENDER_HEIGHT and 1 <= width <= MAX_RENDER_WIDTH):
        raise argparse.ArgumentTypeError(
            f"{text!r} is outside 1x1 to {MAX_RENDER_HEIGHT}x{MAX_RENDER_WIDTH} (the tasks' "
            "offscreen framebuffer)"
        )
    return height, width


def _playback(args: argparse.Namespace) -> int:
    result = playback(
        args.path, args.out, demo=args.demo, num_demos=args.demos, filter_key=args.filter_key,
        use_actions=args.use_actions, camera=args.camera, size=args.size,
        video_skip=args.video_skip,
    )
    line = f"{result.video}: {result.num_frames} frames of {len(result.demos)} demos"
    if result.max_state_divergence is not None:
        line += f"; max state divergence replaying actions: {result.max_state_divergence:.3g}"
    print(line)
    return 0


def _split(args: argparse.Namespace) -> int:
    masks = split_train_valid(args.path, args.valid_fraction, args.seed, args.filter_key)
    print(", ".join(f"mask/{key}: {len(names)} demos" for key, names in masks.items()))
    return 0


def _masks(args: argparse.Namespace) -> int:
    masks = masks_from_attribute(args.path, args.by, prefix=args.prefix, force=args.force)
    print(", ".join(f"mask/{key}: {len(names)} demos" for key, names in sorted(masks.items())))
    return 0


def _export_minari(args: argparse.Namespace) -> int:
    from polymimic.datasets.minari_export import MinariNotInstalledError, export_minari

    try:
        path = export_minari(args.path, args.dataset_id, args.out, args.filter_key)
    except MinariNotInstalledError as exc:
        # An ImportError, which the top-level CLI would show as a traceback.
        print(f"polymimic data: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote Minari dataset {args.dataset_id} to {path}")
    return 0
