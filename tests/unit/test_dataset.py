"""pytomo.dataset.parquet: a run database -> Hive-partitioned Parquet, read safely, written atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytomo.dataset import analyses
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


# --- pytomo.dataset.analyses: the per-download frame is one SQL, over read_parquet (DuckDB) or a pandas partition

def _frame_dataset(root: Path, *, with_role: bool = True) -> tuple[Path, pa.Table]:
    """One run's ``downloads`` (NULLs in every kind of column, an audio row) and ``run`` in the dataset's layout."""
    data = {
        "run_uuid": ["r1"] * 6, "address": ["10.0.0.1", None, None, "10.0.0.2", "10.0.0.3", "10.0.0.3"],
        "host": ["a", "b", None, "a", "c", "c"], "as_number": pa.array([15169, None, 15169, 3215, None, 3215]),
        "country": ["US", None, "US", "FR", "FR", None],
        "stream_role": ["progressive", "video", "audio", None, "progressive", "progressive"],
        "avg_throughput_bps": [3e6, 5e6, 1e5, None, 2e6, 9e6], "time_to_start_s": [0.1, 0.2, 0.3, None, 0.4, 2.5],
        "stall_count": pa.array([0, 1, 0, None, 3, 0]), "stall_total_s": [0.0, 2.0, None, None, 4.5, None],
        "played_s": [20.0, 30.0, 1.0, None, 2.0, None], "ping_min_ms": [19.9, 20.0, 50.0, 199.99, None, 0.0],
        "started_at": ["2026-01-02T01:00:00Z"] * 6,
        "started_at_local": ["2026-01-02T02:00:00+01:00", None, "2026-01-02T23:00:00-02:00", "x", "2026-01-02T09",
                             "2026-01-02T17:00:00+03:00"],
    }
    if not with_role:
        del data["stream_role"]
    table = pa.table(data)
    folder = root / "downloads" / "service=Lab" / "utc_date=2026-01-02"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "r1.parquet")
    (root / "run" / "service=Lab" / "utc_date=2026-01-02").mkdir(parents=True)
    pq.write_table(pa.table({"run_uuid": ["r1"], "vantage_country": ["DE"]}),
                   root / "run" / "service=Lab" / "utc_date=2026-01-02" / "r1.parquet")
    return root, table


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


def _partitions(table: pa.Table) -> dict[str, pd.DataFrame]:
    """The pandas forms a partition can come in: as pyarrow gives it, or object strings with nullable or float
    integers and a categorical partition column."""
    plain = table.to_pandas()
    plain["service"], plain["utc_date"] = "Lab", "2026-01-02"
    loose = plain.astype({c: object for c in plain.columns if c not in ("as_number", "stall_count")})
    loose = loose.astype({"stall_count": "Int64", "as_number": "float64", "service": "category"})
    loose = loose.where(loose.notna(), None)  # object columns of None
    return {"pyarrow": plain, "object strings, Int64, float, category": loose}


def test_the_frame_of_a_pandas_partition_is_the_frame_of_read_parquet(tmp_path: Path) -> None:
    root, table = _frame_dataset(tmp_path)
    lay = analyses.layout_of(root)
    assert lay.as_column and lay.local_time and lay.country == "run.vantage_country"
    want = duckdb.connect(config=dict(DUCKDB_CONFIG)).execute(analyses.frame_sql(root, lay)).df()
    assert len(want) == 5 and set(want["country"]) == {"DE"}  # the audio row left out; the run's country
    run = pd.DataFrame({"run_uuid": pd.Series(["r1"], dtype=object), "vantage_country": ["DE"]})
    for form, part in _partitions(table).items():
        got = analyses.frame_partition(part, lay, run)
        pd.testing.assert_frame_equal(_sorted(got), _sorted(want), check_dtype=False, obj=form)
        assert list(got.dtypes) == list(analyses.frame_partition(part.iloc[:0], lay, run).dtypes), form
    empty = analyses.frame_partition(_partitions(table)["pyarrow"].iloc[:0], lay, run)
    assert empty.empty and list(empty.columns) == list(want.columns)


def test_a_column_absent_from_a_partition_is_null_as_in_read_parquet(tmp_path: Path) -> None:
    """A dataset without stream_role (older files): no row is audio, in both."""
    root, table = _frame_dataset(tmp_path, with_role=False)
    lay = analyses.layout_of(root)
    want = duckdb.connect(config=dict(DUCKDB_CONFIG)).execute(analyses.frame_sql(root, lay)).df()
    assert len(want) == 6
    part = _partitions(table)["pyarrow"]
    got = analyses.frame_partition(part, lay)  # no run: the volunteer's country unknown
    assert set(got["country"]) == {"unknown"}
    pd.testing.assert_frame_equal(_sorted(got.drop(columns="country")), _sorted(want.drop(columns="country")),
                                  check_dtype=False)


def test_the_layout_has_the_columns_of_every_file(tmp_path: Path) -> None:
    """A column that the first file lacks (an older run) but a later one has is in the layout, as in DuckDB's
    union_by_name."""
    old = tmp_path / "downloads" / "service=A" / "utc_date=2026-01-01"
    new = tmp_path / "downloads" / "service=B" / "utc_date=2026-01-02"
    for folder in (old, new, tmp_path / "run" / "service=A" / "utc_date=2026-01-01"):
        folder.mkdir(parents=True)
    pq.write_table(pa.table({"run_uuid": ["a"], "ping_min_ms": [1.0]}), old / "a.parquet")
    pq.write_table(pa.table({"run_uuid": ["b"], "ping_min_ms": [2.0], "as_number": [1]}), new / "b.parquet")
    pq.write_table(pa.table({"run_uuid": ["a"]}), tmp_path / "run" / "service=A" / "utc_date=2026-01-01" / "a.parquet")
    lay = analyses.layout_of(tmp_path)
    assert lay.as_column and {"service", "utc_date"} <= lay.downloads
    assert lay.partitions["downloads"] == ["service", "utc_date"]
    assert lay.schemas["downloads"].field("service").type == pa.string()
