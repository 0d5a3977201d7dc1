"""The ``polymimic`` command: one entry point whose subcommands follow the data flow.

``polymimic data ...`` makes and inspects datasets, ``polymimic train ...`` is the Hydra
training entry point (Hydra parses everything after ``train``), ``polymimic eval ...``
evaluates a checkpoint headless, ``polymimic leaderboard ...`` runs the leaderboard.
"""

from __future__ import annotations

import argparse
import sys

from polymimic.cli import compat, data, evaluate, leaderboard, report
from polymimic.cli.options import USER_ERROR_EXIT
from polymimic.errors import UserError

USAGE = """usage: polymimic <command> [args]

commands:
  data generate|info|validate|playback|split|masks|export-minari
                                make, inspect and convert multi-operator HDF5 datasets
  train key=value ...           train a learner (Hydra; e.g. dataset=FILE policy=bc_mlp)
  eval --checkpoint DIR ...     evaluate a checkpoint headless, write eval_info.json + mp4
  eval --open-loop DATASET --out-dir DIR ...
                                the open-loop baseline: replay the nearest demo's actions
  report EVAL_INFO|DIR... --out DIR
                                compare eval_info.json files: report.md/.html, tables, plots
  compat score DATASET --base-mask M | --base-operators a,b ...
                                score demos against a base set (compatibility, Gandhi et al.)
  leaderboard build|submit|verify|list|serve|export
                                submission bundles, re-evaluated on hidden test contexts
  submit build RUN_DIR --out BUNDLE --name NAME
                                the same as `leaderboard build`

`polymimic <command> --help` for details; `polymimic train --help` shows Hydra's help.
"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from polymimic.cli import train  # Hydra is imported only when training

        train.main(rest)
        return 0
    parsers = {"data": data.build_parser, "eval": evaluate.build_parser,
               "report": report.build_parser, "leaderboard": leaderboard.build_parser,
               "submit": leaderboard.build_submit_parser, "compat": compat.build_parser}
    if command not in parsers:
        known = ", ".join(["train", *parsers])
        print(f"polymimic: error: unknown command {command!r}; commands: {known} "
              "(see `polymimic --help`)", file=sys.stderr)
        return USER_ERROR_EXIT
    parser: argparse.ArgumentParser = parsers[command]()
    args = parser.parse_args(rest)
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        # Problems the user can fix (bad files, options, names, outputs) get one line; any
        # other exception is a bug and keeps its traceback.
        print(f"polymimic {command}: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    raise SystemExit(main())
