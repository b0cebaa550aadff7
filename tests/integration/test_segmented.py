"""Segmented streaming under a link slower than the top rendition: the fixed player stalls, BBA adapts."""

from __future__ import annotations

import pytest

from tests.conftest import connect, database_of, run_crawler

SCENARIO = """
[scenario]
name = "segmented-slow"
description = "DASH 4 s segments behind 1.5 Mbit/s; the top rendition needs 1.7 Mbit/s with its audio"

[[servers]]
name = "cache-1m5"
ip = "127.77.1.1"
rate_bps = 1_500_000

[[videos]]
id = "dash-slow"
title = "DASH behind a slow link"
server = "cache-1m5"
delivery = "dash"
segment_s = 4.0
duration_s = 30.0
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "slow.toml"
    path.write_text(SCENARIO)
    return path


def _crawl(tmp_path, scenario, *extra):
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-D", "10", "-n", "1", "-S", "0", "--database-dir",
                        str(tmp_path), "--lab-scenario", str(scenario), *extra])
    conn = connect(database_of(proc))
    d = conn.execute("SELECT * FROM downloads").fetchone()
    media = conn.execute("SELECT * FROM segment_requests WHERE kind = 'media' AND complete = 1 ORDER BY seq").fetchall()
    return conn, d, media


def test_fixed_top_rendition_stalls_on_a_slower_link(tmp_path, scenario):
    conn, d, media = _crawl(tmp_path, scenario)
    assert {r["rendition_id"] for r in media if r["stream"] == "video"} == {"2"}
    # 4 s segments of about 1.6 Mbit/s video + 96 kbit/s audio at 1.5 Mbit/s: the first pair arrives after
    # about 4.5 s, the second video segment finishes about 8.8 s in: the 4 s buffer ran dry in between
    assert d["time_to_start_s"] == pytest.approx(4.5, abs=0.4)
    assert d["stall_count"] == 1
    stall = conn.execute("SELECT * FROM stalls").fetchone()
    assert stall["media_position_s"] == pytest.approx(4.0 - 0.1, abs=0.01)  # stalls at the end of the buffer
    assert stall["start_s"] == pytest.approx(d["time_to_start_s"] + 3.9, abs=0.01)
    audio_video_ends = [r["tfinish_s"] for r in media[2:4]]
    assert stall["start_s"] + stall["duration_s"] == pytest.approx(max(audio_video_ends), abs=0.01)
    assert d["avg_throughput_bps"] == pytest.approx(1_500_000, rel=0.05)


def test_buffer_based_adaptation_avoids_the_stall(tmp_path, scenario):
    _conn, d, media = _crawl(tmp_path, scenario, "--abr", "buffer")
    video = [r["rendition_id"] for r in media if r["stream"] == "video"]
    assert video[0] == "0"  # BBA starts at the lowest rendition
    assert d["stall_count"] == 0
    assert d["time_to_start_s"] < 2.0
    assert d["rendition_switches"] == sum(1 for a, b in zip(video, video[1:]) if a != b)
