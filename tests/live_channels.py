"""The live integration tests' common part: the lab's live channels crawled as a viewer watches them."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from pytomo.lab.live import LIST_SIZE, live_file
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler


def crawl_live(out: Path, scenario: dict, manifest: str, window_s: float
               ) -> tuple[sqlite3.Connection, list[dict], list[dict[str, Any]], dict[str, str]]:
    """Start the lab of ``scenario``, wait until each live channel lists a full window (a viewer joins a channel
    already running), crawl every channel's ``manifest`` with ``-s generic`` for ``window_s``: the run database,
    the truth log, the channels' recorded versions and segments, and each video's URL."""
    name = scenario["scenario"]["name"]
    truth = out / "truth.jsonl"
    with Lab(parse_scenario(scenario, name), truth_path=truth) as lab:
        for channel in lab.live.values():
            channel.wait_ready(segments=LIST_SIZE, timeout_s=60)
        servers = {s["name"]: s for s in scenario["servers"]}
        urls = {v["id"]: f"http://{servers[v['server']]['ip']}:{lab.cache_port(v['server'])}/s/{v['id']}/{manifest}"
                for v in scenario["videos"]}
        proc = run_crawler(["-s", "generic", "-b", "-D", str(window_s), "--database-dir", str(out),
                            *urls.values()], timeout_s=300)
    with open(live_file(truth), encoding="utf-8") as fh:
        entries = [json.loads(line) for line in fh if line.strip()]
    return connect(database_of(proc)), read_truth(truth), entries, urls


def session_rows(crawl: tuple, video_id: str) -> tuple[sqlite3.Connection, sqlite3.Row, list[sqlite3.Row], list[dict]]:
    """One channel's crawl: the run database, its download (the video measured ``ok``), its requests in time
    order, and what nginx logged for it (GETs, in the order they started)."""
    conn, truth, _entries, urls = crawl
    video = conn.execute("SELECT * FROM videos WHERE page_url = ?", (urls[video_id],)).fetchone()
    assert video["status"] == "ok", video["error_message"]
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (video["id"],)).fetchone()
    reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY trequest_s",
                        (d["id"],)).fetchall()
    served = sorted((t for t in truth if t["video_id"] == video_id and t["method"] == "GET"), key=started)
    return conn, d, reqs, served


def epoch(iso: str) -> float:
    """UNIX time of an ISO 8601 date as the database stores it."""
    return datetime.fromisoformat(iso).timestamp()


def started(t: dict) -> float:
    """When nginx began a request (its log's msec is the end)."""
    return t["msec"] - t["request_time_s"]
