"""Per-quality-group success, length and jerk of a polymimic dataset (Markdown table).

    python scripts/quality_table.py DATASET.hdf5

Jerk is the RMS third finite difference of the measured tip position divided by dt^3
(m/s^3, dt = one control step), over all steps of the group's demos.
"""

from __future__ import annotations

import collections
import sys

import h5py
import numpy as np

CONTROL_DT = 0.05  # s, Push-v0: 2 ms x 25 substeps


def main(path: str) -> None:
    groups: dict[str, dict[str, list]] = collections.defaultdict(lambda: collections.defaultdict(list))
    with h5py.File(path, "r") as f:
        for demo in f["data"].values():
            group = groups[demo.attrs["quality"]]
            group["success"].append(bool(demo.attrs["success"]))
            group["length"].append(int(demo.attrs["num_samples"]))
            tip = demo["obs"]["tip_pos"][:]
            group["jerk_sq"].append(np.sum(np.diff(tip, n=3, axis=0) ** 2, axis=1) / CONTROL_DT**6)
    print("| quality | demos | success | mean length (steps) | RMS jerk (m/s^3) |")
    print("|---|---|---|---|---|")
    for quality in ("better", "okay", "worse"):
        g = groups[quality]
        jerk = float(np.sqrt(np.mean(np.concatenate(g["jerk_sq"]))))
        print(f"| {quality} | {len(g['success'])} | {np.mean(g['success']):.3f} | "
              f"{np.mean(g['length']):.1f} | {jerk:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
