"""The leaderboard's pages as HTML and Markdown, shared by the web app and the static export.

Everything a submitter wrote (name, dataset id, links, policy type as declared) is escaped
where it is written: ``html.escape`` in HTML (quotes too, since links sit in attributes),
and in Markdown the characters that start markup or break a table cell are backslash-escaped
and HTML-escaped (Markdown renderers pass raw HTML through). Links were checked to be
http(s) when the bundle was read (``schema._links``), so a ``javascript:`` URL never reaches
an ``href``. The pages hold no script; the web app also sends a Content-Security-Policy that
forbids scripts, so a missed escape could still not run one.

The figures of an entry page are PNGs of the stored, redacted ``eval_info`` drawn by
``polymimic report``'s plotting functions (``figures``); the page links them through
``figure_href`` (the web app's route, or the static export's file names).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from polymimic.leaderboard.ranking import RANK_COLUMNS, by_task

EntryHref = Callable[[int], str]
FigureHref = Callable[[int, str], str]
_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    ".flag{color:#a00;font-weight:bold}img{max-width:100%}"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + ("" if low is None or high is None else f" [{low:.3f}, {high:.3f}]")


def _links(row: Any) -> str:
    links = row.submission.get("links") or {}
    return " ".join(f'<a href="{esc(url)}" rel="nofollow noopener">{esc(kind)}</a>'
                    for kind, url in sorted(links.items()))


def _dataset(row: Any) -> str:
    track = f" (fixed data: {esc(row.fixed_data)})" if row.fixed_data else ""
    return f"{esc(row.dataset_id)}, declared{track}"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>\n")


HEADERS = ("rank", "name", "policy", "success [95% CI]", "behaviour entropy",
           "conditional entropy", "D3IL score", "dataset", "date", "links")


def _row_cells(rank: int, row: Any, entry_href: EntryHref) -> list[str]:
    flag = ' <span class="flag" title="claim outside the verified interval">flagged</span>' \
        if row.claim_flagged else ""
    return [
        str(rank), f'<a href="{esc(entry_href(row.id))}">{esc(row.name)}</a>{flag}',
        esc(row.policy_type), _num(row.success_rate, row.success_ci_low, row.success_ci_high),
        _num(row.behaviour_entropy), _num(row.conditional_entropy), _num(row.d3il_score),
        _dataset(row), esc(row.submitted_at.date().isoformat()), _links(row),
    ]


def ranking_note() -> str:
    return (f"Ranked by {RANK_COLUMNS[0]} on hidden test contexts, ties broken by "
            f"{RANK_COLUMNS[1]}; D3IL's combined score is shown, not ranked. Training data is "
            "declared by the submitter and cannot be verified; the fixed-data track marks "
            "entries whose declared data is a named dataset, by content hash.")


def index_html(rows: Iterable[Any], entry_href: EntryHref) -> str:
    rows = list(rows)
    parts = ["<h1>polymimic leaderboard</h1>", f"<p>{esc(ranking_note())}</p>"]
    for task, ranked_rows in by_task(rows).items():
        head = "".join(f"<th>{esc(h)}</th>" for h in HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell}</td>" for cell in _row_cells(i, row, entry_href))
            + "</tr>" for i, row in enumerate(ranked_rows, 1)
        )
        parts.append(f'<h2>{esc(task)}</h2><table class="ranked" data-task="{esc(task)}">'
                     f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    waiting = [r for r in rows if r.status != "verified"]
    if waiting:
        items = "".join(
            f'<li><a href="{esc(entry_href(r.id))}">{esc(r.name)}</a> ({esc(r.task)}): '
            f"{esc(r.status)}{': ' + esc(r.failure_reason) if r.failure_reason else ''}</li>"
            for r in waiting
        )
        parts.append(f"<h2>Not ranked (queued or failed)</h2><ul>{items}</ul>")
    return _page("polymimic leaderboard", "".join(parts))


def _figures(row: Any, figure_href: FigureHref | None) -> str:
    from polymimic.leaderboard.figures import FIGURES, available

    if figure_href is None:
        return ""
    return "".join(
        f'<h2>{esc(FIGURES[name][0])}</h2><img src="{esc(figure_href(row.id, name))}" '
        f'alt="{esc(FIGURES[name][0])}">'
        for name in available(row)
    )


def entry_html(row: Any, figure_href: FigureHref | None = None) -> str:
    """One entry: declared and verified numbers side by side, flag, status, figures
    (``figure_href(id, figure name)``: where the PNG is; None: no figures)."""
    verified = [
        ("success rate", row.claimed_success,
         _num(row.success_rate, row.success_ci_low, row.success_ci_high)),
        ("behaviour entropy", row.claimed_entropy, _num(row.behaviour_entropy,
         row.behaviour_entropy_ci_low, row.behaviour_entropy_ci_high)),
        ("conditional entropy", row.claimed_conditional_entropy, _num(row.conditional_entropy,
         row.conditional_entropy_ci_low, row.conditional_entropy_ci_high)),
        ("D3IL score", None, _num(row.d3il_score)),
    ]  # fmt: skip
    table = "".join(f"<tr><td>{esc(k)}</td><td>{_num(c)}</td><td>{v}</td></tr>"
                    for k, c, v in verified)
    status = esc(row.status) + (f": {esc(row.failure_reason)}" if row.failure_reason else "")
    flag = f'<p class="flag">{esc(row.flag_reason)}</p>' if row.claim_flagged else ""
    body = (
        f"<h1>{esc(row.name)}</h1><p>task {esc(row.task)}, policy {esc(row.policy_type)}, "
        f"dataset {_dataset(row)}, submitted {esc(row.submitted_at.isoformat())}, "
        f"status {status}, checkpoint sha256 {esc(row.checkpoint_sha256)} {_links(row)}</p>"
        f"{flag}<table><tr><th>metric</th><th>claimed</th><th>verified [95% CI]</th></tr>"
        f"{table}</table>" + _figures(row, figure_href)
        + f"<h2>Training config (declared)</h2><pre>"
        f"{esc(json.dumps(row.submission.get('training_config'), indent=1)[:20000])}</pre>"
    )
    return _page(f"{row.name} - polymimic leaderboard", body)


def md(value: Any) -> str:
    """Text for a Markdown table cell: markup characters escaped, raw HTML neutralised."""
    text = " ".join(str("" if value is None else value).split())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def index_markdown(rows: Iterable[Any]) -> str:
    parts = ["# polymimic leaderboard", "", ranking_note(), ""]
    for task, ranked_rows in by_task(rows).items():
        parts += [f"## {md(task)}", "", "| " + " | ".join(HEADERS) + " |",
                  "|" + "---|" * len(HEADERS)]
        for rank, row in enumerate(ranked_rows, 1):
            links = " ".join(f"<{url}>" for _, url in sorted((row.submission.get("links")
                                                              or {}).items()))
            cells = [str(rank), md(row.name) + (" (flagged)" if row.claim_flagged else ""),
                     md(row.policy_type),
                     _num(row.success_rate, row.success_ci_low, row.success_ci_high),
                     _num(row.behaviour_entropy), _num(row.conditional_entropy),
                     _num(row.d3il_score), md(row.dataset_id) + ", declared"
                     + (f" (fixed data: {md(row.fixed_data)})" if row.fixed_data else ""),
                     row.submitted_at.date().isoformat(), links]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)
