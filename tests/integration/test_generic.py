"""The generic service against a plain ``python -m http.server``: direct media, a page with <video>, a 404."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from pytomo.lab.media import MediaSpec, ensure_media
from tests.conftest import connect, database_of, run_crawler


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    mp4 = ensure_media(MediaSpec("mp4", duration_s=10.0))
    webm = ensure_media(MediaSpec("webm", duration_s=10.0))
    shutil.copy(mp4.path, root / "clip.mp4")
    shutil.copy(webm.path, root / "clip.webm")
    (root / "page.html").write_text(
        '<!doctype html><html><head><title>A page &amp; its "video"</title></head><body>'
        '<video controls><source src="media/clip.webm" type="video/webm"></video></body></html>')
    (root / "media").mkdir()
    shutil.copy(webm.path, root / "media" / "clip.webm")
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"port (\d+)", line).group(1))
    yield f"http://127.0.0.1:{port}", {"clip.mp4": mp4, "clip.webm": webm}
    proc.terminate()
    proc.wait(timeout=10)


def test_generic_measures_media_from_any_http_server(http_server, tmp_path):
    base, media = http_server
    proc = run_crawler(["-s", "generic", "-b", "-D", "5", "-n", "2", "-S", "0", "--database-dir", str(tmp_path),
                        f"{base}/clip.mp4", f"{base}/page.html", f"{base}/missing.mp4"])
    conn = connect(database_of(proc))
    rows = {r["page_url"]: r for r in conn.execute("SELECT * FROM videos")}
    assert len(rows) == 3

    direct = rows[f"{base}/clip.mp4"]
    assert direct["status"] == "ok" and direct["service"] == "Generic"
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (direct["id"],)).fetchone()
    truth = media["clip.mp4"]
    assert d["ended_by"] == "eof" and d["bytes"] == truth.size_bytes
    assert d["encoding_rate_bps"] == pytest.approx(truth.bitrate_bps, rel=0.02)
    assert d["media_duration_s"] == pytest.approx(truth.duration_s, rel=0.01)
    assert d["container"] == "mp4" and d["video_codec"] == "h264" and d["stall_count"] == 0
    view = conn.execute("SELECT * FROM pytomo_crawl WHERE Url = ?", (f"{base}/clip.mp4",)).fetchone()
    assert view["DownloadBytes"] == truth.size_bytes and view["IP"] == "127.0.0.1"
    assert view["Resolver"].startswith("literal")

    page = rows[f"{base}/page.html"]
    assert page["status"] == "ok" and page["title"] == 'A page & its "video"'
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (page["id"],)).fetchone()
    assert d["url"] == f"{base}/media/clip.webm" and d["bytes"] == media["clip.webm"].size_bytes
    assert d["container"] == "webm"

    missing = rows[f"{base}/missing.mp4"]
    assert missing["status"] == "error" and missing["error_kind"] == "http_status"
    assert "404" in missing["error_message"]


def test_dead_server_is_an_outcome_not_a_crash(tmp_path):
    proc = run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        "http://127.0.0.1:9/clip.mp4", "http://127.0.0.1:9/other.mp4"])
    conn = connect(database_of(proc))
    rows = conn.execute("SELECT status, error_stage, error_message FROM videos").fetchall()
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all(r["error_stage"] == "resolve_page" and "refused" in r["error_message"].lower() for r in rows)
    assert "Traceback" not in proc.stderr
