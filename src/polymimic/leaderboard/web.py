"""The leaderboard web app (Starlette, served by uvicorn), and the static export.

Routes:

- ``GET /``: ranked tables per task (``pages.index_html``), then the queue and failures;
- ``GET /entry/{id}``: one entry with claimed beside verified numbers and its figures;
- ``GET /entry/{id}/{figure}.png``: a figure of a verified entry (``figures.FIGURES``),
  drawn from its stored ``eval_info`` by ``polymimic report``'s plotting functions;
- ``GET /api/entries``: the same as JSON;
- ``POST /api/submit``: a bundle zip as the raw request body, with
  ``Authorization: Bearer <token>``. The body is streamed to a temporary file and cut off
  at the bundle size limit (a multipart form parser would spool any size to disk first),
  then checked and stored exactly as ``polymimic leaderboard submit`` does. Answers 201
  with the id, 400 with the refusal's message, 401 without the token, 413 over the limit.

Checking a bundle and touching the database block, so they run in Starlette's thread pool;
verification runs elsewhere (``polymimic leaderboard verify``, or ``serve --verify``'s
background thread, whose subprocess caps keep a bad job from taking the server down). Every
page carries a Content-Security-Policy without scripts.
"""

from __future__ import annotations

import hmac
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from polymimic.leaderboard import figures, pages
from polymimic.leaderboard.bundle import BundleLimits, submit
from polymimic.leaderboard.schema import SubmissionError
from polymimic.leaderboard.store import Store, StoreError

TOKEN_ENV = "POLYMIMIC_LEADERBOARD_TOKEN"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def _entry_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "task": row.task, "policy_type": row.policy_type,
        "status": row.status, "failure_reason": row.failure_reason,
        "dataset": {"id": row.dataset_id, "sha256": row.dataset_sha256, "declared": True,
                    "fixed_data": row.fixed_data},
        "claimed": {"success_rate": row.claimed_success, "behaviour_entropy": row.claimed_entropy,
                    "conditional_behaviour_entropy": row.claimed_conditional_entropy},
        "verified": None if row.status != "verified" else {
            "success_rate": row.success_rate,
            "success_rate_ci95": [row.success_ci_low, row.success_ci_high],
            "behaviour_entropy": row.behaviour_entropy,
            "conditional_behaviour_entropy": row.conditional_entropy,
            "d3il_score": row.d3il_score, "num_episodes": row.num_episodes},
        "claim_flagged": row.claim_flagged, "flag_reason": row.flag_reason,
        "submitted_at": row.submitted_at.isoformat(),
    }  # fmt: skip


async def _body_to_file(request: Request, path: Path, cap: int) -> bool:
    """Stream the request body into ``path``; False as soon as it passes ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return False
    total = 0
    with open(path, "wb") as f:
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap:
                return False
            f.write(chunk)
    return True


def _figure_href(entry_id: int, figure: str) -> str:
    return f"/entry/{entry_id}/{figure}.png"


def create_app(store: Store, token: str | None = None, limits: BundleLimits | None = None
               ) -> Starlette:
    """The ASGI app over ``store``; uploads need ``token`` (None: uploads are refused)."""
    limits = limits or BundleLimits()

    async def index(request: Request) -> Response:
        rows = await run_in_threadpool(store.entries)
        return _html(pages.index_html(rows, lambda i: f"/entry/{i}"))

    async def entry(request: Request) -> Response:
        try:
            row = await run_in_threadpool(store.get, request.path_params["id"])
        except StoreError as err:
            return _html(f"<p>{pages.esc(err)}</p>", 404)
        return _html(pages.entry_html(row, _figure_href))

    async def figure(request: Request) -> Response:
        try:
            row = await run_in_threadpool(store.get, request.path_params["id"])
        except StoreError as err:
            return _html(f"<p>{pages.esc(err)}</p>", 404)
        png = await run_in_threadpool(figures.entry_png, row, request.path_params["figure"])
        if png is None:
            return _html("<p>no such figure (figures exist once an entry is verified)</p>", 404)
        return Response(png, media_type="image/png", headers=SECURITY_HEADERS)

    async def entries(request: Request) -> Response:
        rows = await run_in_threadpool(store.entries)
        return JSONResponse([_entry_json(r) for r in rows], headers=SECURITY_HEADERS)

    async def upload(request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "a valid API token is required (Authorization: "
                                 "Bearer <token>)"}, status_code=401)
        with tempfile.TemporaryDirectory(prefix="polymimic-upload-") as tmp:
            path = Path(tmp) / "bundle.zip"
            if not await _body_to_file(request, path, limits.max_bundle_bytes):
                return JSONResponse({"error": f"the bundle is larger than "
                                     f"{limits.max_bundle_bytes} bytes"}, status_code=413)
            try:
                submission_id = await run_in_threadpool(submit, store, path, limits)
            except SubmissionError as err:
                return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse({"id": submission_id, "status": "pending",
                             "url": f"/entry/{submission_id}"}, status_code=201)

    return Starlette(routes=[
        Route("/", index), Route("/entry/{id:int}", entry),
        Route("/entry/{id:int}/{figure}.png", figure), Route("/api/entries", entries),
        Route("/api/submit", upload, methods=["POST"]),
    ])


def start_verifier(store: Store, secret: bytes, settings: Any, poll_s: float = 5.0
                   ) -> threading.Event:
    """A daemon thread that verifies queued submissions while the app serves; set the
    returned event to stop it."""
    from polymimic.leaderboard.verify import work

    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            if not work(store, secret, settings, max_jobs=1):
                stop.wait(poll_s)

    threading.Thread(target=loop, name="leaderboard-verifier", daemon=True).start()
    return stop


def export_site(store: Store, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``index.html``, ``entry-<id>.html`` with its figures ``entry-<id>-<figure>.png``,
    and ``leaderboard.md`` (for CI publishing)."""
    from polymimic.io import atomic_write, prepare_output_dir

    out = prepare_output_dir(out_dir)
    rows = store.entries()
    texts = {out / "index.html": pages.index_html(rows, lambda i: f"entry-{i}.html"),
             out / "leaderboard.md": pages.index_markdown(rows)}
    texts.update({out / f"entry-{row.id}.html":
                  pages.entry_html(row, lambda i, name: f"entry-{i}-{name}.png") for row in rows})
    for path, text in texts.items():
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    images = {out / f"entry-{row.id}-{name}.png": figures.entry_png(row, name)
              for row in rows for name in figures.available(row)}
    for path, png in images.items():
        atomic_write(path, lambda tmp, png=png: tmp.write_bytes(png))
    return sorted([*texts, *images])


def serve(store: Store, host: str, port: int, token: str | None, verifier: Any = None) -> None:
    """Run the app with uvicorn until interrupted (``verifier``: (secret, settings) or None)."""
    import uvicorn

    stop = start_verifier(store, *verifier) if verifier else None
    try:
        uvicorn.run(create_app(store, token), host=host, port=port, log_level="info")
    finally:
        if stop is not None:
            stop.set()
