"""A live HLS channel made by ffmpeg in real time, served by nginx paced above and below its bitrate, crawled as a
viewer watches it (issue 18).

The truth is software nobody here wrote: nginx's access log (when each playlist and segment was asked for) and
ffmpeg's playlists as it wrote them (the lab's watcher keeps every version with the file's own modification time).
The crawl must reload on RFC 8216 6.3.4's schedule, never ask for a segment ffmpeg had not listed yet, start three
target durations from the end (6.3.3), store the latency to the live edge from EXT-X-PROGRAM-DATE-TIME, stall only
below the bitrate, and end with the window.
"""

from __future__ import annotations

import pytest

from pytomo.engine.live import start_index
from pytomo.lab.live import PLAYLIST
from pytomo.lab.tools import nginx_exe
from pytomo.media.manifest import parse_media_playlist
from tests.live_channels import crawl_live, epoch, session_rows, started

NGINX, WHY = nginx_exe()
pytestmark = pytest.mark.skipif(NGINX is None, reason=WHY)

# 400 kbit/s of video and 64 kbit/s of audio in MPEG-TS: about 130 kB per 2 s segment. nginx lets the first second's
# worth through at once, then limit_rate: at 8 Mbit/s a segment arrives at once; at 250 kbit/s it takes about 3 s.
TD = 2.0
SERVERS = [{"name": "live-fast", "ip": "127.77.6.1", "software": "nginx", "rate_bps": 8_000_000},
           {"name": "live-slow", "ip": "127.77.6.2", "software": "nginx", "rate_bps": 250_000}]
VIDEOS = [{"id": name, "server": name, "delivery": "hls", "live": True, "segment_s": TD, "bitrate_bps": 400_000}
          for name in ("live-fast", "live-slow")]
SCENARIO = {"scenario": {"name": "live-hls"}, "video_defaults": {"hops": 0}, "servers": SERVERS, "videos": VIDEOS}
WINDOW_S = 15.0


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    return crawl_live(tmp_path_factory.mktemp(SCENARIO["scenario"]["name"]), SCENARIO, PLAYLIST, WINDOW_S)


def _session(crawl, video_id):
    conn, d, reqs, served = session_rows(crawl, video_id)
    mine = [v for v in crawl[2] if v["video_id"] == video_id]  # ffmpeg's playlist versions
    return conn, d, reqs, served, mine



@pytest.mark.parametrize("video_id", ["live-fast", "live-slow"])
def test_reloads_on_the_rfc_schedule(crawl, video_id):
    _conn, d, reqs, served, _mine = _session(crawl, video_id)
    assert d["live"] == 1 and d["live_target_duration_s"] == TD and d["ended_by"] == "window"
    loads = [r for r in reqs if r["kind"] in ("manifest", "reload")]
    assert [r["kind"] for r in loads[:2]] == ["manifest", "reload"]
    assert d["live_reloads"] == len(loads) - 1 >= WINDOW_S / TD - 2
    assert d["live_unchanged_reloads"] == sum(r["playlist_changed"] == 0 for r in loads[1:])
    logged = [t for t in served if t["segment"] == PLAYLIST][-len(loads):]  # nginx's word on each load, in order
    assert len(logged) == len(loads)
    for before, after, ours in zip(logged, logged[1:], loads):
        changed = ours["kind"] == "manifest" or ours["playlist_changed"] == 1
        expected = TD if changed else TD / 2  # RFC 8216 6.3.4, from the start of the previous load
        assert expected - 0.05 <= started(after) - started(before) <= expected + 0.5, (ours["seq"], changed)
    for r in loads[1:]:
        assert r["new_segments"] == 0 or r["playlist_changed"] == 1


@pytest.mark.parametrize("video_id", ["live-fast", "live-slow"])
def test_no_segment_is_asked_for_before_ffmpeg_listed_it(crawl, video_id):
    _conn, d, reqs, served, mine = _session(crawl, video_id)
    listed: dict[str, float] = {}
    for v in mine:
        for uri in v["segments"]:
            listed.setdefault(uri, v["written_at"])
    segments = [t for t in served if t["segment"] != PLAYLIST]
    assert segments
    for t in segments:
        assert t["segment"] in listed, t["segment"]
        assert started(t) >= listed[t["segment"]] - 0.005, t["segment"]
    media = [r for r in reqs if r["kind"] == "media"]
    assert [r["url"].rsplit("/", 1)[1] for r in media] == [t["segment"] for t in segments][-len(media):]


@pytest.mark.parametrize("video_id", ["live-fast", "live-slow"])
def test_it_starts_three_target_durations_from_the_end(crawl, video_id):
    _conn, _d, reqs, served, mine = _session(crawl, video_id)
    loads = [r for r in reqs if r["kind"] in ("manifest", "reload")]
    first_load = [t for t in served if t["segment"] == PLAYLIST][-len(loads)]
    current = [i for i, v in enumerate(mine) if v["written_at"] <= started(first_load)]
    # the version written last before the request, or one either side (written, not yet renamed; on its way)
    candidates = [mine[i] for i in (current[-1] - 1, current[-1], current[-1] + 1) if 0 <= i < len(mine)]
    expected = set()
    for v in candidates:
        segs = parse_media_playlist("http://x/live.m3u8", v["text"]).segments
        expected.add(segs[start_index(segs, TD, None)].url.rsplit("/", 1)[1])
    first_media = next(r for r in reqs if r["kind"] == "media")
    assert first_media["url"].rsplit("/", 1)[1] in expected


@pytest.mark.parametrize("video_id", ["live-fast", "live-slow"])
def test_latency_to_the_live_edge_from_the_program_dates(crawl, video_id):
    conn, d, reqs, _served, mine = _session(crawl, video_id)
    dates = {}
    for v in mine:
        for seg in parse_media_playlist("http://x/live.m3u8", v["text"]).segments:
            dates[seg.url.rsplit("/", 1)[1]] = seg.program_date_s
    media = [r for r in reqs if r["kind"] == "media" and r["complete"]]
    for r in media:  # the date we read is the one ffmpeg wrote
        assert r["program_date_s"] == pytest.approx(dates[r["url"].rsplit("/", 1)[1]], abs=1e-3)
    assert d["live_latency_problem"] is None and d["time_to_start_s"] is not None
    samples = conn.execute("SELECT * FROM live_latency WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    assert len(samples) >= WINDOW_S - d["time_to_start_s"] - 1
    assert samples[0]["latency_s"] == d["live_latency_start_s"] and samples[-1]["latency_s"] == d["live_latency_end_s"]
    # at the start the first segment's first frame plays: the wall clock then minus its date
    expected = epoch(d["started_at"]) + d["time_to_start_s"] - media[0]["program_date_s"]
    assert d["live_latency_start_s"] == pytest.approx(expected, abs=0.05)
    assert d["live_latency_start_s"] >= 3 * TD - 0.3  # it started no closer than three target durations
    if d["live_segments_skipped"] == 0 and d["live_segments_missing"] == 0:  # else a jump ahead lowers it
        for before, after in zip(samples, samples[1:]):  # playing, it stays; stalled, it grows with the clock
            assert after["latency_s"] >= before["latency_s"] - 0.01


def test_stalls_only_below_the_bitrate(crawl):
    _conn, fast, _r, _s, _m = _session(crawl, "live-fast")
    _conn, slow, _r, _s, _m = _session(crawl, "live-slow")
    assert fast["stall_count"] == 0 and fast["live_segments_skipped"] == 0 and fast["live_segments_missing"] == 0
    assert slow["stall_count"] >= 1
    assert slow["live_latency_end_s"] > fast["live_latency_end_s"]
