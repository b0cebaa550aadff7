"""A live DASH channel made by ffmpeg's dash muxer in real time, served by nginx paced above and below its bitrate,
crawled as a viewer watches it (issue 18, live DASH).

The truth is software nobody here wrote: nginx's access log (when each MPD and segment was asked for and what it
answered) and ffmpeg's MPDs and segment files as it wrote them (the lab's watcher keeps every MPD version and each
segment file's own modification time). The crawl must never ask for a segment before ffmpeg wrote it (or else count
the 404 as missing), fetch the MPD again every minimumUpdatePeriod (ffmpeg writes PT500S for a $Number$ MPD, which
does not change, and the segment duration for a SegmentTimeline), store the latency to the live edge from the
MPD's availabilityStartTime, stall only below the bitrate, and end with the window.
"""

from __future__ import annotations

import pytest

from pytomo.engine.dash_live import live_delay_s, start_number
from pytomo.engine.mpd_live import available, read_live_mpd
from pytomo.lab.live_dash import MPD
from pytomo.lab.tools import nginx_exe
from tests.live_channels import crawl_live, epoch, session_rows, started

NGINX, WHY = nginx_exe()
pytestmark = pytest.mark.skipif(NGINX is None, reason=WHY)

# 400 kbit/s of video in fMP4: about 100 kB per 2 s segment; at 8 Mbit/s a segment arrives at once, at 250 kbit/s
# it takes about 3 s. The fast channel is numbered by @duration ($Number$), the slow one timed by a SegmentTimeline.
SEG_S = 2.0
SERVERS = [{"name": "dash-fast", "ip": "127.77.7.1", "software": "nginx", "rate_bps": 8_000_000},
           {"name": "dash-slow", "ip": "127.77.7.2", "software": "nginx", "rate_bps": 250_000}]
VIDEOS = [{"id": name, "server": name, "delivery": "dash", "live": True, "segment_s": SEG_S, "bitrate_bps": 400_000,
           "live_timeline": name == "dash-slow"} for name in ("dash-fast", "dash-slow")]
SCENARIO = {"scenario": {"name": "live-dash"}, "video_defaults": {"hops": 0}, "servers": SERVERS, "videos": VIDEOS}
WINDOW_S = 15.0


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    return crawl_live(tmp_path_factory.mktemp(SCENARIO["scenario"]["name"]), SCENARIO, MPD, WINDOW_S)


def _session(crawl, video_id):
    conn, d, reqs, served = session_rows(crawl, video_id)
    entries = crawl[2]  # ffmpeg's MPD versions and segment files
    mpds = [e for e in entries if e["video_id"] == video_id and "segment" not in e]
    written = {e["segment"]: e["written_at"] for e in entries if e["video_id"] == video_id and "segment" in e}
    return conn, d, reqs, served, mpds, written



@pytest.mark.parametrize("video_id", ["dash-fast", "dash-slow"])
def test_the_mpd_is_dynamic_and_fetched_again_every_minimum_update_period(crawl, video_id):
    _conn, d, reqs, served, mpds, _written = _session(crawl, video_id)
    assert mpds and mpds[0]["type"] == "dynamic"
    period = read_live_mpd("http://x/live.mpd", mpds[0]["text"]).min_update_s
    assert period is not None and period > 0
    assert d["live"] == 1 and d["ended_by"] == "window"
    loads = [r for r in reqs if r["kind"] in ("manifest", "reload")]
    assert loads[0]["kind"] == "manifest" and all(r["kind"] == "reload" for r in loads[1:])
    if period > WINDOW_S:  # ffmpeg's $Number$ MPD says PT500S: it will not change, and is not fetched again
        assert d["live_reloads"] == 0 and len(loads) == 1
    else:
        assert d["live_reloads"] == len(loads) - 1 >= WINDOW_S / period - 2
    assert d["live_unchanged_reloads"] == sum(r["playlist_changed"] == 0 for r in loads[1:])
    logged = [t for t in served if t["segment"] == MPD][-len(loads):]  # nginx's word on each load, in order
    assert len(logged) == len(loads)
    for before, after in zip(logged, logged[1:]):
        assert period - 0.05 <= started(after) - started(before) <= period + 0.5


@pytest.mark.parametrize("video_id", ["dash-fast", "dash-slow"])
def test_no_segment_is_asked_for_before_ffmpeg_wrote_it(crawl, video_id):
    _conn, d, reqs, served, _mpds, written = _session(crawl, video_id)
    segments = [t for t in served if t["segment"] != MPD and not t["segment"].startswith("init")]
    assert segments
    early = 0
    for t in segments:
        if t["segment"] in written and started(t) >= written[t["segment"]] - 0.005:
            assert t["status"] == 200, t
        else:  # asked for before ffmpeg wrote it: nginx said 404 and the crawl counted it missing
            assert t["status"] == 404, t
            early += 1
    assert d["live_segments_missing"] == early
    media = [r for r in reqs if r["kind"] == "media"]
    assert [r["url"].rsplit("/", 1)[1] for r in media] == [t["segment"] for t in segments][-len(media):]
    numbers = [r["media_sequence"] for r in media]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("video_id", ["dash-fast", "dash-slow"])
def test_it_starts_at_the_live_edge_minus_the_suggested_presentation_delay(crawl, video_id):
    _conn, _d, reqs, served, mpds, _written = _session(crawl, video_id)
    loads = [r for r in reqs if r["kind"] in ("manifest", "reload")]
    first_load = [t for t in served if t["segment"] == MPD][-len(loads)]
    current = [v for v in mpds if v["written_at"] <= started(first_load)] or mpds[:1]
    mpd = read_live_mpd("http://x/live.mpd", current[-1]["text"])
    assert mpd.suggested_delay_s == 3 * SEG_S  # as the lab asked ffmpeg
    rep = next(iter(mpd.reps.values()))
    expected = set()
    for t in (started(first_load) - 0.05, started(first_load) + 0.3):  # the clock read around nginx's start
        segs = available(mpd, rep, t, 100)
        expected.add(start_number(segs, live_delay_s(mpd, rep)))
    first_media = next(r for r in reqs if r["kind"] == "media")
    assert first_media["media_sequence"] in expected


@pytest.mark.parametrize("video_id", ["dash-fast", "dash-slow"])
def test_latency_to_the_live_edge_from_the_availabilitystarted(crawl, video_id):
    conn, d, reqs, _served, mpds, _written = _session(crawl, video_id)
    mpd = read_live_mpd("http://x/live.mpd", mpds[0]["text"])
    assert mpd.availability_start_s is not None
    media = [r for r in reqs if r["kind"] == "media" and r["complete"]]
    for r in media:  # the media's wall-clock time: availabilityStartTime + Period@start + its start
        number = r["media_sequence"]
        assert r["program_date_s"] == pytest.approx(mpd.availability_start_s + mpd.period_start_s
                                                    + (number - 1) * SEG_S, abs=0.05)
    assert d["live_latency_problem"] is None and d["time_to_start_s"] is not None
    samples = conn.execute("SELECT * FROM live_latency WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    assert len(samples) >= WINDOW_S - d["time_to_start_s"] - 1
    assert samples[0]["latency_s"] == d["live_latency_start_s"] and samples[-1]["latency_s"] == d["live_latency_end_s"]
    expected = epoch(d["started_at"]) + d["time_to_start_s"] - media[0]["program_date_s"]
    assert d["live_latency_start_s"] == pytest.approx(expected, abs=0.05)
    assert d["live_latency_start_s"] >= 3 * SEG_S - 0.3  # at least the suggested delay


def test_stalls_only_below_the_bitrate(crawl):
    _conn, fast, *_rest = _session(crawl, "dash-fast")
    _conn, slow, *_rest = _session(crawl, "dash-slow")
    assert fast["stall_count"] == 0 and fast["live_segments_skipped"] == 0
    assert slow["stall_count"] >= 1
    assert slow["live_latency_end_s"] > fast["live_latency_end_s"]
