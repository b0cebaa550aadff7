"""A small run database with live streams, written by Pytomo's own writer (RunDatabase.add_video), and the same run
as a database of schema version 7 (before the live columns and the live_latency table)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytomo import figures
from pytomo.results.network import DnsAnswer, Hop, RttResult, RttSample
from pytomo.results.playout import PlayoutParams, PlayoutResult, Stall
from pytomo.results.transfer import LiveFacts, SegmentRecord, Transfer
from pytomo.results.video import DownloadAnalysis, VideoMeasurement
from pytomo.settings import Settings
from pytomo.storage.sqlite import RunDatabase

HOSTILE_PROBLEM = "<script>alert('live')</script> & no EXT-X-PROGRAM-DATE-TIME"
SERVER_NEAR, SERVER_FAR = "127.0.0.11", "127.0.0.12"
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# (title, address, delivery, live facts or None); the on-demand videos have no LiveFacts
VIDEOS = (
    ("live-near", SERVER_NEAR, "hls",
     dict(target_duration_s=2.0, reloads=4, unchanged_reloads=1, skipped=1, missing=2,
          latency=[(1.0, 7.5, 0.0), (2.0, 7.75, 1.0), (3.0, 8.5, 2.0)])),
    ("live-far", SERVER_FAR, "dash",
     dict(target_duration_s=None, reloads=2, unchanged_reloads=0, skipped=3, missing=0,
          latency=[(1.5, 70.0, 0.0), (2.5, 72.25, 0.5), (3.5, 75.0, 1.0)])),
    ("live-undated", SERVER_NEAR, "hls",
     dict(target_duration_s=6.0, reloads=1, unchanged_reloads=1, skipped=0, missing=0, latency=[],
          latency_problem=HOSTILE_PROBLEM)),
    ("vod-hls", SERVER_NEAR, "hls", None),
    ("vod-progressive", SERVER_FAR, "progressive", None),
)


def _segments(live: bool) -> list[SegmentRecord]:
    url = "http://live.example.test/s/index.m3u8"
    first = SegmentRecord(0, "manifest", "manifest", None, None, url, 200, 0.0, 0.01, 0.02, 640, None, None, True)
    if not live:
        return [first]
    return [first,
            SegmentRecord(1, "manifest", "reload", None, None, url, 200, 2.0, 2.01, 2.02, 700, None, None, True,
                          media_sequence=41, playlist_changed=True, new_segments=2),
            SegmentRecord(2, "manifest", "reload", None, None, url, 200, 3.0, 3.01, 3.02, 700, None, None, True,
                          media_sequence=41, playlist_changed=False, new_segments=0)]


def _network(n: int, address: str, at: datetime) -> dict:
    """The video's one hop to its cache server, its DNS answer and three ICMP echoes (for the 2015 view)."""
    host = f"cache-{address.rsplit('.', 1)[1]}.live.test"
    echoes = tuple(RttSample(address, "icmp-dgram", i, 10.0 + n + i, at) for i in range(3))
    return {"hops": [Hop(0, f"http://{host}/v{n}", host, address, 200, None, 0.01, at)],
            "dns": [DnsAnswer(host, "system", None, "A", "NOERROR", address, 300, 1.5, at)],
            "rtt": [RttResult(address, "icmp-dgram", echoes)]}


def _video(n: int, title: str, address: str, delivery: str, live: dict | None) -> VideoMeasurement:
    at = START + timedelta(seconds=20 * n)
    params = PlayoutParams()
    host = f"cache-{address.rsplit('.', 1)[1]}.live.test"
    transfer = Transfer(url=f"http://{host}/v{n}", address=address, started_at=at, window_s=5.0, bin_s=0.1,
                        status=200, headers_s=0.01, first_byte_s=0.02, last_byte_s=4.9, bytes_total=500_000,
                        ended_by="window", bins_bytes=[10_000] * 50)
    stalls = (Stall(2.0, 1.0, 0.5),) if title == "live-far" else ()
    playout = PlayoutResult(params, 5.0, 1.0, 20_000, 2.0, stalls, 2.5, 6.0, 3.5, "playing", ())
    facts = LiveFacts(wall0_s=at.timestamp(), **live) if live is not None else None
    download = DownloadAnalysis(transfer=transfer, params=params, playout=playout, delivery=delivery, live=facts,
                                segments=_segments(live is not None) if delivery != "progressive" else [])
    return VideoMeasurement(page_url=f"http://live.example.test/watch/{n}", round=1, seed_source="input",
                            service_label="Generic", started_at=at, ended_at=at + timedelta(seconds=6),
                            title=title, video_id=title, downloads=[download], **_network(n, address, at))


def write_live_run(folder: Path) -> Path:
    """The run of ``VIDEOS`` in ``folder``, finished; returns its path."""
    db = RunDatabase.create(folder, Settings(), host_label="livelab")
    for n, (title, address, delivery, live) in enumerate(VIDEOS):
        db.add_video(_video(n, title, address, delivery, live))
    db.finish("finished", "done")
    return db.path


def as_schema_7(src: Path, folder: Path) -> Path:
    """A copy of a run database as schema version 7 wrote it (without the live columns and the live_latency table),
    under a run UUID of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name.replace("livelab", "oldlab")
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst)
    conn.execute("DROP TABLE live_latency")
    for f in figures.figures("downloads"):
        if f.since >= 8 and f.name.startswith("live"):
            conn.execute(f"ALTER TABLE downloads DROP COLUMN {f.name}")
    for name in ("media_sequence", "playlist_changed", "new_segments", "program_date_s"):
        conn.execute(f"ALTER TABLE segment_requests DROP COLUMN {name}")
    conn.execute("UPDATE run SET schema_version = 7, run_uuid = ?", (str(uuid.uuid4()),))  # another run
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    return dst
