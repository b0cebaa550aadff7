"""Opening a run database for reading only, without creating or changing any file beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from pytomo.errors import StorageError


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection with rows by column name.

    A database whose crawler is running has its ``-wal`` file: it is opened read-only and shares the writer's
    files. A finished one (no ``-wal``) is opened as immutable, because SQLite would otherwise create
    ``-wal`` and ``-shm`` files beside a WAL-mode database even for reading.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no database at {path}")
    live = Path(f"{path}-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if live else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from exc
    return conn
