"""``polymimic report``: the table, escaping, input checks and output refusal."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polymimic.cli.main import main
from polymimic.errors import OutputPathError, UserError
from polymimic.eval import plots, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert(1)</script>"


def synthetic_info(name: str = "bc", entropy: float | None = 0.9, protocol: bool = True) -> dict:
    """A format_version 2 eval_info dict: 3 contexts x 2 rollouts, 3 successes (a, a, b)."""
    outcomes = [(0, True, "a"), (0, True, "a"), (1, True, "b"), (1, False, "other"),
                (2, False, "other"), (2, False, "other")]  # fmt: skip
    return {
        "format_version": 2,
        "protocol": {"name": "cpu", "task_id": "test/Task-v0", "split": "test",
                     "num_contexts": 3, "rollouts_per_context": 2, "version": 1}
        if protocol else None,
        "env": {"id": "test/Task-v0", "kwargs": {}, "behaviours": ["a", "b"]},
        "policy": {"name": name, "class": "x.Y", "config": {}},
        "per_episode": [{"context": c if protocol else None, "rollout": i % 2,
                         "env_context": c, "success": s, "behaviour": b, "length": 10}
                        for i, (c, s, b) in enumerate(outcomes)],
        "aggregated": {
            "num_episodes": 6, "num_successes": 3, "success_rate": 0.5,
            "success_rate_ci95": [0.18761, 0.81239], "behaviour_counts": {"a": 2, "b": 1},
            "num_behaviours": 2, "behaviour_entropy": entropy,
            "behaviour_entropy_ci95": None if entropy is None else [0.61, 0.98765],
            "conditional_behaviour_entropy": None if entropy is None else 0.0,
            "conditional_behaviour_entropy_ci95": None if entropy is None else [0.0, 0.5],
            "kl_to_reference": 0.04321 if entropy is not None else None,
            "d3il_score": 0.5125 if entropy is not None else None,
            "num_invalid_action_episodes": 0, "mean_return": 0.5, "mean_length": 87.26,
        },
        "reference": {"source": "d.hdf5", "distribution": {"a": 0.5, "b": 0.3, "other": 0.2}},
    }  # fmt: skip


def write_info(path: Path, info: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def table(markdown: str) -> dict[str, list[str]]:
    """The report.md table: run label -> its cells (as written)."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return {c[0]: c for c in cells}


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """runs/bc/eval/eval_info.json and runs/few/seed/eval_info.json (+ an unrelated file)."""
    runs = tmp_path / "runs"
    write_info(runs / "bc" / "eval" / "eval_info.json", synthetic_info())
    write_info(runs / "few" / "seed" / "eval_info.json",
               synthetic_info(name=SCRIPT, entropy=None, protocol=False))
    (runs / "bc" / "notes.txt").write_text("not an eval")
    return runs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, report.ReportFiles]:
    """One report over four runs: plain, seed mode with a <script> policy, hostile names."""
    runs = tmp_path_factory.mktemp("report") / "runs"
    write_info(runs / "bc" / "eval" / "eval_info.json", synthetic_info())
    write_info(runs / "few" / "seed" / "eval_info.json",
               synthetic_info(name=SCRIPT, entropy=None, protocol=False))
    hostile = synthetic_info(name="a|b [x](y)")
    hostile["env"]["id"] = 'x"><img src=y onerror=alert(2)>'
    write_info(runs / "<b>odd</b>" / "eval_info.json", hostile)
    (runs / "bc" / "notes.txt").write_text("not an eval")
    out = runs.parent / "out"
    return out, report.write_report([runs], out)


def test_report_table_has_the_numbers_formatted_as_specified(built):
    out, files = built
    rows = table(files.markdown.read_text())
    assert rows["bc/eval"] == [
        "bc/eval", "test/Task-v0", "cpu v1 3×2", "bc", "6", "0.500 [0.188, 0.812]",
        "0.900 [0.610, 0.988] (n=3)", "0.000 [0.000, 0.500]", "0.043", "0.512", "87.3",
    ]  # fmt: skip
    assert rows["few/seed"][2:] == [
        "seeds (n=6)", "&lt;script&gt;alert(1)&lt;/script&gt;", "6", "0.500 [0.188, 0.812]",
        "n/a (n=3)", "n/a", "n/a", "n/a", "87.3",
    ]  # fmt: skip
    page = files.html.read_text()
    assert "<td class=num>0.900 [0.610, 0.988] (n=3)</td>" in page
    assert "<td class=num>n/a (n=3)</td>" in page


def test_report_links_one_histogram_and_heatmap_per_run_and_the_scatter(built):
    out, files = built
    names = [f.relative_to(out).as_posix() for f in files.figures]
    assert names == [
        "figures/01_b_odd_b_behaviours.png", "figures/01_b_odd_b_contexts.png",
        "figures/02_bc_eval_behaviours.png", "figures/02_bc_eval_contexts.png",
        "figures/03_few_seed_behaviours.png", "figures/03_few_seed_contexts.png",
        "figures/success_vs_entropy.png",
    ]  # fmt: skip
    markdown, page = files.markdown.read_text(), files.html.read_text()
    for figure, name in zip(files.figures, names, strict=True):
        assert figure.read_bytes()[:8] == PNG_SIGNATURE and figure.stat().st_size > 5_000
        assert f"({name})" in markdown and f'src="{name}"' in page
    counts, rows, labels = plots.context_counts(synthetic_info())  # what 02's heatmap shows
    np.testing.assert_array_equal(counts, [[2, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert rows == [0, 1, 2] and labels == ["a", "b", "other"]


def test_html_escapes_every_text_from_the_files(built):
    page = built[1].html.read_text()
    assert "<script>" not in page and "<b>" not in page and "<img src=y" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "x&quot;&gt;&lt;img src=y" in page
    markdown = built[1].markdown.read_text()
    assert "<script>" not in markdown and "<b>" not in markdown


def test_markdown_escapes_table_breaking_text(built):
    row = table(built[1].markdown.read_text())["&lt;b&gt;odd&lt;/b&gt;"]
    assert row[3] == r"a\|b \[x\](y)" and len(row) == len(report.COLUMNS)


def test_labels_are_relative_to_the_common_root(tmp_path):
    a = write_info(tmp_path / "x" / "a" / "eval_info.json", synthetic_info())
    b = write_info(tmp_path / "x" / "b" / "other_name.json", synthetic_info())
    runs, root = report.load_runs([a, b, tmp_path / "x" / "a"])  # a twice: listed once
    assert root == (tmp_path / "x").resolve()
    assert [r.label for r in runs] == ["a", "b/other_name.json"]


def test_a_directory_without_eval_info_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no eval_info.json under"):
        report.find_eval_infos([tmp_path / "empty"])
    with pytest.raises(UserError, match="does not exist"):
        report.find_eval_infos([tmp_path / "missing"])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{", "is not valid JSON"),
        ("[1, 2]", "is not an eval_info document"),
        (json.dumps({"format_version": 3}), "format_version 3; this report reads version 2"),
        (json.dumps({**synthetic_info(), "aggregated": {"success_rate": "high"}}),
         "aggregated.num_episodes is missing"),
        (json.dumps({**synthetic_info(), "per_episode": []}), "per_episode is missing or empty"),
        (json.dumps({**synthetic_info(), "aggregated": {**synthetic_info()["aggregated"],
                     "kl_to_reference": float("nan")}}), "aggregated.kl_to_reference is missing"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_naming_the_file(tmp_path, document, message):
    path = tmp_path / "eval_info.json"
    path.write_text(document)
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        report.load_eval_info(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_cli_refuses_a_version_1_file_in_one_line(tmp_path):
    old = synthetic_info()
    old["format_version"] = 1
    path = write_info(tmp_path / "old" / "eval_info.json", old)
    result = subprocess.run(
        [sys.executable, "-m", "polymimic.cli.main", "report", str(path), "--out",
         str(tmp_path / "out")], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polymimic report: error: ")
    assert str(path) in lines[0] and "format version 1" in lines[0]
    assert "polymimic eval" in lines[0]  # what to do
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_out_dir_unless_overwrite(runs_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["report", str(runs_dir), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "is not empty" in error and "--overwrite" in error and len(error.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert main(["report", str(runs_dir), "--out", str(out), "--overwrite"]) == 0
    assert (out / "report.html").is_file() and (out / "mine.txt").read_text() == "keep"
    assert "wrote" in capsys.readouterr().out


def test_an_empty_existing_out_dir_is_accepted_and_a_file_is_not(tmp_path):
    (tmp_path / "empty").mkdir()
    assert report.check_report_dir(tmp_path / "empty", overwrite=False) == tmp_path / "empty"
    assert report.check_report_dir(tmp_path / "new", overwrite=False).is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        report.check_report_dir(tmp_path / "file", overwrite=True)


def test_cli_option_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["report", "somewhere"])  # no --out
    assert caught.value.code == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_importing_the_report_does_not_load_matplotlib():
    code = ("import sys, polymimic.eval.report, polymimic.cli.report; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0


@dataclasses.dataclass
class _ZeroConfig:
    obs_keys: tuple[str, ...] = ("tip_pos",)


class _ZeroPolicy:
    """Stands still: a real but quick evaluation (it never succeeds)."""

    name = "zero"
    config = _ZeroConfig()

    def reset(self, env_ids=None) -> None:
        pass

    def predict_action(self, obs, generators=None, row_by_row=False):
        return np.zeros((obs.shape[0], 2), np.float32)


def test_report_of_a_real_evaluation(tmp_path):
    from polymimic.eval.protocol import PROTOCOL_VERSION, protocol
    from polymimic.eval.rollout import evaluate_protocol, write_eval_info

    info = evaluate_protocol({}, _ZeroPolicy(), protocol("polymimic/Push-v1", "cpu", 2, 1),
                             max_video_episodes=0)
    write_eval_info(tmp_path / "real" / "eval_info.json", info)
    files = report.write_report([tmp_path / "real"], tmp_path / "out")
    row = table(files.markdown.read_text())["real"]
    assert row[1:5] == ["polymimic/Push-v1", f"custom v{PROTOCOL_VERSION} 2×1", "zero", "2"]
    assert row[5].startswith("0.000 [0.000, ") and row[6] == "n/a (n=0)"
    counts, rows, _ = plots.context_counts(info)
    assert counts.shape == (2, 5) and not counts.any() and rows == [0, 1]  # 4 behaviours + other
    assert all(f.stat().st_size > 5_000 for f in files.figures)
