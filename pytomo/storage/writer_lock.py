"""The crawler's writer lock: an exclusive ``flock`` on ``<database>.writer`` held while a run writes its database.

Readers (the web server's archive) ask whether a writer is alive by trying a shared lock on that file, opened
read-only and never created. The lock is on a sidecar file, not on the database: SQLite takes POSIX ``fcntl``
locks on the database, and on NFS ``flock`` is emulated with them. The kernel drops the lock when the writer's
process ends, however it ends, so a crashed crawler leaves at most an unlocked file behind.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, no writer lock (a run shows as interrupted while it runs)
    fcntl = None  # type: ignore[assignment]

WRITER_SUFFIX = ".writer"

log = logging.getLogger(__name__)


def writer_lock_path(db_path: str | Path) -> Path:
    """``<database>.writer`` beside a run database."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + WRITER_SUFFIX)


class WriterLock:
    """The exclusive lock a crawler holds on its database's sidecar file for as long as it writes."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = writer_lock_path(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Create the sidecar file and lock it exclusively; False (with a log line) when that cannot be done."""
        if fcntl is None or self._fd is not None:
            return self._fd is not None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            log.warning("cannot create the writer lock %s: %s", self.path, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            log.warning("cannot lock the writer lock %s: %s", self.path, exc)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Delete the sidecar file, then drop the lock (a reader opening it afterwards finds no file)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except OSError as exc:
            log.warning("cannot delete the writer lock %s: %s", self.path, exc)
        finally:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def writer_alive(db_path: str | Path) -> bool:
    """True when some process holds the writer lock of this database (a crawler is writing it).

    The sidecar file is opened read-only and never created; a shared non-blocking lock that would block means an
    exclusive holder. No file, a lock that can be taken, or any other error: no writer.
    """
    if fcntl is None:
        return False
    try:
        fd = os.open(writer_lock_path(db_path), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
