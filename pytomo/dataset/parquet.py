"""A run database -> one Hive-partitioned Parquet dataset per table and for the 2015 ``pytomo_crawl`` view.

``tables_of(db)`` reads a run database without letting anything in it run: opened read-only and immutable, with
``trusted_schema=OFF`` and an authorizer that allows reading only; every table must be an ordinary table without
generated columns, and the view is computed by Pytomo's own SQL (``pytomo.storage.schema.VIEW``), never the file's.
Every row gains ``run_uuid``, ``service`` and ``utc_date`` (its video's UTC date; the run's start date for a row
without a video). A table of a later schema version than the file's (``live_latency``, schema 8) is exported
without rows, with today's columns.

``write_run(tables, root)`` writes ``root/<table>/service=<s>/utc_date=<d>/<run_uuid>.parquet``: each file is
written to a temporary name in its folder (ignored by readers: it starts with a dot), fsynced and renamed over
the final name, so a reader sees a whole file or none, and the same run written twice is one copy. The ``run``
table is written last: a run listed in ``run`` has all its rows in the other tables.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from pytomo.errors import StorageError
from pytomo.storage.schema import TABLES as DDL
from pytomo.storage.schema import VIEW

TABLES = ("run", "videos", "hops", "dns_answers", "rtt_probes", "rtt_samples", "downloads", "segment_requests",
          "throughput_samples", "stalls", "playout_timeline", "tcp_info_samples", "live_latency")
OPTIONAL = ("live_latency",)
"""Tables of a later schema version (live_latency: 8): a database without one exports it empty, with today's columns."""
VIEW_NAME = "pytomo_crawl"
DATASETS = (*TABLES, VIEW_NAME)
PARTITIONS = ("service", "utc_date")
ADDED = ("run_uuid", *PARTITIONS)
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # a NULL partition value, as Hive, Spark and DuckDB write it
RUN_NAMESPACE = uuid.UUID("6f1d7c1e-4a8b-5b0e-9c55-2f1d0e5a7b31")
"""uuid5 namespace of the run UUID derived from a database's SHA-256 (databases from before ``run.run_uuid``)."""

# How each row finds its video: the tables with video_row_id directly, those through their download.
_BY_VIDEO = ("hops", "dns_answers", "rtt_probes", "rtt_samples", "downloads")
_BY_DOWNLOAD = ("segment_requests", "throughput_samples", "stalls", "playout_timeline", "tcp_info_samples",
                "live_latency")
# Types of the 2015 columns (they are expressions in the view: SQLite declares no type for them).
_VIEW_TYPES: dict[str, pa.DataType] = {
    **{c: pa.string() for c in ("ID", "LocalID", "Service", "Url", "CacheUrl", "IP", "Resolver", "VideoType",
                                "RedirectUrl")},
    **{c: pa.float64() for c in ("CacheServerDelay", "ResolveTime", "PingMin", "PingAvg", "PingMax", "DownloadTime",
                                 "VideoDuration", "EncodingRate", "InitialRate", "InitialPlaybackBuffer",
                                 "BufferingDuration", "PlaybackDuration", "BufferDurationAtEnd", "TimeTogetFirstByte",
                                 "MaxInstantThp")},
    **{c: pa.int64() for c in ("ASNumber", "VideoLength", "DownloadBytes", "DownloadInterruptions", "InitialData",
                               "StatusCode")},
}
# tcp_info fields are unsigned 64-bit; the ones above SQLite's integer range are stored as REAL: all kept as double.
_DOUBLE_TABLES = ("tcp_info_samples",)
_VIEW_SOURCES = ("videos", "hops", "dns_answers", "rtt_samples", "downloads")
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_PRAGMA,
                 getattr(sqlite3, "SQLITE_RECURSIVE", 33)}


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, _trigger: str | None) -> int:
    """Reading only: any statement that would write, attach or create is denied."""
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def open_run_database(db_path: Path) -> sqlite3.Connection:
    """A run database opened so that nothing in it runs: read-only, immutable, untrusted schema, reads only."""
    path = Path(db_path)
    if not path.is_file():
        raise StorageError(f"no database at {path}")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1", uri=True)
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA query_only=ON")
        conn.set_authorizer(_authorizer)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from exc
    return conn


def file_run_uuid(db_path: Path) -> str:
    """The run UUID of a database without ``run.run_uuid``: uuid5 of its SHA-256, the same for the same bytes."""
    digest = hashlib.sha256()
    with open(db_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return str(uuid.uuid5(RUN_NAMESPACE, digest.hexdigest()))


def _objects(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    return {name: (kind, sql or "") for kind, name, sql in
            conn.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'view')")}


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(name, declared type) of an ordinary table; a generated column (code in the file) is refused."""
    info = conn.execute(f'PRAGMA table_xinfo("{table}")').fetchall()
    if any(row[6] in (2, 3) for row in info):
        raise StorageError(f"table {table} has generated columns: not a Pytomo run database")
    return [(row[1], row[2] or "") for row in info if row[6] == 0]


def arrow_type(declared: str) -> pa.DataType:
    """SQLite's type affinity rules -> an Arrow type."""
    t = declared.upper()
    if "INT" in t:
        return pa.int64()
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if t == "" or "BLOB" in t:
        return pa.string()
    return pa.float64()


def _clean(value: Any, kind: pa.DataType) -> Any:
    """A value SQLite's dynamic typing let into a column, made to fit the column's type (else NULL)."""
    if value is None:
        return None
    if pa.types.is_int64(kind):
        if isinstance(value, str) and value.upper().startswith("AS"):
            value = value[2:]
        try:
            number = float(value) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            return None
        if isinstance(number, float) and not number.is_integer():
            return None
        number = int(number)
        return number if -(2**63) <= number < 2**63 else None
    if pa.types.is_float64(kind):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_clean(v, kind) for v in values], type=kind)


def _table(conn: sqlite3.Connection, sql: str, columns: list[tuple[str, pa.DataType]]) -> pa.Table:
    rows = conn.execute(sql).fetchall()
    return pa.table({name: _array([r[i] for r in rows], kind) for i, (name, kind) in enumerate(columns)})


def _read_table(conn: sqlite3.Connection, table: str) -> pa.Table:
    double = table in _DOUBLE_TABLES
    columns = [(name, pa.float64() if double and name.startswith("tcpi_") else arrow_type(declared))
               for name, declared in _columns(conn, table)]
    order = "ORDER BY rowid" if table not in ("segment_requests", "throughput_samples", "live_latency") else ""
    select = ", ".join(f'"{name}"' for name, _ in columns)
    return _table(conn, f'SELECT {select} FROM "{table}" {order}', columns)


def _empty_table(table: str) -> pa.Table:
    """A table of today's schema without rows: what a database from before that table exports."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(DDL)
        return pa.schema([(name, arrow_type(declared)) for name, declared in _columns(mem, table)]).empty_table()
    finally:
        mem.close()


def _read_tables(conn: sqlite3.Connection, objects: dict[str, tuple[str, str]]) -> dict[str, pa.Table]:
    """Every exported table; an optional one the file lacks (an older schema version) empty."""
    return {table: _read_table(conn, table) if table in objects or table not in OPTIONAL else _empty_table(table)
            for table in TABLES}


def view_sql() -> str:
    """The SELECT of the 2015 view (pytomo/storage/schema.py), with the video's row id first (for its partition)."""
    body = VIEW.split(" AS", 1)[1].strip().rstrip(";")
    head = "SELECT\n    replace("
    if head not in body:
        raise StorageError("the pytomo_crawl view changed its layout: update pytomo/dataset/parquet.py")
    return body.replace(head, "SELECT\n    ha.video_row_id AS _video_row_id,\n    replace(", 1)


def _infer(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) for v in present):
        return pa.int64()
    if present and all(isinstance(v, int | float) for v in present):
        return pa.float64()
    return pa.string()


def _read_view(conn: sqlite3.Connection) -> pa.Table | None:
    """The 2015 view by Pytomo's SQL, run in memory over a copy of the file's rows in today's tables (a column the
    file lacks is NULL); None when the file's tables cannot be copied."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(DDL)
        for table in _VIEW_SOURCES:
            ours = {row[1] for row in mem.execute(f'PRAGMA table_info("{table}")')}
            common = [name for name, _ in _columns(conn, table) if name in ours]
            listed = ", ".join(f'"{c}"' for c in common)
            copied = conn.execute(f'SELECT {listed} FROM "{table}"').fetchall()
            mem.executemany(f'INSERT INTO "{table}" ({listed}) VALUES ({", ".join("?" * len(common))})', copied)
        cursor = mem.execute(view_sql())
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except sqlite3.Error:
        return None
    finally:
        mem.close()
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    return pa.table({n: _array(v, pa.int64() if n == "_video_row_id" else _VIEW_TYPES.get(n) or _infer(v))
                     for n, v in columns.items()})


def _video_keys(conn: sqlite3.Connection, run_service: str | None, run_date: str | None
                ) -> tuple[dict[int, tuple[str | None, str | None]], dict[int, tuple[str | None, str | None]]]:
    """(service, UTC date) of every video by its id and of every download by its id."""
    videos = {vid: (service if service is not None else run_service, (started or "")[:10] or run_date)
              for vid, service, started in conn.execute("SELECT id, service, started_at FROM videos")}
    downloads = {did: videos.get(vid, (run_service, run_date))
                 for did, vid in conn.execute("SELECT id, video_row_id FROM downloads")}
    return videos, downloads


def _keys_for(table: str, data: pa.Table, videos: dict, downloads: dict, default: tuple) -> list[tuple]:
    if table == "videos":
        return [videos.get(v, default) for v in data.column("id").to_pylist()]
    if table in _BY_VIDEO:
        return [videos.get(v, default) for v in data.column("video_row_id").to_pylist()]
    if table in _BY_DOWNLOAD:
        return [downloads.get(d, default) for d in data.column("download_id").to_pylist()]
    return [default] * data.num_rows


def _with_keys(data: pa.Table, run_uuid: str, keys: list[tuple]) -> pa.Table:
    added = {"run_uuid": pa.array([run_uuid] * data.num_rows, pa.string()),
             "service": pa.array([k[0] for k in keys], pa.string()),
             "utc_date": pa.array([k[1] for k in keys], pa.string())}
    for name, values in added.items():
        if name in data.column_names:
            data = data.set_column(data.column_names.index(name), name, values)
        else:
            data = data.append_column(name, values)
    return data


def _check_layout(objects: dict[str, tuple[str, str]], db_path: Path) -> None:
    for table in TABLES:
        if table in OPTIONAL and table not in objects:
            continue
        kind, sql = objects.get(table, ("", ""))
        if kind != "table" or sql.upper().lstrip().startswith("CREATE VIRTUAL"):
            raise StorageError(f"{db_path}: {table} is missing or not an ordinary table: not a Pytomo run database")


def tables_of(db_path: Path) -> dict[str, pa.Table]:
    """Every table of a run database and the ``pytomo_crawl`` view as Arrow tables, each row with ``run_uuid``,
    ``service`` and ``utc_date``. Raises StorageError for a file that is not a readable Pytomo run database."""
    conn = open_run_database(db_path)
    try:
        objects = _objects(conn)
        _check_layout(objects, Path(db_path))
        data = _read_tables(conn, objects)
        view = _read_view(conn)
        run = data["run"].to_pylist()[:1] or [{}]
        run_uuid = run[0].get("run_uuid") or file_run_uuid(Path(db_path))
        default = (run[0].get("service"), (run[0].get("started_at") or "")[:10] or None)
        videos, downloads = _video_keys(conn, *default)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {db_path}: {exc}") from exc
    finally:
        conn.close()
    out = {table: _with_keys(t, str(run_uuid), _keys_for(table, t, videos, downloads, default))
           for table, t in data.items()}
    if view is not None:
        keys = [videos.get(v, default) for v in view.column("_video_row_id").to_pylist()]
        out[VIEW_NAME] = _with_keys(view.drop_columns(["_video_row_id"]), str(run_uuid), keys)
    return out


def partition_value(value: Any) -> str:
    """A Hive partition value: percent-encoded (no ``/`` nor ``=`` can escape its folder); NULL as Hive writes it."""
    if value is None or value == "":
        return DEFAULT_PARTITION
    return quote(str(value), safe="")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(data: pa.Table, target: Path) -> None:
    """Write a Parquet file to a temporary name beside ``target``, fsync it and rename it over ``target``."""
    write_atomically_with(lambda f: pq.write_table(data, f, compression="zstd"), target)


def write_atomically_with(write: Callable[[BinaryIO], None], target: Path) -> None:
    """``write`` a file to a temporary name beside ``target`` (a dot file: readers skip it), fsync, rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _groups(data: pa.Table) -> Iterable[tuple[tuple[str, str], pa.Table]]:
    """The rows of a table by partition (service, utc_date), without the partition columns (they are the path)."""
    keys = list(zip(data.column("service").to_pylist(), data.column("utc_date").to_pylist()))
    body = data.drop_columns(list(PARTITIONS))
    rows_of: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(keys):  # grouped by the raw values; each distinct key is quoted once below
        rows_of.setdefault(key, []).append(i)
    seen: dict[tuple[str, str], list[int]] = {}
    for (service, day), rows in rows_of.items():  # None and "" quote alike: their rows go to one file
        seen.setdefault((partition_value(service), partition_value(day)), []).extend(rows)
    for key, rows in seen.items():
        yield key, body.take(pa.array(sorted(rows), pa.int64()))


def write_run(tables: dict[str, pa.Table], dataset_root: Path) -> None:
    """Write one run (``tables_of``'s result) into the dataset at ``dataset_root``, every file atomically; the
    ``run`` table last. A table without rows is written as an empty file in the run's partition (so that every
    dataset of every run exists, with its columns)."""
    root = Path(dataset_root)
    run = tables["run"]
    run_uuid = run.column("run_uuid")[0].as_py() if run.num_rows else None
    if run_uuid is None:
        run_uuid = next((t.column("run_uuid")[0].as_py() for t in tables.values() if t.num_rows), None)
    if run_uuid is None:
        raise StorageError("a run without a run_uuid cannot be written")
    default = (partition_value(run.column("service")[0].as_py() if run.num_rows else None),
               partition_value(run.column("utc_date")[0].as_py() if run.num_rows else None))
    for name in sorted(tables, key=lambda n: n == "run"):
        data = tables[name]
        groups = list(_groups(data)) or [(default, data.drop_columns(list(PARTITIONS)))]
        for (service, date), part in groups:
            write_atomically(part, root / name / f"service={service}" / f"utc_date={date}" / f"{run_uuid}.parquet")
