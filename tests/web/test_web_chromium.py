"""The pages as a person sees them: headless Chromium loads each one, without console errors, every image drawn."""

from __future__ import annotations

import re

import pytest
import requests

from tests.conftest import ROOT
from tests.web.chromium import Chromium, chromium_binary
from tests.web.conftest import HOSTILE_TITLE, folder_state, read_db

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="Debian's chromium package is not installed (./quickstart.sh installs it)")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    b = Chromium()
    yield b
    b.close()


def _pages(base: str, lab_db) -> list[str]:
    conn = read_db(lab_db)
    videos = [r[0] for r in conn.execute("SELECT id FROM videos ORDER BY id")]
    conn.close()
    main = requests.get(base, timeout=20).text
    db = re.search(r"db=([0-9a-f]{16})", main).group(1)
    servers = requests.get(f"{base}servers?db={db}", timeout=20).text  # a server that delivered a video, with graphs
    server_src = re.search(r"src=(server-[0-9.]+)", servers).group(1)
    pages = ["", "graphs/main", "graphs/qoe", "graphs/qos", "graphs/characteristics", "graphs/all", "videos",
             "videos?sort=throughput&order=desc", "servers", "history", "history?span=all", "archive",
             f"?db={db}&span=hour", f"?db={db}&span=all&src={server_src}",
             f"graphs/qos?db={db}&span=day&src={server_src}"]
    return [base + p for p in pages] + [f"{base}video/{v}?db={db}" for v in videos]


def test_every_page_loads_without_errors_and_with_every_image(server, lab_db, browser):
    srv, before, _cache = server
    images = 0
    for url in _pages(srv.url, lab_db):
        load = browser.load(url)
        assert load.errors == [], url
        assert load.scripts == 0, url
        for img in load.images:
            assert img["complete"] and img["width"] > 0 and img["height"] > 0, (url, img)
        images += len(load.images)
        assert "Main parameters" in load.text and "Archive" in load.text, url  # the menu on every page
    assert images > 40
    assert folder_state(lab_db.parent) == before


def test_hostile_title_is_shown_as_text(server, lab_db, browser):
    srv, _before, _cache = server
    conn = read_db(lab_db)
    vid = conn.execute("SELECT id FROM videos WHERE title = ?", (HOSTILE_TITLE,)).fetchone()[0]
    conn.close()
    for url in (srv.url + "videos", srv.url + f"video/{vid}"):
        load = browser.load(url)
        assert HOSTILE_TITLE in load.text, url
        assert load.scripts == 0 and load.errors == [], url  # an alert() would be listed as a dialog


def test_screenshot_of_the_main_page_is_kept(server, browser):
    srv, _before, _cache = server
    load = browser.load(srv.url)
    charts = browser.evaluate("Array.from(document.querySelectorAll('figure.graph > svg'))"
                              ".map(s => s.getBoundingClientRect().width)")  # the four charts, drawn inline
    assert load.images == [] and len(charts) == 4 and all(w > 500 for w in charts), charts
    size = browser.screenshot(ARTIFACTS / "web-main.png")
    assert size > 20_000
