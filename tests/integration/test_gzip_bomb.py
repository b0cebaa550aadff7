"""Media and manifests sent as ``Content-Encoding: gzip`` bodies that expand to a gigabyte: memory stays bounded and
the refusal is stored with its kind."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
import zlib

import pytest

from pytomo.engine.download import DECODE_STEP_BYTES, DECODED_FREE_BYTES, DECODED_RATIO_MAX
from pytomo.lab.media import MediaSpec, ensure_media
from tests.conftest import ROOT, database_of
from tests.scripted_http import Answer, Request, ScriptedServer, response

DECODED_BYTES = 1 << 30  # from about 1 MB on the wire
PEAK_BUDGET_BYTES = 256 << 20  # the crawler's own RSS (it was 824 MiB when one read's pieces were held at once)
_PEAK_RSS = "PEAK_RSS_KIB"
# The crawler's own peak: VmHWM, whose memory map begins at exec (getrusage's ru_maxrss is kept across fork and
# exec, so it would report the test runner's own size when that was larger)
_CRAWL = ("import atexit, sys\n"
          "def peak():\n"
          "    with open('/proc/self/status') as f:\n"
          "        return next(line.split()[1] for line in f if line.startswith('VmHWM:'))\n"
          f"atexit.register(lambda: print('{_PEAK_RSS}', peak(), file=sys.stderr))\n"
          "from pytomo.cli import run_command\n"
          "sys.exit(run_command('crawl', sys.argv[1:], prog='start_crawl.py'))\n")


def _bomb(prefix: bytes = b"") -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    return z.compress(prefix) + b"".join(z.compress(block) for _ in range(DECODED_BYTES >> 20)) + z.flush()


def _gzipped(body: bytes, ctype: str):
    def route(req: Request) -> Answer:
        hdrs = {"Content-Type": ctype, "Content-Length": str(len(body)), "Content-Encoding": "gzip"}
        return response("200 OK", hdrs, b"" if req.method == "HEAD" else body)
    return route


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("gzip-bomb")
    clip = ensure_media(MediaSpec("mp4", duration_s=6.0)).path.read_bytes()
    head = clip[: clip.find(b"mdat") - 4]  # ftyp and moov of a real MP4, then an mdat announcing the gigabyte
    valid = head + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", DECODED_BYTES + 16)
    routes = {"/zeros.mp4": _gzipped(_bomb(), "video/mp4"), "/valid.mp4": _gzipped(_bomb(valid), "video/mp4"),
              "/zeros.m3u8": _gzipped(_bomb(), "application/vnd.apple.mpegurl")}
    peaks = {}
    with ScriptedServer(routes) as srv:
        for path in routes:  # one crawler per body: the peak is that body's
            proc = subprocess.run([sys.executable, "-c", _CRAWL, "-s", "generic", "-b", "-D", "10", "-n", "1", "-S",
                                   "0", "--database-dir", str(out / path.strip("/")), f"{srv.base}{path}"],
                                  cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith(_PEAK_RSS)]
            conn = sqlite3.connect(database_of(proc))
            conn.row_factory = sqlite3.Row
            peaks[path] = (int(peak[-1]) * 1024, conn)
    return peaks


@pytest.mark.parametrize("path", ["/zeros.mp4", "/valid.mp4"])
def test_a_gzip_bomb_as_media_is_refused_in_bounded_memory_with_its_kind(crawl, path):
    peak_bytes, conn = crawl[path]
    assert peak_bytes < PEAK_BUDGET_BYTES, f"peak RSS {peak_bytes >> 20} MiB"
    video = conn.execute("SELECT * FROM videos").fetchone()
    assert (video["status"], video["error_stage"], video["error_kind"]) == ("error", "download", "decoded_too_large")
    d = conn.execute("SELECT * FROM downloads").fetchone()
    assert d["ended_by"] == "error" and d["error_kind"] == "decoded_too_large" and d["content_encoding"] == "gzip"
    assert d["decoded_bytes"] <= DECODED_FREE_BYTES + DECODED_RATIO_MAX * d["bytes"] + DECODE_STEP_BYTES
    assert d["bytes"] < 1 << 20


def test_a_gzip_bomb_as_a_manifest_stops_at_the_manifest_budget(crawl):
    peak_bytes, conn = crawl["/zeros.m3u8"]
    assert peak_bytes < PEAK_BUDGET_BYTES, f"peak RSS {peak_bytes >> 20} MiB"
    video = conn.execute("SELECT * FROM videos").fetchone()
    assert (video["status"], video["error_stage"], video["error_kind"]) == ("error", "media", "bad_manifest")
    assert "too large" in video["error_message"]
