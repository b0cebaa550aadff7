"""The crawler's writer lock: held while a run database is written, seen by readers in other processes, gone at the
end; readers never create the sidecar file."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from pytomo.settings import Settings
from pytomo.storage.sqlite import RunDatabase
from pytomo.storage.writer_lock import WriterLock, writer_alive, writer_lock_path

HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
""")
ASK = "import sys; from pytomo.storage.writer_lock import writer_alive; print(writer_alive(sys.argv[1]))"


def _holder(lock_file: Path) -> subprocess.Popen:
    """A child process holding an exclusive flock on ``lock_file`` until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _alive_seen_by_another_process(db: Path) -> bool:
    out = subprocess.run([sys.executable, "-c", ASK, str(db)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return out.stdout.strip() == "True"


def test_a_lock_held_by_another_process_is_a_live_writer_until_it_ends(tmp_path):
    db = tmp_path / "x.pytomo_database.db"
    proc = _holder(writer_lock_path(db))
    try:
        assert writer_alive(db)
        assert writer_alive(db)  # asking twice does not take the lock away
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert writer_lock_path(db).exists()  # the child did not delete it
    assert not writer_alive(db)  # the kernel dropped its lock


def test_a_killed_writer_leaves_no_live_lock(tmp_path):
    db = tmp_path / "x.pytomo_database.db"
    proc = _holder(writer_lock_path(db))
    assert writer_alive(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not writer_alive(db)


def test_readers_never_create_the_lock_file(tmp_path):
    db = tmp_path / "x.pytomo_database.db"
    assert not writer_alive(db)
    assert list(tmp_path.iterdir()) == []


def test_the_run_database_holds_its_lock_while_open_and_deletes_it_at_finish(tmp_path):
    db = RunDatabase.create(tmp_path, Settings(), host_label="lock")
    lock_file = writer_lock_path(db.path)
    assert lock_file.exists() and lock_file.parent == db.path.parent
    assert _alive_seen_by_another_process(db.path)
    db.finish("finished", "done")
    assert not lock_file.exists()
    assert not _alive_seen_by_another_process(db.path)


def test_close_without_finish_releases_the_lock_and_keeps_the_run_running(tmp_path):
    db = RunDatabase.create(tmp_path, Settings(), host_label="lock")
    db.close()
    assert not writer_lock_path(db.path).exists() and not writer_alive(db.path)
    conn = sqlite3.connect(f"file:{db.path}?mode=ro", uri=True)
    assert conn.execute("SELECT status FROM run").fetchone()[0] == "running"
    conn.close()


def test_a_second_writer_cannot_take_a_held_lock(tmp_path):
    db = tmp_path / "x.pytomo_database.db"
    first, second = WriterLock(db), WriterLock(db)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    first.release()
    assert not writer_lock_path(db).exists()
