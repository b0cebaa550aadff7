"""The run databases the server may open: found in its folder (or named with -f), each known by an id."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pytomo.rrd.store import rrd_dir_for

DB_GLOB = "*pytomo_database.db"
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
RESCAN_S = 2.0


@dataclass(frozen=True)
class RunEntry:
    """One database of the listing."""

    id: str
    path: Path
    mtime_s: float
    size_bytes: int

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name

    @property
    def rrd_dir(self) -> Path:
        """Its RRD folder."""
        return rrd_dir_for(self.path)

    @property
    def live(self) -> bool:
        """True while a crawler seems to be writing it (its WAL file exists and changed in the last 10 minutes)."""
        wal = Path(f"{self.path}-wal")
        try:
            return time.time() - wal.stat().st_mtime < 600
        except OSError:
            return False


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
            wal = Path(f"{p}-wal")
            mtime = max(st.st_mtime, wal.stat().st_mtime if wal.exists() else 0.0)
            entries.append(RunEntry(run_id(p), p, mtime, st.st_size))
        return sorted(entries, key=lambda e: (e.mtime_s, e.name), reverse=True)

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
