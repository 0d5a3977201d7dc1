"""Per-entry figures: PNGs of a verified entry's stored ``eval_info``, drawn by the same
functions as ``polymimic report`` (``polymimic.eval.plots``), so the leaderboard and a local
report show one picture of one evaluation.

The stored ``eval_info`` is the server's own (redacted: no seeds), never a submitter's
file. The entry's name appears in the titles through ``plots``' label cleaning (shortened,
``$`` not read as mathtext). Figures are drawn on demand and kept in a small cache keyed by
the verification time, so a re-verified entry gets new figures; drawing is serialised by a
lock, since the web app draws from its thread pool and one drawing at a time is enough for a
page that shows two.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polymimic.eval import plots

#: Figure name -> (title on the entry page, the ``plots`` function that draws it).
FIGURES: dict[str, tuple[str, Callable[..., Any]]] = {
    "behaviours": ("Behaviours of the successful episodes", plots.behaviour_histogram),
    "contexts": ("Successful episodes per hidden context and behaviour", plots.context_heatmap),
}
_CACHE_SIZE = 32
_cache: OrderedDict[tuple[int, str, str], bytes] = OrderedDict()
_lock = threading.Lock()


def available(row: Any) -> list[str]:
    """The figures ``row`` has (none before it is verified)."""
    return list(FIGURES) if row.status == "verified" and row.eval_info else []


def entry_png(row: Any, figure: str) -> bytes | None:
    """The PNG of ``figure`` for ``row``; None when the row has no such figure."""
    if figure not in available(row):
        return None
    # The verification time and checkpoint tell a re-verified or another store's row apart.
    key = (row.id, figure, f"{row.verified_at}|{row.checkpoint_sha256}")
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        draw = FIGURES[figure][1]
        with tempfile.TemporaryDirectory(prefix="polymimic-figure-") as tmp:
            path = Path(tmp) / f"{figure}.png"
            draw(json.loads(row.eval_info), path, label=row.name)
            png = path.read_bytes()
        _cache[key] = png
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return png
