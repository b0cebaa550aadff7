"""Crawl options that shape the run: related rounds, -u, loop, provider in the file name; the lab alone."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import requests

from tests.conftest import ROOT, connect, database_of, run_crawler

FAST = ["-s", "lab", "-b", "-D", "0.5", "-n", "1", "-S", "0"]


def _args(tmp_path, *extra):
    return [*FAST, "--database-dir", str(tmp_path), *extra]


def test_related_rounds_follow_the_watch_pages(tmp_path):
    # today's first video is lab-unlimited, whose page links lab-40m and lab-hostile; -P 2 takes the first two of
    # today's list as seeds and considers at most two related links per page, -p 5 samples them all
    proc = run_crawler(_args(tmp_path, "-P", "2", "-R", "-r", "2", "-p", "5", "--provider", "My ISP"))
    db = database_of(proc)
    assert db.name.startswith(f"{socket.gethostname()}.lab_My-ISP.")
    conn = connect(db)
    rows = conn.execute("SELECT round, seed_source, video_id FROM videos ORDER BY id").fetchall()
    assert [tuple(r) for r in rows[:2]] == [(0, "popular:today", "lab-unlimited"), (0, "popular:today", "lab-40m")]
    # round 1: lab-hostile (from lab-unlimited; lab-40m is already measured) and lab-throttled (from lab-40m)
    assert sorted((r["round"], r["seed_source"], r["video_id"]) for r in rows[2:]) == [
        (1, "related:lab-40m", "lab-throttled"), (1, "related:lab-unlimited", "lab-hostile")]
    assert "reached 2 rounds" in proc.stdout


def test_max_videos_counts_distinct_measured_videos(tmp_path):
    proc = run_crawler(_args(tmp_path, "-P", "6", "-u", "2"))
    conn = connect(database_of(proc))
    assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] == 2
    assert "reached 2 measured videos" in proc.stdout


def test_loop_measures_the_same_seeds_again(tmp_path):
    # --loop-interval 0: no random spacing between the measurements (-S 0 applies)
    proc = run_crawler(_args(tmp_path, "-P", "1", "-l", "-r", "3", "--loop-interval", "0"))
    conn = connect(database_of(proc))
    rows = conn.execute("SELECT round, video_id FROM videos ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(0, "lab-unlimited"), (1, "lab-unlimited"), (2, "lab-unlimited")]


def test_lab_runs_alone_and_prints_its_addresses(tmp_path):
    truth = tmp_path / "truth.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "pytomo.lab", "--truth", str(truth)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("serving"):
            break
    text = "".join(lines)
    port = int(re.search(r"platform http://www\.lab\.pytomo\.test:(\d+)/", text).group(1))
    assert re.search(r"dns +127\.77\.0\.53:\d+", text)
    resp = requests.get(f"http://127.77.0.1:{port}/api/popular?time_frame=week&limit=3",
                        headers={"Host": f"www.lab.pytomo.test:{port}"}, timeout=5)
    assert [v["id"] for v in resp.json()["videos"]] == ["lab-unlimited", "lab-40m", "lab-throttled"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert truth.exists()
