"""The verification subprocess: ``python -m polymimic.leaderboard.verify_child JOB_DIR``.

Started by ``verify.run_child`` under memory, CPU and wall-clock caps, with one thread per
math library and without the server's environment. ``JOB_DIR`` holds ``job.json`` (task,
env kwargs, the hidden seed start, S and R; never the secret) and ``checkpoint/``
(``config.json`` + ``model.safetensors`` from the store). The child loads the checkpoint
with the one loader, draws the hidden states with ``make_context_states``, plays the
episodes through ``evaluate_episodes`` and writes ``result.json``: ``{"eval_info": ...}``,
or ``{"error": "memory" | "user" | "exception", "message": ...}`` with exit code 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def evaluate_job(job_dir: Path) -> dict[str, Any]:
    """Evaluate the job's checkpoint on its hidden contexts; the ``eval_info`` dict."""
    import torch

    from polymimic.envs.allowlist import make_env
    from polymimic.eval.protocol import PROTOCOL_VERSION, make_context_states, states_digest
    from polymimic.eval.rollout import evaluate_episodes
    from polymimic.eval.vector import EpisodeSpec
    from polymimic.policies.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    job = json.loads((job_dir / "job.json").read_text())
    policy = load_checkpoint(job_dir / "checkpoint")
    env = make_env(job["task"], job["env_kwargs"])
    try:
        states = make_context_states(env, job["seed_start"], job["contexts"])
    finally:
        env.close()
    start = job["seed_start"]
    episodes = [
        EpisodeSpec(seed=start + c, initial_state=states[c],
                    generator_seed=int(np.random.SeedSequence([start, c, r]).generate_state(
                        1, dtype=np.uint64)[0] >> 1), context=c, rollout=r)
        for c in range(job["contexts"]) for r in range(job["rollouts"])
    ]  # fmt: skip
    protocol = {"name": "leaderboard-hidden", "task_id": job["task"], "split": "hidden",
                "num_contexts": job["contexts"], "rollouts_per_context": job["rollouts"],
                "version": PROTOCOL_VERSION, "contexts_sha256": states_digest(states)}
    return evaluate_episodes(job["task"], job["env_kwargs"], policy, episodes, protocol)


def _write(job_dir: Path, document: dict[str, Any]) -> None:
    from polymimic.eval.rollout import _json_default

    text = json.dumps(document, default=_json_default, allow_nan=False)
    (job_dir / "result.json").write_text(text)


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    try:
        _write(job_dir, {"eval_info": evaluate_job(job_dir)})
        return 0
    except MemoryError:
        _write(job_dir, {"error": "memory", "message": "MemoryError"})
    except Exception as err:  # noqa: BLE001  (reported to the server, which records it)
        from polymimic.errors import UserError

        kind = "user" if isinstance(err, UserError) else "exception"
        _write(job_dir, {"error": kind, "message": f"{type(err).__name__}: {str(err)[:500]}"})
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
