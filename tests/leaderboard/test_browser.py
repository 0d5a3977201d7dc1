"""End to end in a real browser: the served app (uvicorn, a SQLite file) takes an upload whose
name is HTML, the worker verifies it, and Debian's chromium, driven headless by Selenium,
finds the entry in the ranked table showing the name as text, then opens its page.

Chromium and its driver come from apt (``scripts/install_system_deps.sh --browser``, which
``make test`` runs): playwright's browser download cannot be fetched everywhere, and a
downloaded driver may not speak to Debian's browser build. Without them this test fails,
never skips, so CI cannot pass without having run it.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polymimic.leaderboard.bundle import MEMBERS
from polymimic.leaderboard.store import Store
from polymimic.leaderboard.verify import VerifySettings, work
from polymimic.leaderboard.web import create_app

TOKEN = "b" * 32
SECRET = b"a browser-test secret, 32 bytes-"
TASK = "polymimic/Push-v1"
#: Would set the page title if the page ever ran it (it must not: escaped, and the CSP).
NAME = '<b>x</b><script>document.title="pwned"</script> & "quotes"'
INSTALL_HINT = ("run `bash scripts/install_system_deps.sh --browser` (as root or with sudo; "
                "`make test` does) to install Debian's chromium and chromium-driver")


def _zip_with_name(bundle_dir: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in MEMBERS:
            data = (bundle_dir / member).read_bytes()
            if member == "submission.json":
                data = json.dumps({**json.loads(data), "name": name}).encode()
            archive.writestr(member, data)
    return buffer.getvalue()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium through chromedriver, both Debian's (no Selenium Manager download)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail(f"chromium or chromedriver is not installed: {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail('selenium is not installed: pip install -e ".[leaderboard]"')
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: CI and this machine run as root, where chromium's sandbox refuses to
    # start; /dev/shm is small in containers.
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """The real app under uvicorn on a free port, over a SQLite file; (store, base URL)."""
    import uvicorn

    store = Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port first
    server = uvicorn.Server(uvicorn.Config(create_app(store, TOKEN), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield store, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _upload(base: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(f"{base}/api/submit", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/zip"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_browser_shows_the_verified_entry_and_its_html_name_as_text(
    browser: Any, served: tuple[Store, str], bundle_dir: Path
) -> None:
    from selenium.webdriver.common.by import By

    store, base = served
    entry_id = _upload(base, _zip_with_name(bundle_dir, NAME))["id"]
    settings = VerifySettings(contexts=2, rollouts=1, wall_s=300, cpu_s=300)
    assert work(store, SECRET, settings) == [(entry_id, "verified")]

    browser.get(f"{base}/")
    table = browser.find_element(By.CSS_SELECTOR, f'table.ranked[data-task="{TASK}"]')
    link = table.find_element(By.CSS_SELECTOR, f'a[href="/entry/{entry_id}"]')
    assert link.text == NAME  # shown as the text it is, markup and all
    cells = link.find_element(By.XPATH, "./ancestor::tr").find_elements(By.TAG_NAME, "td")
    assert cells[0].text == "1" and cells[3].text.startswith("0.000 [")  # rank, verified success
    assert table.find_elements(By.TAG_NAME, "b") == []  # the name made no element
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.title == "polymimic leaderboard"  # and no script of it ran

    link.click()
    assert browser.current_url == f"{base}/entry/{entry_id}"
    assert browser.find_element(By.TAG_NAME, "h1").text == NAME
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.title == f"{NAME} - polymimic leaderboard"
    assert "status verified" in browser.find_element(By.TAG_NAME, "body").text
    images = browser.find_elements(By.TAG_NAME, "img")  # the figures, allowed by the CSP
    assert [i.get_attribute("src") for i in images] == [
        f"{base}/entry/{entry_id}/behaviours.png", f"{base}/entry/{entry_id}/contexts.png"]
    assert all(browser.execute_script("return arguments[0].complete && "
                                      "arguments[0].naturalWidth > 0", i) for i in images)
