"""Two lab crawls -> ``pytomo export`` -> ``pytomo analyse``: DuckDB and Dask (two worker processes) agree, and the
Parquet dataset has exactly the rows of the databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pytomo.dataset import analyses
from pytomo.readers.tables import TABLES
from tests.conftest import ROOT, database_of, run_crawler


def pytomo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytomo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    work = tmp_path_factory.mktemp("analyse")
    dbs = []
    for _ in range(2):
        proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "4", "-D", "1", "-n", "1", "-S", "0",
                            "--database-dir", str(work / "db")])
        dbs.append(database_of(proc))
    assert dbs[0] != dbs[1]
    root = work / "dataset"
    proc = pytomo("export", *map(str, dbs), "--to", str(root), "--format", "parquet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(root)
    return dbs, root


def test_parquet_has_the_rows_of_the_databases(dataset: tuple[list[Path], Path]) -> None:
    dbs, root = dataset
    con = duckdb.connect(config=dict(analyses.DUCKDB_CONFIG))
    for table in TABLES:
        expected = 0
        for db in dbs:
            conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
            expected += conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            conn.close()
        got = con.execute(f"SELECT count(*), count(DISTINCT run_uuid) FROM read_parquet('{root}/{table}/**/*.parquet',"
                          " hive_partitioning=true)").fetchone()
        assert got is not None and got[0] == expected, table
        assert got[1] == (2 if expected else 0), table
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    loaded = con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded AND NOT installed").fetchall()
    assert not [n for (n,) in loaded if n in ("sqlite_scanner", "sqlite", "httpfs")]


def test_a_lab_export_groups_by_time_without_a_cast(dataset: tuple[list[Path], Path]) -> None:
    """Times are typed in the Parquet files: DuckDB groups the downloads by UTC minute and by local hour as they are,
    and gets what SQLite gets from the text."""
    dbs, root = dataset
    con = analyses.connect()
    got = con.execute(f"""SELECT run_uuid, strftime(date_trunc('minute', started_at), '%Y-%m-%dT%H:%M'),
                                 hour(started_at_local), count(*), typeof(started_at), typeof(started_at_local)
                          FROM read_parquet('{root}/downloads/**/*.parquet') GROUP BY ALL ORDER BY ALL""").fetchall()
    assert {(r[4], r[5]) for r in got} == {("TIMESTAMP WITH TIME ZONE", "TIMESTAMP")}
    want = []
    for db in dbs:
        conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
        (run_uuid,) = conn.execute("SELECT run_uuid FROM run").fetchone()
        want += [(run_uuid, *r) for r in conn.execute(
            "SELECT substr(started_at, 1, 16), CAST(substr(started_at_local, 12, 2) AS INTEGER), count(*) "
            "FROM downloads GROUP BY 1, 2").fetchall()]
        conn.close()
    assert [r[:4] for r in got] == sorted(want)


def test_export_again_keeps_one_copy(dataset: tuple[list[Path], Path]) -> None:
    dbs, root = dataset
    before = sorted(p for p in root.rglob("*") if p.is_file())
    assert pytomo("export", str(dbs[0]), "--to", str(root)).returncode == 0
    assert sorted(p for p in root.rglob("*") if p.is_file()) == before


def test_csv_export(dataset: tuple[list[Path], Path], tmp_path: Path) -> None:
    dbs, _ = dataset
    proc = pytomo("export", str(dbs[0]), "--to", str(tmp_path), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert {p.stem for p in run.glob("*.csv")} == {*TABLES, "pytomo_crawl"}
    # counts are integers and times typed, as DuckDB reads the files back
    con = analyses.connect()
    described = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv('{run}/downloads.csv')").fetchall()}
    assert described["bytes"] == "BIGINT" and described["started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert described["started_at_local"] == "TIMESTAMP" and described["started_at_utc_offset_s"] == "BIGINT"
    with open(run / "throughput_samples.csv") as f:
        assert all(line.split(",")[-4].isdigit() for line in list(f)[1:]), "bytes written as integers"


def test_duckdb_and_dask_give_the_same_tables(dataset: tuple[list[Path], Path], tmp_path: Path) -> None:
    from distributed import LocalCluster

    _, root = dataset
    proc = pytomo("analyse", str(root), "--out", str(tmp_path / "duckdb"))
    assert proc.returncode == 0, proc.stderr
    for a in analyses.analyses():
        assert f"== {a.name}" in proc.stdout
        assert (tmp_path / "duckdb" / f"{a.name}.csv").is_file()
        assert (tmp_path / "duckdb" / f"{a.name}.png").read_bytes()[:4] == b"\x89PNG"
    with_duckdb, _ = analyses.run_duckdb(root)
    with_dask, notes = analyses.run_dask(root, cluster_factory=lambda: LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None))
    assert notes and all(not t.empty for t in with_duckdb.values())
    assert with_duckdb["time_to_start"]["videos"].sum() > 0
    assert analyses.compare(with_duckdb, with_dask) == []


def test_analyse_engine_dask_from_the_command_line(dataset: tuple[list[Path], Path], tmp_path: Path) -> None:
    _, root = dataset
    proc = pytomo("analyse", str(root), "--engine", "dask", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted(f"{a.name}.csv" for a in analyses.analyses())


def test_bad_dataset_is_a_usage_error(tmp_path: Path) -> None:
    assert pytomo("analyse", str(tmp_path / "nothing")).returncode == 2
    assert pytomo("export", str(tmp_path / "missing.db"), "--to", str(tmp_path)).returncode == 2


def test_engines_agree_with_as_country_and_local_time(tmp_path: Path) -> None:
    """The columns a lab crawl leaves empty (AS, country, local time): generated, and both engines still agree."""
    from distributed import LocalCluster

    from bench.analysis_bench import generate

    generate(tmp_path, 3000, 6)
    with_duckdb, notes = analyses.run_duckdb(tmp_path)
    assert any("as_number" in n for n in notes) and any("local time" in n for n in notes)
    assert with_duckdb["throughput_cdf"]["cache_group"].str.startswith("AS").all()
    assert set(with_duckdb["stall_ratio"]["country"]) - {"unknown"}
    with_dask, _ = analyses.run_dask(tmp_path, cluster_factory=lambda: LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None))
    assert analyses.compare(with_duckdb, with_dask) == []


def _put(root: Path, table: str, service: str | None, date: str, data: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pytomo.dataset.parquet import partition_value

    folder = root / table / f"service={partition_value(service)}" / f"utc_date={date}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data), folder / f"{date}.parquet")


def test_engines_agree_on_runs_of_two_schemas(tmp_path: Path) -> None:
    """The first run's files lack columns that a later run's have (stream_role, as_number, started_at_local,
    country; the run's vantage_country), one run's service is unknown (NULL), one file has no rows: the layout has
    the columns of every file, Dask runs DuckDB's frame on each partition, and both engines agree."""
    from distributed import LocalCluster

    _put(tmp_path, "downloads", "Lab/=x", "2026-01-01", {
        "run_uuid": ["a"] * 4, "address": ["10.0.0.1", None, None, "10.0.0.2"], "host": ["h1", "h2", None, "h1"],
        "avg_throughput_bps": [1e6, 2e6, None, 4e6], "time_to_start_s": [0.5, None, 1.0, 2.0],
        "stall_count": [0, None, 2, 1], "stall_total_s": [None, None, 3.0, 1.0], "played_s": [10.0, None, 5.0, None],
        "ping_min_ms": [5.0, 10.0, None, 250.0], "started_at": ["2026-01-01T03:00:00Z", "bad", None, "x"]})
    _put(tmp_path, "run", "Lab/=x", "2026-01-01", {"run_uuid": ["a"], "started_at": ["2026-01-01T00:00:00Z"]})
    _put(tmp_path, "downloads", "YouTube", "2026-01-02", {
        "run_uuid": ["b"] * 5, "address": ["10.0.0.3"] * 5, "host": ["h3"] * 5,
        "as_number": [15169, None, 15169, 3215, 3215], "country": ["US", None, "US", "FR", "FR"],
        "stream_role": ["progressive", "video", "audio", None, "progressive"],
        "avg_throughput_bps": [3e6, 5e6, 1e5, 7e6, None], "time_to_start_s": [0.1, 0.2, 0.3, None, 0.4],
        "stall_count": [0, 1, 0, None, 3], "stall_total_s": [0.0, 2.0, None, None, 4.5],
        "played_s": [20.0, 30.0, 1.0, None, 2.0], "ping_min_ms": [19.9, 20.0, 50.0, 199.99, 0.0],
        "started_at": ["2026-01-02T01:00:00Z"] * 5,
        "started_at_local": ["2026-01-02T02:00:00+01:00", None, "2026-01-02T23:00:00-02:00", "x", "2026-01-02T09:5"]})
    _put(tmp_path, "run", "YouTube", "2026-01-02", {"run_uuid": ["b"], "vantage_country": ["DE"]})
    _put(tmp_path, "downloads", "YouTube", "2026-01-03", {"run_uuid": [], "ping_min_ms": []})
    _put(tmp_path, "downloads", None, "2026-01-04", {
        "run_uuid": ["d"] * 2, "ping_min_ms": [1.0, 2.0], "avg_throughput_bps": [1e6, 3e6],
        "time_to_start_s": [1.0, None], "stall_count": [1, 0]})
    _put(tmp_path, "run", None, "2026-01-04", {"run_uuid": ["d"], "vantage_country": [None]})

    with_duckdb, notes = analyses.run_duckdb(tmp_path)
    assert any("downloads.as_number" in n for n in notes) and any("run.vantage_country" in n for n in notes)
    stall = with_duckdb["stall_ratio"]
    assert stall["videos"].sum() == 10  # the audio row left out
    assert stall["service"].isna().sum() == 1  # the run of no service is a group, as SQL groups a NULL
    assert set(stall["country"]) == {"unknown", "DE"}
    with_dask, _ = analyses.run_dask(tmp_path, cluster_factory=lambda: LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None))
    assert analyses.compare(with_duckdb, with_dask) == []
