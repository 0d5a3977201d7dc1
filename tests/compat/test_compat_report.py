"""Tests of the scoring report (polymimic.compat.report) on a hand-made scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymimic.compat import report, scores
from polymimic.compat.scoring import ScoringResult

DEMOS = tuple(f"demo_{i}" for i in range(8))
LABELS = dict(zip(DEMOS, ["base", "base", "incompatible", "incompatible", "noisy_compatible",
                          "noisy_compatible", "new_mode", "new_mode"], strict=True))  # fmt: skip
OPERATORS = dict(zip(DEMOS, ["b", "b", "c", "c", "n", "n", "m", "m"], strict=True))
SCORES = np.array([-1.0, -1.0, 2.0, -0.2, 0.5, -0.5, -0.3, -0.4])


def hand_result() -> ScoringResult:
    index = np.repeat(np.arange(8), 5)
    rng = np.random.default_rng(0)
    lik, nov = rng.uniform(0.01, 2.0, 40), rng.uniform(0.01, 1.0, 40)
    per_demo = scores.DemoScores(
        steps=np.full(8, 5), incompatible_steps=(SCORES > 0) * 3,
        incompatible_fraction=(SCORES > 0) * 0.6, score=SCORES, rejected=SCORES > 0,
    )  # fmt: skip
    return ScoringResult(
        name="compat_paper_00000000", record={"scorer": "paper", "likelihood": "MSE"},
        demos=DEMOS, demo_index=index, likelihood=lik, novelty=nov,
        weights=scores.step_weights(lik, nov, 1.0, 0.5), excess=scores.step_excess(lik, nov, 1.0, 0.5),
        per_demo=per_demo, lam=1.0, eta=0.5,
    )  # fmt: skip


def test_truth_metrics_by_hand() -> None:
    truth = report.truth_metrics(hand_result(), LABELS)
    # Judged: demos 2-7; rejected 2 (incompatible) and 4 (noisy). Positive scores 2, -0.2
    # against 0.5, -0.5, -0.3, -0.4: 4 + 3 of 8 pairs.
    assert (truth["demos"], truth["incompatible"]) == (6, 2)
    assert truth["precision"] == 0.5 and truth["recall"] == 0.5
    assert truth["auroc"] == pytest.approx(7 / 8)
    assert truth["false_positive_rate"] == {"noisy_compatible": 0.5, "new_mode": 0.0, "base": 0.0}


def test_rows_per_operator_and_class() -> None:
    rows = {r["operator"]: r for r in report.operator_rows(hand_result(), OPERATORS, LABELS)}
    assert rows["c"] == {"operator": "c", "class": "incompatible", "demos": 2, "rejected": 1,
                         "mean_score": pytest.approx(0.9), "mean_incompatible_fraction": 0.3}  # fmt: skip
    assert rows["b"]["class"] == "base" and rows["b"]["rejected"] == 0
    classes = [r["class"] for r in report.class_rows(hand_result(), LABELS)]
    assert classes == ["base", "incompatible", "noisy_compatible", "new_mode"]
    assert report.operator_rows(hand_result(), OPERATORS, None)[0]["class"] is None


@pytest.mark.parametrize("labels", [LABELS, None])
def test_report_files(tmp_path: Path, labels: dict | None) -> None:
    files = report.write_report(hand_result(), tmp_path, OPERATORS, labels)
    assert files.scatter.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads(files.json.read_text())  # strict JSON: undefined values are null
    assert document["lambda"] == 1.0 and len(document["operators"]) == 4
    assert ("truth" in document) == (labels is not None)
    text = files.markdown.read_text()
    assert f"| c | {'incompatible' if labels else 'n/a'} | 2 | 1 |" in text
