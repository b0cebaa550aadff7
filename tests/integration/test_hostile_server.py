"""A server of hostile behaviours, crawled end to end: each case ends bounded, stored with its outcome, no traceback.

Every case is one URL of one crawl (``-s generic``, all on loopback). Each video must take under 30 s, the crawler
and its children must stay under 500 MB, the crawl must finish (exit 0) and nothing may print a traceback.
"""

from __future__ import annotations

import gzip
import resource
import sqlite3
import zlib
from datetime import datetime

import pytest

from pytomo.lab.media import MediaSpec, ensure_media
from tests import hostile_media as hm
from tests.conftest import database_of, run_crawler
from tests.scripted_http import Answer, Request, ScriptedServer, chunked, response

VIDEO_LIMIT_S = 30.0
MEMORY_LIMIT_BYTES = 500 << 20


def _media(body: bytes, ctype: str = "video/mp4", **headers: str):
    def route(req: Request) -> Answer:
        hdrs = {"Content-Type": ctype, "Content-Length": str(len(body)), **headers}
        return response("200 OK", hdrs, b"" if req.method == "HEAD" else body)
    return route


def _gzip_bomb(decoded_bytes: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [z.compress(block) for _ in range(decoded_bytes >> 20)]
    return b"".join(parts) + z.flush()


def _endless(req: Request) -> Answer:
    """A chunked body that never ends (the window cuts it)."""
    piece = b"%x\r\n" % 65536 + bytes(range(256)) * 256 + b"\r\n"
    answer = response("200 OK", {"Content-Type": "video/mp4", "Transfer-Encoding": "chunked"},
                      b"" if req.method == "HEAD" else piece * 200)
    if req.method != "HEAD":
        answer.pause = (len(answer.data), 30.0)  # then silence: the window (or the crawler) ends it
    return answer


def _hop(req: Request) -> Answer:
    """One hop of a chain of a thousand redirects."""
    k = int(req.path.rsplit("/", 1)[1])
    return response("302 Found", {"Location": f"/hop/{k + 1}", "Content-Length": "0"})


def _routes(base_for_inner: str) -> dict:
    clip = ensure_media(MediaSpec("mp4", duration_s=6.0)).path.read_bytes()
    bomb = _gzip_bomb(512 << 20)
    master_self = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nloop.m3u8\n"
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
        + b']><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT10S"><Period>'
        b'<AdaptationSet contentType="video"><Representation id="v" bandwidth="1000">'
        b'<BaseURL>&lol9;</BaseURL><SegmentTemplate media="s$Number$.m4s" duration="2"/></Representation>'
        b'</AdaptationSet></Period></MPD>')
    endless_mpd = (b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="P99999D"><Period>'
                   b'<AdaptationSet contentType="video"><Representation id="v" bandwidth="1000">'
                   b'<SegmentTemplate media="s$Number$.m4s" timescale="1" duration="2"/></Representation>'
                   b'</AdaptationSet></Period></MPD>')
    return {
        "/gzip-bomb.mp4": _media(bomb, **{"Content-Encoding": "gzip"}),
        "/gzip-bomb.m3u8": _media(bomb, "application/vnd.apple.mpegurl", **{"Content-Encoding": "gzip"}),
        "/endless.mp4": _endless,
        "/huge-header.mp4": lambda req: response("200 OK", {"Content-Type": "video/mp4", "X-Big": "a" * (1 << 20),
                                                            "Content-Length": "0"}),
        "/dripped-headers.mp4": lambda req: _drip(response("200 OK", {"Content-Type": "video/mp4",
                                                                      "Content-Length": "4"}, b"1234")),
        **{f"/hop/{k}": _hop for k in range(1001)},
        "/loop.m3u8": _media(master_self, "application/vnd.apple.mpegurl"),
        "/endless.mpd": _media(endless_mpd, "application/dash+xml"),
        "/laughs.mpd": _media(laughs, "application/dash+xml"),
        "/comments.html": _media(b"<!--" * (512 << 10), "text/html"),
        "/lying-length.mp4": lambda req: response("200 OK", {"Content-Type": "video/mp4", "Content-Length": "1000"},
                                                  b"" if req.method == "HEAD" else clip),
        "/no-track.mp4": _media(hm.mp4_no_track()),
        "/no-tag.flv": _media(hm.flv_no_tag(), "video/x-flv"),
        "/nested-amf.flv": _media(hm.flv_nested_objects(), "video/x-flv"),
        "/amf-forever.flv": _media(hm.flv_huge_strict_array(), "video/x-flv"),
        "/huge-tag.flv": _media(hm.flv_huge_tag(), "video/x-flv"),
        "/huge-element.webm": lambda req: _streamed(req, hm.webm_huge_timecode(), "video/webm"),
        "/huge-moov.mp4": lambda req: _streamed(req, hm.mp4_huge_moov(), "video/mp4"),
        "/to-inner.mp4": lambda req: response("302 Found", {"Location": f"{base_for_inner}/x.mp4",
                                                           "Content-Length": "0"}),
        "/chunked-gz-page.html": lambda req: response(
            "200 OK", {"Content-Type": "text/html", "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
            b"" if req.method == "HEAD" else chunked(gzip.compress(b"<html><body>nothing here</body></html>"))),
    }


def _drip(answer: Answer) -> Answer:
    answer.drip_s = 0.3
    return answer


def _streamed(req: Request, head: bytes, ctype: str) -> Answer:
    """``head`` then 40 MB of zeros, declared as such: a declared element larger than what is sent."""
    filler = 40 << 20
    body = head + b"\0" * filler
    return response("200 OK", {"Content-Type": ctype, "Content-Length": str(len(body))},
                    b"" if req.method == "HEAD" else body)


EXPECTED = {  # path -> (status, stage, kind); None: any error outcome is fine but it must be stored
    "/gzip-bomb.mp4": ("error", "download", "decoded_too_large"),
    "/gzip-bomb.m3u8": ("error", "media", "bad_manifest"),
    "/endless.mp4": ("error", "media", "not_media"),
    "/huge-header.mp4": ("error", "resolve_page", None),  # the generic service's own GET meets it first
    "/dripped-headers.mp4": ("error", "resolve_page", None),
    "/hop/0": ("error", "resolve_page", "hop_limit"),
    "/loop.m3u8": ("error", "media", "bad_manifest"),
    "/endless.mpd": ("error", "media", "bad_manifest"),
    "/laughs.mpd": ("error", "media", "bad_manifest"),
    "/comments.html": ("error", "resolve_page", None),
    "/lying-length.mp4": ("error", "download", "length_mismatch"),
    "/no-track.mp4": ("error", "media", None),
    "/no-tag.flv": ("error", "media", None),
    "/nested-amf.flv": ("error", "media", "parser_crash"),
    "/amf-forever.flv": ("error", "media", "parser_timeout"),
    "/huge-tag.flv": ("error", "media", "impossible_size"),
    "/huge-element.webm": ("error", "media", "impossible_size"),
    "/huge-moov.mp4": ("error", "media", None),
    "/to-inner.mp4": ("error", "redirects", "forbidden_address"),
    "/chunked-gz-page.html": ("error", "resolve_page", "no_video"),
}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile")
    inner = ScriptedServer({"/x.mp4": _media(b"never")}, host="127.0.0.2")
    with inner, ScriptedServer(_routes(inner.base)) as srv:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = run_crawler(["-s", "generic", "-b", "-D", "3", "-n", "1", "-S", "0", "--database-dir", str(out),
                            *(f"{srv.base}{path}" for path in EXPECTED)], timeout_s=900)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        assert inner.requests == []
    conn = sqlite3.connect(database_of(proc))
    conn.row_factory = sqlite3.Row
    return proc, conn, srv.base, max(before, peak_kib) * 1024


def test_the_crawl_finishes_whole_without_a_traceback(crawl):
    proc, conn, _base, peak_bytes = crawl
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] == len(EXPECTED)
    assert conn.execute("SELECT count(*) FROM videos WHERE error_kind = 'bug'").fetchone()[0] == 0
    assert peak_bytes < MEMORY_LIMIT_BYTES, f"peak RSS of the crawler or a child: {peak_bytes >> 20} MiB"


@pytest.mark.parametrize("path", list(EXPECTED))
def test_each_hostile_case_is_stored_with_its_outcome_in_bounded_time(crawl, path):
    _proc, conn, base, _peak = crawl
    row = conn.execute("SELECT * FROM videos WHERE page_url = ?", (f"{base}{path}",)).fetchone()
    status, stage, kind = EXPECTED[path]
    assert row["status"] == status, (path, row["error_stage"], row["error_kind"], row["error_message"])
    assert row["error_stage"] == stage, (path, row["error_kind"], row["error_message"])
    if kind is not None:
        assert row["error_kind"] == kind, (path, row["error_message"])
    assert row["error_message"] and "Traceback" not in row["error_message"]
    took_s = (datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["started_at"])).total_seconds()
    assert took_s < VIDEO_LIMIT_S, (path, took_s)
