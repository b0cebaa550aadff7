"""The collector's store: each upload spooled, checked, kept once by content hash, indexed and ingested.

``DIR/files/<sha256>.db`` the databases as uploaded (read-only), ``DIR/index.db`` one row per run (SQLite, WAL),
``DIR/dataset`` the Parquet dataset, ``DIR/tmp`` uploads being received. A run is claimed in the index (its UUID
and its hash are unique) before it is stored, so that concurrent uploads of one run store and ingest it once; the
uploader's address is looked up for its AS and country and never kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pytomo.errors import PytomoError
from pytomo.readers.facts import valid_uuid
from pytomo.readers.upload_check import Checked, Rejected, check_upload, uuid_of
from pytomo.results import iso, utc_now

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # compressed body, and the database once decompressed
READ_CHUNK = 256 * 1024
INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_uuid TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,              -- ingesting, stored
    size_bytes INTEGER,
    received_at TEXT NOT NULL,        -- UTC ISO-8601
    uploader TEXT,                    -- the token's name
    uploader_asn INTEGER,             -- looked up from the uploader's address, which is not kept
    uploader_country TEXT,
    service TEXT,
    started_at TEXT,
    ended_at TEXT,
    status TEXT,
    host_label TEXT,
    schema_version INTEGER,
    software_version TEXT,
    facts_json TEXT
);
"""
LISTED = ("run_uuid", "sha256", "size_bytes", "received_at", "uploader", "uploader_asn", "uploader_country",
          "service", "started_at", "ended_at", "status", "host_label", "schema_version", "software_version")


class TooLarge(PytomoError):
    """The body, or the database it holds, is over the limit (HTTP 413)."""


class BadUpload(PytomoError):
    """The request is malformed: a broken gzip stream, headers that do not match the body (HTTP 400)."""


@dataclass(frozen=True)
class Origin:
    """The uploader's network, from its address: AS number and country (either may be None)."""

    asn: int | None = None
    country: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Result:
    """The answer to an upload: HTTP status, a sentence, the run's UUID."""

    status: int
    message: str
    run_uuid: str = ""
    retry_after_s: int = 0


def _decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    raise BadUpload(f"Content-Encoding {encoding!r} is not accepted (gzip or none)")


def spool(stream: BinaryIO, out: BinaryIO, encoding: str, declared: int | None, limit: int) -> str:
    """Copy the body to ``out`` (decompressed), at most ``limit`` bytes each way; the SHA-256 of what was written."""
    if declared is not None and declared > limit:
        raise TooLarge(f"the body ({declared} bytes) is over the limit of {limit} bytes")
    decode = _decoder(encoding)
    digest = hashlib.sha256()
    received = written = 0
    remaining = declared
    while remaining is None or remaining > 0:
        block = stream.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
        if not block:
            break
        received += len(block)
        if remaining is not None:
            remaining -= len(block)
        if received > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes")
        try:
            data = decode(block) if decode else block
        except zlib.error as exc:
            raise BadUpload(f"the gzip body is broken: {exc}") from None
        written += len(data)
        if written > limit:
            raise TooLarge(f"the database is over the limit of {limit} bytes once decompressed")
        digest.update(data)
        out.write(data)
    if remaining:
        raise BadUpload("the body ended before its Content-Length")
    return digest.hexdigest()


class Collector:
    """The store under ``root``; thread-safe (and safe for several processes: the index serialises claims)."""

    def __init__(self, root: Path, *, lookup: Callable[[str | None], Origin] | None = None,
                 max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.root = Path(root)
        self.files = self.root / "files"
        self.tmp = self.root / "tmp"
        self.dataset = self.root / "dataset"
        self.index_path = self.root / "index.db"
        self.max_bytes = max_bytes
        self.lookup = lookup
        for folder in (self.files, self.tmp, self.dataset):
            folder.mkdir(parents=True, exist_ok=True)
        with self._index() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(INDEX_SCHEMA)
        self._recover()

    def _index(self) -> _Closing:
        conn = sqlite3.connect(self.index_path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return _Closing(conn)

    def _recover(self) -> None:
        """Runs left half-ingested by a crash are forgotten (their upload will be taken again); stray temp files go."""
        with self._index() as conn:
            for row in conn.execute("SELECT run_uuid, sha256 FROM runs WHERE state = 'ingesting'").fetchall():
                self._undo(row["run_uuid"], row["sha256"], conn)
        for stray in self.tmp.iterdir():
            stray.unlink(missing_ok=True)

    # -- receiving --------------------------------------------------------------------------------------------

    def receive(self, stream: BinaryIO | Any, *, declared: int | None, encoding: str, uploader: str, origin: Origin,
                claimed_uuid: str = "", claimed_sha: str = "") -> Result:
        """One upload, start to end; refusals are Results (400, 409, 413, 422, 503), never files left behind."""
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".db", dir=self.tmp)
        part = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                sha = spool(stream, out, encoding, declared, self.max_bytes)
            if claimed_sha and claimed_sha.lower() != sha:
                return Result(400, "X-Pytomo-Sha256 does not match the body")
            known = self._known(sha)
            if known:
                return Result(200, "already have it", known)
            checked = check_upload(part)
            run_uuid = uuid_of(checked, sha)
            if claimed_uuid and valid_uuid(claimed_uuid) != run_uuid:
                raise Rejected("X-Pytomo-Run does not match the run in the file")
            return self._store(part, sha, run_uuid, checked, uploader, origin)
        except TooLarge as exc:
            return Result(413, str(exc))
        except BadUpload as exc:
            return Result(400, str(exc))
        except Rejected as exc:
            return Result(422, f"not a Pytomo run database: {exc}")
        finally:
            part.unlink(missing_ok=True)

    def _known(self, sha: str) -> str:
        with self._index() as conn:
            row = conn.execute("SELECT run_uuid FROM runs WHERE sha256 = ? AND state = 'stored'", (sha,)).fetchone()
        return row["run_uuid"] if row else ""

    def _claim(self, sha: str, run_uuid: str, uploader: str, origin: Origin, size: int) -> Result | None:
        """Insert the run's row as ``ingesting``; a Result when it is already there (or being ingested)."""
        with self._index() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT run_uuid, sha256, state FROM runs WHERE run_uuid = ? OR sha256 = ?",
                                   (run_uuid, sha)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO runs (run_uuid, sha256, state, size_bytes, received_at, uploader,"
                                 " uploader_asn, uploader_country) VALUES (?,?,?,?,?,?,?,?)",
                                 (run_uuid, sha, "ingesting", size, iso(utc_now()), uploader, origin.asn,
                                  origin.country))
            finally:
                conn.execute("COMMIT")
        if row is None:
            return None
        if row["state"] != "stored":
            return Result(503, "this run is being stored by another upload; try again", run_uuid, retry_after_s=1)
        if row["sha256"] == sha:
            return Result(200, "already have it", run_uuid)
        return Result(409, f"run {run_uuid} is already stored with other content")

    def _store(self, part: Path, sha: str, run_uuid: str, checked: Checked, uploader: str,
               origin: Origin) -> Result:
        size = part.stat().st_size
        answer = self._claim(sha, run_uuid, uploader, origin, size)
        if answer is not None:
            return answer
        target = self.files / f"{sha}.db"
        try:
            os.chmod(part, 0o444)
            os.replace(part, target)
            self._ingest(target, origin)
            facts = checked.facts
            with self._index() as conn:
                conn.execute(
                    "UPDATE runs SET state='stored', service=?, started_at=?, ended_at=?, status=?, host_label=?,"
                    " schema_version=?, software_version=?, facts_json=? WHERE run_uuid=?",
                    (facts.get("service"), facts.get("started_at"), facts.get("ended_at"), facts.get("status"),
                     facts.get("host_label"), facts.get("schema_version"), facts.get("software_version"),
                     json.dumps(facts, default=str, sort_keys=True), run_uuid))
        except BaseException as exc:
            with self._index() as conn:
                self._undo(run_uuid, sha, conn)
            if isinstance(exc, PytomoError):
                log.warning("upload of run %s refused at ingest: %s", run_uuid, exc)
                return Result(422, f"not a Pytomo run database: {exc}")
            raise
        return Result(201, "stored", run_uuid)

    def _ingest(self, db: Path, origin: Origin) -> None:
        """The run into the Parquet dataset (see ``ingest``)."""
        ingest(db, self.dataset, origin)

    def _undo(self, run_uuid: str, sha: str, conn: sqlite3.Connection) -> None:
        """Forget a run that could not be stored whole: its row, its file, its dataset files."""
        (self.files / f"{sha}.db").unlink(missing_ok=True)
        for stray in self.dataset.glob(f"*/service=*/utc_date=*/{run_uuid}.parquet"):
            stray.unlink(missing_ok=True)
        conn.execute("DELETE FROM runs WHERE run_uuid = ? AND state = 'ingesting'", (run_uuid,))

    # -- reading ----------------------------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        """The stored runs with their facts, oldest upload first."""
        with self._index() as conn:
            rows = conn.execute(f"SELECT {', '.join(LISTED)} FROM runs WHERE state = 'stored' "
                                "ORDER BY received_at, run_uuid").fetchall()
        return [dict(r) for r in rows]

    def stored_files(self) -> list[Path]:
        """The stored databases, oldest upload first."""
        with self._index() as conn:
            rows = conn.execute("SELECT sha256 FROM runs WHERE state = 'stored' ORDER BY received_at, run_uuid")
            return [self.files / f"{r['sha256']}.db" for r in rows]

    def file_of(self, run_uuid: str) -> Path | None:
        """The stored database of a run, or None."""
        with self._index() as conn:
            row = conn.execute("SELECT sha256 FROM runs WHERE run_uuid = ? AND state = 'stored'",
                               (run_uuid,)).fetchone()
        return self.files / f"{row['sha256']}.db" if row else None

    def close(self) -> None:
        """Nothing is held open between requests (kept for the server's shutdown)."""

    def clear_tmp(self) -> None:
        """Remove the temp folder's content (tests and benches)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)


class _Closing:
    """A connection used in ``with``: closed at the end (sqlite3's own ``with`` only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def ingest(db: Path, dataset: Path, origin: Origin) -> None:
    """One stored run into the Parquet dataset, with the uploader's AS and country on its run row."""
    from pytomo.dataset.parquet import write_run
    from pytomo.readers.tables import tables_of

    tables = tables_of(db)
    tables["run"] = annotate(tables["run"], origin)
    write_run(tables, dataset)


def annotate(run: Any, origin: Origin) -> Any:
    """The ``run`` table with ``vantage_as_number`` and ``vantage_country`` set from the uploader's network."""
    import pyarrow as pa

    values = {"vantage_as_number": (origin.asn, pa.int64()), "vantage_country": (origin.country, pa.string()),
              "vantage_problem": (origin.problem, pa.string())}
    for name, (value, kind) in values.items():
        if name in run.column_names:
            kind = run.schema.field(name).type
            run = run.set_column(run.column_names.index(name), name, pa.array([value] * run.num_rows, kind))
        else:
            run = run.append_column(name, pa.array([value] * run.num_rows, kind))
    return run
