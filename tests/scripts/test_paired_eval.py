"""scripts/paired_eval.py: two eval_info.json files in, the paired difference JSON out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paired_eval.py"


def load_script():
    spec = importlib.util.spec_from_file_location("paired_eval", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_info(path: Path, successes: np.ndarray, sampler: str, wall_s: float) -> Path:
    s, r = successes.shape
    path.write_text(json.dumps({
        "protocol": {"task_id": "polymimic/Push-v1", "split": "test", "num_contexts": s,
                     "rollouts_per_context": r, "version": 3, "contexts_sha256": "ab"},
        "policy": {"name": "diffusion", "config": {"sampler": sampler}},
        "per_episode": [{"context": c, "rollout": k, "success": bool(successes[c, k]),
                         "length": 10} for c in range(s) for k in range(r)],
        "wall_s": wall_s,
    }))  # fmt: skip
    return path


def test_writes_the_difference_and_both_files_identity(tmp_path: Path) -> None:
    a = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)
    b = np.array([[1, 0], [0, 0], [0, 0]], dtype=bool)
    files = [write_info(tmp_path / "a.json", a, "ddim", 6.0),
             write_info(tmp_path / "b.json", b, "ddpm", 60.0)]  # fmt: skip
    out = tmp_path / "paired.json"
    load_script().main([str(files[0]), str(files[1]), "--out", str(out), "--resamples", "200"])
    got = json.loads(out.read_text())
    assert got["difference"] == 2 / 6 and (got["a_only"], got["b_only"]) == (2, 0)
    assert got["a"]["policy"]["config"]["sampler"] == "ddim"
    assert got["b"]["wall_s_per_step"] == 1.0 and got["a"]["wall_s_per_step"] == 0.1
    assert len(got["a"]["sha256"]) == 64 and got["command"].startswith("python scripts/")
