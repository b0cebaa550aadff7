"""Closing a killed run (``pytomo.storage.recover``): only when no crawler holds its writer lock, never a finished
run, never a damaged file; the closed file is one self-contained database whose run is ``interrupted``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytomo.errors import StorageError
from pytomo.settings import Settings
from pytomo.storage.recover import StillWriting, close_killed
from pytomo.storage.sqlite import RunDatabase
from pytomo.storage.writer_lock import WriterLock

KILLED_CHILD = (
    "import os, signal, sys\n"
    "from pytomo.settings import Settings\n"
    "from pytomo.storage.sqlite import RunDatabase\n"
    "db = RunDatabase.create(sys.argv[1], Settings(service='lab'), host_label='t')\n"
    "print(db.path, flush=True)\n"
    "os.kill(os.getpid(), signal.SIGKILL)\n")


def left_running(folder: Path) -> Path:
    """A run database as a crawler killed with SIGKILL leaves it: run row ``running``, WAL, an unlocked lock file."""
    done = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(folder)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == -9, done.stderr
    path = Path(done.stdout.strip())
    assert Path(f"{path}-wal").exists() and Path(f"{path}.writer").exists()
    return path


def row(path: Path) -> tuple[str, str | None, str | None]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT status, stop_reason, ended_at FROM run").fetchone()
    finally:
        conn.close()


def test_a_killed_run_is_closed_as_interrupted_with_the_reason_and_no_end_time(tmp_path):
    path = left_running(tmp_path)
    closed = close_killed(path, closer="test")
    assert closed is not None and closed.videos == 0
    status, reason, ended = row(path)
    assert status == "interrupted" and ended is None  # when the crawler died is not known
    assert reason.startswith("killed") and "closed by test" in reason and "none stored" in reason
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}.writer").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert close_killed(path) is None  # closed once: a second call changes nothing


def test_a_run_whose_writer_is_alive_is_left_alone(tmp_path):
    db = RunDatabase.create(tmp_path, Settings(service="lab"), host_label="t")
    try:
        with pytest.raises(StillWriting, match="still writing"):
            close_killed(db.path)
        assert row(db.path)[0] == "running"
    finally:
        db.finish("finished")
    assert close_killed(db.path) is None and row(db.path)[0] == "finished"


def test_a_damaged_database_is_refused_and_left_as_it_is(tmp_path):
    bad = tmp_path / "x.pytomo_database.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    before = bad.read_bytes()
    with pytest.raises(StorageError):
        close_killed(bad)
    assert bad.read_bytes() == before
    with pytest.raises(StorageError, match="no database"):
        close_killed(tmp_path / "missing.db")


def test_a_lock_held_by_this_process_counts_as_a_writer(tmp_path):
    path = left_running(tmp_path)
    lock = WriterLock(path)
    assert lock.acquire()
    try:
        with pytest.raises(StillWriting):
            close_killed(path)
    finally:
        lock.release()
    assert close_killed(path) is not None
