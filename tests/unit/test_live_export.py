"""The live tables in the exports: live_latency as a Parquet dataset and a CSV file with the keys of its downloads,
the downloads' live columns, and a database from before them (schema 7) exported with an empty live_latency."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pytomo.cli.export import export_main
from pytomo.dataset.analyses import DUCKDB_CONFIG
from pytomo.dataset.parquet import write_run
from pytomo.errors import StorageError
from pytomo.readers.tables import DATASETS, tables_of
from tests.live_run import as_schema_7, write_live_run

LATENCY = ("download_id", "seq", "t_s", "latency_s", "playhead_s")
LIVE_COLUMNS = ("live", "live_target_duration_s", "live_reloads", "live_unchanged_reloads", "live_segments_skipped",
                "live_segments_missing", "live_latency_start_s", "live_latency_end_s", "live_latency_problem")


@pytest.fixture(scope="module")
def live_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_live_run(tmp_path_factory.mktemp("live-export"))


def sqlite_latency(db: Path) -> list[tuple]:
    """The live_latency rows with the run's UUID and their video's service and UTC date, by the test's own query."""
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    rows = conn.execute(f"""
        SELECT {", ".join("l." + c for c in LATENCY)}, r.run_uuid, v.service, substr(v.started_at, 1, 10)
        FROM live_latency l JOIN downloads d ON d.id = l.download_id JOIN videos v ON v.id = d.video_row_id,
             run r ORDER BY l.download_id, l.seq""").fetchall()
    conn.close()
    return rows


def test_parquet_has_the_live_latency_rows_with_their_downloads_keys(live_db: Path, tmp_path: Path) -> None:
    expected = sqlite_latency(live_db)
    assert len(expected) == 6 and {r[0] for r in expected} == {1, 2}  # the undated live video has no sample
    tables = tables_of(live_db)
    assert "live_latency" in DATASETS and set(tables) == set(DATASETS)
    root = tmp_path / "ds"
    write_run(tables, root)
    files = list((root / "live_latency").rglob("*.parquet"))
    assert files and all(f.parent.name == "utc_date=2026-03-02" for f in files)
    con = duckdb.connect(config=dict(DUCKDB_CONFIG))
    got = con.execute(f"SELECT {', '.join(LATENCY)}, run_uuid, service, CAST(utc_date AS VARCHAR) FROM read_parquet("
                      f"'{root}/live_latency/**/*.parquet', hive_partitioning=true) ORDER BY download_id, seq"
                      ).fetchall()
    assert got == expected
    assert [str(t) for t in pq.read_schema(files[0]).types[:5]] == ["int64", "int64", "double", "double", "double"]
    downloads = con.execute(f"SELECT id, {', '.join(LIVE_COLUMNS)} FROM read_parquet('{root}/downloads/**/*.parquet',"
                            " hive_partitioning=true) ORDER BY id").fetchall()
    conn = sqlite3.connect(f"file:{live_db}?mode=ro&immutable=1", uri=True)
    assert downloads == conn.execute(f"SELECT id, {', '.join(LIVE_COLUMNS)} FROM downloads ORDER BY id").fetchall()
    conn.close()
    assert [d[1] for d in downloads] == [1, 1, 1, 0, None] and downloads[0][8] == 8.5


def test_csv_export_has_the_live_latency_file(live_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert export_main([str(live_db), "--to", str(tmp_path), "--format", "csv"]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    with open(run / "live_latency.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = sqlite_latency(live_db)
    assert [(int(r["download_id"]), int(r["seq"]), float(r["t_s"]), float(r["latency_s"]), float(r["playhead_s"]),
             r["run_uuid"], r["service"], r["utc_date"]) for r in rows] == expected
    assert run.name == expected[0][5]


def test_a_database_from_before_the_live_tables_exports_an_empty_live_latency(live_db: Path, tmp_path: Path) -> None:
    old = as_schema_7(live_db, tmp_path / "old")
    tables = tables_of(old)
    latency = tables["live_latency"]
    assert latency.num_rows == 0 and latency.column_names == [*LATENCY, "run_uuid", "service", "utc_date"]
    assert not set(LIVE_COLUMNS) & set(tables["downloads"].column_names)
    assert tables["downloads"].num_rows == 5 and tables["pytomo_crawl"].num_rows == 5
    root = tmp_path / "ds"
    write_run(tables, root)
    write_run(tables_of(live_db), root)  # the two runs read together: the old one's downloads have NULL live
    con = duckdb.connect(config=dict(DUCKDB_CONFIG))
    per_run = con.execute(f"SELECT run_uuid, count(*) FROM read_parquet('{root}/live_latency/**/*.parquet',"
                          " hive_partitioning=true, union_by_name=true) GROUP BY run_uuid").fetchall()
    assert per_run == [(sqlite_latency(live_db)[0][5], 6)]
    lives = con.execute(f"SELECT run_uuid, count(live) FROM read_parquet('{root}/downloads/**/*.parquet',"
                        " hive_partitioning=true, union_by_name=true) GROUP BY run_uuid ORDER BY 2").fetchall()
    assert [n for _run, n in lives] == [0, 4]
    assert export_main([str(old), "--to", str(tmp_path / "csv"), "--format", "csv"]) == 0
    (run,) = [p for p in (tmp_path / "csv").iterdir() if p.is_dir()]
    assert (run / "live_latency.csv").read_text().splitlines() == [
        ",".join(f'"{c}"' for c in (*LATENCY, "run_uuid", "service", "utc_date"))]


def test_a_live_latency_that_is_not_a_table_is_refused(live_db: Path, tmp_path: Path) -> None:
    hostile = as_schema_7(live_db, tmp_path / "hostile")
    conn = sqlite3.connect(hostile)
    conn.execute("CREATE VIEW live_latency AS SELECT 1 AS download_id")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError):
        tables_of(hostile)
