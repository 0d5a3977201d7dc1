"""Paired success difference of two evaluations run with one protocol (``polymimic.eval.paired``).

Usage (``results/learners/run.sh`` runs it for DDIM-10 against DDPM-100)::

    polymimic eval --checkpoint RUN/checkpoints/last --sampler ddim --inference-steps 10 \\
        --protocol full --rollouts 7 --out-dir ddim
    polymimic eval --checkpoint RUN/checkpoints/last --sampler ddpm --inference-steps 100 \\
        --protocol full --rollouts 7 --out-dir ddpm
    python scripts/paired_eval.py ddim/eval_info.json ddpm/eval_info.json --out paired.json

Episode ``(c, r)`` of one evaluation meets the same stored state and the same seed as
episode ``(c, r)`` of the other; the difference of success rates and its 95 % interval
(bootstrap over contexts) are printed and written as JSON with both files' sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from polymimic.eval.paired import paired_success_difference
from polymimic.io import atomic_write_json


def _latency(info: dict[str, Any]) -> float:
    """Wall seconds per environment step of an evaluation (one worker: policy + physics)."""
    steps = sum(int(e["length"]) for e in info["per_episode"])
    return float(info.get("wall_s", 0.0)) / max(steps, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="eval_info.json of A")
    parser.add_argument("b", type=Path, help="eval_info.json of B")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args(argv)
    infos = [json.loads(path.read_text()) for path in (args.a, args.b)]
    result = paired_success_difference(*infos, n_resamples=args.resamples)
    document = {
        "command": shlex.join(["python", "scripts/paired_eval.py",
                               *(sys.argv[1:] if argv is None else argv)]),  # fmt: skip
        "a": {"file": str(args.a), "sha256": hashlib.sha256(args.a.read_bytes()).hexdigest(),
              "policy": infos[0]["policy"], "wall_s_per_step": _latency(infos[0])},
        "b": {"file": str(args.b), "sha256": hashlib.sha256(args.b.read_bytes()).hexdigest(),
              "policy": infos[1]["policy"], "wall_s_per_step": _latency(infos[1])},
        "protocol": infos[0]["protocol"],
        "statistic": "success(A) - success(B) over paired episodes; 95% percentile bootstrap "
                     "over contexts",
        **result,
    }  # fmt: skip
    atomic_write_json(args.out, document)
    low, high = result["interval"]
    print(f"success A {result['success_a']:.3f}, B {result['success_b']:.3f}; A - B "
          f"{result['difference']:+.3f} [{low:+.3f}, {high:+.3f}] over {result['pairs']} pairs "
          f"in {result['contexts']} contexts (A only {result['a_only']}, B only "
          f"{result['b_only']}); wrote {args.out}")  # fmt: skip
    return document


if __name__ == "__main__":
    main()
