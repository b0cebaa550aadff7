"""bench.players over the player's own segment arrivals, from a made-up crawl database and account (no Chromium).

The case of the CI failure (dash-shaka-x0_6 / dashjs, 12 s window): both first video segments arrived at about
6.1 s; the player's second one 5.05 s after it was asked for (nginx's limit_rate counts whole seconds), the
crawler's was cut by its window. The player's picture resumed when its second segment arrived; the comparison
over the player's own arrivals must see that segment, and the two plays' arrivals differ by about a second.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.players import Comparison, _on_player_arrivals, _segments, arrival_gap_s, player_arrivals, real_figures
from pytomo.results.reference import PlayerAccount, StallInterval

BASE = "http://nginx-x0_6.lab.pytomo.test/s/dash-shaka-x0_6"


def _crawl(tmp_path: Path) -> Path:
    """The crawler's requests: its second video segment cut by its window at 12.0 s."""
    db = tmp_path / "crawl.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE segment_requests (seq INTEGER, url TEXT, stream TEXT, kind TEXT, media_start_s REAL,"
                 " media_duration_s REAL, trequest_s REAL, tfinish_s REAL, complete INTEGER)")
    conn.execute("CREATE TABLE playouts (profile TEXT, end_s REAL)")
    rows = [(0, f"{BASE}/manifest.mpd", "manifest", "manifest", None, None, 0.0, 0.002, 1),
            (1, f"{BASE}/v2/1.m4s", "video", "media", 0.0, 4.0, 0.01, 6.02, 1),
            (2, f"{BASE}/audio/1.m4s", "audio", "media", 0.0, 4.0107, 0.01, 0.02, 1),
            (3, f"{BASE}/audio/2.m4s", "audio", "media", 4.0107, 3.9893, 0.02, 0.03, 1),
            (4, f"{BASE}/v2/2.m4s", "video", "media", 4.0, 4.0, 6.02, 11.24, 0),
            (5, f"{BASE}/audio/3.m4s", "audio", "media", 8.0, 4.0107, 6.52, 6.53, 1)]
    conn.executemany("INSERT INTO segment_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO playouts VALUES (?, ?)", [("dashjs", 12.0), ("2015", 12.0)])
    conn.commit()
    conn.close()
    return db


def _account() -> PlayerAccount:
    """dash.js: the picture froze at 10.05 s and moved again at 11.22 s, when its second video segment came."""
    def req(path: str, start: float, end: float | None) -> dict:
        return {"url": f"{BASE}/{path}", "start_s": start, "end_s": end, "bytes": 1000, "finished": end is not None}

    requests = (req("manifest.mpd", 0.0, 0.01), req("v2/1.m4s", 0.12, 6.13), req("audio/1.m4s", 0.14, 0.17),
                req("audio/2.m4s", 6.2, 6.21), req("v2/2.m4s", 6.15, 11.2), req("audio/3.m4s", 10.1, 10.11),
                req("v2/3.m4s", 11.22, None))
    stalls = (StallInterval(10.05, 11.22),)
    return PlayerAccount(player="dashjs", player_version="5.2.1", browser="Chromium", url=f"{BASE}/manifest.mpd",
                         rendition="highest", window_s=12.0, origin_epoch_s=0.0, samples=(), frames=(), events=(),
                         requests=requests, renditions=(), errors=(), time_to_start_s=6.2, stalls_by_events=(),
                         stalls_by_picture=stalls, stall_time_by_events_s=0.0, stall_time_by_picture_s=1.17,
                         played_s=None, rendition_switches=0, bytes_received=7000, request_count=len(requests))


def test_a_segment_the_crawlers_window_cut_is_still_known_by_its_media_times(tmp_path):
    segments, end = _segments(_crawl(tmp_path))
    assert end == 12.0
    assert segments[f"{BASE}/v2/2.m4s"].media_start_s == 4.0 and segments[f"{BASE}/v2/2.m4s"].transfer_s is None
    assert abs((segments[f"{BASE}/v2/1.m4s"].transfer_s or 0) - 6.01) < 1e-9
    av = player_arrivals(_account(), segments)
    assert av[-1][0] == 11.2 and av[-1][2] == 8.0  # the player's second video segment counts when it ended


def test_the_arrival_gap_counts_a_segment_one_window_cut(tmp_path):
    segments, end = _segments(_crawl(tmp_path))
    gap = arrival_gap_s(_account(), segments, end)
    # the player's v2/2 took 5.05 s; the crawler's was still arriving at its window's end, 5.98 s after it asked
    assert gap is not None and abs(gap - (12.0 - 6.02 - 5.05)) < 1e-6
    assert arrival_gap_s(_account(), segments, None) is not None  # without the crawl's end: the complete ones only


def test_the_rules_over_the_players_own_arrivals_follow_its_picture(tmp_path):
    acc = _account()
    c = Comparison("dash-shaka-x0_6", "dash", "dashjs", real_figures(acc), None, None)
    _on_player_arrivals(c, acc, _crawl(tmp_path), "dashjs")
    assert c.on_player_arrivals is not None and c.on_player_arrivals.stall_count == 1
    assert c.on_player_arrivals.stall_total_s is not None and abs(c.on_player_arrivals.stall_total_s - 1.17) < 0.1
    assert not c.rule_problems, c.rule_problems
    assert c.arrival_gap_s is not None and c.arrival_gap_s > 0.5
