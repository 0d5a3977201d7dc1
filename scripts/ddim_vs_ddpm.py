"""DDIM-10 against DDPM-100 on held-out dataset states, for one trained diffusion checkpoint.

Usage (``results/learners/run.sh`` holds the exact command of the committed result)::

    python scripts/ddim_vs_ddpm.py --checkpoint RUN/checkpoints/last \\
        --dataset push_v1.hdf5 --mask valid --out results/learners/ddim_vs_ddpm/diffusion.json

**States.** ``--states`` (default 1,000) steps drawn uniformly (seeded) from the demos of
``--mask`` (default ``valid``), which must share no demo with the checkpoint's training mask;
each state is the learner's observation window there (``obs_horizon`` frames, the dataset's
padding at episode starts), exactly what ``predict_chunk`` receives in a rollout.

**Samples.** At every state ``--samples`` (default 32) action windows are drawn from each of
three samplers, all built from the checkpoint's training scheduler config
(``DDIMScheduler.from_config`` / ``DDPMScheduler.from_config``) and sampled with the EMA
weights: DDIM with 10 steps (seed A), DDPM with 100 steps (seed A) and DDPM with 100 steps
(seed B). What is compared is the **executed chunk**: the ``n_action_steps`` actions from the
current step on (Ta x action_dim numbers, min-max normalised to [-1, 1], the space the
sampler works and clips in), flattened; the first action alone is reported too.

**Distance.** The sliced Wasserstein distance ``SW_2`` (``polymimic.eval.distances``) *per
state*, between the ``samples`` draws of two samplers, averaged over the states. Per state,
not pooled: the question is whether DDIM draws from the same conditional ``p(a | s)`` as
DDPM; pooling all states would mostly measure the spread of actions *across* states, which
both samplers share, and would hide a per-state mismatch. The baseline is the same
statistic between two DDPM-100 draws with different seeds: with a finite number of samples
two sets from one distribution are not at distance 0, and that floor is what DDIM is held
to. Reported: ``ratio = mean SW(DDIM, DDPM_A) / mean SW(DDPM_A, DDPM_B)``, target <= 1.5.

**Latency.** Per executed action, batch of one environment, one torch thread: a chunk's
``predict_chunk`` time divided by ``n_action_steps``, median over ``--latency-calls`` calls.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymimic.datasets.reader import demo_names, open_dataset
from polymimic.datasets.windows import WindowDataset
from polymimic.eval.distances import random_directions, sliced_wasserstein
from polymimic.io import atomic_write_json
from polymimic.policies.checkpoint import checkpoint_digest, load_checkpoint, read_checkpoint_config
from polymimic.policies.diffusion_base import DiffusionBasePolicy


def with_sampler(policy: DiffusionBasePolicy, kind: str, steps: int) -> DiffusionBasePolicy:
    """A copy of ``policy`` sampling with ``kind`` (ddim/ddpm) in ``steps`` steps, its
    scheduler built from the training scheduler's config (``use_sampler``)."""
    other = copy.deepcopy(policy)
    other.use_sampler(kind, steps)
    return other.eval()


@torch.no_grad()
def draw(policy: DiffusionBasePolicy, windows: torch.Tensor, samples: int, seed: int,
         batch_states: int) -> np.ndarray:  # fmt: skip
    """``(S, samples, Ta, A)`` normalised executed chunks; global torch RNG seeded once."""
    torch.manual_seed(seed)
    to, ta = policy.config.obs_horizon, policy.config.n_action_steps
    out = []
    for start in range(0, len(windows), batch_states):
        block = windows[start : start + batch_states]
        repeated = block.repeat_interleave(samples, dim=0)
        window = policy.sample(repeated, None)  # (rows, Tp, A), normalised
        chunk = window[:, to - 1 : to - 1 + ta]
        out.append(chunk.reshape(len(block), samples, ta, -1).numpy())
    return np.concatenate(out)


def per_state_sw(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """SW_2 between ``a[s]`` and ``b[s]`` (each ``(samples, dim)``) for every state s."""
    return np.array([sliced_wasserstein(x, y, directions=directions) for x, y in zip(a, b, strict=True)])


def latency_ms_per_action(policy: DiffusionBasePolicy, windows: torch.Tensor, calls: int) -> float:
    """Median ``predict_chunk`` time of a batch of one, divided by ``n_action_steps``."""
    times = []
    generator = [torch.Generator().manual_seed(0)]
    with torch.no_grad():
        policy.predict_chunk(windows[:1], generator)  # warm-up
        for k in range(calls):
            started = time.perf_counter()
            policy.predict_chunk(windows[k % len(windows)][None], generator)
            times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times) / policy.config.n_action_steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--mask", default="valid", help="held-out demos to draw states from")
    parser.add_argument("--states", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=32, help="draws per state and sampler")
    parser.add_argument("--projections", type=int, default=128, help="SW directions")
    parser.add_argument("--ddim-steps", type=int, default=10)
    parser.add_argument("--ddpm-steps", type=int, default=100)
    parser.add_argument("--batch-states", type=int, default=64)
    parser.add_argument("--latency-calls", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    saved = read_checkpoint_config(args.checkpoint)
    policy = load_checkpoint(args.checkpoint)
    if not isinstance(policy, DiffusionBasePolicy):
        raise SystemExit(f"{args.checkpoint} holds a {policy.name}, not a diffusion learner")
    with open_dataset(args.dataset) as f:
        held_out = set(demo_names(f, args.mask))
        trained = set(demo_names(f, saved.get("filter_key"))) if saved.get("filter_key") else set()
    if held_out & trained:
        raise SystemExit(f"mask {args.mask!r} shares {len(held_out & trained)} demos with the "
                         f"training mask {saved.get('filter_key')!r}")  # fmt: skip
    data = WindowDataset(args.dataset, policy.config.obs_keys, args.mask, spec=policy.batch_spec())
    rng = np.random.default_rng(args.seed)
    picked = np.sort(rng.choice(len(data), size=min(args.states, len(data)), replace=False))
    windows = data.get_batch(picked)["obs"].float()  # (S, To, obs_dim), raw

    ddim = with_sampler(policy, "ddim", args.ddim_steps)
    ddpm = with_sampler(policy, "ddpm", args.ddpm_steps)
    started = time.perf_counter()
    sets = {
        "ddim_a": draw(ddim, windows, args.samples, args.seed + 1, args.batch_states),
        "ddpm_a": draw(ddpm, windows, args.samples, args.seed + 1, args.batch_states),
        "ddpm_b": draw(ddpm, windows, args.samples, args.seed + 2, args.batch_states),
    }
    sampling_s = time.perf_counter() - started
    results: dict[str, Any] = {}
    for what, cut in (("executed_chunk", slice(None)), ("first_action", slice(0, 1))):
        flat = {k: v[:, :, cut].reshape(v.shape[0], v.shape[1], -1) for k, v in sets.items()}
        directions = random_directions(flat["ddim_a"].shape[-1], args.projections,
                                       np.random.default_rng(args.seed + 3))  # fmt: skip
        ddim_ddpm = per_state_sw(flat["ddim_a"], flat["ddpm_a"], directions)
        ddpm_ddpm = per_state_sw(flat["ddpm_a"], flat["ddpm_b"], directions)
        # the same DDIM draw against the second DDPM draw: the ratio must not hinge on one
        ddim_ddpm_b = per_state_sw(flat["ddim_a"], flat["ddpm_b"], directions)
        results[what] = {
            "dim": int(flat["ddim_a"].shape[-1]),
            "sw_ddim_vs_ddpm": float(ddim_ddpm.mean()),
            "sw_ddim_vs_ddpm_seed_b": float(ddim_ddpm_b.mean()),
            "sw_ddpm_vs_ddpm": float(ddpm_ddpm.mean()),
            "ratio": float(ddim_ddpm.mean() / ddpm_ddpm.mean()),
            "ratio_seed_b": float(ddim_ddpm_b.mean() / ddpm_ddpm.mean()),
            "per_state_ratio_median": float(np.median(ddim_ddpm / np.maximum(ddpm_ddpm, 1e-12))),
            "per_state_sw_ddpm_vs_ddpm_quantiles": [float(q) for q in np.quantile(ddpm_ddpm, [0.1, 0.5, 0.9])],
            "per_state_sw_ddim_vs_ddpm_quantiles": [float(q) for q in np.quantile(ddim_ddpm, [0.1, 0.5, 0.9])],
            "mean_action_std_ddpm": float(flat["ddpm_a"].std(axis=1).mean()),
            "mean_action_std_ddim": float(flat["ddim_a"].std(axis=1).mean()),
        }  # fmt: skip
    latency = {
        "ddim_ms_per_action": latency_ms_per_action(ddim, windows, args.latency_calls),
        "ddpm_ms_per_action": latency_ms_per_action(ddpm, windows, args.latency_calls),
    }
    latency["ddpm_over_ddim"] = latency["ddpm_ms_per_action"] / latency["ddim_ms_per_action"]
    document = {
        "command": shlex.join(["python", "scripts/ddim_vs_ddpm.py",
                               *(sys.argv[1:] if argv is None else argv)]),  # fmt: skip
        "checkpoint": {"path": str(args.checkpoint), "sha256": checkpoint_digest(args.checkpoint),
                       "step": saved.get("step"), "policy": policy.name,
                       "filter_key": saved.get("filter_key"),
                       "preset": saved.get("policy_preset")},  # fmt: skip
        "dataset": str(args.dataset), "mask": args.mask, "states": len(picked),
        "samples_per_state": args.samples, "projections": args.projections, "p": 2,
        "compared": "executed chunk: n_action_steps actions from the current step, normalised "
                    "to [-1, 1], flattened (first_action: its first action only)",
        "distance": "per-state sliced W_2 averaged over states; baseline two DDPM draws",
        "samplers": {"ddim": {"steps": args.ddim_steps, "seed": args.seed + 1},
                     "ddpm_a": {"steps": args.ddpm_steps, "seed": args.seed + 1},
                     "ddpm_b": {"steps": args.ddpm_steps, "seed": args.seed + 2}},
        "target": "ratio <= 1.5", "results": results, "latency": latency,
        "torch_threads": args.threads, "sampling_s": sampling_s,
    }  # fmt: skip
    atomic_write_json(args.out, document)
    chunk = results["executed_chunk"]
    print(f"executed chunk: SW(DDIM, DDPM) {chunk['sw_ddim_vs_ddpm']:.4f}, SW(DDPM, DDPM) "
          f"{chunk['sw_ddpm_vs_ddpm']:.4f}, ratio {chunk['ratio']:.3f} (seed b "
          f"{chunk['ratio_seed_b']:.3f}); first action ratio "
          f"{results['first_action']['ratio']:.3f}; latency DDIM "
          f"{latency['ddim_ms_per_action']:.2f} ms/action, DDPM "
          f"{latency['ddpm_ms_per_action']:.2f} ms/action ({latency['ddpm_over_ddim']:.1f}x); "
          f"wrote {args.out}")  # fmt: skip
    return document


if __name__ == "__main__":
    main()
