"""The collector's store: each upload spooled, checked, kept once by content hash, indexed and ingested.

``DIR/files/<sha256>.db`` the databases as uploaded (read-only), ``DIR/index.db`` one row per run (SQLite, WAL),
``DIR/dataset`` the Parquet dataset, ``DIR/tmp`` uploads being received. A run is claimed in the index (its UUID,
its hash and its content fingerprint are unique) before it is stored, so that concurrent uploads of one run store
and ingest it once, and a copy of a stored run under a new UUID is refused; the stored file is fsynced before its
dataset is written, and the row says ``stored`` only once both are whole. The uploader's address is looked up for
its AS and country and never kept. ``withdraw`` removes a run everywhere it went, and can be run again after a
crash midway (the row says ``withdrawing`` until the last file is gone).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from pytomo.collector.origin import Origin
from pytomo.errors import PytomoError, UsageError
from pytomo.readers.facts import valid_uuid
from pytomo.readers.fingerprint import fingerprint_of
from pytomo.readers.upload_check import Checked, Rejected, check_upload, uuid_of
from pytomo.results import iso, utc_now

if TYPE_CHECKING:
    from pytomo.collector.addresses import AddressLookup, IpDatabases

__all__ = ["BadUpload", "Collector", "NotHeld", "Origin", "Result", "TooLarge", "WorkerLost", "Withdrawn", "spool"]

log = logging.getLogger(__name__)
uploads_log = logging.getLogger("pytomo.collector.uploads")

MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # compressed body, and the database once decompressed
READ_CHUNK = 256 * 1024
INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_uuid TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,              -- ingesting, stored, withdrawing
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
ADDED_COLUMNS = {  # columns of later versions, added to an older index.db when the collector starts
    "fingerprint": "TEXT",  # pytomo/readers/fingerprint.py; NULL: a run without videos
    "ip_db": "TEXT",  # the collector's IP databases that gave the addresses' AS: names, types, build dates
    "ip_db_built": "TEXT",  # UTC ISO-8601 build time of the oldest of them
}
LISTED = ("run_uuid", "sha256", "size_bytes", "received_at", "uploader", "uploader_asn", "uploader_country",
          "service", "started_at", "ended_at", "status", "host_label", "schema_version", "software_version",
          "ip_db", "ip_db_built")


class TooLarge(PytomoError):
    """The body, or the database it holds, is over the limit (HTTP 413)."""


class BadUpload(PytomoError):
    """The request is malformed: a broken gzip stream, headers that do not match the body (HTTP 400)."""


class NotHeld(PytomoError):
    """Nothing of the run to withdraw is in the collector's folder."""


class WorkerLost(PytomoError):
    """A worker process died while settling an upload (its claim is undone; the upload may be tried again)."""


@dataclass(frozen=True)
class Result:
    """The answer to an upload: HTTP status, a sentence, the run's UUID, and the outcome the log names."""

    status: int
    message: str
    run_uuid: str = ""
    retry_after_s: int = 0
    outcome: str = "refused"  # stored, already held, duplicate, refused, busy, failed


@dataclass(frozen=True)
class Withdrawn:
    """What a withdrawal removed: the stored file (or not), the index row (or not), the dataset files."""

    run_uuid: str
    file: bool
    row: bool
    dataset_files: int


def _decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    raise BadUpload(f"Content-Encoding {encoding!r} is not accepted (gzip or none)")


class Readable(Protocol):
    """What a body is read from."""

    def read(self, size: int = -1, /) -> bytes: ...


def spool(stream: Readable, out: BinaryIO, encoding: str, declared: int | None, limit: int) -> str:
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


class _Counted:
    """A body stream that counts the bytes read from it."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        block = self.stream.read(size)
        self.count += len(block)
        return block


def log_upload(uploader: str, result: Result, body_bytes: int, db_bytes: int, took_s: float) -> None:
    """The operator's line per upload: uploader (the token's name), run, outcome, sizes, time; never the token or
    the uploader's address."""
    uploads_log.info("upload uploader=%s run=%s outcome=%s status=%d body_bytes=%d db_bytes=%d took_s=%.3f "
                     "reason=%s", uploader or "-", result.run_uuid or "-", result.outcome.replace(" ", "_"),
                     result.status, body_bytes, db_bytes, took_s, json.dumps(result.message))


def _fsync(path: Path) -> None:
    """fsync a file or a folder (a folder: so that a rename or an unlink in it lasts)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder
    finally:
        os.close(fd)


class Settler(Protocol):
    """Where uploads are settled once received: pytomo/collector/workers.py's processes."""

    def settle(self, part: Path, sha: str, uploader: str, origin: Origin, claimed_uuid: str) -> Result: ...

    def close(self) -> None: ...


class Collector:
    """The store under ``root``; thread-safe, and safe for several processes: the index serialises claims.

    ``owner``: this process serves the folder: it adds the index's new columns and finishes what a crash left
    (claims undone, withdrawals finished, temp files removed). A worker process (pytomo/collector/workers.py), or
    the withdraw command beside a running collector, is not the owner. ``workers``: where uploads are settled once
    received (None: in the receiving thread).
    """

    def __init__(self, root: Path, *, ip_dbs: Iterable[str | Path] = (), max_bytes: int = MAX_UPLOAD_BYTES,
                 owner: bool = True) -> None:
        self.root = Path(root)
        self.files = self.root / "files"
        self.tmp = self.root / "tmp"
        self.dataset = self.root / "dataset"
        self.index_path = self.root / "index.db"
        self.max_bytes = max_bytes
        self.ip_dbs = tuple(str(p) for p in ip_dbs)
        self._addresses: AddressLookup | None = None
        self.workers: Settler | None = None
        self._keeper: sqlite3.Connection | None = None
        if owner:
            for folder in (self.files, self.tmp, self.dataset):
                folder.mkdir(parents=True, exist_ok=True)
            self._migrate()
            # held open while serving: the other connections' closes are then not the last one, which would
            # checkpoint the WAL and delete it at every request
            self._keeper = self._index().conn
            self._keeper.execute("SELECT count(*) FROM runs").fetchone()  # a read: it holds the WAL open
            self._recover()
        elif not self.index_path.is_file():
            raise UsageError(f"{self.root} is not a collector's folder: it has no index.db")

    def _index(self) -> _Closing:
        conn = sqlite3.connect(self.index_path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return _Closing(conn)

    def addresses(self) -> AddressLookup:
        """The collector's IP databases, opened in this process at its first ingest."""
        if self._addresses is None:
            from pytomo.collector.addresses import AddressLookup

            self._addresses = AddressLookup(self.ip_dbs)
        return self._addresses

    def _migrate(self) -> None:
        """The index's table, with the columns later versions added."""
        with self._index() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(INDEX_SCHEMA)
            have = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
            for name, kind in ADDED_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            conn.execute("CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs(fingerprint)")

    def _recover(self) -> None:
        """Runs left half-ingested by a crash are forgotten (their upload will be taken again), withdrawals left
        midway are finished, stray temp files go; stored runs of an older index get their fingerprint."""
        with self._index() as conn:
            for row in conn.execute("SELECT run_uuid, sha256 FROM runs WHERE state = 'ingesting'").fetchall():
                self._undo(row["run_uuid"], row["sha256"], conn)
            halfway = [row["run_uuid"] for row in conn.execute("SELECT run_uuid FROM runs WHERE state = 'withdrawing'")]
            unmarked = conn.execute("SELECT run_uuid, sha256, host_label FROM runs WHERE state = 'stored' AND "
                                    "fingerprint IS NULL").fetchall()
            for row in unmarked:
                try:
                    found = fingerprint_of(self.files / f"{row['sha256']}.db", row["host_label"])
                except (OSError, PytomoError) as exc:
                    log.warning("run %s: no fingerprint: %s", row["run_uuid"], exc)
                    continue
                if found is not None:
                    conn.execute("UPDATE runs SET fingerprint = ? WHERE run_uuid = ?", (found, row["run_uuid"]))
        for run_uuid in halfway:
            log.warning("run %s was being withdrawn when the collector stopped: withdrawing it", run_uuid)
            self.withdraw(run_uuid)
        for stray in self.tmp.iterdir():
            stray.unlink(missing_ok=True)

    # -- receiving --------------------------------------------------------------------------------------------

    def receive(self, stream: Readable, *, declared: int | None, encoding: str, uploader: str, origin: Origin,
                claimed_uuid: str = "", claimed_sha: str = "") -> Result:
        """One upload, start to end, and its line in the log; refusals are Results (400, 409, 413, 422, 503),
        never files left behind."""
        start = time.perf_counter()
        counted = _Counted(stream)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".db", dir=self.tmp)
        part = Path(name)
        size = 0
        result = Result(500, "the collector failed while storing the upload (see its log)", outcome="failed")
        try:
            with os.fdopen(fd, "wb") as out:
                sha = spool(counted, out, encoding, declared, self.max_bytes)
                size = out.tell()
            result = self._received(part, sha, uploader, origin, claimed_uuid, claimed_sha)
        except TooLarge as exc:
            result = Result(413, str(exc))
        except BadUpload as exc:
            result = Result(400, str(exc))
        except WorkerLost as exc:  # its claim is undone: the upload may be tried again
            result = Result(503, f"the upload could not be stored ({exc}); try again", retry_after_s=5,
                            outcome="busy")
        finally:
            part.unlink(missing_ok=True)
            log_upload(uploader, result, counted.count, size, time.perf_counter() - start)
        return result

    def _received(self, part: Path, sha: str, uploader: str, origin: Origin, claimed_uuid: str,
                  claimed_sha: str) -> Result:
        """What follows the spool: settled here, or in a worker process."""
        if claimed_sha and claimed_sha.lower() != sha:
            return Result(400, "X-Pytomo-Sha256 does not match the body")
        known = self._known(sha)
        if known:
            return Result(200, "already have it", known, outcome="already held")
        if self.workers is None:
            return self.settle(part, sha, uploader, origin, claimed_uuid)
        try:
            return self.workers.settle(part, sha, uploader, origin, claimed_uuid)
        except WorkerLost:
            self._forget(sha)
            raise

    def settle(self, part: Path, sha: str, uploader: str, origin: Origin, claimed_uuid: str = "") -> Result:
        """A spooled upload checked, claimed, stored and ingested (in this process)."""
        try:
            checked = check_upload(part)
            run_uuid = uuid_of(checked, sha)
            if claimed_uuid and valid_uuid(claimed_uuid) != run_uuid:
                raise Rejected("X-Pytomo-Run does not match the run in the file")
            fingerprint = fingerprint_of(part, checked.facts.get("host_label"))
        except Rejected as exc:
            return Result(422, f"not a Pytomo run database: {exc}")
        return self._store(part, sha, run_uuid, checked, fingerprint, uploader, origin)

    def _known(self, sha: str) -> str:
        with self._index() as conn:
            row = conn.execute("SELECT run_uuid FROM runs WHERE sha256 = ? AND state = 'stored'", (sha,)).fetchone()
        return row["run_uuid"] if row else ""

    def _claim(self, sha: str, run_uuid: str, fingerprint: str | None, uploader: str, origin: Origin,
               size: int) -> Result | None:
        """Insert the run's row as ``ingesting``; a Result when it, or a run of the same content, is already there
        (or being ingested, or withdrawn)."""
        with self._index() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT run_uuid, sha256, state FROM runs WHERE run_uuid = ? OR sha256 = ?",
                                   (run_uuid, sha)).fetchone()
                same = None if row is not None or fingerprint is None else conn.execute(
                    "SELECT run_uuid, state FROM runs WHERE fingerprint = ? LIMIT 1", (fingerprint,)).fetchone()
                if row is None and same is None:
                    conn.execute("INSERT INTO runs (run_uuid, sha256, state, size_bytes, received_at, uploader,"
                                 " uploader_asn, uploader_country, fingerprint) VALUES (?,?,?,?,?,?,?,?,?)",
                                 (run_uuid, sha, "ingesting", size, iso(utc_now()), uploader, origin.asn,
                                  origin.country, fingerprint))
            finally:
                conn.execute("COMMIT")
        return _claimed(row, same, run_uuid, sha)

    def _store(self, part: Path, sha: str, run_uuid: str, checked: Checked, fingerprint: str | None,
               uploader: str, origin: Origin) -> Result:
        size = part.stat().st_size
        answer = self._claim(sha, run_uuid, fingerprint, uploader, origin, size)
        if answer is not None:
            return answer
        target = self.files / f"{sha}.db"
        try:
            os.chmod(part, 0o444)
            _fsync(part)
            os.replace(part, target)
            _fsync(self.files)
            databases = self._ingest(target, origin)
            facts = checked.facts
            with self._index() as conn:
                conn.execute(
                    "UPDATE runs SET state='stored', service=?, started_at=?, ended_at=?, status=?, host_label=?,"
                    " schema_version=?, software_version=?, facts_json=?, ip_db=?, ip_db_built=? WHERE run_uuid=?",
                    (facts.get("service"), facts.get("started_at"), facts.get("ended_at"), facts.get("status"),
                     facts.get("host_label"), facts.get("schema_version"), facts.get("software_version"),
                     json.dumps(facts, default=str, sort_keys=True), databases.names,
                     iso(databases.built) if databases.built else None, run_uuid))
        except BaseException as exc:
            with self._index() as conn:
                self._undo(run_uuid, sha, conn)
            if isinstance(exc, PytomoError):
                log.warning("upload of run %s refused at ingest: %s", run_uuid, exc)
                return Result(422, f"not a Pytomo run database: {exc}", run_uuid)
            raise
        return Result(201, "stored", run_uuid, outcome="stored")

    def _ingest(self, db: Path, origin: Origin) -> IpDatabases:
        """The run into the Parquet dataset (pytomo/collector/ingest.py)."""
        from pytomo.collector.ingest import ingest

        return ingest(db, self.dataset, origin, self.addresses())

    def _dataset_files(self, run_uuid: str) -> list[Path]:
        """Every Parquet file of a run in the dataset (every table, every partition), the ``run`` table's first,
        with the temporary files of a write left midway."""
        found = [*self.dataset.glob(f"*/service=*/utc_date=*/{run_uuid}.parquet"),
                 *self.dataset.glob(f"*/service=*/utc_date=*/.{run_uuid}.parquet.*.tmp")]
        return sorted(found, key=lambda p: (p.parts[-4] != "run", str(p)))

    def _undo(self, run_uuid: str, sha: str, conn: sqlite3.Connection) -> None:
        """Forget a run that could not be stored whole: its row, its file, its dataset files."""
        (self.files / f"{sha}.db").unlink(missing_ok=True)
        for stray in self._dataset_files(run_uuid):
            stray.unlink(missing_ok=True)
        conn.execute("DELETE FROM runs WHERE run_uuid = ? AND state = 'ingesting'", (run_uuid,))

    def _forget(self, sha: str) -> None:
        """Undo the claim of an upload whose worker process died."""
        with self._index() as conn:
            row = conn.execute("SELECT run_uuid FROM runs WHERE sha256 = ? AND state = 'ingesting'", (sha,)).fetchone()
            if row is not None:
                self._undo(row["run_uuid"], sha, conn)

    # -- withdrawing ------------------------------------------------------------------------------------------

    def withdraw(self, run_uuid: str) -> Withdrawn:
        """Remove a run everywhere it went: its dataset files (``run`` first), its stored file, its index row (last:
        until then it says ``withdrawing``, and running this again, or starting the collector, finishes the work).
        NotHeld when nothing of it is here; PytomoError while an upload of it is being stored."""
        wanted = valid_uuid(run_uuid)
        if wanted is None:
            raise UsageError(f"{run_uuid!r} is not a run UUID")
        with self._index() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT sha256, state FROM runs WHERE run_uuid = ?", (wanted,)).fetchone()
                if row is not None and row["state"] != "ingesting":
                    conn.execute("UPDATE runs SET state = 'withdrawing' WHERE run_uuid = ?", (wanted,))
            finally:
                conn.execute("COMMIT")
        if row is not None and row["state"] == "ingesting":
            raise PytomoError(f"run {wanted} is being stored by an upload right now: withdraw it once it is stored")
        removed = self._dataset_files(wanted)
        for path in removed:
            path.unlink(missing_ok=True)
        for folder in sorted({p.parent for p in removed}):
            _fsync(folder)
        stored = self.files / f"{row['sha256']}.db" if row is not None else None
        had_file = stored is not None and stored.exists()
        if stored is not None:
            stored.unlink(missing_ok=True)
            _fsync(self.files)
        if row is not None:
            with self._index() as conn:
                conn.execute("DELETE FROM runs WHERE run_uuid = ? AND state = 'withdrawing'", (wanted,))
        if row is None and not removed:
            raise NotHeld(f"nothing of run {wanted} is in {self.root}: no index row, no file, no dataset file")
        return Withdrawn(wanted, had_file, row is not None, len(removed))

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
        """Stop the worker processes; the IP databases are closed."""
        if self.workers is not None:
            self.workers.close()
            self.workers = None
        if self._addresses is not None:
            self._addresses.close()
            self._addresses = None
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    def clear_tmp(self) -> None:
        """Remove the temp folder's content (tests and benches)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True, exist_ok=True)


def _claimed(row: sqlite3.Row | None, same: sqlite3.Row | None, run_uuid: str, sha: str) -> Result | None:
    """The answer to a claim that found the run (``row``) or a run of the same content (``same``); None: claimed."""
    if row is not None:
        if row["state"] == "withdrawing":
            return Result(503, f"run {row['run_uuid']} is being withdrawn; try again later", run_uuid, retry_after_s=5,
                          outcome="busy")
        if row["state"] != "stored":
            return Result(503, "this run is being stored by another upload; try again", run_uuid, retry_after_s=1,
                          outcome="busy")
        if row["sha256"] == sha:
            return Result(200, "already have it", run_uuid, outcome="already held")
        return Result(409, f"run {run_uuid} is already stored with other content", run_uuid)
    if same is not None:
        if same["state"] != "stored":
            return Result(503, f"run {same['run_uuid']}, of the same content, is being stored or withdrawn; try again",
                          run_uuid, retry_after_s=1, outcome="busy")
        return Result(409, f"duplicate: run {same['run_uuid']}, already stored, has the same videos at the same times "
                      "from the same vantage point; this copy is refused", run_uuid, outcome="duplicate")
    return None


class _Closing:
    """A connection used in ``with``: closed at the end (sqlite3's own ``with`` only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
