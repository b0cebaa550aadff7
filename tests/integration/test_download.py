"""The download stage against lab caches: the window holds when a server goes silent; TCP_INFO agrees with it."""

from __future__ import annotations

import pytest

from pytomo.engine.download import download
from pytomo.engine.http import HttpClient
from pytomo.engine.tcpinfo import MAX_INTERVAL_S, MIN_INTERVAL_S, available
from pytomo.results import TCP_INFO_FIELD_NAMES as FIELD_NAMES


def _fetch(lab, video_id, window_s):
    video = lab.scenario.video(video_id)
    profile = lab.scenario.server(video.server)
    client = HttpClient(lambda host: [profile.ip])
    return download(client, lab.cache_url(video), profile.ip, window_s=window_s), profile


def test_window_holds_while_the_server_is_silent(lab):
    # cache-stalling pauses 2.5 s after 280,000 bytes (about 0.3 s in): a blocking read would last until ~2.8 s
    tr, profile = _fetch(lab, "lab-stalling", 1.5)
    assert profile.stalls
    assert tr.ended_by == "window"
    assert tr.duration_s is not None and tr.duration_s < 1.5 + 0.05
    assert tr.bytes_total == profile.stalls[0][0]


@pytest.mark.skipif(not available(), reason="TCP_INFO is Linux only")
def test_tcp_info_is_sampled_under_kernel_names(lab):
    tr, profile = _fetch(lab, "lab-hostile", 2.0)  # 3 Mbit/s: still running when the window closes
    assert tr.ended_by == "window"
    assert len(tr.tcp_info) >= 4
    times = [t for t, _f in tr.tcp_info]
    gaps = [b - a for a, b in zip(times, times[1:-1])]  # the last sample is taken at the end, off schedule
    assert all(MIN_INTERVAL_S - 0.005 <= g <= MAX_INTERVAL_S + 0.05 for g in gaps), gaps
    last = tr.tcp_info[-1][1]
    assert set(last) <= set(FIELD_NAMES) and "tcpi_bytes_received" in last
    # the kernel counted what we read (plus the response headers, less than 1 KiB)
    assert 0 <= last["tcpi_bytes_received"] - tr.bytes_total < 1024
    assert 0 < tr.tcp_min_rtt_ms < 5  # loopback
