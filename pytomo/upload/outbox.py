"""The local outbox: one small JSON file in the database folder listing each run's upload state and why."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pytomo.results import iso, utc_now

OUTBOX_NAME = "pytomo_outbox.json"
STATES = ("pending", "uploaded", "failed")


@dataclass
class Entry:
    """One run database's upload: ``state`` pending, uploaded or failed, ``why`` in words."""

    file: str
    run_uuid: str = ""
    sha256: str = ""
    collector: str = ""
    state: str = "pending"
    why: str = ""
    attempts: int = 0
    updated_at: str = ""


def outbox_path(folder: Path) -> Path:
    """The outbox of the run databases in ``folder``."""
    return Path(folder) / OUTBOX_NAME


class Outbox:
    """The outbox file of one folder; every change is read-modify-write under a lock, written by rename."""

    def __init__(self, folder: Path) -> None:
        self.path = outbox_path(folder)

    def entries(self) -> list[Entry]:
        """Every entry, in the order they were added."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        runs = data.get("runs", []) if isinstance(data, dict) else []
        known = set(Entry.__dataclass_fields__)
        return [Entry(**{k: v for k, v in r.items() if k in known}) for r in runs
                if isinstance(r, dict) and isinstance(r.get("file"), str)]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(OUTBOX_NAME + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record(self, file: str, **changes: object) -> Entry:
        """Add or update the entry of ``file`` (a database file name in this folder)."""
        with self._locked():
            entries = self.entries()
            found = next((e for e in entries if e.file == file), None)
            if found is None:
                found = Entry(file=file)
                entries.append(found)
            for key, value in changes.items():
                setattr(found, key, value)
            found.updated_at = iso(utc_now()) or ""
            tmp = self.path.with_name(f".{OUTBOX_NAME}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"runs": [asdict(e) for e in entries]}, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
            return found

    def get(self, file: str) -> Entry | None:
        """The entry of ``file``, if any."""
        return next((e for e in self.entries() if e.file == file), None)
