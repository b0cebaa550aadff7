"""The five analyses of ``pytomo analyse`` over a generated dataset of N videos (default 1,000,000): DuckDB's time
(target < 5 s each) and Dask's beside it on a LocalCluster of 2 workers; and the Parquet side of ingestion.

The dataset is written with pyarrow straight into the real layout: every table's columns are those that
``pytomo.readers.tables.tables_of`` gives for a run database of today's schema, partitioned
``<table>/service=S/utc_date=D/<run_uuid>.parquet``; the columns the analyses read are filled from seeded random
values, the others are NULL. Run: ``.venv/bin/python bench/analysis_bench.py [--videos N] [--runs R] [--no-dask]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import table  # noqa: E402
from pytomo.dataset import analyses  # noqa: E402
from pytomo.dataset.parquet import PARTITIONS, write_atomically, write_run  # noqa: E402
from pytomo.readers.tables import tables_of  # noqa: E402
from pytomo.storage.schema import TABLES as DDL  # noqa: E402
from pytomo.storage.schema import VIEW  # noqa: E402

SERVICES = ("YouTube", "Dailymotion", "Lab")
COUNTRIES = ("FR", "DE", "US", "BR", "JP", "IN", "NG", "GB")


def schemas() -> dict[str, pa.Schema]:
    """The columns ``tables_of`` gives for each table of an (empty) run database of today's schema."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "empty.db"
        conn = sqlite3.connect(db)
        conn.executescript(DDL + VIEW)
        conn.close()
        return {name: t.schema for name, t in tables_of(db).items()}


def _column(n: int, name: str, kind: pa.DataType, fill: dict[str, np.ndarray | list]) -> pa.Array:
    if name in fill and pa.types.is_timestamp(kind):  # typed times: the text's wall clock, UTC or local
        wall = pc.utf8_slice_codeunits(pa.array(fill[name], pa.string()), 0, 26)
        return wall.cast(pa.timestamp(kind.unit)).cast(kind)
    if name in fill:
        return pa.array(fill[name], type=kind)
    return pa.nulls(n, type=kind)


def _downloads(rng: np.random.Generator, n: int, start_id: int, run_day: int, hour0: float, offset_h: int,
               n_servers: int) -> dict[str, np.ndarray | list]:
    ids = np.arange(start_id, start_id + n)
    rtt = rng.lognormal(3.2, 0.9, n)  # ms, median about 25 ms
    thr = rng.lognormal(16.0, 1.0, n) / np.sqrt(rtt / 25)  # bit/s, median about 9 Mbit/s, lower far away
    started = rng.random(n) > 0.03
    stall_count = np.where(started, rng.poisson(0.3, n), 0)
    server = rng.integers(0, n_servers, n)
    hours = (hour0 + np.arange(n) * (24.0 / max(n, 1))) % 24
    stamp = [f"2026-01-{run_day:02d}T{int(h):02d}:{int(h % 1 * 60):02d}:00.000000Z" for h in hours]
    local = [f"2026-01-{run_day:02d}T{(int(h) + offset_h) % 24:02d}:{int(h % 1 * 60):02d}:00.000000+00:00"
             for h in hours]
    return {
        "id": ids, "video_row_id": ids, "url": [f"http://c{s}.bench.test/v" for s in server],
        "host": [f"c{s}.bench.test" for s in server], "address": [f"10.{s // 250}.{s % 250}.1" for s in server],
        "as_number": 64500 + server % 50, "country": [COUNTRIES[s % len(COUNTRIES)] for s in server],
        "started_at": stamp, "started_at_local": local, "started_at_utc_offset_s": [offset_h * 3600] * n,
        "stream_role": ["progressive"] * n,
        "avg_throughput_bps": thr, "ping_min_ms": rtt,
        "time_to_start_s": np.where(started, rng.lognormal(-0.5, 0.6, n), np.nan).tolist(),
        "stall_count": stall_count, "stall_total_s": np.where(started, stall_count * rng.uniform(0.2, 3, n), np.nan),
        "played_s": np.where(started, rng.uniform(5, 30, n), np.nan),
    }


def _nan_to_null(fill: dict[str, np.ndarray | list]) -> dict[str, np.ndarray | list]:
    return {k: [None if isinstance(x, float) and x != x else x for x in v] if isinstance(v, list)
            else (v if v.dtype.kind != "f" or not np.isnan(v).any() else [None if x != x else x for x in v.tolist()])
            for k, v in fill.items()}


def generate(root: Path, videos: int, runs: int, seed: int = 42) -> dict[str, int]:
    """``videos`` videos in ``runs`` runs (one service and day each), tables run, videos and downloads."""
    rng = np.random.default_rng(seed)
    layout = schemas()
    per_run = videos // runs
    rows = {"run": 0, "videos": 0, "downloads": 0}
    for r in range(runs):
        run_uuid = str(uuid.UUID(int=(int(rng.integers(0, 2**62)) << 64) | r, version=4))
        service, day = SERVICES[r % len(SERVICES)], 1 + r % 28
        offset_h = int(rng.integers(-8, 10))
        n = per_run + (videos - per_run * runs if r == runs - 1 else 0)
        fill = _nan_to_null(_downloads(rng, n, 1, day, float(rng.uniform(0, 24)), offset_h, 400))
        common = {"run_uuid": [run_uuid] * n}
        tables = {
            "downloads": {**fill, **common},
            "videos": {"id": fill["id"], "run_id": [1] * n, "started_at": fill["started_at"],
                       "started_at_local": fill["started_at_local"],
                       "started_at_utc_offset_s": fill["started_at_utc_offset_s"], "status": ["ok"] * n, **common},
            "run": {"id": [1], "run_uuid": [run_uuid], "service": [service],
                    "started_at": [f"2026-01-{day:02d}T00:00:00.000000Z"], "utc_offset_s": [offset_h * 3600],
                    "vantage_country": [COUNTRIES[r % len(COUNTRIES)]], "status": ["finished"]},
        }
        date = f"2026-01-{day:02d}"
        for name, values in tables.items():
            schema = layout[name]
            size = len(values["run_uuid"])
            data = pa.table({f.name: _column(size, f.name, f.type, values) for f in schema
                             if f.name not in PARTITIONS})
            write_atomically(data, root / name / f"service={service}" / f"utc_date={date}" / f"{run_uuid}.parquet")
            rows[name] += size
    return rows


def _timed(fn: Callable[[], object], repeats: int = 2) -> float:
    """Best of ``repeats`` wall times (the first also warms the file cache)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_duckdb(root: Path) -> dict[str, float]:
    import duckdb

    lay = analyses.layout_of(root)
    frame = analyses.frame_sql(root, lay)
    con = duckdb.connect(config=dict(analyses.DUCKDB_CONFIG))
    return {a.name: _timed(lambda a=a: con.execute(analyses.analysis_sql(a, frame)).df()) for a in analyses.analyses()}


def time_dask(root: Path) -> dict[str, float]:
    from distributed import Client, LocalCluster

    lay = analyses.layout_of(root)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster):
        frame = analyses._dask_frame(root, lay)
        return {a.name: _timed(lambda a=a: analyses._dask_one(a, frame), repeats=1) for a in analyses.analyses()}


# --- uploads ingested per second -----------------------------------------------------------------------------------
# The collector's helper measures the whole path (HTTP upload of a 1 MB run, checks, storage, Parquet) against the
# target of 20 runs/s on 2 cores: plug it in here. ``parquet_ingest_rate`` is the Parquet part alone: tables_of +
# write_run of given run databases, as the collector calls them.

def parquet_ingest_rate(databases: list[Path], root: Path) -> tuple[float, float]:
    """(runs per second, MB per second) of tables_of + write_run over ``databases``."""
    t0 = time.perf_counter()
    size = 0
    for db in databases:
        write_run(tables_of(db), root)
        size += db.stat().st_size
    elapsed = time.perf_counter() - t0
    return len(databases) / elapsed, size / 1e6 / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=200, help="runs (files per table); default 200")
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--ingest-db", type=Path, action="append", default=[],
                   help="run databases to time the Parquet side of ingestion on (repeatable)")
    p.add_argument("--dir", type=Path, help="keep the dataset here (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp) / "dataset"
        t0 = time.perf_counter()
        rows = generate(root, args.videos, args.runs)
        gen_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 1e6
        print(f"dataset: {rows['downloads']:,} videos in {args.runs} runs, {size:.1f} MB of Parquet, "
              f"written in {gen_s:.1f} s", flush=True)
        duck = time_duckdb(root)
        dask = {} if args.no_dask else time_dask(root)
        out = [[a.name, f"{duck[a.name]:.3f}", "yes" if duck[a.name] < 5 else "NO",
                f"{dask[a.name]:.2f}" if dask else "-", f"{dask[a.name] / duck[a.name]:.1f}" if dask else "-"]
               for a in analyses.analyses()]
        print(table(["analysis", "DuckDB (s)", "< 5 s", "Dask, 2 workers (s)", "Dask / DuckDB"], out))
        report = {"videos": rows["downloads"], "runs": args.runs, "parquet_mb": size, "generate_s": gen_s,
                  "duckdb_s": duck, "dask_s": dask}
        if args.ingest_db:
            rate, mbps = parquet_ingest_rate(args.ingest_db, Path(tmp) / "ingest")
            print(f"Parquet ingestion (tables_of + write_run): {rate:.1f} runs/s, {mbps:.1f} MB/s")
            report["parquet_ingest_runs_per_s"] = rate
    (ROOT / "bench" / "reports").mkdir(exist_ok=True)
    (ROOT / "bench" / "reports" / "analysis.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
