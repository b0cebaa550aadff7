"""The server over HTTP: every page and graph answers, titles are escaped, bad requests get 400/404 and no file."""

from __future__ import annotations

import html
import http.client
import re
from urllib.parse import urlsplit

import requests

from tests.web.conftest import HOSTILE_TITLE, folder_state, read_db

PAGES = ["", "graphs/main", "graphs/qoe", "graphs/qos", "graphs/characteristics", "graphs/all", "videos", "servers",
         "history", "archive"]
MENU_LINKS = ["/?db=", "/graphs/qoe?db=", "/graphs/qos?db=", "/graphs/characteristics?db=", "/graphs/all?db=",
              "/videos?db=", "/servers?db=", "/archive?db="]


def _raw_get(url: str, raw_path: str) -> tuple[int, str]:
    """GET with the path sent exactly as written (no client-side normalisation of ``..``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", raw_path)
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, body


def _video_row_id(db, title: str) -> int:
    conn = read_db(db)
    try:
        return conn.execute("SELECT id FROM videos WHERE title = ?", (title,)).fetchone()[0]
    finally:
        conn.close()


def test_server_binds_loopback_by_default(server):
    srv, _before, _cache = server
    assert srv.first_line.startswith("serving http://127.0.0.1:")


def test_every_page_answers_with_the_menu_and_graphs_of_the_crawl(server, lab_db):
    srv, _before, _cache = server
    for page in PAGES:
        r = requests.get(srv.url + page, timeout=20)
        assert r.status_code == 200, page
        assert r.headers["Content-Type"].startswith("text/html; charset=utf-8")
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        for href in MENU_LINKS:
            assert href in r.text, (page, href)
        assert lab_db.name in r.text
    main = requests.get(srv.url + "graphs/main", timeout=20).text
    graphs = re.findall(r'<img src="(/graph/[^"]+)"', main)
    assert len(graphs) == 4
    for src in graphs:
        g = requests.get(srv.url + html.unescape(src)[1:], timeout=20)
        assert g.status_code == 200 and g.headers["Content-Type"] == "image/png"
        assert g.content.startswith(b"\x89PNG") and len(g.content) > 2000


def test_summary_counts_videos_not_rows(server, lab_db):
    srv, _before, _cache = server
    conn = read_db(lab_db)
    played = conn.execute("SELECT count(DISTINCT video_row_id) FROM downloads WHERE bytes > 0").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM pytomo_crawl").fetchone()[0]
    conn.close()
    assert rows > played  # the 2015 count would have been wrong here
    text = requests.get(srv.url, timeout=20).text
    assert f"<dt>Videos played</dt><dd>{played}</dd>" in text


def test_hostile_title_is_text_everywhere(server, lab_db):
    srv, _before, _cache = server
    escaped = html.escape(HOSTILE_TITLE, quote=True)
    vid = _video_row_id(lab_db, HOSTILE_TITLE)
    listing = requests.get(srv.url + "videos", timeout=20).text
    page = requests.get(srv.url + f"video/{vid}", timeout=20).text
    for text in (listing, page):
        assert "<script" not in text.lower()
        assert escaped.replace("&#x27;", "&#39;") in text
    assert HOSTILE_TITLE.split()[0] not in page  # the raw tag never appears


def test_video_page_has_its_tables_and_svg_graphs(server, lab_db):
    srv, _before, _cache = server
    vid = _video_row_id(lab_db, HOSTILE_TITLE)
    text = requests.get(srv.url + f"video/{vid}", timeout=20).text
    for heading in ("Hops", "DNS answers", "RTT", "Downloads"):
        assert f"<h2>{heading}</h2>" in text
    charts = re.findall(r'<img src="(/video/\d+/\w+\.svg[^"]*)"', text)
    assert len(charts) == 3
    for src in charts:
        r = requests.get(srv.url + html.unescape(src)[1:], timeout=20)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/svg+xml"
        assert r.text.startswith("<svg") and ("<polyline" in r.text or "<circle" in r.text)


def test_bad_requests_get_400_or_404_without_a_traceback_or_a_file(server, lab_db):
    srv, before, _cache = server
    db_id = re.search(r"db=([0-9a-f]{16})", requests.get(srv.url, timeout=20).text).group(1)
    raw = {
        "/static/../../etc/passwd": (404,), "/%2e%2e/": (404,), "/%2e%2e/%2e%2e/etc/passwd": (404,),
        "/static/%2e%2e/%2e%2e/etc/passwd": (404,), "/static/..%2f..%2fetc%2fpasswd": (404,),
        "/?db=/etc/passwd": (400,), "/videos?db=..%2F..%2Fetc%2Fpasswd": (400,),
        f"/?db={'0' * 16}": (404,), "/?db=": (400,), f"/video/999999?db={db_id}": (404,),
        "/video/abc": (404,), f"/?db={db_id}&span=year": (400,), "/videos?page=0": (400,),
        "/videos?page=999999": (404,), "/videos?page=-1": (400,), "/graph/nope.png": (404,),
        "/graph/throughput_2015_bps.gif": (404,), "/graph/throughput_2015_bps.png?src=../../etc/passwd": (400,),
        "/graph/throughput_2015_bps.png?src=server-10.9.9.9": (404,), "/templates/base.html": (404,),
        "/static/style.css/../../../pytomo/cli.py": (404,), "/archive?db=%00": (400,),
    }
    for path, codes in raw.items():
        status, body = _raw_get(srv.url, path)
        assert status in codes, (path, status)
        assert "Traceback" not in body and "root:" not in body, path
    r = requests.post(srv.url + "videos", data={"db": "/etc/passwd"}, timeout=10)
    assert r.status_code == 405
    assert folder_state(lab_db.parent) == before
    assert not list(lab_db.parent.glob("*-wal")) and not list(lab_db.parent.glob("*-shm"))


def test_graphs_are_cached_until_the_rrd_changes(server):
    srv, _before, cache = server
    url = srv.url + "graph/ping_avg_ms.svg?span=hour"
    first = requests.get(url, timeout=20)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/svg+xml"
    assert b"<svg" in first.content[:400]
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=20)
    assert again.status_code == 304
    assert any(p.suffix == ".svg" for p in (cache / "web-graphs").iterdir())

