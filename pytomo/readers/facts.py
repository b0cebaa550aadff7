"""A run database's identity as the upload and the collector see it: its content hash and its run UUID."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pytomo.errors import StorageError

RUN_NAMESPACE = uuid.UUID("6f1d7c1e-4a8b-5b0e-9c55-2f1d0e5a7b31")  # uuid5 namespace of a run UUID from the SHA-256
CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def fallback_uuid(sha256_hex: str) -> str:
    """The UUID of a run whose database has no ``run.run_uuid``: a uuid5 of the file's SHA-256."""
    return str(uuid.uuid5(RUN_NAMESPACE, sha256_hex))


@dataclass(frozen=True)
class RunFacts:
    """What an upload says about a run: its UUID, the file's hash and size, and the run row's status."""

    run_uuid: str
    sha256: str
    size_bytes: int
    status: str


def run_row(conn: sqlite3.Connection) -> dict[str, object]:
    """The first row of the ``run`` table as a dict (empty when there is none)."""
    cur = conn.execute("SELECT * FROM run ORDER BY id LIMIT 1")
    row = cur.fetchone()
    if row is None:
        return {}
    return {d[0]: v for d, v in zip(cur.description, row, strict=False)}


def valid_uuid(text: object) -> str | None:
    """``text`` as a canonical UUID string, or None."""
    if not isinstance(text, str):
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _run_row_of(path: Path) -> dict[str, object]:
    """The run row of a run database, read read-only, creating no file beside it (the WAL read when there is one)."""
    if not path.is_file():
        raise StorageError(f"no database at {path}")
    live = Path(f"{path}-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("" if live else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            conn.execute("PRAGMA trusted_schema=OFF")
            row = run_row(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the run database {path}: {exc}") from exc
    if not row:
        raise StorageError(f"{path} has no run row")
    return row


def run_status(path: Path) -> str:
    """The run row's status (``running`` when it has none), without hashing the file."""
    return str(_run_row_of(Path(path)).get("status") or "running")


def run_facts(path: Path) -> RunFacts:
    """Read a run database (read-only, creating no file beside it) for its identity and status."""
    path = Path(path)
    row = _run_row_of(path)
    sha = sha256_of(path)
    return RunFacts(run_uuid=valid_uuid(row.get("run_uuid")) or fallback_uuid(sha), sha256=sha,
                    size_bytes=path.stat().st_size, status=str(row.get("status") or "running"))
