"""``polymimic leaderboard build|submit|verify|list`` end to end, and refusals as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polymimic.cli.main import main
from polymimic.leaderboard.store import Store


def test_build_submit_verify_list(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = f"sqlite:///{tmp_path / 'lb.db'}"
    bundle = tmp_path / "entry.zip"
    assert main(["submit", "build", str(trained_run), "--out", str(bundle), "--name",
                 "<script>alert(1)</script>", "--code", "https://example.org/x"]) == 0
    assert main(["leaderboard", "submit", str(bundle), "--db", db]) == 0
    assert "submission 1 stored for polymimic/Push-v1, track open" in capsys.readouterr().out
    monkeypatch.setenv("POLYMIMIC_LEADERBOARD_SECRET", "s" * 32)
    assert main(["leaderboard", "verify", "--db", db, "--contexts", "2", "--rollouts", "1"]) == 0
    assert "submission 1: verified: success 0.000" in capsys.readouterr().out
    assert main(["leaderboard", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "ranked by verified success, ties by conditional behaviour entropy" in out
    assert "1. #1 '<script>alert(1)</script>' success 0.000" in out
    assert Store(db).get(1).status == "verified"


def test_refused_bundle_is_one_line_and_exit_code_1(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = Path(shutil.copytree(bundle_dir, tmp_path / "b"))
    document = json.loads((path / "submission.json").read_text())
    document["policy_type"] = "evil"
    (path / "submission.json").write_text(json.dumps(document))
    db = f"sqlite:///{tmp_path / 'lb.db'}"
    assert main(["leaderboard", "submit", str(path), "--db", db]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("polymimic leaderboard: error: submission.json: policy_type 'evil'")
    assert len(err.splitlines()) == 1 and Store(db).count() == 0
    monkeypatch.delenv("POLYMIMIC_LEADERBOARD_SECRET", raising=False)
    assert main(["leaderboard", "verify", "--db", db]) == 1
    assert "POLYMIMIC_LEADERBOARD_SECRET" in capsys.readouterr().err
