"""The videos the operator's view counts: read whole or only the new ones of a run being written, same result."""

from __future__ import annotations

import shutil
import sqlite3

from bench.web_make_db import make_database
from pytomo.readers import observations as observe
from pytomo.readers import pages as data
from pytomo.readers.verdict import bins, quantile, verdict, window, within
from pytomo.zones import Clock


def _load(path, after=None):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return observe.load(conn, data.layout_of(conn), Clock(), after=after)
    finally:
        conn.close()


def test_reading_only_the_new_videos_gives_what_reading_everything_gives(tmp_path):
    whole = make_database(tmp_path / "a", 60)
    early = tmp_path / "b" / whole.name
    early.parent.mkdir()
    shutil.copy(whole, early)
    conn = sqlite3.connect(early)
    for table in ("rtt_samples", "rtt_probes", "hops", "dns_answers"):
        conn.execute(f"DELETE FROM {table} WHERE video_row_id > 25")
    for table in ("throughput_samples", "stalls", "playout_timeline", "tcp_info_samples", "segment_requests"):
        conn.execute(f"DELETE FROM {table} WHERE download_id IN (SELECT id FROM downloads WHERE video_row_id > 25)")
    conn.execute("DELETE FROM downloads WHERE video_row_id > 25")
    conn.execute("DELETE FROM videos WHERE id > 25")
    conn.commit()
    conn.close()
    first = _load(early)
    assert first.last_id == 25 and len(first.obs) == 25
    assert _load(whole, after=first) == _load(whole)


def test_each_video_rtt_is_the_smallest_of_its_answered_icmp_probes(tmp_path):
    """The one RTT of a video is ``downloads.ping_min_ms`` (MinRTT, as ndt7 reports it), read as stored."""
    db = make_database(tmp_path, 30)
    loaded = _load(db).obs
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    checked = 0
    for o, (vid,) in zip(loaded, conn.execute("SELECT id FROM videos ORDER BY started_at, id"), strict=True):
        address = conn.execute("SELECT address FROM downloads WHERE video_row_id = ? ORDER BY id", (vid,)).fetchone()
        if address is None:
            continue
        rows = conn.execute("SELECT method, rtt_ms FROM rtt_samples WHERE video_row_id = ? AND address = ?",
                            (vid, address[0])).fetchall()
        icmp = [r for m, r in rows if m != "tcp-connect"]
        answered = [r for r in icmp if r is not None]
        if answered:
            assert o.rtt_ms == min(answered) and o.rtt_max_ms == max(answered)
            assert (o.probes_sent, o.probes_lost) == (len(icmp), len(icmp) - len(answered))
            checked += 1
    assert checked > 20


def test_quantiles_are_numpys_and_intervals_add_up(tmp_path):
    import numpy

    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert quantile(values, q) == numpy.quantile(values, q)
    obs = _load(make_database(tmp_path, 200)).obs
    for span in ("hour", "day", "all"):
        win = window(obs, span)
        cut = bins(obs, win)
        assert cut[0].start_s == win.start_s and cut[-1].end_s == win.end_s
        assert sum(b.spread["videos"] for b in cut) == len(within(obs, win.start_s, win.end_s))
        rows = verdict(obs, win)
        assert sum(r.counts["played"] for r in rows if r.kind == "service") == sum(b.spread["played"] for b in cut)
