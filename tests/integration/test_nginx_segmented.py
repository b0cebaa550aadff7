"""Every HLS and DASH form (ffmpeg's and Shaka Packager's) played from nginx paced above and below the bitrate.

The truth is nginx's own access log: which requests it served, on which connection (``$connection``), with which
bytes. Segments must go over one kept-alive connection, stall only where nginx's rate is below the media's.
"""

from __future__ import annotations

import pytest

from pytomo.lab.scenario import PACKAGINGS
from pytomo.lab.tools import nginx_exe, packager_exe
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler
from tests.integration.test_nginx_lab import _toml

NGINX, WHY = nginx_exe()
PACKAGER, WHY_PACKAGER = packager_exe()
pytestmark = pytest.mark.skipif(NGINX is None or PACKAGER is None, reason=WHY or WHY_PACKAGER)

# The lowest rendition (300 kbit/s video, 96 kbit/s audio, 2 s segments): about 75 kB per video segment. nginx
# lets a response's first second's worth through at once, then limit_rate: at 150 kbit/s a 2 s video segment
# takes about 3 s, so the buffer runs dry; at 8 Mbit/s every segment arrives at once.
FORMS = [(delivery, packaging) for delivery, forms in PACKAGINGS.items() for packaging in forms]
SERVERS = [{"name": "ngx-seg-fast", "ip": "127.77.4.1", "software": "nginx", "rate_bps": 8_000_000},
           {"name": "ngx-seg-slow", "ip": "127.77.4.2", "software": "nginx", "rate_bps": 150_000}]
VIDEOS = [{"id": f"{speed}-{delivery}-{packaging}", "server": f"ngx-seg-{speed}", "delivery": delivery,
           "packaging": packaging, "segment_s": 2.0}
          for speed in ("fast", "slow") for delivery, packaging in FORMS]
SCENARIO = {"scenario": {"name": "nginx-segmented"}, "video_defaults": {"duration_s": 30.0, "hops": 1},
            "servers": SERVERS, "videos": VIDEOS}
WINDOW_S = 10.0  # the slow ones start about 5 s in with 2 s buffered, and run dry before the end


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("nginx-segmented")
    scenario = out / "segmented.toml"
    scenario.write_text(_toml(SCENARIO))
    truth = out / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-P", "50",
                        "-D", str(WINDOW_S), "-n", "1", "-S", "0", "--rendition", "lowest", "--database-dir",
                        str(out), "--lab-truth", str(truth)])
    return connect(database_of(proc)), read_truth(truth)


def test_every_form_plays_from_nginx(crawl):
    conn, truth = crawl
    assert len(FORMS) == 7
    for v in VIDEOS:
        row = conn.execute("SELECT * FROM videos WHERE video_id = ?", (v["id"],)).fetchone()
        assert row["status"] == "ok", (v["id"], row["error_message"])
        d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (row["id"],)).fetchone()
        reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq",
                            (d["id"],)).fetchall()
        media = [r for r in reqs if r["kind"] == "media" and r["complete"]]
        assert {r["stream"] for r in media} == {"video", "audio"}, v["id"]
        served = [t for t in truth if t["video_id"] == v["id"] and t["method"] == "GET"]
        assert len(served) == len(reqs), v["id"]
        for r, t in zip(reqs, served):  # nginx served each request once, in order, with these bytes
            assert r["url"].endswith(t["segment"]), v["id"]
            if not r["complete"]:
                continue
            if r["content_encoding"]:  # a gzip manifest: nginx counts the chunk framing too
                assert 0 < t["bytes_sent"] - r["bytes"] <= 12 * (2 + r["bytes"] // 4096), v["id"]
            else:
                assert r["bytes"] == t["bytes_sent"], v["id"]
            if r["range_first_byte"] is not None:
                assert t["status"] == 206 and t["range"] == f"bytes={r['range_first_byte']}-{r['range_last_byte']}"
        # kept alive: nginx's own $connection is one for the whole session, and we say so per request
        assert len({t["connection"] for t in served}) == 1, v["id"]
        assert all(r["new_connection"] == 0 for r in reqs[1:]), v["id"]
        if v["packaging"] in ("shaka-byterange", "shaka-segmentbase"):
            assert all(r["range_first_byte"] is not None for r in media), v["id"]


def test_stalls_only_where_nginx_is_slower_than_the_media(crawl):
    conn, _truth = crawl
    for v in VIDEOS:
        d = conn.execute("SELECT d.* FROM downloads d JOIN videos x ON x.id = d.video_row_id WHERE x.video_id = ?",
                         (v["id"],)).fetchone()
        assert d["time_to_start_s"] is not None, v["id"]
        if v["server"] == "ngx-seg-slow":
            assert d["stall_count"] >= 1 and d["stall_total_s"] > 0, v["id"]
            assert d["avg_throughput_bps"] < d["encoding_rate_bps"], v["id"]
        else:
            assert d["stall_count"] == 0, v["id"]
            assert d["avg_throughput_bps"] > d["encoding_rate_bps"], v["id"]
