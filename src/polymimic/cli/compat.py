"""``polymimic compat``: score a dataset's demonstrations against a base set."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from polymimic.cli.options import Parser, float_in, int_in

if TYPE_CHECKING:  # the scorer loads torch: imported only when a command runs
    from polymimic.compat.scoring import ScoringSettings

SCORE_HELP = """Score every demo of DATASET against a base set (Gandhi et al., CoRL 2022).

K ensemble members are trained on the base demos less a seeded 20 % held out (or K
checkpoints are loaded); every step gets a likelihood (high = unlikely action) and a
novelty (high = unfamiliar state); a step is incompatible when likelihood > lambda and
novelty < eta, and a demo is rejected above --max-incompatible-fraction incompatible
steps. lambda and eta are percentiles of the held-out base demos' own values unless given.

Scorers: paper (bc_mlp members, action-mismatch MSE; a second way of doing the task looks
like a conflict) and multimodal (bc_gmm members, mixture negative log-likelihood; an action
on any mode of the base is likely).

Written into DATASET atomically, under a name that says what produced it
(compat_<scorer>_<hash of base, scorer, K, seed, members, thresholds>): per-demo attrs
<name>_score / _incompatible_fraction / _incompatible_steps / _rejected, per-step datasets
data/demo_i/compat/<name>_weight / _likelihood / _novelty, masks <name>_keep and
<name>_reject (train on the kept demos with `polymimic train filter_key=<name>_keep`), and
the record as JSON in data.attrs[<name>]. The report (novelty-likelihood scatter PNG, a
per-operator table as markdown and JSON, ground-truth metrics when the file is a compat
benchmark) goes to --report-dir. Trained members are kept there (<name>_members/) for
--checkpoints.

Training defaults (--steps 2000, preset cpu_small) take about 5 s per member on one CPU
core; the paper's members are larger (hidden 1024, dropout 0.5): use --preset reference
and more --steps on a GPU.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="polymimic compat", description=__doc__)
    commands = parser.add_subparsers(dest="action", required=True)
    score = commands.add_parser(
        "score", help="score a dataset against a base set; write masks, attrs and a report",
        description=SCORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("dataset", type=Path)
    base = score.add_mutually_exclusive_group(required=True)
    base.add_argument("--base-mask", default=None, help="the base: the demos of this mask")
    base.add_argument("--base-operators", type=_names, default=None,
                      help="the base: the demos of these operator ids (comma-separated)")
    score.add_argument("--scorer", default="paper", help="paper (default) or multimodal")
    score.add_argument("--members", type=int_in(2, 64), default=None,
                       help="ensemble size K (default 5; with --checkpoints, their count)")
    score.add_argument("--checkpoints", type=Path, nargs="+", default=None, metavar="DIR",
                       help="load these K checkpoints (trained on the same base) instead of training")
    _add_threshold_arguments(score)
    score.add_argument("--steps", type=int_in(1, 10**8), default=None,
                       help="optimiser steps per member (default 2000)")
    score.add_argument("--preset", default="cpu_small", help="the learner's preset (default cpu_small)")
    score.add_argument("--batch-size", type=int_in(1, 1 << 20), default=256)
    score.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0,
                       help="member k trains with seed + k; also seeds the held-out split")
    score.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    score.add_argument("--report-dir", type=Path, default=None,
                       help="default: <dataset directory>/<dataset stem>_compat")
    score.add_argument("--truth", type=Path, default=None,
                       help="read ground-truth labels from this compat benchmark file (default: "
                       "DATASET itself when it is one)")
    score.add_argument("--overwrite", action="store_true",
                       help="replace a scoring of the same name already in DATASET")
    score.set_defaults(run=run_score)
    return parser


def _add_threshold_arguments(score: argparse.ArgumentParser) -> None:
    score.add_argument("--lambda", dest="lam", type=float_in(-1e12, 1e12), default=None,
                       help="likelihood threshold (default: calibrated)")
    score.add_argument("--eta", type=float_in(0.0, 1e12), default=None,
                       help="novelty threshold (default: calibrated)")
    score.add_argument("--lik-percentile", type=float_in(0.0, 100.0), default=95.0,
                       help="lambda = this percentile of the held-out base steps' likelihood")
    score.add_argument("--nov-percentile", type=float_in(0.0, 100.0), default=95.0,
                       help="eta = this percentile of the held-out base steps' novelty")
    score.add_argument("--max-incompatible-fraction", type=float_in(0.0, 1.0, high_open=True),
                       default=0.1, help="reject a demo above this share of incompatible steps")


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected operator ids such as a,b; got {text!r}")
    return names


def _settings(args: argparse.Namespace) -> ScoringSettings:
    from polymimic.compat.ensemble import MemberTraining
    from polymimic.compat.scoring import DEFAULT_MEMBERS, DEFAULT_STEPS, ScoringSettings
    from polymimic.errors import OptionError

    if args.checkpoints and args.members is not None and args.members != len(args.checkpoints):
        raise OptionError(f"--members {args.members} but {len(args.checkpoints)} --checkpoints given")
    training = MemberTraining(
        "", preset=args.preset, steps=args.steps or DEFAULT_STEPS, batch_size=args.batch_size,
        device=args.device,
    )  # fmt: skip
    return ScoringSettings(
        scorer=args.scorer, members=args.members or DEFAULT_MEMBERS, seed=args.seed,
        training=training, checkpoints=tuple(args.checkpoints or ()), lam=args.lam,
        eta=args.eta, lik_percentile=args.lik_percentile, nov_percentile=args.nov_percentile,
        max_fraction=args.max_incompatible_fraction,
    )  # fmt: skip


def _labels(args: argparse.Namespace) -> dict[str, str] | None:
    from polymimic.compat.groundtruth import ground_truth_labels
    from polymimic.errors import UserError

    if args.truth is not None:
        return ground_truth_labels(args.truth)  # asked for: a file without labels is an error
    try:
        return ground_truth_labels(args.dataset)
    except UserError:
        return None  # not a compat benchmark file: the report colours by verdict


def run_score(args: argparse.Namespace) -> int:
    """Check everything, score, write into the dataset, write the report, print a summary."""
    from polymimic.compat import outputs, report, scoring
    from polymimic.compat.ensemble import split_base
    from polymimic.io import prepare_output_dir

    settings = _settings(args)
    scoring.check_settings(settings)
    base, source = scoring.resolve_base(args.dataset, args.base_mask, args.base_operators or ())
    split_base(base, settings.seed)  # a base of fewer than 2 demos fails here, before training
    name = scoring.scoring_name(scoring.scoring_identity(base, settings))
    outputs.check_writable(args.dataset, name, args.overwrite)
    labels = _labels(args)
    report_dir = prepare_output_dir(
        args.report_dir or args.dataset.parent / f"{args.dataset.stem}_compat", "report directory"
    )
    with tempfile.TemporaryDirectory(prefix="polymimic_compat_") as work:
        result = scoring.score_dataset(args.dataset, base, settings, Path(work), source)
        if not settings.checkpoints:  # keep the trained members beside the report
            for k, directory in enumerate(result.member_dirs):
                kept = report_dir / f"{name}_members" / f"member_{k}"
                shutil.copytree(directory, kept, dirs_exist_ok=True)
                result.record["checkpoints"][k]["path"] = str(kept)
    masks = outputs.write_scoring(args.dataset, result, overwrite=args.overwrite)
    operators = report.demo_operators(args.dataset)
    files = report.write_report(result, report_dir, operators, labels)
    for row in report.operator_rows(result, operators, labels):
        label = f" [{row['class']}]" if row["class"] else ""
        print(f"operator {row['operator']}{label}: {row['demos']} demos, {row['rejected']} "
              f"rejected, mean score {row['mean_score']:.4g}")  # fmt: skip
    if labels is not None:
        print(report.truth_line(report.truth_metrics(result, labels)))
    keep, reject = (masks[f"{name}_{s}"] for s in ("keep", "reject"))
    print(f"lambda {result.lam:.4g}, eta {result.eta:.4g}; wrote {name} into {args.dataset} "
          f"(mask/{name}_keep: {len(keep)} demos, mask/{name}_reject: {len(reject)}); report: "
          f"{files.markdown}, {files.scatter}")  # fmt: skip
    return 0
