"""The 2013 crawls and a lab run through ``pytomo import``, ``pytomo export`` and the collector: DuckDB compares them
over the Parquet dataset without a cast; a 2015-layout database made from a lab run imports with its every value."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_of, run_crawler, uuid_of
from tests.integration.test_collector import collector  # noqa: F401  (the fixture)
from tests.web.legacy import COLUMNS_2015, REAL_2013, make_2015_database

duckdb = pytest.importorskip("duckdb")

DUMPS = sorted(REAL_2013.glob("aggregation_*.txt"))
pytestmark = pytest.mark.skipif(len(DUMPS) != 2, reason="../shared/pytomo2013 holds the two real 2013 dumps")


def pytomo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytomo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, env=env)


def imported(done: subprocess.CompletedProcess) -> list[Path]:
    assert done.returncode == 0, done.stderr
    return [Path(line.rsplit(" -> ", 1)[1]) for line in done.stdout.strip().splitlines()]


def dump_throughputs(dump: Path) -> list[float]:
    """8 DownloadBytes / DownloadTime of each downloaded row, from the dump's text (columns 15 and 10)."""
    out = []
    for line in dump.read_text().splitlines():
        cells = line.split("|")
        if cells[14] and cells[9] and float(cells[9]) > 0:
            out.append(int(cells[14]) * 8 / float(cells[9]))
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("import-chain")
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "3", "-D", "1", "-n", "1", "-S", "0",
                        "--database-dir", str(work / "lab")])
    lab_db = database_of(proc)
    runs = imported(pytomo("import", *map(str, DUMPS), "--tz", "Europe/Paris", "--out", str(work / "imported")))
    root = work / "dataset"
    done = pytomo("export", *map(str, [*runs, lab_db]), "--to", str(root))
    assert done.returncode == 0, done.stderr
    return {"lab": lab_db, "runs": dict(zip(DUMPS, runs, strict=True)), "root": root, "work": work}


def test_duckdb_compares_2013_with_a_lab_run_without_a_cast(chain: dict) -> None:
    glob = str(chain["root"] / "downloads" / "**" / "*.parquet")
    con = duckdb.connect()
    rel = con.execute("SELECT run_uuid, service, utc_date, count(*) AS n, avg(throughput_2015_bps) AS thp_bps,"
                      " avg(ping_min_ms) AS rtt_ms FROM read_parquet(?, hive_partitioning=true, union_by_name=true)"
                      " GROUP BY run_uuid, service, utc_date ORDER BY utc_date, run_uuid", [glob])
    types = {d[0]: str(d[1]) for d in rel.description}
    rows = {r[0]: r for r in rel.fetchall()}
    assert types["thp_bps"] in ("DOUBLE", "NUMBER") and types["rtt_ms"] in ("DOUBLE", "NUMBER")
    for dump, db in chain["runs"].items():
        (run_uuid, service, day, n, thp, _rtt) = rows.pop(uuid_of(db))
        want = dump_throughputs(dump)
        assert service == "YouTube" and str(day) == "2013-01-24"
        assert n == sum(1 for line in dump.read_text().splitlines() if line.split("|")[14])
        assert thp == pytest.approx(sum(want) / len(want), rel=1e-12)
    lab_uuid = uuid_of(chain["lab"])
    conn = sqlite3.connect(f"file:{chain['lab']}?mode=ro&immutable=1", uri=True)
    lab = conn.execute("SELECT count(*), avg(throughput_2015_bps), avg(ping_min_ms) FROM downloads").fetchone()
    conn.close()
    lab_rows = [r for r in rows.values() if r[0] == lab_uuid]
    assert lab_rows and len(rows) == len(lab_rows)  # the lab run, and nothing else
    assert sum(r[3] for r in lab_rows) == lab[0]
    if len(lab_rows) == 1:  # one UTC day (a run across midnight has two rows)
        assert lab_rows[0][4] == pytest.approx(lab[1], rel=1e-12)


def test_export_keeps_the_2015_values_under_their_names(chain: dict) -> None:
    glob = str(chain["root"] / "pytomo_crawl" / "**" / "*.parquet")
    con = duckdb.connect()
    for dump, db in chain["runs"].items():
        got = con.execute("SELECT LocalID, PlaybackDuration, EncodingRate, DownloadBytes, RedirectUrl FROM "
                          "read_parquet(?, hive_partitioning=true, union_by_name=true) WHERE run_uuid = ? "
                          "ORDER BY ID", [glob, uuid_of(db)]).fetchall()
        want = []
        for line in dump.read_text().splitlines():
            c = line.split("|")
            want.append((datetime.fromisoformat(c[0]), float(c[20]) if c[20] else None,
                         float(c[13]) if c[13] else None, int(c[14]) if c[14] else None, c[23] or None))
        assert got == sorted(want, key=lambda w: w[0])  # PlaybackDuration: the media seconds 2015 wrote
        # ID is the instant (UTC), LocalID the volunteer's wall clock: Paris was UTC+1 that January
        times = con.execute("SELECT DISTINCT epoch(LocalID) - epoch(ID), utc_offset_s FROM read_parquet(?, "
                            "hive_partitioning=true, union_by_name=true) WHERE run_uuid = ?",
                            [glob, uuid_of(db)]).fetchall()
        assert times == [(3600.0, 3600)]


def test_a_2015_database_of_a_lab_run_imports(chain: dict) -> None:
    old = make_2015_database(chain["lab"], chain["work"] / "old")
    (db,) = imported(pytomo("import", str(old), "--tz", "UTC", "--out", str(chain["work"] / "old-imported")))
    names = [c for c, _t in COLUMNS_2015]
    src = sqlite3.connect(f"file:{old}?mode=ro&immutable=1", uri=True)
    table = src.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    source = src.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY rowid").fetchall()
    src.close()
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    got = conn.execute(f"SELECT LocalID, {', '.join(names[1:])} FROM crawl_2015 ORDER BY rowid").fetchall()
    downloads = conn.execute("SELECT count(*) FROM downloads").fetchone()[0]
    layout = conn.execute("SELECT settings_json FROM run").fetchone()[0]
    conn.close()
    assert got == source and '"2015 database"' in layout
    assert downloads == sum(r[names.index("DownloadBytes")] is not None for r in source)
    lab = sqlite3.connect(f"file:{chain['lab']}?mode=ro&immutable=1", uri=True)
    videos = lab.execute("SELECT count(*) FROM videos v WHERE EXISTS (SELECT 1 FROM hops h JOIN dns_answers a ON "
                         "a.video_row_id = h.video_row_id AND a.host = h.host AND a.address IS NOT NULL "
                         "WHERE h.video_row_id = v.id)").fetchone()[0]
    lab.close()
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] == videos
    conn.close()


def test_the_collector_takes_an_imported_run(collector, chain: dict) -> None:  # noqa: F811
    base, folder, tokens = collector
    dump, db = next(iter(chain["runs"].items()))
    env = {**os.environ, "PYTOMO_COLLECTOR_TOKEN": tokens["alice"]}
    done = pytomo("upload", "--collector", base, str(db), env=env)
    assert done.returncode == 0 and "1 sent, 0 failed" in done.stdout, (done.stdout, done.stderr)
    run_uuid = uuid_of(db)
    con = duckdb.connect()
    glob = str(folder / "dataset" / "pytomo_crawl" / "**" / "*.parquet")
    deadline = time.monotonic() + 30
    while not list((folder / "dataset").rglob(f"{run_uuid}.parquet")) and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = con.execute("SELECT count(*), sum(DownloadBytes) FROM read_parquet(?, hive_partitioning=true, "
                       "union_by_name=true) WHERE run_uuid = ?", [glob, run_uuid]).fetchone()
    lines = [line.split("|") for line in dump.read_text().splitlines() if line]
    assert rows == (len(lines), sum(int(c[14]) for c in lines if c[14]))
    status = con.execute("SELECT status FROM read_parquet(?, hive_partitioning=true) WHERE run_uuid = ?",
                         [str(folder / "dataset" / "run" / "**" / "*.parquet"), run_uuid]).fetchall()
    assert status == [("imported",)]
    again = pytomo("upload", "--collector", base, str(db), env=env)  # the same run: the collector has it
    assert again.returncode == 0 and "already have it" in again.stdout, again.stdout
