"""Figures of ``eval_info.json`` documents, written as PNG files (used by ``polymimic report``).

Each function takes eval_info dicts (format_version 2, see ``polymimic.eval.rollout``),
draws one figure and writes it atomically (``polymimic.io.atomic_write``). Figures are drawn
on matplotlib's Agg canvas directly, never through ``pyplot``: no display is needed, no
global backend is switched and no figure outlives its function. matplotlib is imported inside
the functions, so importing this module (or ``polymimic``) does not load it.

Behaviour statistics count successful episodes only, as in ``polymimic.eval.aggregate``;
labels that are not among the task's behaviours are pooled under ``"other"``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from polymimic.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The label of a successful episode outside the task's behaviours. Equal to
#: ``polymimic.envs.labels.OTHER_BEHAVIOUR``; not imported from there, since importing
#: ``polymimic.envs`` loads MuJoCo.
OTHER = "other"
DPI = 120
MAX_LABEL_CHARS = 40
#: Cells annotated with their count only up to this many (beyond, the numbers are unreadable).
MAX_ANNOTATED_CELLS = 400
MAX_SKIPPED_NAMED = 5


class BehaviourBars(NamedTuple):
    """What :func:`behaviour_histogram` drew: one bar group per behaviour."""

    behaviours: list[str]  # the task's behaviours, then "other"
    counts: np.ndarray  # successful rollouts per behaviour
    rollouts: np.ndarray  # counts as fractions of the successful rollouts (zeros if none)
    reference: np.ndarray | None  # the dataset's distribution over the same labels


def behaviour_labels(info: Mapping[str, Any]) -> list[str]:
    """The task's behaviours from ``info["env"]["behaviours"]``, then ``"other"``."""
    known = [str(b) for b in info["env"].get("behaviours") or ()]
    return known if OTHER in known else [*known, OTHER]


def _pooled(values: Mapping[str, float], labels: Sequence[str]) -> np.ndarray:
    """``values`` over ``labels``, unknown keys added to ``"other"``."""
    pooled = Counter({label: 0.0 for label in labels})
    for key, value in values.items():
        pooled[str(key) if str(key) in pooled else OTHER] += float(value)
    return np.array([pooled[label] for label in labels], dtype=float)


def _text(value: Any, limit: int = MAX_LABEL_CHARS) -> str:
    """A label from a file made safe for matplotlib: shortened, ``$`` not read as math."""
    text = " ".join(str(value).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))


def run_title(info: Mapping[str, Any], label: str | None = None) -> str:
    """``label`` (or the policy's name) and the task, for figure titles."""
    name = label if label is not None else (info.get("policy") or {}).get("name", "policy")
    return f"{_text(name)} on {_text(info['env'].get('id', '?'))}"


def behaviour_histogram(
    info: Mapping[str, Any], path: str | os.PathLike[str], label: str | None = None
) -> BehaviourBars:
    """Bars of the behaviours of the successful rollouts beside the dataset's distribution.

    Every task behaviour (and ``"other"``) has a place on the x-axis, seen or not; the
    reference (dataset) bars appear when ``info["reference"]`` holds a distribution. The
    title gives the number of successful rollouts, the bars their counts.

    Args:
        info: an eval_info dict.
        path: the PNG to write.
        label: names the run in the title (default: the policy's name).

    Returns:
        The plotted values.
    """
    labels = behaviour_labels(info)
    agg = info["aggregated"]
    counts = _pooled(agg.get("behaviour_counts") or {}, labels)
    total = counts.sum()
    rollouts = counts / total if total else np.zeros_like(counts)
    distribution = (info.get("reference") or {}).get("distribution")
    reference = _pooled(distribution, labels) if distribution else None
    figure = _figure(max(5.0, 1.0 * len(labels) + 2.5), 4.0)
    axes = figure.add_subplot()
    x = np.arange(len(labels))
    width = 0.4 if reference is not None else 0.6
    shift = width / 2 if reference is not None else 0.0
    bars = axes.bar(x - shift, rollouts, width, color="C0", label="rollouts (successful)")
    axes.bar_label(bars, labels=[f"{int(c)}" for c in counts], fontsize=8)
    if reference is not None:
        axes.bar(x + shift, reference, width, color="C7", label="dataset (reference)")
    axes.set_xticks(x, [_text(b) for b in labels], rotation=30 if len(labels) > 5 else 0)
    axes.set_ylim(0.0, 1.1)
    axes.set_ylabel("fraction of successful episodes")
    axes.legend(loc="upper right", fontsize=8)
    n = int(agg.get("num_successes", total))
    axes.set_title(f"{run_title(info, label)}\nbehaviours of {n} successful rollouts "
                   f"(of {agg.get('num_episodes', '?')} episodes)", fontsize=10)
    if n == 0:
        axes.text(0.5, 0.5, "no successful rollouts", transform=axes.transAxes,
                  ha="center", va="center", color="0.4")
    _save(figure, path)
    return BehaviourBars(labels, counts, rollouts, reference)


def context_counts(info: Mapping[str, Any]) -> tuple[np.ndarray, list[Any], list[str]]:
    """Successful rollouts per (context, behaviour): the matrix :func:`context_heatmap` draws.

    Rows are the protocol's contexts ``0 .. S-1`` (every one, with or without a success);
    in seed mode (no protocol) the distinct env contexts of all episodes. Columns are
    :func:`behaviour_labels`.

    Returns:
        ``(counts, row contexts, column behaviours)``; ``counts`` is an int array.
    """
    protocol = info.get("protocol")
    episodes = info.get("per_episode") or []
    key = "context" if protocol else "env_context"
    rows: list[Any] = list(range(int(protocol["num_contexts"]))) if protocol else []
    seen = {e.get(key) for e in episodes} - set(rows)
    rows += sorted(seen, key=lambda c: (0, c, "") if isinstance(c, int) else (1, 0, str(c)))
    labels = behaviour_labels(info)
    counts = np.zeros((len(rows), len(labels)), dtype=int)
    row_of = {c: i for i, c in enumerate(rows)}
    column_of = {b: j for j, b in enumerate(labels)}
    for episode in episodes:
        if episode.get("success"):
            column = column_of.get(str(episode.get("behaviour")), column_of[OTHER])
            counts[row_of[episode.get(key)], column] += 1
    return counts, rows, labels


def context_heatmap(
    info: Mapping[str, Any], path: str | os.PathLike[str], label: str | None = None
) -> np.ndarray:
    """Heatmap of successful rollouts per protocol context (rows) and behaviour (columns).

    A context where no rollout succeeded is an all-zero row. The colour scale runs from 0 to
    the rollouts per context (R), so that runs can be compared by eye.

    Args:
        info: an eval_info dict.
        path: the PNG to write.
        label: names the run in the title (default: the policy's name).

    Returns:
        The count matrix, as :func:`context_counts` gives it.
    """
    counts, rows, labels = context_counts(info)
    protocol = info.get("protocol")
    per_context = int(protocol["rollouts_per_context"]) if protocol else None
    figure = _figure(max(5.0, 0.9 * len(labels) + 3.0), min(24.0, max(3.5, 0.28 * len(rows) + 2.0)))
    axes = figure.add_subplot()
    top = max(1, per_context or int(counts.max(initial=0)))
    image = axes.imshow(counts, aspect="auto", cmap="viridis", vmin=0, vmax=top,
                        interpolation="nearest")
    figure.colorbar(image, ax=axes, label="successful rollouts")
    axes.set_xticks(np.arange(len(labels)), [_text(b) for b in labels],
                    rotation=30 if len(labels) > 5 else 0)
    if len(rows) <= 40:
        axes.set_yticks(np.arange(len(rows)), [_text(r) for r in rows])
    axes.set_ylabel("protocol context" if protocol else "env context")
    axes.set_xlabel("behaviour")
    if counts.size <= MAX_ANNOTATED_CELLS:
        _annotate(axes, counts, top)
    of_r = f", R = {per_context} rollouts each" if per_context else ""
    axes.set_title(f"{run_title(info, label)}\nsuccessful rollouts per context{of_r}", fontsize=10)
    _save(figure, path)
    return counts


def _annotate(axes: Axes, counts: np.ndarray, top: int) -> None:
    """Write each cell's count on it, in a colour that reads on viridis."""
    for (i, j), value in np.ndenumerate(counts):
        colour = "black" if value > 0.6 * top else "white"
        axes.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)


def _error(value: float, interval: Sequence[float] | None) -> list[list[float]] | None:
    """Asymmetric error bar for ``value`` (clipped: a point estimate may lie outside)."""
    if not interval or interval[0] is None or interval[1] is None:
        return None
    return [[max(0.0, value - float(interval[0]))], [max(0.0, float(interval[1]) - value)]]


def success_vs_entropy(
    infos: Sequence[tuple[str, Mapping[str, Any]]], path: str | os.PathLike[str]
) -> tuple[list[str], list[str]]:
    """Scatter of success rate against behaviour entropy, one point per run, with 95% CIs.

    Runs whose entropy is n/a (too few successes) are not drawn; the legend names them.

    Args:
        infos: ``(label, eval_info dict)`` per run.
        path: the PNG to write.

    Returns:
        ``(labels drawn, labels skipped for an n/a entropy)``.
    """
    figure = _figure(7.0, 6.0)
    axes = figure.add_subplot()
    drawn: list[str] = []
    skipped: list[str] = []
    for index, (label, info) in enumerate(infos):
        agg = info["aggregated"]
        entropy, success = agg.get("behaviour_entropy"), float(agg["success_rate"])
        if entropy is None:
            skipped.append(label)
            continue
        axes.errorbar(float(entropy), success, fmt="o", capsize=3, color=f"C{index % 10}",
                      xerr=_error(float(entropy), agg.get("behaviour_entropy_ci95")),
                      yerr=_error(success, agg.get("success_rate_ci95")), label=_text(label))
        drawn.append(label)
    note = None
    if skipped:
        names = ", ".join(_text(s, 25) for s in skipped[:MAX_SKIPPED_NAMED])
        extra = len(skipped) - MAX_SKIPPED_NAMED
        more = f" and {extra} more" if extra > 0 else ""
        note = axes.plot([], [], " ", label=f"not shown, entropy n/a (too few successes): "
                         f"{names}{more}")[0]
    handles, texts = axes.get_legend_handles_labels()  # the note last, after the runs
    order = sorted(range(len(texts)), key=lambda i: handles[i] is note)
    if not drawn:
        axes.text(0.5, 0.5, "no run has a behaviour entropy", transform=axes.transAxes,
                  ha="center", va="center", color="0.4")
    axes.set_xlim(-0.03, 1.03)
    axes.set_ylim(-0.03, 1.03)
    axes.set_xlabel("behaviour entropy (normalised; successful rollouts)")
    axes.set_ylabel("success rate")
    runs = f"{len(infos)} run{'s' * (len(infos) != 1)}"
    axes.set_title(f"success rate vs behaviour entropy, {runs} (bars: 95% CIs)", fontsize=10)
    axes.grid(alpha=0.3)
    entries = len(drawn) + bool(skipped)
    figure.legend([handles[i] for i in order], [texts[i] for i in order], fontsize=8,
                  loc="outside lower center", ncols=1 if entries <= 6 else 2)
    _save(figure, path)
    return drawn, skipped
