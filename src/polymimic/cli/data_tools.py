"""``polymimic data`` tools beyond generate/info/validate: playback, split, masks, export."""

from __future__ import annotations

import argparse


def add_tool_commands(commands: argparse._SubParsersAction) -> None:
    """Register the tool subcommands on ``polymimic data``'s subparsers."""
