"""HTTP as real servers speak it: chunked, compressed, close-delimited and kept-alive bodies, odd HEADs and ranges.

Each case is served byte for byte by a scripted loopback server and must end in the right outcome: measured (the
transfer ends where HTTP says its body ends), or stored as the error it is.
"""

from __future__ import annotations

import gzip
import re

import pytest

from pytomo.engine.download import download, fetch_range
from pytomo.engine.http import HttpClient
from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.lab.segmented import SegmentedSpec, ensure_segmented
from tests.conftest import connect, database_of, run_crawler
from tests.scripted_http import Answer, Request, ScriptedServer, chunked, response


def _media_headers(length: int | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes"}
    if length is not None:
        headers["Content-Length"] = str(length)
    headers.update(extra)
    return headers


def _slow(answer: Answer) -> Answer:
    """The answer with a pause after its first 200 kB, longer than the crawl's window: the window cuts the body."""
    answer.pause = (200_000, 6.0)
    return answer


def _ranged(body: bytes, ctype: str = "video/mp4", *, honour_range: bool = True):
    """A route answering ``Range: bytes=a-b`` / ``a-`` with 206 (or ignoring it), a whole GET slowly."""
    def route(req: Request) -> Answer:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers.get("range", ""))
        if req.method == "HEAD":
            return response("200 OK", {"Content-Type": ctype, "Content-Length": str(len(body))})
        if not m or not honour_range:
            return _slow(response("200 OK", {"Content-Type": ctype, "Content-Length": str(len(body))}, body))
        first = int(m.group(1))
        last = min(int(m.group(2)) if m.group(2) else len(body) - 1, len(body) - 1)
        part = body[first:last + 1]
        return response("206 Partial Content", {"Content-Type": ctype, "Content-Length": str(len(part)),
                                                "Content-Range": f"bytes {first}-{last}/{len(body)}"}, part)
    return route


def _static(body: bytes, ctype: str, *, gz: bool = False, chunk: bool = False):
    def route(req: Request) -> Answer:
        data = gzip.compress(body, mtime=0) if gz else body
        headers = {"Content-Type": ctype}
        if gz:
            headers["Content-Encoding"] = "gzip"
        if chunk:
            headers["Transfer-Encoding"] = "chunked"
            return response("200 OK", headers, b"" if req.method == "HEAD" else chunked(data, 700))
        headers["Content-Length"] = str(len(data))
        return response("200 OK", headers, b"" if req.method == "HEAD" else data)
    return route


@pytest.fixture(scope="module")
def media():
    mp4 = ensure_media(MediaSpec("mp4", duration_s=6.0))
    moov_end = ensure_media(MediaSpec("mp4-moov-end", duration_s=6.0))
    hls = ensure_segmented(SegmentedSpec("hls", duration_s=6.0, segment_s=2.0))
    return mp4.path.read_bytes(), moov_end.path.read_bytes(), hls


@pytest.fixture(scope="module")
def server(media):
    mp4, moov_end, hls = media
    size = len(mp4)

    def head_then(status_for_head: str, head_length: int | None = None):
        def route(req: Request) -> Answer:
            if req.method == "HEAD":
                length = size if head_length is None else head_length
                return response(status_for_head, _media_headers(length))
            return response("200 OK", _media_headers(size), mp4)
        return route

    routes = {
        "/chunked.mp4": lambda req: response("200 OK", _media_headers(None, **{"Transfer-Encoding": "chunked"}),
                                             b"" if req.method == "HEAD" else chunked(mp4, 16384)),
        "/gzip.mp4": _static(mp4, "video/mp4", gz=True),
        "/http10.mp4": lambda req: response("200 OK", _media_headers(None), b"" if req.method == "HEAD" else mp4,
                                            http="HTTP/1.0", close=True),
        "/close.mp4": lambda req: response("200 OK", _media_headers(size, Connection="close"),
                                           b"" if req.method == "HEAD" else mp4, close=True),
        "/head405.mp4": head_then("405 Method Not Allowed", 0),
        "/head404.mp4": head_then("404 Not Found", 0),
        "/headlen.mp4": head_then("200 OK", 1000),
        "/longcl.mp4": lambda req: response("200 OK", _media_headers(size + 5000),
                                            b"" if req.method == "HEAD" else mp4, close=True),
        "/shortcl.mp4": lambda req: response("200 OK", _media_headers(size - 3000),
                                             b"" if req.method == "HEAD" else mp4),
        "/moovend.mp4": _ranged(moov_end),
        "/moovend-norange.mp4": _ranged(moov_end, honour_range=False),
        "/page.html": _static(b'<!doctype html><html><head><title>gz</title></head><body>'
                              b'<video src="chunked.mp4"></video></body></html>', "text/html; charset=utf-8",
                              gz=True, chunk=True),
    }
    for name in hls.sizes:
        path = hls.path(name)
        body = path.read_bytes()
        if name.endswith(".m3u8"):
            routes[f"/hls/{name}"] = _static(body, "application/vnd.apple.mpegurl", gz=True, chunk=True)
        else:
            routes[f"/hls/{name}"] = _static(body, "video/mp2t")
    with ScriptedServer(routes) as srv:
        yield srv


def test_transfer_ends_at_content_length_and_keeps_the_connection(server, media):
    http = HttpClient(lambda host: ["127.0.0.1"], timeout_s=5)
    first = download(http, f"{server.base}/moovend.mp4", "127.0.0.1", window_s=20, timeout_s=10)
    second = download(http, f"{server.base}/moovend.mp4", "127.0.0.1", window_s=20, timeout_s=10)
    assert first.ended_by == second.ended_by == "eof" and first.bytes_total == len(media[1])
    assert first.connection.new and first.connection.tcp_connect_s is not None
    assert not second.connection.new and second.connection.request_on_connection == 2
    # the server's own account: both requests on one connection
    seen = [r for r in server.requests if r.path == "/moovend.mp4"][-2:]
    assert seen[0].connection_id == seen[1].connection_id and seen[1].request_on_connection == 2
    tail = fetch_range(http, f"{server.base}/moovend.mp4", "127.0.0.1", 1000, 500, timeout_s=5)
    assert tail.status == 206 and tail.head == media[1][1000:1500] and not tail.connection.new
    http.close()


def test_connection_close_and_http10_open_a_connection_each_time(server, media):
    http = HttpClient(lambda host: ["127.0.0.1"], timeout_s=5)
    for path in ("/close.mp4", "/http10.mp4"):
        runs = [download(http, f"{server.base}{path}", "127.0.0.1", window_s=20, timeout_s=5) for _ in range(2)]
        assert all(t.ended_by == "eof" and t.bytes_total == len(media[0]) and t.connection.new for t in runs)
    http.close()


def test_range_answers(server, media):
    http = HttpClient(lambda host: ["127.0.0.1"], timeout_s=5)
    ignored = fetch_range(http, f"{server.base}/moovend-norange.mp4", "127.0.0.1", 1000, 500, timeout_s=5)
    assert ignored.ended_by == "error" and ignored.error_kind == "range_ignored" and ignored.status == 200
    missing = fetch_range(http, f"{server.base}/nothing.mp4", "127.0.0.1", 0, 10, timeout_s=5)
    assert missing.error_kind == "http_status" and missing.status == 404
    http.close()


def test_crawl_of_every_http_shape(server, media, tmp_path):
    mp4, moov_end, hls = media
    urls = {name: f"{server.base}/{name}" for name in (
        "chunked.mp4", "gzip.mp4", "http10.mp4", "close.mp4", "head405.mp4", "head404.mp4", "headlen.mp4",
        "longcl.mp4", "shortcl.mp4", "moovend.mp4", "moovend-norange.mp4", "page.html")}
    urls["hls"] = f"{server.base}/hls/{hls.manifest}"
    proc = run_crawler(["-s", "generic", "-b", "-D", "4", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        *urls.values()])
    conn = connect(database_of(proc))
    rows = {}
    for name, url in urls.items():
        video = conn.execute("SELECT * FROM videos WHERE page_url = ?", (url,)).fetchone()
        download_row = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (video["id"],)).fetchone()
        rows[name] = (video, download_row)

    for name in ("chunked.mp4", "http10.mp4", "close.mp4", "head405.mp4", "head404.mp4", "headlen.mp4"):
        video, d = rows[name]
        assert video["status"] == "ok", (name, video["error_message"])
        assert d["ended_by"] == "eof" and d["bytes"] == len(mp4), name
        assert d["media_duration_s"] == pytest.approx(6.0, abs=0.1), name
    assert rows["chunked.mp4"][1]["content_length_bytes"] is None
    assert rows["http10.mp4"][1]["http_version"] == "HTTP/1.0"

    video, d = rows["gzip.mp4"]  # bytes as on the wire, the decoded size beside them, media read decoded
    assert video["status"] == "ok" and d["content_encoding"] == "gzip"
    assert d["bytes"] == len(gzip.compress(mp4, mtime=0)) and d["decoded_bytes"] == len(mp4)
    assert d["container"] == "mp4" and d["media_duration_s"] == pytest.approx(6.0, abs=0.1)

    video, d = rows["longcl.mp4"]
    assert video["status"] == "error" and video["error_kind"] == "short_body" and d["bytes"] == len(mp4)

    video, d = rows["shortcl.mp4"]  # read up to the announced length; the body contradicts it: an error
    assert (video["status"], video["error_stage"], video["error_kind"]) == ("error", "download", "length_mismatch")
    assert d["ended_by"] == "eof" and d["bytes"] == len(mp4) - 3000 and d["body_overrun"] == 1

    video, d = rows["moovend.mp4"]
    assert video["status"] == "ok" and d["tail_bytes"] and d["tail_error"] is None
    # the window cut the body, so its connection cannot carry another request: the tail opens a new one
    assert d["media_time_source"] == "mp4-sample-table" and d["tail_new_connection"] == 1

    video, d = rows["moovend-norange.mp4"]
    assert "ignored the Range" in d["tail_error"] and d["media_time_source"] != "mp4-sample-table"

    video, d = rows["page.html"]
    assert video["status"] == "ok" and d["url"].endswith("/chunked.mp4") and d["ended_by"] == "eof"

    video, d = rows["hls"]
    assert video["status"] == "ok", video["error_message"]
    reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    manifests = [r for r in reqs if r["kind"] == "manifest"]
    media_reqs = [r for r in reqs if r["kind"] == "media"]
    assert manifests and all(r["content_encoding"] == "gzip" and r["complete"] for r in manifests)
    assert len(media_reqs) >= 3 and all(r["complete"] for r in media_reqs)
    # kept alive from the redirect walk on: at most one connection opened, and the server saw one connection
    assert sum(r["new_connection"] for r in reqs) <= 1 and reqs[-1]["new_connection"] == 0
    seen = {r.connection_id for r in server.requests if r.path.startswith("/hls/") and r.method == "GET"}
    assert len(seen) <= 2  # the page fetch of the generic service, then the session's one connection
