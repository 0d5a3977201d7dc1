"""Evaluation over several CPU processes: whole episodes per worker, not steps.

Measured on the 2-core development machine (``benchmarks/eval_workers.py``): stepping two
Push envs through Gymnasium's ``AsyncVectorEnv`` costs 1.05 ms per vector step against
0.43 ms for one env in-process, because each step pays two inter-process wake-ups (about
0.3 ms each on that VM) — more than a Push step itself. Per-step inter-process rollouts
cannot speed up CPU evaluation there. So ``--workers N`` starts N spawned processes, each
holding its own copy of the policy and one environment, and each plays whole episodes
through the one rollout loop (``eval.vector.run_episodes`` over a one-slot vector env);
the parent only hands out chunks of episodes and collects their outcomes.

Results do not depend on N: every episode carries its own initial state and random stream
and the policy is queried one environment at a time, so an episode plays out the same
whichever process runs it. The policy reaches the workers pickled by ``multiprocessing``:
an in-memory object of this process, never a file from elsewhere.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
from collections.abc import Mapping, Sequence
from typing import Any

from polymimic.eval.vector import EpisodeOutcome, EpisodeSpec, make_vector_env, run_episodes

_WORKER: dict[str, Any] = {}  # this worker process's env and policy


def _init_worker(
    env_id: str, env_kwargs: Mapping[str, Any], trusted: bool, policy: Any
) -> None:
    import torch

    torch.set_num_threads(1)  # N workers on N cores: intra-op threads would oversubscribe
    _WORKER["vec"] = make_vector_env(env_id, env_kwargs, 1, trusted)
    _WORKER["policy"] = policy


def _run_chunk(
    episodes: Sequence[EpisodeSpec], video: Sequence[int], offset: int
) -> list[EpisodeOutcome]:
    return run_episodes(_WORKER["vec"], _WORKER["policy"], episodes, video, offset)


def run_in_processes(
    env_id: str,
    env_kwargs: Mapping[str, Any],
    policy: Any,
    episodes: Sequence[EpisodeSpec],
    workers: int,
    video: Sequence[int] = (),
    trusted: bool = False,
) -> list[EpisodeOutcome]:
    """Play ``episodes`` on ``workers`` processes (in this process when ``workers == 1``).

    Args:
        env_id, env_kwargs: the environment (checked by the allowlist unless ``trusted``).
        policy: anything ``run_episodes`` accepts; picklable when ``workers > 1``.
        episodes: what to play; outcomes come back in this order.
        workers: processes.
        video: indices of the episodes whose frames to keep.
        trusted: see ``eval.vector.make_vector_env`` (one worker only: a spawned process
            does not see an env registered at run time).
    """
    if workers <= 1:
        vec = make_vector_env(env_id, env_kwargs, 1, trusted)
        try:
            return run_episodes(vec, policy, episodes, video)
        finally:
            vec.close()
    # Chunks of a few episodes: small enough to balance the load, large enough that the
    # hand-out costs nothing next to an episode.
    size = max(1, math.ceil(len(episodes) / (workers * 4)))
    starts = range(0, len(episodes), size)
    wanted = set(video)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(env_id, dict(env_kwargs), trusted, policy),
    ) as pool:  # fmt: skip
        futures = [
            pool.submit(_run_chunk, episodes[s : s + size],
                        [i - s for i in range(s, min(s + size, len(episodes))) if i in wanted], s)
            for s in starts
        ]  # fmt: skip
        return [outcome for future in futures for outcome in future.result()]
