"""Evaluate a named dataset's operator population with the evaluation protocol.

    python scripts/operator_reference.py --dataset polymimic/push/multi-operator-v1 \\
        --protocol full --workers 2 --data /tmp/polymimic_push_full.hdf5 --out results/operators_eval/push

The population (each episode's operator drawn uniformly, as the dataset holds equally many
demos of each) is scored like a learner: same stored contexts, same rollout loop, same
metrics. Its numbers are the reference a learner's are printed beside. With ``--data`` the
script also reads the dataset the population made and writes a comparison: the
collection's success rate and the behaviour entropy of its successful demos, against the
evaluated ones and their 95% intervals.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import gymnasium as gym

import polymimic  # noqa: F401  (registers the tasks)
from polymimic.datasets.reader import demo_attrs, demo_names, open_dataset
from polymimic.datasets.registry import dataset_spec
from polymimic.eval import metrics
from polymimic.eval.protocol import protocol
from polymimic.eval.rollout import evaluate_protocol, write_eval_info
from polymimic.io import atomic_write
from polymimic.operators.as_policy import OperatorPolicy


def collection_stats(path: Path, num_behaviours: int) -> dict:
    """Success rate over every demo and entropy of the successful demos' behaviours."""
    with open_dataset(path) as f:
        attrs = [demo_attrs(f["data"][name]) for name in demo_names(f)]
    successes = [a for a in attrs if a.get("success")]
    labels = [a["behaviour"] for a in successes]
    return {
        "demos": len(attrs),
        "success_rate": len(successes) / len(attrs),
        "behaviour_entropy": metrics.behaviour_entropy(labels, num_behaviours),
        "behaviour_counts": dict(Counter(labels)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="polymimic/push/multi-operator-v1")
    parser.add_argument("--protocol", default="full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="the generated dataset file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    spec = dataset_spec(args.dataset)
    env = gym.make(spec.env_id, **spec.env_kwargs)
    policy = OperatorPolicy(spec.env_id, spec.operators, env.observation_space,
                            int(env.action_space.shape[0]), env.spec.max_episode_steps)  # fmt: skip
    behaviours = env.unwrapped.behaviours
    env.close()
    info = evaluate_protocol(spec.env_kwargs, policy, protocol(spec.env_id, args.protocol),
                             workers=args.workers)  # fmt: skip
    info["policy"]["dataset"] = spec.name
    write_eval_info(args.out / "eval_info.json", info)
    agg = info["aggregated"]
    lines = [f"# {spec.name}: operator population, protocol {args.protocol}", "",
             "| | success | behaviour entropy | conditional entropy |", "|---|---|---|---|",
             f"| evaluated ({agg['num_episodes']} episodes, {agg['num_successes']} successes) "
             f"| {agg['success_rate']:.3f} [{agg['success_rate_ci95'][0]:.3f}, "
             f"{agg['success_rate_ci95'][1]:.3f}] | {_fmt(agg, 'behaviour_entropy')} | "
             f"{_fmt(agg, 'conditional_behaviour_entropy')} |"]  # fmt: skip
    if args.data is not None:
        stats = collection_stats(args.data, len(behaviours))
        lines.append(f"| collected ({stats['demos']} demos) | {stats['success_rate']:.3f} | "
                     f"{stats['behaviour_entropy']:.3f} | – |")  # fmt: skip
        (args.out / "collection.json").write_text(json.dumps(stats, indent=2) + "\n")
    text = "\n".join(lines) + f"\n\nwall time {info['wall_s']:.0f} s, {args.workers} workers\n"
    atomic_write(args.out / "table.md", lambda tmp: tmp.write_text(text))
    print(text)


def _fmt(agg: dict, key: str) -> str:
    value, interval = agg[key], agg.get(f"{key}_ci95")
    if value is None:
        return "n/a"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


if __name__ == "__main__":
    main()
