"""Is an uploaded file a Pytomo run database? Checked without anything in it executing.

The file is opened read-only and immutable with ``trusted_schema=OFF`` and an authorizer that allows reading only;
its schema must be ours: the expected tables without generated columns, our indexes with our definitions, no
trigger, and no view but ``pytomo_crawl`` with one of our definitions; then ``integrity_check`` must say ok.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

from pytomo.errors import PytomoError
from pytomo.readers.facts import fallback_uuid, run_row, valid_uuid
from pytomo.storage.schema import IMPORTED_TABLE, SCHEMA_VERSION, TABLES, VIEW

MAGIC = b"SQLite format 3\x00"
KNOWN_SCHEMA_VERSIONS = frozenset(range(4, SCHEMA_VERSION + 1))
VIEW_NAME = "pytomo_crawl"
INTERNAL_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})
RUN_FACTS = ("service", "started_at", "ended_at", "status", "host_label", "schema_version", "software_version",
             "software_commit", "timezone", "utc_offset_s")
READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_PRAGMA,
                          sqlite3.SQLITE_FUNCTION})
SAFE_FUNCTIONS = frozenset({"count", "min", "max"})
SAFE_PRAGMAS = frozenset({"user_version", "integrity_check", "table_xinfo", "trusted_schema", "query_only"})


class Rejected(PytomoError):
    """The upload is not a Pytomo run database (HTTP 422)."""


@dataclass(frozen=True)
class Checked:
    """What the check learnt: the run's UUID (its own or derived from the hash) and its facts."""

    run_uuid: str
    facts: dict[str, object]


def normalised(sql: str | None) -> str:
    """SQL text with its whitespace collapsed and ``IF NOT EXISTS`` removed (as SQLite stores it)."""
    text = " ".join((sql or "").split())
    return re.sub(r"(?i)^(CREATE (?:TABLE|VIEW|INDEX|UNIQUE INDEX)) IF NOT EXISTS ", r"\1 ", text).rstrip(";")


# Views of older databases (sha256 of their normalised text): schema 4's, and the one before PlaybackDuration got
# back its 2015 meaning and played_s its own column (issue 22). A file's own view never runs: ours does.
PAST_VIEWS = frozenset({"3576f2789a3cf2726db97a3d67e193d0f603e33e9af5ec0967573298031624e9",
                        "1d053737e3047a27741e25f4355848255e0b63cc5b471a6dbf9f8325315603db"})


@cache
def reference() -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
    """(table names, index name -> normalised SQL, view SQL digests) of the current schema."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(TABLES + VIEW)
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    finally:
        conn.close()
    tables = frozenset(n for t, n, _ in rows if t == "table")
    indexes = {n: normalised(s) for t, n, s in rows if t == "index" and s}
    views = frozenset({digest(s) for t, _, s in rows if t == "view"} | PAST_VIEWS)
    return tables, indexes, views


def digest(sql: str | None) -> str:
    """The SHA-256 of normalised SQL."""
    return hashlib.sha256(normalised(sql).encode("utf-8")).hexdigest()


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    if action not in READ_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in SAFE_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in SAFE_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def open_upload(path: Path) -> sqlite3.Connection:
    """The upload, read-only and immutable, with untrusted schema and only reads allowed."""
    conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1", uri=True)
    conn.execute("PRAGMA trusted_schema=OFF")
    conn.execute("PRAGMA query_only=ON")
    conn.set_authorizer(_authorizer)
    return conn


def _object(kind: str, name: str, sql: str | None) -> None:
    """One schema object is one of ours (a table's columns are checked after)."""
    tables, indexes, views = reference()
    if kind == "trigger":
        raise Rejected(f"it has a trigger ({name!r}): a run database has none")
    if kind == "view":
        if name != VIEW_NAME or digest(sql) not in views:
            raise Rejected(f"it has a view that is not Pytomo's ({name!r})")
    elif kind == "table":
        if name not in tables and name not in INTERNAL_TABLES and name != IMPORTED_TABLE:  # pytomo import's
            raise Rejected(f"it has a table that is not Pytomo's ({name!r})")
        if normalised(sql).upper().startswith("CREATE VIRTUAL"):
            raise Rejected(f"it has a virtual table ({name!r})")
    elif kind == "index":
        if sql is not None and indexes.get(name) != normalised(sql):
            raise Rejected(f"it has an index that is not Pytomo's ({name!r})")
    else:
        raise Rejected(f"it has a schema object of unknown type {kind!r}")


def _schema(conn: sqlite3.Connection) -> None:
    """Every object of the schema is one of ours."""
    tables = reference()[0]
    present = set()
    for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall():
        _object(kind, name, sql)
        if kind == "table":
            present.add(name)
    missing = sorted(tables - present)
    if missing:
        raise Rejected(f"tables missing: {', '.join(missing)}")
    for name in sorted(present - INTERNAL_TABLES):
        if any(col[6] for col in conn.execute(f'PRAGMA table_xinfo("{name}")')):  # hidden or generated columns
            raise Rejected(f"table {name!r} has generated or hidden columns")


def check_upload(path: Path) -> Checked:
    """The run's UUID and facts, or Rejected saying why the file is not a Pytomo run database."""
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise Rejected("it is not an SQLite database")
    try:
        conn = open_upload(path)
    except sqlite3.Error as exc:
        raise Rejected(f"it cannot be opened: {exc}") from exc
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in KNOWN_SCHEMA_VERSIONS:
            raise Rejected(f"schema version {version} is not one of {sorted(KNOWN_SCHEMA_VERSIONS)}")
        _schema(conn)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        if result != ["ok"]:
            raise Rejected(f"integrity check failed: {'; '.join(map(str, result))[:200]}")
        row = run_row(conn)
        if not row:
            raise Rejected("it has no run row")
        if (conn.execute("SELECT count(*) FROM run").fetchone()[0]) != 1:
            raise Rejected("it has more than one run row")
    except sqlite3.Error as exc:
        raise Rejected(f"it cannot be read as a run database: {exc}") from exc
    finally:
        conn.close()
    own = row.get("run_uuid")
    if own is not None and valid_uuid(own) != own:
        raise Rejected("run.run_uuid is not a UUID in its canonical form")
    if row.get("status") == "running":
        raise Rejected("the run has not ended (status running)")
    facts = {k: row.get(k) for k in RUN_FACTS if k in row}
    return Checked(run_uuid=valid_uuid(row.get("run_uuid")) or "", facts=facts)


def uuid_of(checked: Checked, sha256_hex: str) -> str:
    """The run's UUID: its own, else a uuid5 of the file's SHA-256 (as the uploader computes it)."""
    return checked.run_uuid or fallback_uuid(sha256_hex)
