"""The report of a scoring: the novelty-likelihood scatter and per-operator tables.

Files, in the report directory, prefixed by the scoring's name:

- ``<name>_scatter.png``: every step (a seeded subsample of at most ``MAX_POINTS``) at
  (novelty, likelihood), coloured by its demo's ground-truth class when labels are given,
  else by the step's verdict; the threshold lines ``nov = eta`` and ``lik = lambda`` bound
  the incompatible corner (familiar state, unlikely action: left of eta, above lambda).
  Novelty is on a log axis; likelihood too when every value is positive (the paper's MSE;
  the multimodal negative log-likelihood can be negative and stays linear).
- ``<name>_report.md`` and ``<name>_report.json``: per operator and per ground-truth class,
  the demos, how many were rejected, the mean score and mean incompatible fraction; with
  labels, the ground-truth metrics over the non-base demos (``truth_metrics``).

Figures are drawn on matplotlib's Agg canvas (``eval.plots``: no pyplot, no display).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from polymimic.compat import scores
from polymimic.compat.groundtruth import CLASSES
from polymimic.compat.scoring import ScoringResult
from polymimic.datasets.reader import PathLike, demo_attrs, demo_names, open_dataset
from polymimic.eval.plots import _figure, _save
from polymimic.io import atomic_write, atomic_write_json

MAX_POINTS = 20_000
_COLOURS = {"base": "tab:blue", "incompatible": "tab:red", "noisy_compatible": "tab:orange",
            "new_mode": "tab:green", "compatible": "tab:blue"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    """Where a report went."""

    scatter: Path
    markdown: Path
    json: Path


def demo_operators(path: PathLike) -> dict[str, str]:
    """demo -> its ``operator`` attribute (``"?"`` when it has none)."""
    with open_dataset(path) as f:
        return {n: str(demo_attrs(f["data"][n]).get("operator", "?")) for n in demo_names(f)}


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def truth_metrics(result: ScoringResult, labels: Mapping[str, str]) -> dict[str, Any]:
    """The verdicts against ground truth, over the demos that are not the base's.

    Positives are the ``incompatible`` demos; predictions are the rejections. Reported:
    precision and recall of the rejections, AUROC of the continuous score and of the
    incompatible fraction (``scores.auroc``), and the false-positive rate (share rejected)
    on ``noisy_compatible`` and on ``new_mode`` demos separately, and on the base's own.
    NaN (JSON null) where undefined.
    """
    classes = np.array([labels.get(d, "?") for d in result.demos])
    judged = classes != "base"
    truth = classes[judged] == "incompatible"
    rejected, per_demo = result.per_demo.rejected, result.per_demo
    precision, recall = scores.precision_recall(rejected[judged], truth)
    return {
        "demos": int(judged.sum()),
        "incompatible": int(truth.sum()),
        "precision": _finite(precision),
        "recall": _finite(recall),
        "auroc": _finite(scores.auroc(per_demo.score[judged], truth)),
        "auroc_incompatible_fraction": _finite(
            scores.auroc(per_demo.incompatible_fraction[judged], truth)
        ),
        # Every demo of these classes is a true negative: the rate is their share rejected.
        "false_positive_rate": {
            cls: _finite(scores.false_positive_rate(rejected[classes == cls], classes[classes == cls] == "incompatible"))
            for cls in ("noisy_compatible", "new_mode", "base")
        },
    }


def _group_row(result: ScoringResult, member: np.ndarray) -> dict[str, Any]:
    per_demo = result.per_demo
    count = int(member.sum())
    return {
        "demos": count,
        "rejected": int(per_demo.rejected[member].sum()),
        "mean_score": _finite(float(per_demo.score[member].mean())) if count else None,
        "mean_incompatible_fraction": (
            _finite(float(per_demo.incompatible_fraction[member].mean())) if count else None
        ),
    }


def operator_rows(
    result: ScoringResult, operators: Mapping[str, str], labels: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """One row per operator (sorted), with its ground-truth class when labels are given."""
    ops = np.array([operators.get(d, "?") for d in result.demos])
    rows = []
    for op in sorted(set(ops.tolist())):
        member = ops == op
        classes = sorted({labels.get(d, "?") for d in np.asarray(result.demos)[member]}) if labels else []
        rows.append({"operator": op, "class": ",".join(classes) or None, **_group_row(result, member)})
    return rows


def class_rows(result: ScoringResult, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per ground-truth class present, in ``CLASSES`` order."""
    classes = np.array([labels.get(d, "?") for d in result.demos])
    return [{"class": c, **_group_row(result, classes == c)} for c in CLASSES if (classes == c).any()]


def scatter_plot(
    result: ScoringResult, labels: Mapping[str, str] | None, path: PathLike, seed: int = 0
) -> Path:
    """The novelty-likelihood scatter (module docstring), written atomically as PNG."""
    n = len(result.likelihood)
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:MAX_POINTS])
    nov, lik = result.novelty[rows], result.likelihood[rows]
    if labels is not None:
        groups = np.array([labels.get(result.demos[i], "?") for i in result.demo_index[rows]])
    else:
        groups = np.where(result.weights[rows] == 0, "incompatible", "compatible")
    figure = _figure(6.4, 4.8)
    axes = figure.add_subplot()
    floor = max(float(nov[nov > 0].min()) / 2 if (nov > 0).any() else 1e-6, 1e-12)
    for group in [c for c in (*CLASSES, "compatible", "?") if (groups == c).any()]:
        pick = groups == group
        axes.scatter(np.maximum(nov[pick], floor), lik[pick], s=3, alpha=0.4, linewidths=0,
                     color=_COLOURS.get(group, "tab:gray"), label=f"{group} ({pick.sum()})")  # fmt: skip
    axes.axvline(max(result.eta, floor), color="k", linestyle="--", linewidth=1, label="eta")
    axes.axhline(result.lam, color="k", linestyle=":", linewidth=1, label="lambda")
    axes.set_xscale("log")
    if (lik > 0).all() and result.lam > 0:
        axes.set_yscale("log")
    axes.set_xlabel("novelty (ensemble std)")
    axes.set_ylabel(f"likelihood: {result.record.get('likelihood', '')}")
    axes.set_title(f"{result.name}: incompatible = left of eta, above lambda", fontsize=9)
    axes.legend(fontsize=7, markerscale=3)
    return _save(figure, path)


def truth_line(truth: Mapping[str, Any]) -> str:
    """One line of ``truth_metrics``: AUROC, precision, recall, false-positive rates."""
    fpr = {k: _cell(v) for k, v in truth["false_positive_rate"].items()}
    return (
        f"ground truth over {truth['demos']} non-base demos ({truth['incompatible']} "
        f"incompatible): AUROC {_cell(truth['auroc'])}, precision {_cell(truth['precision'])}, "
        f"recall {_cell(truth['recall'])}; false-positive rate noisy {fpr['noisy_compatible']}, "
        f"new mode {fpr['new_mode']}, base {fpr['base']}"
    )


def _cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None (undefined) as n/a."""
    return f"{value:.4g}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def _markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]


def report_document(
    result: ScoringResult, operators: Mapping[str, str], labels: Mapping[str, str] | None
) -> dict[str, Any]:
    """The JSON report: thresholds, per-operator rows, and with labels per-class rows and
    ground-truth metrics."""
    document = {
        "name": result.name,
        "dataset": result.record.get("dataset"),
        "scorer": result.record.get("scorer"),
        "lambda": result.lam,
        "eta": result.eta,
        "max_incompatible_fraction": result.record.get("max_incompatible_fraction"),
        "operators": operator_rows(result, operators, labels),
    }
    if labels is not None:
        document["classes"] = class_rows(result, labels)
        document["truth"] = truth_metrics(result, labels)
    return document


def write_report(
    result: ScoringResult,
    report_dir: PathLike,
    operators: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
) -> ReportFiles:
    """Write the scatter, the markdown and the JSON report into ``report_dir``."""
    report_dir = Path(report_dir)
    document = report_document(result, operators, labels)
    columns = ["demos", "rejected", "mean_score", "mean_incompatible_fraction"]
    lines = [f"# {result.name}", "",
             f"Scorer {document['scorer']}; lambda {result.lam:.4g}, eta {result.eta:.4g}; a demo "
             f"is rejected when more than {document['max_incompatible_fraction']} of its steps "
             "are incompatible.", "",
             *_markdown_table(document["operators"], ["operator", "class", *columns])]  # fmt: skip
    if labels is not None:
        lines += ["", *_markdown_table(document["classes"], ["class", *columns]), ""]
        lines.append(truth_line(document["truth"]) + ".")
    markdown = report_dir / f"{result.name}_report.md"
    atomic_write(markdown, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    json_path = atomic_write_json(report_dir / f"{result.name}_report.json", document, allow_nan=False)
    scatter = scatter_plot(result, labels, report_dir / f"{result.name}_scatter.png")
    return ReportFiles(scatter, markdown, json_path)

