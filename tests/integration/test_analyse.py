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


def test_duckdb_and_dask_give_the_same_tables(dataset: tuple[list[Path], Path], tmp_path: Path) -> None:
    from distributed import LocalCluster

    _, root = dataset
    proc = pytomo("analyse", str(root), "--out", str(tmp_path / "duckdb"))
    assert proc.returncode == 0, proc.stderr
    for a in analyses.ANALYSES:
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
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted(f"{a.name}.csv" for a in analyses.ANALYSES)


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
