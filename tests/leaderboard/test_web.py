"""The web app and the static export: ranked tables with submitted text escaped, uploads
only with the token and within the size limit, failed verifications shown while serving."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from polymimic.leaderboard.bundle import MEMBERS, BundleLimits, read_bundle
from polymimic.leaderboard.store import Store
from polymimic.leaderboard.web import SECURITY_HEADERS, create_app, export_site

TOKEN = "t" * 32
#: The parts of a stored (redacted) eval_info that the figures read.
EVAL_INFO = {
    "env": {"id": "polymimic/Push-v1", "behaviours": ["left", "right"]},
    "protocol": {"name": "leaderboard-hidden", "num_contexts": 2, "rollouts_per_context": 2},
    "aggregated": {"behaviour_counts": {"left": 1, "right": 1}, "num_successes": 2,
                   "num_episodes": 4, "success_rate": 0.5},
    "per_episode": [{"context": c, "rollout": r, "success": r == 0, "behaviour": b}
                    for c, b in ((0, "left"), (1, "right")) for r in range(2)],
}
HOSTILE = '<script>alert("x")</script> | *bold* [a](javascript:b)'


def bundle_zip(bundle_dir: Path, name: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in MEMBERS:
            data = (bundle_dir / member).read_bytes()
            if member == "submission.json" and name is not None:
                document = json.loads(data)
                document["name"] = name
                data = json.dumps(document).encode()
            archive.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def board(bundle_dir: Path, tmp_path: Path) -> tuple[Store, TestClient]:
    """A store with one verified entry named with HTML, one failed and one pending."""
    store = Store(f"sqlite:///{tmp_path / 'lb.db'}")
    bundle = read_bundle(bundle_dir)
    verified = store.add(bundle)
    store.record_verified(verified, {
        "success_rate": 0.5, "success_ci_low": 0.2, "success_ci_high": 0.8,
        "conditional_entropy": 0.4, "num_episodes": 4, "claim_flagged": True,
        "flag_reason": "claimed success rate 0.950 lies outside [0.200, 0.800]",
        "eval_info": json.dumps(EVAL_INFO),
    })
    with store.session() as session, session.begin():
        session.get(type(store.get(verified)), verified).name = HOSTILE
    failed = store.add(bundle)
    store.record_failed(failed, "stopped: exceeded the wall-clock cap of 1 s per verification")
    store.add(bundle)
    return store, TestClient(create_app(store, TOKEN, BundleLimits(max_bundle_bytes=1 << 20)))


def test_ranked_table_escapes_what_the_submitter_wrote(board: tuple[Store, TestClient]) -> None:
    store, client = board
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    assert 'data-task="polymimic/Push-v1"' in page.text and "flagged" in page.text
    assert "Ranked by verified success" in page.text and "declared" in page.text
    assert "exceeded the wall-clock cap" in page.text and "pending" in page.text
    entry = client.get("/entry/1")
    assert entry.status_code == 200 and "<script>" not in entry.text
    assert "0.500 [0.200, 0.800]" in entry.text and "outside [0.200, 0.800]" in entry.text
    assert '<img src="/entry/1/behaviours.png"' in entry.text
    assert '<img src="/entry/1/contexts.png"' in entry.text
    assert "<img" not in client.get("/entry/2").text  # failed: no figures
    assert client.get("/entry/99").status_code == 404
    listed = client.get("/api/entries").json()
    assert [e["status"] for e in listed] == ["pending", "failed", "verified"]


def test_entry_figures_are_pngs_of_the_stored_eval_info(board: tuple[Store, TestClient]) -> None:
    _, client = board
    for figure in ("behaviours", "contexts"):
        png = client.get(f"/entry/1/{figure}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get("/entry/1/other.png").status_code == 404
    assert client.get("/entry/2/behaviours.png").status_code == 404  # failed
    assert client.get("/entry/3/behaviours.png").status_code == 404  # pending
    assert client.get("/entry/99/behaviours.png").status_code == 404


def test_upload_needs_the_token_and_a_bundle_within_the_limit(
    board: tuple[Store, TestClient], bundle_dir: Path
) -> None:
    store, client = board
    body = bundle_zip(bundle_dir, name="uploaded")
    assert client.post("/api/submit", content=body).status_code == 401
    assert client.post("/api/submit", content=body,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = client.post("/api/submit", content=b"0" * ((1 << 20) + 1), headers=auth)
    assert big.status_code == 413 and store.count() == 3
    bad = client.post("/api/submit", content=bundle_zip(bundle_dir, name=""), headers=auth)
    assert bad.status_code == 400 and "field 'name'" in bad.json()["error"]
    assert store.count() == 3
    good = client.post("/api/submit", content=body, headers=auth)
    assert good.status_code == 201 and store.get(good.json()["id"]).name == "uploaded"


def test_static_export_writes_escaped_html_and_markdown(
    board: tuple[Store, TestClient], tmp_path: Path
) -> None:
    store, _ = board
    written = export_site(store, tmp_path / "site")
    assert {p.name for p in written} == {"index.html", "leaderboard.md", "entry-1.html",
                                         "entry-2.html", "entry-3.html",
                                         "entry-1-behaviours.png", "entry-1-contexts.png"}
    entry = (tmp_path / "site" / "entry-1.html").read_text()
    assert '<img src="entry-1-contexts.png"' in entry
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<script>" not in index and 'href="entry-1.html"' in index
    markdown = (tmp_path / "site" / "leaderboard.md").read_text()
    assert "<script>" not in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 |"))
    assert row.count(" | ") == 9  # the name's '|' cannot add a cell
    assert "\\[a\\]\\(javascript:b\\)" in row  # no Markdown link is made of it
