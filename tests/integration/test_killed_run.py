"""A crawl killed with ``kill -9`` (run row ``running``, videos in the WAL) reaches the collector and the dataset as
``interrupted`` with every video it had stored: ``pytomo upload`` and ``pytomo export`` close it first.

The truth of what was stored is SQLite's own recovery of a copy of the killed files (database, -wal, -shm), read
before any Pytomo code touches them; the collector's and the export's datasets are read with DuckDB."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_collector import collector  # noqa: F401  (the fixture)

duckdb = pytest.importorskip("duckdb")


def pytomo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytomo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def stored_videos(path: Path) -> int:
    """Videos committed so far, read while the crawler writes (WAL readers do not block it)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM videos").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def kill_crawl(folder: Path) -> Path:
    """Start a lab crawl, let it store two videos, kill its process group with SIGKILL; the database path."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-D", "20", "-n", "1",
                             "-S", "0", "--database-dir", str(folder)], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            dbs = list(folder.glob("*.pytomo_database.db"))
            if dbs and stored_videos(dbs[0]) >= 2:
                break
            assert proc.poll() is None, "the crawl ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the crawl stored no two videos in 240 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return dbs[0]


def truth_of(db: Path, work: Path) -> tuple[str, str, list[str]]:
    """SQLite's own recovery of a copy of the killed files: (run_uuid, status, every stored video's URL)."""
    work.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy2(f"{db}{suffix}", work / f"{db.name}{suffix}")
    conn = sqlite3.connect(work / db.name)
    try:
        run_uuid, status = conn.execute("SELECT run_uuid, status FROM run").fetchone()
        urls = sorted(r[0] for r in conn.execute("SELECT page_url FROM videos"))
    finally:
        conn.close()
    return run_uuid, status, urls


def dataset_of(root: Path, run_uuid: str) -> tuple[str, str, list[str]]:
    """(status, stop_reason, video URLs) of one run in a Parquet dataset, read by DuckDB."""
    con = duckdb.connect()
    status, reason = con.execute(
        "SELECT status, stop_reason FROM read_parquet(?, hive_partitioning = true) WHERE run_uuid = ?",
        [str(root / "run" / "**" / "*.parquet"), run_uuid]).fetchone()
    urls = sorted(r[0] for r in con.execute(
        "SELECT page_url FROM read_parquet(?, hive_partitioning = true) WHERE run_uuid = ?",
        [str(root / "videos" / "**" / "*.parquet"), run_uuid]).fetchall())
    return status, reason, urls


def test_a_killed_crawl_reaches_the_collector_and_the_dataset_as_interrupted(tmp_path, collector):  # noqa: F811
    url, collect_dir, tokens = collector
    token = tokens["alice"]
    folder = tmp_path / "runs"
    db = kill_crawl(folder)
    run_uuid, status, urls = truth_of(db, tmp_path / "truth")
    assert status == "running" and len(urls) >= 2
    spare = tmp_path / "spare"  # the same killed files, for export to close on its own
    spare.mkdir()
    for suffix in ("", "-wal", "-shm", ".writer"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy2(f"{db}{suffix}", spare / f"{db.name}{suffix}")

    sent = pytomo("upload", "--collector", url, "--database-dir", str(folder),
                  env={"PYTOMO_COLLECTOR_TOKEN": token})
    assert sent.returncode == 0, sent.stderr
    assert "1 sent, 0 failed" in sent.stdout
    assert "killed" in sent.stderr and "interrupted" in sent.stderr
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}.writer").exists()  # one self-contained file
    status_now = pytomo("upload", "--status", "--database-dir", str(folder))
    assert status_now.returncode == 0 and "1 uploaded, 0 pending, 0 failed, 0 not sent yet" in status_now.stdout

    status, reason, held = dataset_of(collect_dir / "dataset", run_uuid)
    assert status == "interrupted" and reason.startswith("killed")
    assert held == urls  # every video stored before the kill, none more

    exported = pytomo("export", str(spare / db.name), "--to", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    assert "interrupted" in exported.stderr
    status, reason, held = dataset_of(tmp_path / "export", run_uuid)
    assert status == "interrupted" and reason.startswith("killed") and held == urls
