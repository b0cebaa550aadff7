"""The run databases the server may open: found in its folder (or named with -f), each known by an id."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytomo.errors import StorageError
from pytomo.readers import pages as data
from pytomo.readers.open import open_readonly
from pytomo.rrd.store import rrd_dir_for
from pytomo.storage.writer_lock import writer_alive

DB_GLOB = "*pytomo_database.db"
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
RESCAN_S = 2.0


@dataclass(frozen=True)
class RunEntry:
    """One database of the listing."""

    id: str
    path: Path
    mtime_s: float  # the newest of the database's and its -wal file's
    size_bytes: int  # the database file alone (with mtime_s, the version key of every cache)
    wal_bytes: int = 0
    status: str | None = None  # run.status; None: a 2015 database, or one that cannot be read
    readable: bool = True
    writer: bool = False  # a process holds the writer lock (<database>.writer)

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name

    @property
    def rrd_dir(self) -> Path:
        """Its RRD folder."""
        return rrd_dir_for(self.path)

    @property
    def version(self) -> tuple[str, float, int]:
        """What changes when the file changes: the key of the caches."""
        return str(self.path), self.mtime_s, self.size_bytes

    @property
    def live(self) -> bool:
        """True while a crawler writes it: its run row says running and a process holds its writer lock."""
        return self.status == "running" and self.writer

    @property
    def state(self) -> str:
        """The run's status as the archive says it: finished, running, interrupted (no writer), failed, ..."""
        if not self.readable:
            return "cannot be read"
        if self.status == "running":
            return "running" if self.writer else "interrupted (no writer)"
        return self.status or "–"


def read_status(path: Path) -> tuple[str | None, bool]:
    """``(run.status, readable)`` of a database: None for a 2015 one; ``(None, False)`` when it cannot be read."""
    try:
        conn = open_readonly(path)
    except StorageError:
        return None, False
    try:
        layout = data.layout_of(conn)
        if layout.kind != "ours":
            return None, True
        return data.run_status(conn), True
    except sqlite3.Error:
        return None, False
    finally:
        conn.close()


def read_facts(path: Path) -> dict[str, Any]:
    """The archive's facts of a database, or ``{"problem": why}``."""
    try:
        conn = open_readonly(path)
    except StorageError:
        return {"problem": "This database cannot be read."}
    try:
        layout = data.layout_of(conn)
        if layout.kind != "ours" and layout.table is None:
            return {"problem": "This file is not a Pytomo run database."}
        return {**data.archive_facts(conn, layout), "layout": layout.kind}
    except sqlite3.Error as exc:
        return {"problem": f"This database cannot be read ({exc.__class__.__name__})."}
    finally:
        conn.close()


def run_id(path: Path) -> str:
    """A stable id for a database: a hash of its absolute path (never the path itself)."""
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]


class Catalog:
    """The allow-list of databases: the ``-d`` folder's ``*pytomo_database.db`` files plus the ``-f`` file."""

    def __init__(self, directory: Path, extra: Path | None = None) -> None:
        self.directory = Path(directory)
        self.extra = Path(extra) if extra else None
        self._lock = threading.Lock()
        self._entries: list[RunEntry] = []
        self._scanned_s = 0.0
        self._statuses: dict[tuple, tuple[str | None, bool]] = {}
        self._facts: dict[tuple, dict[str, Any]] = {}
        self._facts_lock = threading.Lock()

    def _status(self, version: tuple[str, float, int]) -> tuple[str | None, bool]:
        """``(run.status, readable)`` of one version of a database file, read once."""
        if version not in self._statuses:
            self._statuses[version] = read_status(Path(version[0]))
        return self._statuses[version]

    def _scan(self) -> list[RunEntry]:
        paths = set(self.directory.glob(DB_GLOB)) if self.directory.is_dir() else set()
        if self.extra is not None and self.extra.is_file():
            paths.add(self.extra)
        entries = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            if not p.is_file():
                continue
            try:
                wal = Path(f"{p}-wal").stat()
                mtime, wal_bytes = max(st.st_mtime, wal.st_mtime), wal.st_size
            except OSError:
                mtime, wal_bytes = st.st_mtime, 0
            status, readable = self._status((str(p), mtime, st.st_size))
            entries.append(RunEntry(run_id(p), p, mtime, st.st_size, wal_bytes, status, readable,
                                    writer=status == "running" and writer_alive(p)))
        kept = {e.version for e in entries}
        self._statuses = {k: v for k, v in self._statuses.items() if k in kept}
        return sorted(entries, key=lambda e: (e.mtime_s, e.name), reverse=True)

    def facts(self, entry: RunEntry) -> dict[str, Any]:
        """What the archive shows of a database (``data.archive_facts``), read once per version of the file;
        ``{"problem": ...}`` when it cannot be read."""
        key = entry.version
        with self._facts_lock:
            if key in self._facts:
                return self._facts[key]
        found = read_facts(entry.path)
        with self._facts_lock:
            current = {e.version for e in self._entries}
            self._facts = {k: v for k, v in self._facts.items() if k in current}
            self._facts[key] = found
        return found

    def entries(self) -> list[RunEntry]:
        """Every database, newest first (rescanned every few seconds)."""
        with self._lock:
            now = time.monotonic()
            if now - self._scanned_s > RESCAN_S or not self._entries:
                self._entries = self._scan()
                self._scanned_s = now
            return list(self._entries)

    def get(self, ident: str) -> RunEntry | None:
        """The database with this id, or None."""
        return next((e for e in self.entries() if e.id == ident), None)

    def default(self) -> RunEntry | None:
        """The ``-f`` database when given, else the newest."""
        entries = self.entries()
        if self.extra is not None:
            chosen = next((e for e in entries if e.path == self.extra), None)
            if chosen:
                return chosen
        return entries[0] if entries else None
