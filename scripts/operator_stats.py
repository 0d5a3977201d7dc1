"""How the operators of named datasets move, per task and quality tier (issue: operators v1).

    python scripts/operator_stats.py FILE.hdf5 [FILE.hdf5 ...] --out results/operators

For every file (a polymimic dataset, v0 or v1) and quality tier, on its *successful* demos:
mean tip speed (m/s), mean demo length (steps), the fraction of tip-velocity power above
3 Hz and of action power above 3 Hz (periodograms, mean removed per axis, pooled), the 99th
percentile of tip acceleration (m/s^2), the median SPARC per movement segment (segments
between rests, speed < 1 cm/s), the fraction of steps reversing direction at > 2 cm/s, and
the residual path-length variation per operator after regressing on the behaviour and the
initial state (leave-one-out OLS on one indicator per behaviour and the object
observations at t = 0; operators with >= 8 successful demos; the table gives the smallest
and the median over the tier's operators). Per operator it adds the
Markov check of ``polymimic data info`` (k-NN R² of the next action from the state, and
from the state plus 4 previous actions; the gap says how much the history reveals).

Writes ``<out>/<file stem>.json``, ``<out>/table.md`` (appended per file) and per-tier PNGs:
the xy paths of 6 successful demos and their speed profiles. Functions are in
``polymimic.datasets.motion``.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from polymimic.datasets import motion
from polymimic.datasets.diagnostics import control_dt, markov_check
from polymimic.datasets.hdf5 import demo_attrs, demo_names, open_dataset, read_env_args

TIERS = ("better", "okay", "worse")
MIN_GROUP = 8  # successful demos of an operator for a residual variation
TIP_KEYS = ("tip_pos", "tip_target", "gripper")  # not part of the scene's initial state


def read_demos(path: Path) -> tuple[list[dict[str, Any]], float, str]:
    """Per demo: attrs, tip path, actions, initial object observation; dt; env id."""
    demos = []
    with open_dataset(path) as f:
        env_args = read_env_args(f)
        dt = control_dt(env_args) or 0.05
        for name in demo_names(f):
            group = f["data"][name]
            obs = group["obs"]
            scene = [np.ravel(obs[k][0]) for k in sorted(obs) if k not in TIP_KEYS]
            flat_obs = np.concatenate([np.asarray(obs[k][()], np.float64).reshape(len(obs[k]), -1)
                                       for k in sorted(obs)], axis=1)  # fmt: skip
            demos.append({
                "attrs": demo_attrs(group),
                "tip": np.asarray(obs["tip_pos"][()], np.float64),
                "actions": np.asarray(group["actions"][()], np.float64),
                "scene": np.concatenate(scene) if scene else np.zeros(0),
                "obs": flat_obs,
            })  # fmt: skip
    return demos, dt, str(env_args.get("env_name"))


def tier_stats(demos: list[dict[str, Any]], dt: float) -> dict[str, Any]:
    """The statistics of one tier's successful demos (see the module docstring)."""
    ok = [d for d in demos if d["attrs"].get("success")]
    if not ok:
        return {"demos": len(demos), "success": 0.0}
    tips = [d["tip"] for d in ok]
    sparcs = [s for t in tips for s in motion.segment_sparc(t, dt) if np.isfinite(s)]
    groups = collections.defaultdict(list)
    for d in ok:
        groups[d["attrs"].get("operator")].append(d)
    residuals = [residual_path_variation(g) for g in groups.values() if len(g) >= MIN_GROUP]
    residuals = [r for r in residuals if np.isfinite(r)]
    return {
        "demos": len(demos),
        "success": len(ok) / len(demos),
        "mean_speed": float(np.mean([motion.mean_speed(t, dt) for t in tips])),
        "mean_length": float(np.mean([len(t) for t in tips])),
        "tip_power_above_3hz": motion.high_frequency_fraction([motion.velocities(t, dt) for t in tips], dt),
        "action_power_above_3hz": motion.high_frequency_fraction([d["actions"] for d in ok], dt),
        "acceleration_p99": motion.acceleration_percentile(tips, dt),
        "sparc_median": float(np.median(sparcs)) if sparcs else float("nan"),
        "segments": len(sparcs),
        "reversal_fraction": float(np.mean([motion.reversal_fraction(t, dt) for t in tips])),
        "residual_path_variation_min": float(min(residuals)) if residuals else float("nan"),
        "residual_path_variation_median": float(np.median(residuals)) if residuals else float("nan"),
        "residual_groups": len(residuals),
    }


def residual_path_variation(demos: list[dict[str, Any]]) -> float:
    """One operator's path-length variation not explained by behaviour or initial state.

    Leave-one-out OLS of path length on the initial object observations plus one indicator
    per behaviour (``motion.residual_variation``): what is left is how much the operator's
    own demos of one behaviour, from the same scene, differ.
    """
    behaviours = sorted({str(d["attrs"].get("behaviour")) for d in demos})
    indicators = np.array([[d["attrs"].get("behaviour") == b for b in behaviours[1:]]
                           for d in demos], dtype=np.float64)  # fmt: skip
    features = np.hstack([np.stack([d["scene"] for d in demos]), indicators])
    lengths = np.array([motion.path_length(d["tip"]) for d in demos])
    return motion.residual_variation(lengths, features)


def markov_gaps(demos: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per operator: the Markov check's state-only R², with-history R² and gap."""
    by_operator = collections.defaultdict(list)
    for d in demos:
        by_operator[str(d["attrs"].get("operator"))].append((d["obs"], d["actions"]))
    result = {}
    for operator, episodes in sorted(by_operator.items()):
        check = markov_check(episodes)
        if check is not None:
            result[operator] = {"r2_state": check.r2_state, "r2_history": check.r2_history,
                                "gap": check.gap}  # fmt: skip
    return result


def plot_tier(demos: list[dict[str, Any]], dt: float, title: str, path: Path) -> None:
    """xy paths and speed profiles of up to 6 successful demos of one tier."""
    ok = [d for d in demos if d["attrs"].get("success")][:6]
    figure = Figure(figsize=(10, 4))
    FigureCanvasAgg(figure)
    paths_axis, speed_axis = figure.subplots(1, 2)
    for d in ok:
        paths_axis.plot(d["tip"][:, 1], d["tip"][:, 0], lw=1)
        speed = np.linalg.norm(motion.velocities(d["tip"], dt), axis=1)
        speed_axis.plot(np.arange(len(speed)) * dt, speed, lw=1)
    paths_axis.set(xlabel="y (m)", ylabel="x (m)", title=f"{title}: tip paths", aspect="equal")
    paths_axis.invert_xaxis()
    speed_axis.set(xlabel="time (s)", ylabel="tip speed (m/s)", title="speed profiles")
    figure.tight_layout()
    figure.savefig(path, dpi=80)


ROW = ("| {task} | {tier} | {demos} | {success:.2f} | {mean_speed:.3f} | {mean_length:.0f} | "
       "{tip_power_above_3hz:.3f} | {action_power_above_3hz:.3f} | {acceleration_p99:.2f} | "
       "{sparc_median:.2f} | {reversal_fraction:.3f} | {residual_path_variation_min:.3f} / "
       "{residual_path_variation_median:.3f} |")  # fmt: skip
HEADER = ("| task | tier | demos | success | mean speed (m/s) | mean length | tip power > 3 Hz | "
          "action power > 3 Hz | accel p99 (m/s²) | SPARC (median) | reversals | "
          "residual path var. (min / median) |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results/operators"))
    parser.add_argument("--no-plots", action="store_true", help="tables and JSON only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for path in args.files:
        demos, dt, env_id = read_demos(path)
        tiers = {t: [d for d in demos if d["attrs"].get("quality") == t] for t in TIERS}
        stats = {t: tier_stats(tiers[t], dt) for t in TIERS if tiers[t]}
        for tier, values in stats.items():
            if "mean_speed" in values:
                lines.append(ROW.format(task=f"{env_id} ({path.stem})", tier=tier, **values))
            if not args.no_plots:
                plot_tier(tiers[tier], dt, f"{env_id} {tier}", args.out / f"{path.stem}_{tier}.png")
        result = {"file": path.name, "env_id": env_id, "dt": dt, "tiers": stats,
                  "markov": markov_gaps(demos)}  # fmt: skip
        (args.out / f"{path.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    table = "\n".join(lines) + "\n"
    (args.out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
