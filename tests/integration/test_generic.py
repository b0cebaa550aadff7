"""The generic service against a plain ``python -m http.server``: direct media, a page with <video>, a 404."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.lab.segmented import SegmentedSpec, ensure_segmented
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
    for protocol, seg in (("hls", 2.0), ("dash", 4.0)):
        shutil.copytree(ensure_segmented(SegmentedSpec(protocol, segment_s=seg)).root, root / protocol)
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


@pytest.mark.parametrize("manifest", ["hls/master.m3u8", "dash/manifest.mpd"])
def test_generic_plays_hls_and_dash_manifests(http_server, tmp_path, manifest):
    base, _media = http_server
    proc = run_crawler(["-s", "generic", "-b", "-D", "3", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        f"{base}/{manifest}"])
    conn = connect(database_of(proc))
    video = conn.execute("SELECT * FROM videos").fetchone()
    assert video["status"] == "ok", video["error_message"]
    d = conn.execute("SELECT * FROM downloads").fetchone()
    assert d["delivery"] == manifest.split("/")[0] and d["bytes"] > 0 and d["stall_count"] == 0
    n = conn.execute("SELECT count(*) FROM segment_requests WHERE kind = 'media' AND complete = 1").fetchone()[0]
    assert n >= 2


def test_p1203_export(http_server, tmp_path):
    import json

    base, _media = http_server
    proc = run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        f"{base}/clip.mp4"])
    db = database_of(proc)
    out = subprocess.run([sys.executable, "-m", "pytomo.p1203_cli", str(db)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["video_id"] == "clip.mp4"
    data = rows[0]["input"]
    assert data["I23"]["stalling"][0][0] == 0.0 and data["I13"]["segments"][0]["codec"] == "h264"
    assert data["IGen"]["device"] == "pc"
    scored = subprocess.run([sys.executable, "-m", "pytomo.p1203_cli", "--score", str(db)], capture_output=True,
                            text=True, timeout=30)
    try:
        import itu_p1203  # noqa: F401
    except ImportError:
        assert scored.returncode == 2 and "not installed" in scored.stderr and scored.stderr.count("\n") == 1
