"""``polymimic leaderboard``: build, submit, verify, list, serve and export leaderboard entries.

The database is ``--db URL`` (a SQLAlchemy URL), else ``$POLYMIMIC_LEADERBOARD_DB``, else
``sqlite:///leaderboard.db`` in the working directory. ``verify`` reads the server secret
from ``$POLYMIMIC_LEADERBOARD_SECRET`` (the hidden test contexts are derived from it);
``serve`` accepts uploads with the API token ``$POLYMIMIC_LEADERBOARD_TOKEN``.

``polymimic submit build RUN_DIR --out BUNDLE`` is the same as ``polymimic leaderboard build``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from polymimic.cli.options import Parser, float_in, int_in
from polymimic.leaderboard import DEFAULT_URL

DB_ENV = "POLYMIMIC_LEADERBOARD_DB"


def _add_build(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser("build", help="make a submission bundle from a training run")
    build.add_argument("run_dir", type=Path, help="a `polymimic train` run directory")
    build.add_argument("--out", type=Path, required=True,
                       help="bundle to write: a directory, or a zip when it ends in .zip")
    build.add_argument("--name", required=True, help="the entry's name on the page")
    build.add_argument("--eval-info", type=Path, default=None,
                       help="claimed metrics from this eval_info.json (default: "
                       "RUN_DIR/checkpoints/last/eval/eval_info.json)")
    build.add_argument("--dataset", type=Path, default=None,
                       help="the training dataset, if it moved since training")
    build.add_argument("--paper", default=None, help="http(s) link to a paper")
    build.add_argument("--code", default=None, help="http(s) link to the code")
    build.set_defaults(run=_build)


def build_parser(prog: str = "polymimic leaderboard") -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="action", required=True)
    _add_build(commands)
    if prog != "polymimic leaderboard":
        return parser
    submit = commands.add_parser("submit", help="check a bundle and queue it for verification")
    submit.add_argument("bundle", type=Path, help="a bundle directory or zip")
    submit.set_defaults(run=_submit)
    verify = commands.add_parser("verify", help="verify queued submissions, one at a time")
    verify.add_argument("--max-jobs", type=int_in(1, 10**6), default=None,
                        help="stop after N jobs (default: when the queue is empty)")
    verify.add_argument("--contexts", type=int_in(1, 1000), default=None,
                        help="hidden contexts S (default: the task's full protocol)")
    verify.add_argument("--rollouts", type=int_in(1, 1000), default=None,
                        help="rollouts per context R (default: the task's full protocol)")
    verify.add_argument("--wall-s", type=float_in(1, 7 * 86400), default=4 * 3600.0,
                        help="wall-clock cap per verification")
    verify.add_argument("--cpu-s", type=int_in(1, 7 * 86400), default=4 * 3600,
                        help="CPU-time cap per verification")
    verify.add_argument("--memory-mb", type=int_in(256, 1 << 20), default=8192,
                        help="address-space cap per verification")
    verify.set_defaults(run=_verify)
    listing = commands.add_parser("list", help="ranked verified entries, then the queue")
    listing.add_argument("--task", default=None, help="only this task id")
    listing.set_defaults(run=_list)
    serve = commands.add_parser("serve", help="the web app: ranked tables, entries, uploads")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int_in(1, 65535), default=8000)
    serve.add_argument("--verify", action="store_true",
                       help="also verify queued submissions in a background thread (needs "
                       "$POLYMIMIC_LEADERBOARD_SECRET)")
    serve.set_defaults(run=_serve)
    export = commands.add_parser("export", help="static index.html, entry pages, leaderboard.md")
    export.add_argument("--out", type=Path, required=True, help="output directory")
    export.set_defaults(run=_export)
    for command in (submit, verify, listing, serve, export):
        command.add_argument("--db", default=None,
                             help=f"database URL (default: ${DB_ENV} or {DEFAULT_URL})")
    return parser


def build_submit_parser() -> argparse.ArgumentParser:
    """``polymimic submit build ...``, the issue's name for ``leaderboard build``."""
    return build_parser("polymimic submit")


def _store(args: argparse.Namespace):  # noqa: ANN202  (Store; imported late: SQLAlchemy)
    from polymimic.leaderboard.store import Store

    return Store(args.db or os.environ.get(DB_ENV) or DEFAULT_URL)


def _build(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.build import build_bundle

    links = {k: v for k, v in (("paper", args.paper), ("code", args.code)) if v}
    out = build_bundle(args.run_dir, args.out, args.name, args.eval_info, args.dataset, links)
    print(f"wrote {out}; submit it with `polymimic leaderboard submit {out}`")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.bundle import submit

    store = _store(args)
    submission_id = submit(store, args.bundle)
    row = store.get(submission_id)
    track = f"fixed-data ({row.fixed_data})" if row.fixed_data else "open (declared data)"
    print(f"submission {submission_id} stored for {row.task}, track {track}; pending "
          "verification")
    return 0


def _settings(args: argparse.Namespace):  # noqa: ANN202  (VerifySettings)
    from polymimic.leaderboard.verify import VerifySettings

    return VerifySettings(contexts=args.contexts, rollouts=args.rollouts, wall_s=args.wall_s,
                          cpu_s=args.cpu_s, memory_bytes=args.memory_mb << 20)


def _serve(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.verify import VerifySettings, load_secret
    from polymimic.leaderboard.web import TOKEN_ENV, serve

    verifier = (load_secret(), VerifySettings()) if args.verify else None
    token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        print(f"uploads are disabled: set {TOKEN_ENV} to accept them")
    serve(_store(args), args.host, args.port, token, verifier)
    return 0


def _export(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.web import export_site

    written = export_site(_store(args), args.out)
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.verify import load_secret, work

    secret = load_secret()
    settings = _settings(args)
    store = _store(args)
    done = work(store, secret, settings, max_jobs=args.max_jobs)
    for submission_id, status in done:
        row = store.get(submission_id)
        if status == "lost":
            print(f"submission {submission_id}: lost: the lease passed and another worker "
                  "took the job over; nothing recorded")
            continue
        detail = row.failure_reason if status == "failed" else (
            f"success {row.success_rate:.3f}" + (f"; FLAGGED: {row.flag_reason}"
                                                 if row.claim_flagged else ""))
        print(f"submission {submission_id}: {status}: {detail}")
    print(f"{len(done)} verification{'s' * (len(done) != 1)}; queue empty"
          if args.max_jobs is None or len(done) < args.max_jobs else f"{len(done)} done")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _list(args: argparse.Namespace) -> int:
    from polymimic.leaderboard.ranking import RANK_COLUMNS, by_task

    rows = _store(args).entries(args.task)
    print(f"ranked by {RANK_COLUMNS[0]}, ties by {RANK_COLUMNS[1]}; data is declared")
    for task, ranked_rows in by_task(rows).items():
        print(f"\n{task}")
        for rank, row in enumerate(ranked_rows, 1):
            flag = "  FLAGGED" if row.claim_flagged else ""
            print(f"  {rank:>3}. #{row.id} {row.name[:60]!r} success {_fmt(row.success_rate)} "
                  f"[{_fmt(row.success_ci_low)}, {_fmt(row.success_ci_high)}] cond. entropy "
                  f"{_fmt(row.conditional_entropy)} (claimed {_fmt(row.claimed_success)}){flag}")
    waiting = [r for r in rows if r.status != "verified"]
    for row in waiting:
        reason = f": {row.failure_reason}" if row.failure_reason else ""
        print(f"#{row.id} {row.name[:60]!r} {row.task} {row.status}{reason}")
    return 0
