"""A run whose crawler was killed (status ``running``, no writer left): closed as ``interrupted``, every stored video
kept.

A crawler killed with ``kill -9`` (or by a power cut) leaves its run row at ``running``, its videos in the WAL file
beside the database and, at most, an unlocked writer-lock file. ``close_killed`` takes the writer lock itself (so
no crawler can be writing the file meanwhile), lets SQLite recover the WAL (a video whose transaction had not
committed is not there: it was never stored), checks the file's integrity, marks the run ``interrupted`` with the
reason, folds the WAL into the file and leaves WAL mode, as a finished run is. ``ended_at`` stays NULL: when the
crawler died is not known; ``stop_reason`` names the last stored video's end instead.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pytomo.errors import StorageError
from pytomo.results import iso, utc_now
from pytomo.storage.sqlite import write_metadata
from pytomo.storage.writer_lock import WriterLock, writer_alive

log = logging.getLogger(__name__)

KILLED = "killed"
"""The start of ``stop_reason`` of a run closed here."""


class StillWriting(StorageError):
    """A crawler holds the run's writer lock: the run is being written, not killed."""


@dataclass(frozen=True)
class Closed:
    """A killed run now closed: its file, how many videos it keeps, the last stored video's end (UTC, or None)."""

    path: Path
    videos: int
    last_video_ended_at: str | None
    stop_reason: str


def _status(conn: sqlite3.Connection, path: Path) -> str | None:
    try:
        row = conn.execute("SELECT status FROM run ORDER BY id LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"{path.name} is not a Pytomo run database: {exc}") from exc
    if row is None:
        raise StorageError(f"{path.name} has no run row: the crawler was killed before its run began")
    return None if row[0] is None else str(row[0])


def _close(conn: sqlite3.Connection, path: Path, closer: str) -> Closed:
    """Check the recovered file, mark the run interrupted and leave WAL mode (one self-contained file)."""
    problem = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if problem != "ok":
        raise StorageError(f"{path.name} is damaged (SQLite integrity_check: {problem}); it is left as it is")
    videos, last = conn.execute("SELECT count(*), max(ended_at) FROM videos").fetchone()
    reason = (f"{KILLED}: the crawler ended without closing the run; closed by {closer} at {iso(utc_now())}; "
              f"last stored video ended at {last or 'none stored'}")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE run SET status='interrupted', stop_reason=? WHERE status='running'", (reason,))
    conn.execute("COMMIT")
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
    if (busy and busy[0]) or not mode or str(mode[0]).lower() != "delete":
        log.warning("%s stays in WAL mode (a reader had it open): copy it with its -wal file", path)
    return Closed(path, int(videos), last, reason)


def close_killed(db_path: str | Path, closer: str = "pytomo") -> Closed | None:
    """Close the run of ``db_path`` as ``interrupted`` if its crawler is gone; None when the run is not ``running``.

    Raises ``StillWriting`` when a crawler holds the writer lock, ``StorageError`` when the file cannot be read,
    written or is damaged (nothing is changed then).
    """
    path = Path(db_path)
    if not path.is_file():
        raise StorageError(f"no database at {path}")
    if writer_alive(path):
        raise StillWriting(f"{path.name}: a crawler is still writing this run")
    lock = WriterLock(path)
    if not lock.acquire():
        raise StorageError(f"{path.name}: cannot take its writer lock to close it (is its folder read-only?)")
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            if _status(conn, path) != "running":
                return None
            closed = _close(conn, path, closer)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot close the killed run {path.name}: {exc}") from exc
    finally:
        lock.release()
    try:
        write_metadata(path)
    except OSError as exc:
        log.warning("cannot write the Datasette metadata beside %s: %s", path, exc)
    log.warning("%s: the crawler of this run was killed; closed as interrupted, %d stored video%s kept", path.name,
                closed.videos, "" if closed.videos == 1 else "s")
    return closed
