"""A comparison report over many ``eval_info.json`` files: one table, figures, md + html.

``polymimic report`` collects eval_info.json files (named, or found under directories),
checks that each is a format_version 2 document with the keys the report reads, and writes
``report.md`` and ``report.html`` into an output directory: one table with a row per run
(success rate, behaviour entropy, conditional entropy, KL to the dataset, D3IL score, each
with its 95% interval where it has one), one success-vs-entropy plot over all runs, and per
run a behaviour histogram and a context heatmap (``polymimic.eval.plots``) under
``figures/``.

Every text taken from the files is escaped in the HTML (``html.escape``) and in the
Markdown, so a policy named ``<script>...`` shows as that text. Every file is written
atomically, the report files after their figures.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from polymimic.errors import OutputPathError, UserError
from polymimic.eval import plots
from polymimic.io import atomic_write, prepare_output_dir

EVAL_INFO_NAME = "eval_info.json"
#: The eval_info.json format this report reads (``polymimic.eval.rollout``'s
#: ``EVAL_INFO_FORMAT_VERSION``; not imported from there, which loads the simulator).
READS_FORMAT_VERSION = 2
FIGURES_DIR = "figures"
SCATTER = f"{FIGURES_DIR}/success_vs_entropy.png"
REWRITE_HINT = (
    "re-run `polymimic eval --checkpoint CKPT --out-dir DIR --overwrite` to write it again"
)

# aggregated keys -> may the value be None?
_NUMBERS = {
    "success_rate": False, "mean_length": False,
    "behaviour_entropy": True, "conditional_behaviour_entropy": True, "kl_to_reference": True,
}  # fmt: skip
# aggregated keys of 95% intervals -> may the value be None (or, if optional, absent)?
_INTERVALS = {
    "success_rate_ci95": False, "behaviour_entropy_ci95": True,
    "conditional_behaviour_entropy_ci95": True,
}  # fmt: skip

#: (header, what it shows) of the report table, in order.
COLUMNS = (
    "run", "task", "protocol", "policy", "episodes", "success (95% CI)",
    "entropy (95% CI, n successes)", "conditional entropy (95% CI)", "KL to dataset",
    "D3IL score", "mean length",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Run:
    """One eval_info.json in the report."""

    path: Path  # the file, resolved
    label: str  # the path relative to the report's common root
    info: dict[str, Any]


class ReportFiles(NamedTuple):
    """What :func:`write_report` wrote."""

    markdown: Path
    html: Path
    figures: list[Path]


def find_eval_infos(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The eval_info files named by ``paths``: files as given, directories searched recursively.

    Returns:
        Resolved paths, each once, in the order given (sorted within a directory).

    Raises:
        UserError: a path that does not exist, or a directory holding no eval_info.json.
    """
    found: dict[Path, None] = {}
    for given in map(Path, paths):
        if given.is_dir():
            inside = sorted(p for p in given.rglob(EVAL_INFO_NAME) if p.is_file())
            if not inside:
                raise UserError(f"no {EVAL_INFO_NAME} under {given}; give eval_info.json files "
                                "or directories that hold them (written by `polymimic eval`)")
            found.update(dict.fromkeys(p.resolve() for p in inside))
        elif given.is_file():
            found[given.resolve()] = None
        else:
            raise UserError(f"{given} does not exist; give eval_info.json files or directories")
    return list(found)


def load_eval_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one eval_info.json and check the parts the report reads.

    Raises:
        UserError: naming the file, what is wrong and what to do: unreadable, not JSON, a
            format version other than 2, or a missing or mistyped key.
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}); check the path and its "
                        "permissions") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text (UTF-8 JSON) file; give the eval_info.json "
                        "that `polymimic eval` wrote") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column "
                        f"{exc.colno}; truncated or edited?); {REWRITE_HINT}") from None
    if not isinstance(info, dict):
        raise UserError(f"{path} is not an eval_info document (a JSON object); give the "
                        "eval_info.json that `polymimic eval` wrote")
    _check_version(path, info.get("format_version"))
    _check_structure(path, info)
    return info


def _check_version(path: Path, version: Any) -> None:
    if version == READS_FORMAT_VERSION and not isinstance(version, bool):
        return
    if version is None or version == 1:
        raise UserError(
            f"{path} is an eval_info.json of format version 1 (from an older polymimic); this "
            f"report reads version {READS_FORMAT_VERSION}: {REWRITE_HINT} with this polymimic"
        )
    raise UserError(f"{path} has eval_info format_version {version!r:.40}; this report reads "
                    f"version {READS_FORMAT_VERSION}: {REWRITE_HINT} with this polymimic")


def _problem(path: Path, what: str) -> UserError:
    return UserError(f"{path} is not a complete eval_info.json ({what}); {REWRITE_HINT}")


def _is_number(value: Any) -> bool:
    """A finite JSON number (not a bool: ``True`` is an int to Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_structure(path: Path, info: Mapping[str, Any]) -> None:
    """The keys and value types the table and the figures read."""
    for key in ("env", "aggregated", "policy"):
        if not isinstance(info.get(key), dict):
            raise _problem(path, f"{key!r} is missing or not an object")
    agg, protocol = info["aggregated"], info.get("protocol")
    for key in ("num_episodes", "num_successes"):
        if not _is_count(agg.get(key)):
            raise _problem(path, f"aggregated.{key} is missing or not a count")
    for key, optional in _NUMBERS.items():
        if not (_is_number(agg.get(key)) or (optional and agg.get(key) is None)):
            raise _problem(path, f"aggregated.{key} is missing or not a number")
    for key, optional in _INTERVALS.items():
        value = agg.get(key)
        if not (optional and value is None) and not (
            isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
        ):
            raise _problem(path, f"aggregated.{key} is not a pair of numbers")
    if not (agg.get("d3il_score") is None or _is_number(agg["d3il_score"])):
        raise _problem(path, "aggregated.d3il_score is not a number")
    counts = agg.get("behaviour_counts")
    if not isinstance(counts, dict) or not all(map(_is_count, counts.values())):
        raise _problem(path, "aggregated.behaviour_counts is not an object of counts")
    if protocol is not None and not (isinstance(protocol, dict) and all(
        isinstance(protocol.get(k), int) and protocol[k] >= 1
        for k in ("num_contexts", "rollouts_per_context")
    )):  # fmt: skip
        raise _problem(path, "protocol lacks num_contexts/rollouts_per_context")
    _check_episodes(path, info.get("per_episode"), protocol is not None)
    reference = info.get("reference")
    if reference is not None and not (
        isinstance(reference, dict)
        and isinstance(reference.get("distribution"), dict | None)
        and all(map(_is_number, (reference.get("distribution") or {}).values()))
    ):
        raise _problem(path, "reference.distribution is not an object of probabilities")
    behaviours = info["env"].get("behaviours")
    if not isinstance(behaviours, list):
        raise _problem(path, "env.behaviours is missing or not a list")


def _check_episodes(path: Path, episodes: Any, protocol: bool) -> None:
    if not isinstance(episodes, list) or not episodes:
        raise _problem(path, "per_episode is missing or empty")
    key = "context" if protocol else "env_context"
    for index, episode in enumerate(episodes):
        if not isinstance(episode, dict) or "success" not in episode:
            raise _problem(path, f"per_episode[{index}] lacks 'success'")
        context = episode.get(key)
        if not (context is None or isinstance(context, int | str)):
            raise _problem(path, f"per_episode[{index}].{key} is not an integer")


def load_runs(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Run], Path]:
    """Find, read and check the eval_info files; label each by its path from a common root.

    A run's label is its directory relative to the root (the file's path when it is not
    named eval_info.json). The root is the deepest directory above every run's directory,
    so that a single run is labelled by its directory's name.

    Returns:
        ``(runs, root)``.
    """
    files = find_eval_infos(paths)
    infos = [load_eval_info(f) for f in files]  # every file is checked before any output
    shown = [f.parent if f.name == EVAL_INFO_NAME else f for f in files]
    root = Path(os.path.commonpath([str(s.parent) for s in shown]))
    labels = [s.relative_to(root).as_posix() for s in shown]
    return [Run(f, lab, i) for f, lab, i in zip(files, labels, infos, strict=True)], root


def _value(value: float | None, interval: Sequence[float] | None = None, digits: int = 3) -> str:
    """``0.750 [0.612, 0.850]``, ``0.750`` or ``n/a``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if interval is None or interval[0] is None:
        return text
    return f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def protocol_text(info: Mapping[str, Any]) -> str:
    """``cpu v1 8×4`` (name, version, contexts × rollouts); ``seeds (n=20)`` in seed mode."""
    protocol = info.get("protocol")
    if not protocol:
        return f"seeds (n={len(info['per_episode'])})"
    return (f"{protocol.get('name', '?')} v{protocol.get('version', '?')} "
            f"{protocol['num_contexts']}×{protocol['rollouts_per_context']}")


def table_row(run: Run) -> list[str]:
    """The report table's cells for one run (plain text, not yet escaped)."""
    info, agg = run.info, run.info["aggregated"]
    n = int(agg["num_successes"])
    return [
        run.label,
        str(info["env"].get("id", "?")),
        protocol_text(info),
        str(info["policy"].get("name", "?")),
        str(int(agg["num_episodes"])),
        _value(agg["success_rate"], agg["success_rate_ci95"]),
        f"{_value(agg['behaviour_entropy'], agg['behaviour_entropy_ci95'])} (n={n})",
        _value(agg["conditional_behaviour_entropy"], agg.get("conditional_behaviour_entropy_ci95")),
        _value(agg["kl_to_reference"]),
        _value(agg.get("d3il_score")),
        _value(agg["mean_length"], digits=1),
    ]


def _runs(runs: Sequence[Run]) -> str:
    return f"{len(runs)} run{'s' * (len(runs) != 1)}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "run"


def _markdown_text(text: object) -> str:
    """Text from a file for Markdown: on one line, HTML-escaped, markup characters escaped."""
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*\[\]|])", r"\\\1", escaped)


def _markdown_row(cells: Sequence[str]) -> str:
    """A table row: the text columns escaped, the numbers (made here) only HTML-escaped."""
    return "| " + " | ".join(
        _markdown_text(c) if i < 4 else html.escape(c, quote=False) for i, c in enumerate(cells)
    ) + " |"


def _figure_names(runs: Sequence[Run]) -> list[tuple[str, str]]:
    return [(f"{FIGURES_DIR}/{i:02d}_{_slug(r.label)}_behaviours.png",
             f"{FIGURES_DIR}/{i:02d}_{_slug(r.label)}_contexts.png") for i, r in enumerate(runs, 1)]


def render_markdown(runs: Sequence[Run], root: Path, figures: Sequence[tuple[str, str]]) -> str:
    """``report.md``: the table, the success-vs-entropy plot, then each run's figures."""
    lines = [
        "# polymimic evaluation report", "",
        f"{_runs(runs)}; paths relative to {_markdown_text(root)}. Behaviour "
        "statistics count successful episodes only; n/a: too few successes.", "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i < 4 else "---:" for i in range(len(COLUMNS))) + "|",
    ]  # fmt: skip
    lines += [_markdown_row(table_row(r)) for r in runs]
    lines += ["", "## Success rate vs behaviour entropy", "",
              f"![success rate vs behaviour entropy]({SCATTER})", ""]
    for run, (histogram, heatmap) in zip(runs, figures, strict=True):
        lines += [f"## {_markdown_text(run.label)}", "", _markdown_text(run.path), "",
                  f"![behaviours]({histogram}) ![contexts]({heatmap})", ""]
    return "\n".join(lines) + "\n"


_STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:4px 8px}td.num{text-align:right;white-space:nowrap}
th{background:#eee}img{max-width:48%;vertical-align:top}code{font-size:90%}"""


def render_html(runs: Sequence[Run], root: Path, figures: Sequence[tuple[str, str]]) -> str:
    """``report.html``: as :func:`render_markdown`; every text from the files is escaped."""
    esc = html.escape
    header = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    rows = "\n".join(
        "<tr>" + "".join(f"<td{' class=num' if i >= 4 else ''}>{esc(cell)}</td>"
                         for i, cell in enumerate(table_row(run))) + "</tr>"
        for run in runs
    )  # fmt: skip
    sections = "\n".join(
        f"<h2>{esc(run.label)}</h2>\n<p><code>{esc(str(run.path))}</code></p>\n<p>"
        + "".join(f'<a href="{esc(f)}"><img src="{esc(f)}" alt="{esc(what)} of {esc(run.label)}">'
                  "</a>" for f, what in zip(pair, ("behaviours", "contexts"), strict=True))
        + "</p>"
        for run, pair in zip(runs, figures, strict=True)
    )  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>polymimic evaluation report</title>
<style>{_STYLE}</style></head><body>
<h1>polymimic evaluation report</h1>
<p>{_runs(runs)}; paths relative to <code>{esc(str(root))}</code>. Behaviour statistics
count successful episodes only; n/a: too few successes.</p>
<table>
<tr>{header}</tr>
{rows}
</table>
<h2>Success rate vs behaviour entropy</h2>
<p><img src="{SCATTER}" alt="success rate vs behaviour entropy"></p>
{sections}
</body></html>
"""


def check_report_dir(out_dir: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse a non-empty output directory unless ``overwrite``; create it if missing.

    Raises:
        OutputPathError: the directory holds files (without ``overwrite``), is a file, or
            cannot be written.
    """
    out = Path(out_dir)
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise OutputPathError(f"report directory {out} is not empty; pass --overwrite to write "
                              "into it, or choose a new directory")
    return prepare_output_dir(out, "report directory")


def write_report(
    paths: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    overwrite: bool = False,
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and their figures for the eval_info files.

    All inputs are read and checked before anything is written.

    Args:
        paths: eval_info.json files and directories to search.
        out_dir: the output directory; must be empty or missing unless ``overwrite``.
        overwrite: write into a non-empty directory (replacing the report's own files).

    Raises:
        UserError: a bad input file or path; ``OutputPathError`` for the output directory.
    """
    runs, root = load_runs(paths)
    out = check_report_dir(out_dir, overwrite)
    names = _figure_names(runs)
    written: list[Path] = []
    for run, (histogram, heatmap) in zip(runs, names, strict=True):
        plots.behaviour_histogram(run.info, out / histogram, label=run.label)
        plots.context_heatmap(run.info, out / heatmap, label=run.label)
        written += [out / histogram, out / heatmap]
    plots.success_vs_entropy([(r.label, r.info) for r in runs], out / SCATTER)
    written.append(out / SCATTER)
    markdown, page = render_markdown(runs, root, names), render_html(runs, root, names)
    md_path = atomic_write(out / "report.md", lambda t: t.write_text(markdown, encoding="utf-8"))
    html_path = atomic_write(out / "report.html", lambda t: t.write_text(page, encoding="utf-8"))
    return ReportFiles(md_path, html_path, written)
