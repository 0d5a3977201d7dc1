"""``polymimic report``: a table and figures (report.md + report.html) from eval_info.json files."""

from __future__ import annotations

import argparse
from pathlib import Path

from polymimic.cli.options import Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="polymimic report", description=__doc__)
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="EVAL_INFO_OR_DIR",
        help="eval_info.json files (format_version 2), or directories searched recursively",
    )  # fmt: skip
    parser.add_argument("--out", required=True, type=Path,
                        help="output directory for report.md, report.html and figures/")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out directory")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from polymimic.eval.report import write_report  # matplotlib loads only when reporting

    files = write_report(args.paths, args.out, overwrite=args.overwrite)
    runs = len(files.figures) // 2
    print(f"wrote {files.markdown} and {files.html} ({runs} run{'s' * (runs != 1)}, "
          f"{len(files.figures)} figures)")
    return 0
