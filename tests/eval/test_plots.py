"""Figures of eval_info documents (``polymimic.eval.plots``) on hand-made documents."""

from __future__ import annotations

import sys

import numpy as np

from polymimic.eval import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BEHAVIOURS = ["a", "b", "c"]

# (context, success, behaviour) of a 3 contexts x 4 rollouts protocol, by hand:
# context 0: a, a, b succeed; context 1: c and an unknown label succeed; context 2: none.
EPISODES = [
    (0, True, "a"), (0, True, "a"), (0, True, "b"), (0, False, "other"),
    (1, True, "c"), (1, True, "weird"), (1, False, "other"), (1, False, "other"),
    (2, False, "other"), (2, False, "other"), (2, False, "other"), (2, False, "other"),
]  # fmt: skip
#: successful rollouts per (context, behaviour) over a, b, c, other: context 2 is all zero.
EXPECTED_COUNTS = np.array([[2, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])


def synthetic_info(
    episodes=EPISODES, entropy: float | None = 0.9, protocol: bool = True, name: str = "bc"
) -> dict:
    """An eval_info dict (format_version 2) whose counts are known by hand."""
    per_episode = [
        {"context": c if protocol else None, "rollout": i % 4, "env_context": 10 + c,
         "seed": 0, "success": s, "behaviour": b, "return": float(s), "length": 50,
         "terminated": s, "truncated": not s, "invalid_action": False}
        for i, (c, s, b) in enumerate(episodes)
    ]  # fmt: skip
    successes = [e["behaviour"] for e in per_episode if e["success"]]
    counts = {b: successes.count(b) for b in dict.fromkeys(successes)}
    return {
        "format_version": 2,
        "protocol": {"name": "cpu", "task_id": "test/Task-v0", "split": "test",
                     "num_contexts": 3, "rollouts_per_context": 4, "version": 1}
        if protocol else None,
        "env": {"id": "test/Task-v0", "kwargs": {}, "behaviours": BEHAVIOURS},
        "policy": {"name": name, "class": "x.Y", "config": {}},
        "per_episode": per_episode,
        "aggregated": {
            "num_episodes": len(per_episode), "num_successes": len(successes),
            "success_rate": len(successes) / len(per_episode),
            "success_rate_ci95": [0.19331, 0.68051], "behaviour_counts": counts,
            "num_behaviours": 3, "behaviour_entropy": entropy,
            "behaviour_entropy_ci95": None if entropy is None else [0.7, 0.99],
            "conditional_behaviour_entropy": None if entropy is None else 0.4,
            "conditional_behaviour_entropy_ci95": None if entropy is None else [0.25, 0.55],
            "kl_to_reference": 0.12345, "d3il_score": None,
            "num_invalid_action_episodes": 0, "mean_return": 0.4, "mean_length": 123.26,
        },
        "reference": {"source": "d.hdf5",
                      "distribution": {"a": 0.5, "b": 0.25, "c": 0.125, "zzz": 0.125}},
    }  # fmt: skip


def assert_png(path, min_bytes: int = 5_000) -> tuple[int, int]:
    """The file is a PNG of non-trivial size; returns its (height, width) as decoded."""
    from matplotlib import image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.std() > 0.01  # something is drawn
    return pixels.shape[:2]


def test_other_label_matches_the_envs_label():
    from polymimic.envs.labels import OTHER_BEHAVIOUR

    assert plots.OTHER == OTHER_BEHAVIOUR


def test_behaviour_histogram_counts_successes_and_pools_unknown_labels(tmp_path):
    bars = plots.behaviour_histogram(synthetic_info(), tmp_path / "h.png", label="run $x$ $")
    assert bars.behaviours == ["a", "b", "c", "other"]
    np.testing.assert_array_equal(bars.counts, [2, 1, 1, 1])
    np.testing.assert_allclose(bars.rollouts, [0.4, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(bars.reference, [0.5, 0.25, 0.125, 0.125])  # "zzz" -> other
    assert_png(tmp_path / "h.png")
    assert [p.name for p in tmp_path.iterdir()] == ["h.png"]  # no temporary file left


def test_behaviour_histogram_without_reference_or_successes(tmp_path):
    info = synthetic_info([(0, False, "other")] * 3, entropy=None)
    info["reference"] = None
    bars = plots.behaviour_histogram(info, tmp_path / "h.png")
    assert bars.reference is None and not bars.counts.any() and not bars.rollouts.any()
    assert_png(tmp_path / "h.png")


def test_context_heatmap_matrix_has_a_zero_row_for_a_context_without_success(tmp_path):
    matrix = plots.context_heatmap(synthetic_info(), tmp_path / "c.png")
    np.testing.assert_array_equal(matrix, EXPECTED_COUNTS)
    assert assert_png(tmp_path / "c.png")


def test_context_rows_include_protocol_contexts_never_played_successfully():
    # Context 2 of 3 has no episode at all in this document: still a (zero) row.
    counts, rows, labels = plots.context_counts(synthetic_info(EPISODES[:8]))
    assert rows == [0, 1, 2] and labels == ["a", "b", "c", "other"]
    np.testing.assert_array_equal(counts, EXPECTED_COUNTS)


def test_context_counts_in_seed_mode_use_env_contexts():
    counts, rows, _ = plots.context_counts(synthetic_info(protocol=False))
    assert rows == [10, 11, 12]
    np.testing.assert_array_equal(counts, EXPECTED_COUNTS)


def test_success_vs_entropy_skips_na_entropies(tmp_path):
    runs = [("bc", synthetic_info()), ("few", synthetic_info(entropy=None)),
            ("outside", synthetic_info(entropy=0.995))]  # plug-in above its interval
    drawn, skipped = plots.success_vs_entropy(runs, tmp_path / "s.png")
    assert drawn == ["bc", "outside"] and skipped == ["few"]
    assert_png(tmp_path / "s.png")


def test_success_vs_entropy_with_no_entropy_at_all(tmp_path):
    drawn, skipped = plots.success_vs_entropy([("few", synthetic_info(entropy=None))],
                                              tmp_path / "s.png")
    assert (drawn, skipped) == ([], ["few"])
    assert_png(tmp_path / "s.png")


def test_plots_leave_pyplot_and_the_global_backend_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plots.context_heatmap(synthetic_info(), tmp_path / "c.png")
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot

