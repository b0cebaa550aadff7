"""--player on a crawl: one playouts row per profile, and the first profile decides what an HLS/DASH session fetches
(dash.js: audio and video at once on two connections, as nginx's own access log shows; 2015: one after the other
on one connection)."""

from __future__ import annotations

import pytest

from pytomo.lab.tools import nginx_exe
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler
from tests.integration.test_nginx_lab import _toml

NGINX, WHY = nginx_exe()
pytestmark = pytest.mark.skipif(NGINX is None, reason=WHY)

SCENARIO = {"scenario": {"name": "player-profiles"}, "video_defaults": {"duration_s": 30.0, "hops": 0},
            "servers": [{"name": "ngx-prof", "ip": "127.77.5.1", "software": "nginx", "rate_bps": 600_000}],
            "videos": [{"id": "prof-dash", "server": "ngx-prof", "delivery": "dash", "segment_s": 2.0}]}


def _crawl(tmp_path, player: str):
    scenario = tmp_path / "profiles.toml"
    scenario.write_text(_toml(SCENARIO))
    truth = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-D", "6", "-n", "1",
                        "-S", "0", "--rendition", "lowest", "--player", player, "--database-dir", str(tmp_path),
                        "--lab-truth", str(truth)])
    return connect(database_of(proc)), read_truth(truth)


def _overlaps(rows) -> bool:
    video = [(r["trequest_s"], r["tfinish_s"]) for r in rows if r["stream"] == "video" and r["kind"] == "media"]
    audio = [(r["trequest_s"], r["tfinish_s"]) for r in rows if r["stream"] == "audio" and r["kind"] == "media"]
    return any(a0 < v1 and v0 < a1 for a0, a1 in audio for v0, v1 in video)


def test_dashjs_drives_two_parallel_streams_and_every_profile_has_its_row(tmp_path):
    conn, truth = _crawl(tmp_path, "dashjs,2015,native")
    d = conn.execute("SELECT * FROM downloads").fetchone()
    rows = conn.execute("SELECT * FROM playouts WHERE download_id = ? ORDER BY id", (d["id"],)).fetchall()
    assert [(r["profile"], r["drove_fetch"]) for r in rows] == [("dashjs", 1), ("2015", 0), ("native", 0)]
    by = {r["profile"]: r for r in rows}
    # the 2015 row repeats the downloads columns (the pytomo_crawl view's source)
    assert by["2015"]["stall_count"] == d["stall_count"] and by["2015"]["time_to_start_s"] == d["time_to_start_s"]
    assert by["dashjs"]["restart_growth"] == 2.0 and by["2015"]["restart_growth"] == 1.0
    reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    assert [r["seq"] for r in reqs] == list(range(len(reqs)))
    assert [r["trequest_s"] for r in reqs] == sorted(r["trequest_s"] for r in reqs)
    assert _overlaps(reqs)
    served = [t for t in truth if t["video_id"] == "prof-dash" and t["method"] == "GET"]
    assert len({t["connection"] for t in served}) == 2  # nginx's own word: two connections
    # every segment we completed is one nginx served, with the bytes it says it sent (a request the window cut is
    # logged by nginx with what it had sent when we closed; the gzip manifest's framing is checked elsewhere)
    ours = sorted((r["url"].rsplit("/", 1)[1], r["bytes"]) for r in reqs if r["complete"] and r["kind"] != "manifest")
    theirs = sorted((t["segment"].rsplit("/", 1)[-1], t["bytes_sent"]) for t in served)
    missing = [x for x in ours if x not in theirs]
    assert not missing and len(theirs) - len(ours) <= 2, (missing, len(ours), len(theirs))
    series = conn.execute("SELECT sum(bytes) FROM throughput_samples WHERE download_id = ?", (d["id"],)).fetchone()[0]
    assert series == d["bytes"]


def test_the_2015_profile_fetches_one_stream_after_the_other_on_one_connection(tmp_path):
    conn, truth = _crawl(tmp_path, "2015")
    d = conn.execute("SELECT * FROM downloads").fetchone()
    reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    assert not _overlaps(reqs)
    served = [t for t in truth if t["video_id"] == "prof-dash" and t["method"] == "GET"]
    assert len({t["connection"] for t in served}) == 1
