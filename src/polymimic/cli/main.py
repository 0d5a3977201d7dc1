"""The ``polymimic`` command: one entry point whose subcommands follow the data flow.

``polymimic data ...`` makes and inspects datasets, ``polymimic train ...`` is the Hydra
training entry point (Hydra parses everything after ``train``), ``polymimic eval ...``
evaluates a checkpoint headless.
"""

from __future__ import annotations

import argparse
import sys

from polymimic.cli import data, evaluate

USAGE = """usage: polymimic <command> [args]

commands:
  data generate|info|validate|playback|split|masks|export-minari
                                make, inspect and convert multi-operator HDF5 datasets
  train key=value ...           train a learner (Hydra; e.g. dataset=FILE policy=bc_mlp)
  eval --checkpoint DIR ...     evaluate a checkpoint headless, write eval_info.json + mp4

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
    parsers = {"data": data.build_parser, "eval": evaluate.build_parser}
    if command not in parsers:
        print(f"polymimic: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    parser: argparse.ArgumentParser = parsers[command]()
    args = parser.parse_args(rest)
    try:
        return int(args.run(args) or 0)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        # User-caused errors (unknown names, bad files) get one line, not a traceback.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"polymimic {command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
