"""A run database read as Arrow tables (every table and the 2015 ``pytomo_crawl`` view), nothing in it running.

``tables_of(db)`` opens a run database read-only and immutable, with ``trusted_schema=OFF`` and an authorizer that
allows reading only; every table must be an ordinary table without generated columns, and the view is computed by
Pytomo's own SQL (``pytomo.storage.schema.VIEW``), never the file's. Every row gains ``run_uuid``, ``service`` and
``utc_date`` (its video's UTC date; the run's start date for a row without a video). A table of a later schema
version than the file's (``live_latency``, schema 8) is given without rows, with today's columns.

Times are typed: every UTC time (ISO-8601 text in SQLite) is a ``timestamp[us, tz=UTC]``; a local time
(``*_local``, ``LocalID``) is its wall clock, a ``timestamp[us]`` without zone, with the UTC offset it had beside it
(``<time>_utc_offset_s``, ``utc_offset_s`` in the view), never one without the other. A text that is not such a
time gives NULL. Every field carries its unit and description (``pytomo.storage.columns``) as field metadata
(``unit``, ``description``). Columns are built at once, one ``pa.array`` per column of a fetched table.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import UTC as UTC_ZONE
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from pytomo.errors import StorageError
from pytomo.readers.facts import fallback_uuid, sha256_of
from pytomo.storage.columns import described
from pytomo.storage.schema import COLUMNS_2015, IMPORTED_TABLE, VIEW, VIEW_EXTRA
from pytomo.storage.schema import TABLES as DDL

TABLES = ("run", "videos", "hops", "dns_answers", "rtt_probes", "rtt_samples", "downloads", "segment_requests",
          "throughput_samples", "stalls", "playout_timeline", "tcp_info_samples", "live_latency")
OPTIONAL = ("live_latency",)
"""Tables of a later schema version (live_latency: 8): a database without one exports it empty, with today's columns."""
VIEW_NAME = "pytomo_crawl"
DATASETS = (*TABLES, VIEW_NAME)

# How each row finds its video: the tables with video_row_id directly, those through their download.
_BY_VIDEO = ("hops", "dns_answers", "rtt_probes", "rtt_samples", "downloads")
_BY_DOWNLOAD = ("segment_requests", "throughput_samples", "stalls", "playout_timeline", "tcp_info_samples",
                "live_latency")
# Types of the 2015 columns (they are expressions in the view: SQLite declares no type for them).
_VIEW_TYPES: dict[str, pa.DataType] = {
    **{c: pa.string() for c in ("ID", "LocalID", "Service", "Url", "CacheUrl", "IP", "Resolver", "VideoType",
                                "RedirectUrl")},
    "played_s": pa.float64(),
    **{c: pa.float64() for c in ("CacheServerDelay", "ResolveTime", "PingMin", "PingAvg", "PingMax", "DownloadTime",
                                 "VideoDuration", "EncodingRate", "InitialRate", "InitialPlaybackBuffer",
                                 "BufferingDuration", "PlaybackDuration", "BufferDurationAtEnd", "TimeTogetFirstByte",
                                 "MaxInstantThp")},
    **{c: pa.int64() for c in ("ASNumber", "VideoLength", "DownloadBytes", "DownloadInterruptions", "InitialData",
                               "StatusCode")},
}
# The UTC times of each table (ISO-8601 text with Z) and its local ones (ISO-8601 text with the UTC offset).
UTC_TIMES = {"run": ("started_at", "ended_at"), "videos": ("started_at", "ended_at"), "hops": ("started_at",),
             "dns_answers": ("at",), "rtt_samples": ("sent_at",), "downloads": ("started_at",)}
LOCAL_TIMES = {"run": ("started_at_local", "ended_at_local"), "videos": ("started_at_local",),
               "downloads": ("started_at_local",)}
UTC = pa.timestamp("us", tz="UTC")
WALL = pa.timestamp("us")
VIEW_COLUMNS = (*COLUMNS_2015, *VIEW_EXTRA)
# tcp_info fields are unsigned 64-bit; the ones above SQLite's integer range are stored as REAL: all kept as double.
_DOUBLE_TABLES = ("tcp_info_samples",)
_VIEW_SOURCES = ("videos", "hops", "dns_answers", "rtt_samples", "downloads", "playout_timeline")
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
    return fallback_uuid(sha256_of(db_path))


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


class _Columnar:
    """The same read-only, immutable file opened by the ADBC SQLite driver (Apache Arrow's), which gives a query's
    rows as Arrow columns without a Python object per value: the large tables of a run (a 1 MB run's throughput
    samples: 7 ms instead of 25 ms). Used only for the ordinary tables ``tables_of`` has already checked, by their
    columns' names, with today's types; a column whose values do not fit its type (SQLite's dynamic typing) makes the
    table go the Python way, which cleans values one by one. Without the driver, everything goes the Python way."""

    def __init__(self, db_path: Path) -> None:
        self._conn: Any = None
        try:
            import adbc_driver_sqlite.dbapi as adbc

            self._conn = adbc.connect(f"file:{quote(str(Path(db_path).resolve()))}?mode=ro&immutable=1")
        except Exception:  # noqa: BLE001 - no driver, or it cannot open the file: the Python way reads it
            self._conn = None

    def table(self, sql: str, schema: pa.Schema) -> pa.Table | None:
        """The rows of ``sql`` cast to ``schema``, or None when this way cannot give them."""
        if self._conn is None:
            return None
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                data = cursor.fetch_arrow_table()
            return data.rename_columns(schema.names).cast(schema)
        except Exception:  # noqa: BLE001 - a value of another type than its column's first ones: the Python way
            return None

    def close(self) -> None:
        """Close the driver's connection."""
        if self._conn is not None:
            self._conn.close()


def _table(conn: sqlite3.Connection, sql: str, columns: list[tuple[str, pa.DataType]],
           columnar: _Columnar | None = None) -> pa.Table:
    """The rows of a query: as Arrow columns by the ADBC driver when it can, else fetched at once and made one
    ``pa.array`` per column (from a list: pyarrow converts a tuple far slower)."""
    fast = columnar.table(sql, pa.schema(columns)) if columnar is not None else None
    if fast is not None:
        return fast
    rows = conn.execute(sql).fetchall()
    return pa.table({name: _array([r[i] for r in rows], kind) for i, (name, kind) in enumerate(columns)})


def _read_table(conn: sqlite3.Connection, table: str, columnar: _Columnar | None = None) -> pa.Table:
    double = table in _DOUBLE_TABLES
    columns = [(name, pa.float64() if double and name.startswith("tcpi_") else arrow_type(declared))
               for name, declared in _columns(conn, table)]
    order = "ORDER BY rowid" if table not in ("segment_requests", "throughput_samples", "live_latency") else ""
    select = ", ".join(f'"{name}"' for name, _ in columns)
    return _table(conn, f'SELECT {select} FROM "{table}" {order}', columns, columnar)


def _empty_table(table: str) -> pa.Table:
    """A table of today's schema without rows: what a database from before that table exports."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(DDL)
        return pa.schema([(name, arrow_type(declared)) for name, declared in _columns(mem, table)]).empty_table()
    finally:
        mem.close()


def _read_tables(conn: sqlite3.Connection, objects: dict[str, tuple[str, str]],
                 columnar: _Columnar | None = None) -> dict[str, pa.Table]:
    """Every exported table; an optional one the file lacks (an older schema version) empty."""
    return {table: _read_table(conn, table, columnar) if table in objects or table not in OPTIONAL
            else _empty_table(table) for table in TABLES}


def view_sql() -> str:
    """The SELECT of the 2015 view (pytomo/storage/schema.py), with the video's row id first (for its partition)."""
    body = VIEW.split(" AS", 1)[1].strip().rstrip(";")
    head = "SELECT\n    replace("
    if head not in body:
        raise StorageError("the pytomo_crawl view changed its layout: update pytomo/readers/tables.py")
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


def _read_imported(conn: sqlite3.Connection) -> pa.Table:
    """The 2015 rows of a run made by ``pytomo import``, as its source had them (its ``crawl_2015`` table: the 2015
    names and meanings, ID in UTC as the view's, LocalID the source's local time), instead of the view."""
    listed = ", ".join(f'"{c}"' for c in COLUMNS_2015)
    rows = conn.execute(f'SELECT video_row_id, {listed} FROM "{IMPORTED_TABLE}" ORDER BY rowid').fetchall()
    names = ["_video_row_id", *COLUMNS_2015]
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    return pa.table({n: _array(v, pa.int64() if n == "_video_row_id" else _VIEW_TYPES.get(n) or _infer(v))
                     for n, v in columns.items()})


class _Keys:
    """(service, UTC date) of every video and every download, as Arrow columns looked up by id at once."""

    def __init__(self, conn: sqlite3.Connection, run_service: str | None, run_date: str | None) -> None:
        videos = conn.execute("SELECT id, service, started_at FROM videos").fetchall()
        self.default = (run_service, run_date)
        self.video_ids = pa.array([v[0] for v in videos], pa.int64())
        self.video_service = pa.array([v[1] if v[1] is not None else run_service for v in videos], pa.string())
        self.video_date = pa.array([(v[2] or "")[:10] or run_date if isinstance(v[2], str | None) else run_date
                                    for v in videos], pa.string())
        downloads = conn.execute("SELECT id, video_row_id FROM downloads").fetchall()
        self.download_ids = pa.array([d[0] for d in downloads], pa.int64())
        self.download_service, self.download_date = self.of_videos(pa.array([d[1] for d in downloads], pa.int64()))

    def _take(self, ids: Any, keys: pa.Array, service: pa.Array, date: pa.Array) -> tuple[pa.Array, pa.Array]:
        at = pc.index_in(ids, value_set=keys)
        found = [pc.take(column, at) for column in (service, date)]
        return tuple(c if d is None else pc.fill_null(c, d) for c, d in zip(found, self.default))

    def of_videos(self, ids: Any) -> tuple[pa.Array, pa.Array]:
        """(service, UTC date) of the rows of these video ids (the run's for an unknown one)."""
        return self._take(ids, self.video_ids, self.video_service, self.video_date)

    def of_table(self, table: str, data: pa.Table) -> tuple[Any, Any]:
        """(service, UTC date) of every row of an exported table."""
        if table in ("videos", *_BY_VIDEO):
            return self.of_videos(data.column("id" if table == "videos" else "video_row_id").combine_chunks())
        if table in _BY_DOWNLOAD:
            return self._take(data.column("download_id").combine_chunks(), self.download_ids,
                              self.download_service, self.download_date)
        return tuple(pa.array([d] * data.num_rows, pa.string()) for d in self.default)


def _with_keys(data: pa.Table, run_uuid: str, keys: tuple[Any, Any]) -> pa.Table:
    added = {"run_uuid": pa.array([run_uuid] * data.num_rows, pa.string()), "service": keys[0], "utc_date": keys[1]}
    for name, values in added.items():
        if name in data.column_names:
            data = data.set_column(data.column_names.index(name), name, values)
        else:
            data = data.append_column(name, values)
    return data


def _parsed(values: Any, kind: pa.DataType) -> pa.Array:
    """ISO-8601 texts as timestamps of ``kind`` (with a zone: the text must carry its offset; without: it must not);
    NULL for a text that is not one (the value of another type SQLite's dynamic typing let in, a time without its
    offset). All at once by Arrow; value by value (datetime.fromisoformat) only when Arrow refuses one of them."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(values.type):
        values = pa.array([v if isinstance(v, str) else None for v in values.to_pylist()], pa.string())
    try:
        return values.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        zoned = kind.tz is not None
        out = []
        for v in values.to_pylist():
            try:
                t = datetime.fromisoformat(v) if v else None
            except ValueError:
                t = None
            if t is not None and (t.tzinfo is not None) != zoned:
                t = None
            out.append(t.astimezone(UTC_ZONE) if zoned and t is not None else t)
        return pa.array(out, kind)


def _offset_s(wall: pa.Array, instant: pa.Array) -> pa.Array:
    """wall - instant in whole seconds (the UTC offset), int32."""
    micros = pc.subtract(wall, instant.cast(WALL)).cast(pa.int64())
    return pc.divide(micros, 1_000_000).cast(pa.int32())


def _local(values: Any) -> tuple[pa.Array, pa.Array]:
    """Local ISO-8601 texts with their offsets -> (wall clock, UTC offset in seconds); both NULL without an offset."""
    instant = _parsed(values, UTC)
    text = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(text.type):
        text = pa.array([v if isinstance(v, str) else None for v in text.to_pylist()], pa.string())
    wall = _parsed(pc.replace_substring_regex(text, r"(Z|[+-]\d\d:?\d\d(:\d\d(\.\d+)?)?)$", ""), WALL)
    offset = _offset_s(wall, instant)
    return pc.if_else(pc.is_null(offset), pa.scalar(None, WALL), wall), offset


def _typed(table: str, data: pa.Table) -> pa.Table:
    """A table's times typed: UTC ones as timestamps, local ones as wall clock with their UTC offset beside them."""
    for name in UTC_TIMES.get(table, ()):
        if name in data.column_names:
            data = data.set_column(data.column_names.index(name), name, _parsed(data.column(name), UTC))
    for name in LOCAL_TIMES.get(table, ()):
        if name in data.column_names:
            wall, offset = _local(data.column(name))
            at = data.column_names.index(name)
            data = data.set_column(at, name, wall).add_column(at + 1, name.removesuffix("_local") + "_utc_offset_s",
                                                              offset)
    return data


def _typed_view(view: pa.Table) -> pa.Table:
    """The view with every column of ``VIEW_COLUMNS`` (NULL where its source has none: an imported run's played_s),
    ID as UTC, LocalID as wall clock and ``utc_offset_s`` (LocalID - ID) after the others."""
    for name in VIEW_COLUMNS:
        if name not in view.column_names:
            view = view.append_column(name, pa.nulls(view.num_rows, _VIEW_TYPES.get(name, pa.string())))
    utc = _parsed(view.column("ID"), WALL).cast(UTC)
    wall = _parsed(view.column("LocalID"), WALL)
    offset = _offset_s(wall, utc)
    view = view.select(["_video_row_id", *VIEW_COLUMNS])
    view = view.set_column(view.column_names.index("ID"), "ID", utc)
    view = view.set_column(view.column_names.index("LocalID"), "LocalID",
                           pc.if_else(pc.is_null(offset), pa.scalar(None, WALL), wall))
    return view.append_column("utc_offset_s", offset)


def _described(table: str, data: pa.Table) -> pa.Table:
    """The table with each field's unit and description (pytomo.storage.columns) as its metadata."""
    return pa.Table.from_arrays(list(data.columns), schema=_described_schema(table, data.schema))


@functools.lru_cache(maxsize=256)
def _described_schema(table: str, schema: pa.Schema) -> pa.Schema:
    """A table's schema with its fields described (the same few schemas come back run after run: made once)."""
    docs = described(table)
    fields = []
    for f in schema:
        unit, text = docs.get(f.name, (None, None))
        meta = {k: v for k, v in (("unit", unit), ("description", text)) if v}
        fields.append(f.with_metadata(meta) if meta else f)
    return pa.schema(fields)


def _check_layout(objects: dict[str, tuple[str, str]], db_path: Path) -> None:
    for table in TABLES:
        if table in OPTIONAL and table not in objects:
            continue
        kind, sql = objects.get(table, ("", ""))
        if kind != "table" or sql.upper().lstrip().startswith("CREATE VIRTUAL"):
            raise StorageError(f"{db_path}: {table} is missing or not an ordinary table: not a Pytomo run database")


def tables_of(db_path: Path) -> dict[str, pa.Table]:
    """Every table of a run database and the ``pytomo_crawl`` view as Arrow tables, each row with ``run_uuid``,
    ``service`` and ``utc_date``, times typed, fields described. Raises StorageError for a file that is not a
    readable Pytomo run database."""
    conn = open_run_database(db_path)
    try:
        objects = _objects(conn)
        _check_layout(objects, Path(db_path))
        columnar = _Columnar(db_path)
        try:
            data = _read_tables(conn, objects, columnar)
        finally:
            columnar.close()
        view = _read_imported(conn) if objects.get(IMPORTED_TABLE, ('', ''))[0] == 'table' else _read_view(conn)
        run = data["run"].slice(0, 1).to_pylist() or [{}]
        run_uuid = run[0].get("run_uuid") or file_run_uuid(Path(db_path))
        started = run[0].get("started_at")
        keys = _Keys(conn, run[0].get("service"), (started if isinstance(started, str) else "")[:10] or None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {db_path}: {exc}") from exc
    finally:
        conn.close()
    out = {table: _described(table, _with_keys(_typed(table, t), str(run_uuid), keys.of_table(table, t)))
           for table, t in data.items()}
    if view is not None:
        view = _typed_view(view)
        found = keys.of_videos(view.column("_video_row_id").combine_chunks())
        out[VIEW_NAME] = _described(VIEW_NAME, _with_keys(view.drop_columns(["_video_row_id"]), str(run_uuid), found))
    return out
