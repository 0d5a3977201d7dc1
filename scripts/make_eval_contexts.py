"""Draw and store the evaluation protocol's contexts (initial states) for every task.

    python scripts/make_eval_contexts.py            # all tasks, test and selection splits

Each context is ``env.reset(seed=seed_start + k)`` followed by ``get_state()``, with the
split's seed range from ``polymimic.eval.protocol.SPLIT_SEED_START`` (disjoint from every
dataset and training-time seed). Rerun after a task change (a new ``-vN``), and bump
``PROTOCOL_VERSION``: results on different context sets are not comparable.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import gymnasium as gym

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.eval import protocol as pr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="*", default=sorted(pr.FULL))
    args = parser.parse_args()
    out_dir = Path(str(resources.files("polymimic.eval.contexts")))
    for task_id in args.tasks:
        env = gym.make(task_id)
        for split, count in (("test", max(pr.FULL[task_id][0], pr.CPU[0])),
                             ("selection", pr.SELECTION_CONTEXTS)):  # fmt: skip
            states = pr.make_context_states(env, pr.SPLIT_SEED_START[split], count)
            path = out_dir / pr.contexts_file_name(task_id, split)
            pr.write_contexts(path, task_id, split, states)
            print(f"{path}: {count} states of size {len(states[0])}, {pr.states_digest(states)[:12]}")
        env.close()


if __name__ == "__main__":
    main()
