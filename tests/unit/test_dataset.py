"""pytomo.dataset.parquet: a run database -> Hive-partitioned Parquet, read safely, written atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pytomo.dataset.analyses import DUCKDB_CONFIG
from pytomo.dataset.parquet import partition_value, write_run
from pytomo.errors import StorageError
from pytomo.readers.tables import DATASETS, TABLES, file_run_uuid, tables_of
from pytomo.storage.schema import TABLES as DDL
from pytomo.storage.schema import VIEW


def _insert(conn: sqlite3.Connection, table: str, **values: object) -> int:
    """A row with ``values`` and a filler for every other NOT NULL column (the schema grows; the test does not)."""
    for _, name, kind, notnull, default, pk in conn.execute(f"PRAGMA table_info({table})").fetchall():
        if notnull and default is None and not pk and name not in values:
            values[name] = 0 if "INT" in kind.upper() or "REAL" in kind.upper() else f"x-{name}"
    names = ", ".join(values)
    cur = conn.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(values))})", list(values.values()))
    return int(cur.lastrowid or 0)


def make_db(path: Path, *, run_uuid: bool = True) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(DDL + VIEW)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(run)")}
    run = {"service": "Lab", "started_at": "2026-01-05T23:59:00.000000Z"}
    if "run_uuid" in columns:
        run["run_uuid"] = "11111111-2222-4333-8444-555555555555" if run_uuid else None
        if not run_uuid:
            conn.execute("CREATE TABLE run2 AS SELECT * FROM run")  # keep the layout, drop the NOT NULL
    _insert(conn, "run", **run) if run.get("run_uuid") or "run_uuid" not in columns else None
    if "run_uuid" in columns and not run_uuid:
        conn.executescript("DROP TABLE run; DROP TABLE run2;")
        conn.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, service TEXT, started_at TEXT)")
        conn.execute("INSERT INTO run (service, started_at) VALUES ('Lab', '2026-01-05T23:59:00.000000Z')")
    for day, service in (("2026-01-05T23:59:30.000000Z", "Lab"), ("2026-01-06T00:00:10.000000Z", "Lab/=x")):
        video = _insert(conn, "videos", run_id=1, service=service, started_at=day, page_url="http://v", round=1,
                        status="ok", seed_source="input")
        _insert(conn, "hops", video_row_id=video, hop_index=0, url="http://c/v", origin="http://c", host="c",
                address="127.0.0.1", status_code=200, started_at=day)
        _insert(conn, "dns_answers", video_row_id=video, host="c", resolver="lab", rdtype="A", rcode="NOERROR",
                address="127.0.0.1", latency_ms=1.0, at=day)
        download = _insert(conn, "downloads", video_row_id=video, url="http://c/v", host="c", address="127.0.0.1",
                           started_at=day, avg_throughput_bps=1e6, time_to_start_s=0.5, stall_count=0)
        conn.execute("INSERT INTO throughput_samples VALUES (?, 0, 0.0, 1000)", (download,))
    conn.commit()
    conn.close()
    return path


def test_tables_of_adds_run_uuid_service_and_date(tmp_path: Path) -> None:
    tables = tables_of(make_db(tmp_path / "a.db"))
    assert set(tables) == set(DATASETS)
    for name, table in tables.items():
        assert {"run_uuid", "service", "utc_date"} <= set(table.column_names), name
    assert tables["videos"].column("utc_date").to_pylist() == ["2026-01-05", "2026-01-06"]
    assert tables["throughput_samples"].column("service").to_pylist() == ["Lab", "Lab/=x"]
    assert tables["run"].column("utc_date").to_pylist() == ["2026-01-05"]
    assert tables["pytomo_crawl"].num_rows == 2
    assert not list(tmp_path.glob("a.db-*")), "reading created files beside the database"


def test_run_uuid_without_the_column_is_the_file_hash(tmp_path: Path) -> None:
    db = make_db(tmp_path / "old.db", run_uuid=False)
    tables = tables_of(db)
    assert set(tables["videos"].column("run_uuid").to_pylist()) == {file_run_uuid(db)}
    assert file_run_uuid(db) == file_run_uuid(db)


def test_write_run_is_partitioned_atomic_and_idempotent(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.db")
    root = tmp_path / "ds"
    write_run(tables_of(db), root)
    write_run(tables_of(db), root)  # the same run again: still one copy
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert not [f for f in files if "/." in f], "temporary files left behind"
    uuid = tables_of(db)["run"].column("run_uuid")[0].as_py()
    assert f"videos/service=Lab/utc_date=2026-01-05/{uuid}.parquet" in files
    assert f"videos/service={partition_value('Lab/=x')}/utc_date=2026-01-06/{uuid}.parquet" in files
    assert f"stalls/service=Lab/utc_date=2026-01-05/{uuid}.parquet" in files  # empty, with its columns
    assert "service" not in pq.read_schema(root / files[0]).names  # the path holds the partition
    con = duckdb.connect(config=dict(DUCKDB_CONFIG))
    src = sqlite3.connect(db)
    for table in TABLES:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{root}/{table}/**/*.parquet', hive_partitioning=true)"
                        ).fetchone()
        assert n is not None and n[0] == src.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table
    services = con.execute(f"SELECT DISTINCT service FROM read_parquet('{root}/videos/**/*.parquet', "
                           "hive_partitioning=true) ORDER BY 1").fetchall()
    assert {s for (s,) in services} <= {"Lab", "Lab/=x", partition_value("Lab/=x")}


@pytest.mark.parametrize("hostile", [
    "DROP TABLE stalls; CREATE VIEW stalls AS SELECT 1 AS id",
    "DROP TABLE stalls; CREATE TABLE stalls (id INTEGER, x INTEGER GENERATED ALWAYS AS (id * 2))",
])
def test_a_file_with_code_in_place_of_a_table_is_refused(tmp_path: Path, hostile: str) -> None:
    db = make_db(tmp_path / "h.db")
    conn = sqlite3.connect(db)
    conn.executescript(hostile)
    conn.close()
    with pytest.raises(StorageError):
        tables_of(db)


def test_a_trigger_in_the_file_never_runs(tmp_path: Path) -> None:
    db = make_db(tmp_path / "t.db")
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE evil (x); CREATE TRIGGER t AFTER INSERT ON videos BEGIN "
                       "INSERT INTO evil VALUES (1); END;")
    conn.close()
    before = db.read_bytes()
    tables_of(db)
    assert db.read_bytes() == before


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "x.db"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StorageError):
        tables_of(bad)
