"""Ctrl-C stops after the current stage, keeps the database whole and still prints the summary."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, connect


def test_ctrl_c_keeps_the_database_whole(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-D", "30", "-n", "1",
                             "-S", "0", "--database-dir", str(tmp_path)], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*.db")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)  # inside the first video's 30 s download window
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopping after the current stage" in err
    db = out.strip().splitlines()[-1]
    assert db.endswith(".pytomo_database.db") and "stopped: interrupted" in out
    conn = connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    run = conn.execute("SELECT status, stop_reason FROM run").fetchone()
    assert tuple(run) == ("interrupted", "interrupted")
    videos = conn.execute("SELECT id, status, error_stage FROM videos ORDER BY id").fetchall()
    # the fast caches finish in well under a second; the video being measured at Ctrl-C is the last one
    assert [v["status"] for v in videos[:-1]] == ["ok"] * (len(videos) - 1)
    assert (videos[-1]["status"], videos[-1]["error_stage"]) == ("interrupted", "download")
    d = conn.execute("SELECT ended_by, bytes, transfer_s FROM downloads WHERE video_row_id = ?",
                     (videos[-1]["id"],)).fetchone()
    assert d["ended_by"] == "interrupted" and d["bytes"] > 0 and d["transfer_s"] < 10
