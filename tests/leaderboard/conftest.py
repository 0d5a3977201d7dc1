"""Fixtures of the leaderboard tests: one real run (bc_mlp trained a few steps on the tiny
generated Push dataset and evaluated on two contexts) and a bundle built from it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from polymimic.cli.main import main as polymimic_main
from polymimic.leaderboard.build import build_bundle


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny MLPs only lose time to intra-op threading on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained_run(tiny_push_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``polymimic train`` (bc_mlp, 4 steps) then ``polymimic eval`` on 2 contexts x 1."""
    run_dir = tmp_path_factory.mktemp("leaderboard") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "polymimic.cli.main", "train", f"dataset={tiny_push_dataset}",
         f"hydra.run.dir={run_dir}", "train.num_steps=4", "train.batch_size=8",
         "policy.hidden_dims=[8]", "train.progress_bar=false"],
        capture_output=True, text=True, env=env, cwd=run_dir.parent, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last"
    code = polymimic_main(["eval", "--checkpoint", str(checkpoint), "--protocol", "cpu",
                           "--contexts", "2", "--rollouts", "1", "--video-episodes", "0"])
    assert code == 0
    return run_dir


@pytest.fixture(scope="session")
def bundle_dir(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid directory bundle built from the run (copy it before damaging it)."""
    out = tmp_path_factory.mktemp("bundles") / "good"
    return build_bundle(trained_run, out, name="tiny <b>bc</b> ${oc.env:HOME}",
                        links={"code": "https://example.org/code"})
