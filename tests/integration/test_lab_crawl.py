"""A crawl of the whole default lab, checked against the lab's ground-truth log."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pytomo.lab.scenario import default_scenario_path, load_scenario
from pytomo.lab.segmented import DEFAULT_LADDER
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler

_FULL = load_scenario(default_scenario_path())
# what a -s lab crawl of all_time reaches (the YouTube-rules videos are for -s youtube --lab only: unlisted)
SCENARIO = dataclasses.replace(_FULL, videos=tuple(v for v in _FULL.videos if "all_time" in v.popular))
FAULTY = {v.id for v in SCENARIO.videos if SCENARIO.server(v.server).fault}
SEGMENTED = {v.id for v in SCENARIO.videos if v.delivery != "progressive"}
STALLING = {v.id for v in SCENARIO.videos
            if SCENARIO.server(v.server).stalls
            or (SCENARIO.server(v.server).rate_bps or 1e18) < v.media.bitrate_bps}
EXPECTED_ERRORS = {  # fault -> (stage, kind)
    "404": ("redirects", "http_status"), "403": ("redirects", "http_status"), "500": ("redirects", "http_status"),
    "reset": ("download", "reset"), "short_body": ("download", "short_body"), "html": ("media", "not_media"),
    "redirect_loop": ("redirects", "hop_limit"), "tls_wrong_name": ("redirects", "tls_name_mismatch"),
    "tls_expired": ("redirects", "tls_expired"), "tls_unknown_ca": ("redirects", "tls_unknown_ca"),
}
WINDOW_S = 3.0


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab-crawl")
    truth = out / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "50", "-D", str(WINDOW_S), "-n", "3", "-S", "0",
                        "--database-dir", str(out), "--lab-truth", str(truth)])
    db = database_of(proc)
    return proc, connect(db), read_truth(truth)


def _main_transfer(truth, video_id):
    rows = [t for t in truth if t["video_id"] == video_id and t["method"] == "GET" and not t["range"]]
    assert len(rows) == 1, rows
    return rows[0]


def _download(conn, video_id):
    return conn.execute("SELECT d.* FROM downloads d JOIN videos v ON v.id = d.video_row_id WHERE v.video_id = ?",
                        (video_id,)).fetchone()


def test_every_video_is_stored_and_the_crawl_went_on(crawl):
    proc, conn, _truth = crawl
    ids = [r["video_id"] for r in conn.execute("SELECT video_id FROM videos ORDER BY id")]
    assert sorted(ids) == sorted(v.id for v in SCENARIO.videos)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    run = conn.execute("SELECT * FROM run").fetchone()
    assert run["status"] == "finished" and run["schema_version"] == conn.execute("PRAGMA user_version").fetchone()[0]
    assert json.loads(run["settings_json"])["ping_count"] == 3
    assert "lab-unlimited" in proc.stdout  # the summary table


def test_pytomo_crawl_view_has_a_download_for_every_video_without_fault(crawl):
    _proc, conn, _truth = crawl
    for v in SCENARIO.videos:
        if v.id in FAULTY:
            continue
        rows = conn.execute("SELECT * FROM pytomo_crawl WHERE Url LIKE ? AND DownloadBytes > 0",
                            (f"%v={v.id}",)).fetchall()
        assert len(rows) == 1, v.id
        row = rows[0]
        profile = SCENARIO.server(v.server)
        scheme = "https" if profile.tls else "http"
        assert row["IP"] == profile.ip and row["CacheUrl"].startswith(f"{scheme}://{profile.host}:")
        assert row["Service"] == "Lab" and row["StatusCode"] == 200 and row["RedirectUrl"] is None
        assert row["DownloadTime"] > 0 and row["EncodingRate"] > 0 and row["PingAvg"] is not None


def test_faults_are_stored_as_errors_at_the_right_stage(crawl):
    _proc, conn, _truth = crawl
    for v in SCENARIO.videos:
        fault = SCENARIO.server(v.server).fault
        row = conn.execute("SELECT * FROM videos WHERE video_id = ?", (v.id,)).fetchone()
        if fault is None:
            assert row["status"] == "ok", (v.id, row["error_message"])
            continue
        assert row["status"] == "error"
        assert (row["error_stage"], row["error_kind"]) == EXPECTED_ERRORS[fault], (v.id, row["error_message"])
        assert row["error_message"]


def test_throughput_matches_the_pacing_rate(crawl):
    _proc, conn, truth = crawl
    checked = 0
    for v in SCENARIO.videos:
        profile = SCENARIO.server(v.server)
        if profile.fault or profile.stalls or profile.burst_bytes or profile.rate_bps is None or v.id in SEGMENTED:
            continue
        t = _main_transfer(truth, v.id)
        d = _download(conn, v.id)
        if profile.software == "nginx":
            # nginx's word: what it sent stays within its limit_rate bound (one second's worth more at the start)
            # and the crawler received no more than that; the rate is kept up at least
            assert d["bytes"] <= t["body_bytes_sent"] <= t["limit_bound_bytes"], v.id
            assert d["avg_throughput_bps"] >= 0.95 * t["rate_bps"], v.id
        else:
            assert d["avg_throughput_bps"] == pytest.approx(t["rate_bps"], rel=0.05), v.id
            assert d["bytes"] <= t["bytes_sent"]
        checked += 1
    assert checked >= 4


def test_throughput_series_adds_up(crawl):
    _proc, conn, _truth = crawl
    for d in conn.execute("SELECT id, bytes, bin_s FROM downloads"):
        total = conn.execute("SELECT sum(bytes) FROM throughput_samples WHERE download_id = ?",
                             (d["id"],)).fetchone()[0]
        assert (total or 0) == d["bytes"]
        assert d["bin_s"] == 0.1


def test_encoding_rate_and_duration_match_the_media(crawl):
    _proc, conn, truth = crawl
    for v in SCENARIO.videos:
        if v.id in FAULTY or v.id in SEGMENTED:
            continue
        t = _main_transfer(truth, v.id)
        d = _download(conn, v.id)
        assert d["encoding_rate_bps"] == pytest.approx(t["bitrate_bps"], rel=0.02), v.id
        assert d["media_duration_s"] == pytest.approx(t["duration_s"], rel=0.01), v.id
        assert d["media_time_source"] != "average-bitrate", v.id
        assert d["content_length_bytes"] == t["size_bytes"]


def test_stalls_exactly_where_the_lab_makes_them(crawl):
    _proc, conn, _truth = crawl
    for v in SCENARIO.videos:
        if v.id in FAULTY:
            continue
        d = _download(conn, v.id)
        stalls = conn.execute("SELECT count(*) FROM stalls WHERE download_id = ?", (d["id"],)).fetchone()[0]
        assert stalls == d["stall_count"]
        if v.id in STALLING:
            assert d["stall_count"] >= 1, v.id
            assert d["stall_total_s"] > 0
        else:
            assert d["stall_count"] == 0, v.id
            assert d["time_to_start_s"] is not None


def test_unlimited_download_is_complete(crawl):
    _proc, conn, truth = crawl
    t = _main_transfer(truth, "lab-unlimited")
    d = _download(conn, "lab-unlimited")
    assert d["ended_by"] == "eof" and d["bytes"] == t["size_bytes"] == t["bytes_sent"]


def test_time_to_first_byte_includes_the_server_delay(crawl):
    _proc, conn, truth = crawl
    t = _main_transfer(truth, "lab-slow-start")
    d = _download(conn, "lab-slow-start")
    assert t["ttfb_delay_s"] <= d["first_byte_s"] < t["ttfb_delay_s"] + 0.25


def test_redirect_chain_dns_and_rtt_are_recorded(crawl):
    _proc, conn, _truth = crawl
    for v in SCENARIO.videos:
        if SCENARIO.server(v.server).fault:
            continue
        vid = conn.execute("SELECT id FROM videos WHERE video_id = ?", (v.id,)).fetchone()["id"]
        hops = conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index", (vid,)).fetchall()
        assert len(hops) == v.hops + 1, v.id
        assert all(300 <= h["status_code"] < 400 and h["location"] for h in hops[:-1]), v.id
        assert hops[-1]["status_code"] == 200 and hops[-1]["address"] == SCENARIO.server(v.server).ip
        answers = conn.execute("SELECT * FROM dns_answers WHERE video_row_id = ? AND address IS NOT NULL",
                               (vid,)).fetchall()
        assert {a["host"] for a in answers} == {h["host"] for h in hops}
        assert all(a["resolver"] == "lab" and a["ttl_s"] == SCENARIO.dns_ttl_s and a["rcode"] == "NOERROR"
                   for a in answers)
        for address in {a["address"] for a in answers}:
            methods = conn.execute("SELECT method, count(*) AS n, sum(rtt_ms IS NULL) AS lost FROM rtt_samples "
                                   "WHERE video_row_id = ? AND address = ? GROUP BY method", (vid, address)).fetchall()
            assert {m["method"] for m in methods} >= {"tcp-connect"}
            assert all(m["n"] == 3 and m["lost"] == 0 for m in methods), (v.id, address)
    # the three-hop video went through a relative Location
    vid = conn.execute("SELECT id FROM videos WHERE video_id = 'lab-stalling'").fetchone()["id"]
    first = conn.execute("SELECT location FROM hops WHERE video_row_id = ? AND hop_index = 0", (vid,)).fetchone()
    assert first["location"].startswith("/")


def test_titles_are_stored_exactly_as_the_platform_shows_them(crawl):
    _proc, conn, _truth = crawl
    for v in SCENARIO.videos:
        if v.id in FAULTY:
            continue
        stored = conn.execute("SELECT title FROM videos WHERE video_id = ?", (v.id,)).fetchone()["title"]
        assert stored == v.title


def test_segmented_requests_match_what_the_lab_served(crawl):
    _proc, conn, truth = crawl
    assert {"lab-hls", "lab-dash", "nginx-hls", "nginx-dash"} <= SEGMENTED
    assert {v.packaging for v in SCENARIO.videos if v.id in SEGMENTED} == {
        "ffmpeg", "shaka-cmaf", "shaka-byterange", "shaka-number", "shaka-time", "shaka-segmentbase"}
    for v in SCENARIO.videos:
        if v.id not in SEGMENTED:
            continue
        d = _download(conn, v.id)
        assert d["delivery"] == v.delivery and d["container"] == v.delivery
        served = [t for t in truth if t["video_id"] == v.id and t["method"] == "GET"]
        records = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq",
                               (d["id"],)).fetchall()
        # every request the player made was served once, in the same order, with the same bytes
        assert [r["url"].split(f"/s/{v.id}/")[1] for r in records] == [t["segment"] for t in served]
        assert len(records) == len(served), v.id
        for r, t in zip(records, served):
            if r["complete"] and r["range_first_byte"] is not None:  # a byte range of the file: 206, those bytes
                assert t["status"] == 206 and r["bytes"] == t["bytes_sent"] == (
                    r["range_last_byte"] - r["range_first_byte"] + 1), v.id
            elif r["complete"] and r["content_encoding"]:
                # a manifest nginx compressed and sent chunked over HTTP/1.1: nginx's $body_bytes_sent counts the
                # chunk framing (size lines and CRLFs, a dozen bytes per chunk), our bytes are the compressed body
                # without it; over HTTP/2 (--http auto, nginx-https) there is no chunking
                assert r["content_encoding"] == t["content_encoding"] == "gzip"
                if r["http_version"] == "HTTP/1.1":
                    assert 0 < t["bytes_sent"] - r["bytes"] <= 12 * (2 + r["bytes"] // 4096), v.id
                else:
                    assert t["bytes_sent"] == r["bytes"], v.id
            elif r["complete"]:  # a live channel's file sizes are nginx's word alone (ffmpeg wrote them)
                assert r["bytes"] == t["bytes_sent"] == (t["bytes_sent"] if v.live else t["size_bytes"]), v.id
            assert r["trequest_s"] <= r["tresponse_s"] <= r["tfinish_s"]
        media = [r for r in records if r["kind"] == "media" and r["complete"]]
        if v.live:
            _check_live(d, records, media)
            continue
        streams = {r["stream"] for r in media}
        assert streams == {"video", "audio"}  # separate audio and video in both
        for stream in streams:
            mine = [r for r in media if r["stream"] == stream]
            for k, r in enumerate(mine):
                assert r["media_start_s"] == pytest.approx(k * v.segment_s, abs=0.05 * (k + 1))
                assert r["media_duration_s"] == pytest.approx(min(v.segment_s, v.media.duration_s - k * v.segment_s),
                                                              abs=0.05)
        size = sum(r["bytes"] for r in media)
        seconds = {s: sum(r["media_duration_s"] for r in media if r["stream"] == s) for s in streams}
        rate = sum(sum(r["bytes"] for r in media if r["stream"] == s) * 8 / seconds[s] for s in streams)
        assert d["encoding_rate_bps"] == pytest.approx(rate, rel=1e-6) and size > 0
        # one rendition at full rate: the highest the manifest offers
        assert {r["rendition_id"] for r in media if r["stream"] == "video"} == {d["rendition_id"]}
        assert d["height"] == max(h for h, _b in DEFAULT_LADDER)
        p1203 = json.loads(d["p1203_input_json"])
        assert p1203["I23"]["stalling"][0] == [0.0, pytest.approx(d["time_to_start_s"], abs=1e-5)]
        assert len(p1203["I13"]["segments"]) == sum(1 for r in media if r["stream"] == "video")
        assert len(p1203["I11"]["segments"]) == sum(1 for r in media if r["stream"] == "audio")


def _check_live(d, records, media) -> None:
    """A live channel of the default lab: followed at the live edge for the whole window, reloaded on time (HLS at
    least once in the 3 s window: the first reload comes one 2 s target duration after the first load; ffmpeg's
    $Number$ MPD asks for none, its minimumUpdatePeriod being 500 s), dated."""
    assert d["live"] == 1 and d["ended_by"] == "window" and media
    assert d["live_reloads"] == sum(r["kind"] == "reload" for r in records) >= (d["delivery"] == "hls")
    assert d["live_latency_problem"] is None and d["live_latency_start_s"] >= 2.0  # never ahead of the edge
    assert d["stall_count"] == 0  # at 4 Mbit/s, ten times the bitrate
    assert all(r["program_date_s"] is not None for r in media) or d["delivery"] == "dash"


def test_segmented_throughput_matches_the_pacing_rate(crawl):
    _proc, conn, _truth = crawl
    d = _download(conn, "lab-hls")  # on the 3 Mbit/s cache, requests back to back
    assert d["avg_throughput_bps"] == pytest.approx(SCENARIO.server("cache-3m").rate_bps, rel=0.05)


def test_the_default_crawl_measures_https_over_all_three_protocols(crawl):
    """--http auto (the default): the lab's own TLS server answers HTTP/1.1, nginx HTTP/2 by ALPN, and Caddy HTTP/3
    once its Alt-Svc was seen; every transfer of an HTTPS server carries its TLS version."""
    _proc, conn, _truth = crawl
    seen = set()
    for v in SCENARIO.videos:
        profile = SCENARIO.server(v.server)
        if not profile.tls and profile.software != "caddy" or profile.fault:
            continue
        d = _download(conn, v.id)
        assert d is not None and d["tls_version"] == "TLSv1.3", v.id
        seen.add(d["http_version"])
    assert seen == {"HTTP/1.1", "HTTP/2", "HTTP/3"}
