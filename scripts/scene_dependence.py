"""How much the named datasets' behaviour choices depend on the scene: I(B; s0), two ways.

    python scripts/scene_dependence.py DATASET_NAME=FILE.hdf5 [...] [--out results/operators]

For each named dataset and its generated file:

* **exact**: ``polymimic.operators.scene.choice_information`` over the file's initial
  observations, with the population's documented choice probabilities (strategies and the
  task's ``scene_utilities``), so the only sampling is that of the initial states;
* **sample**: the plug-in estimate (Miller-Madow corrected) of I(B; context) from what the
  file records: each demo's first intention (``original_intent``) and its context id.
  Contexts are discrete cells of the initial-state distribution, so this is a lower bound
  on the dependence on the exact initial state.

Writes ``<out>/scene_dependence.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from polymimic.datasets.hdf5 import demo_attrs, demo_names, open_dataset
from polymimic.datasets.registry import dataset_spec
from polymimic.operators import task_behaviours, task_operators
from polymimic.operators.scene import choice_information, entropy_bits, plugin_information


def measure(name: str, path: Path) -> dict[str, float]:
    """Exact and sampled scene dependence of one named dataset's file."""
    spec = dataset_spec(name)
    initial, intents, contexts = [], [], []
    with open_dataset(path) as f:
        for demo in demo_names(f):
            group = f["data"][demo]
            initial.append({k: np.asarray(group["obs"][k][0]) for k in group["obs"]})
            attrs = demo_attrs(group)
            intents.append(str(attrs["original_intent"]))
            contexts.append(int(attrs["context"]))
    exact = choice_information(spec.operators, task_behaviours(spec.env_id),
                               task_operators(spec.env_id).scene_utilities, initial)  # fmt: skip
    _, counts = np.unique(intents, return_counts=True)
    return {
        **{f"exact {k}": v for k, v in exact.items()},
        "exact H(B|s0)/H(B)": exact["H(B|s0)"] / exact["H(B)"],
        "sample H(B)": entropy_bits(counts / counts.sum()),
        "sample I(B;context)": plugin_information(intents, contexts),
        "demos": len(intents),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", nargs="+", help="DATASET_NAME=FILE.hdf5")
    parser.add_argument("--out", type=Path, default=Path("results/operators"))
    args = parser.parse_args(argv)
    results = {}
    for pair in args.pairs:
        name, _, path = pair.partition("=")
        results[name] = measure(name, Path(path))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scene_dependence.json").write_text(json.dumps(results, indent=1) + "\n")
    keys = list(next(iter(results.values())))
    print("| dataset | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, values in results.items():
        print(f"| {name} | " + " | ".join(f"{values[k]:.3f}" if isinstance(values[k], float)
                                          else str(values[k]) for k in keys) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
