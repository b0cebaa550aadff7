"""``write_run`` writes a run's files first, fsyncs them together and renames them with ``run`` last: every row in
its partition (one partition without grouping, several with), read back by DuckDB; a failure midway leaves no
temporary file and no ``run`` file."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytomo.dataset import parquet
from pytomo.dataset.parquet import DEFAULT_PARTITION, write_run

duckdb = pytest.importorskip("duckdb")
RUN = "5b0e2a6c-1f3d-4c8e-9a7b-2d4e6f8a0c1e"


def _tables() -> dict[str, pa.Table]:
    """A run row, videos over two services and two days (and a NULL and an empty service), and samples of one."""
    run = pa.table({"id": [1], "run_uuid": [RUN], "service": ["lab"], "utc_date": ["2026-12-06"]})
    services = ["lab", "lab", "yt", None, "", "lab"]
    days = ["2026-12-06", "2026-12-07", "2026-12-06", "2026-12-06", "2026-12-06", "2026-12-06"]
    videos = pa.table({"id": list(range(1, 7)), "run_uuid": [RUN] * 6, "service": services, "utc_date": days})
    samples = pa.table({"bin": list(range(1000)), "run_uuid": [RUN] * 1000, "service": ["lab"] * 1000,
                        "utc_date": ["2026-12-06"] * 1000})
    empty = pa.table({"x": pa.array([], pa.int64()), "run_uuid": pa.array([], pa.string()),
                      "service": pa.array([], pa.string()), "utc_date": pa.array([], pa.string())})
    return {"run": run, "videos": videos, "samples": samples, "stalls": empty}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_every_row_in_its_partition_and_the_run_renamed_last(tmp_path, monkeypatch):
    renamed: list[str] = []
    fsynced: list[int] = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(parquet.os, "replace", lambda a, b: (renamed.append(str(b)), real_replace(a, b))[1])
    monkeypatch.setattr(parquet.os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    write_run(_tables(), tmp_path)
    assert renamed[-1].endswith(f"run/service=lab/utc_date=2026-12-06/{RUN}.parquet") and len(renamed) == 7
    assert len(fsynced) >= 2 * len(renamed) - 1  # every file, and every folder (the run's shares one with samples)
    assert _files(tmp_path) == sorted([
        f"run/service=lab/utc_date=2026-12-06/{RUN}.parquet",
        f"samples/service=lab/utc_date=2026-12-06/{RUN}.parquet",
        f"stalls/service=lab/utc_date=2026-12-06/{RUN}.parquet",  # no rows: an empty file in the run's partition
        f"videos/service=lab/utc_date=2026-12-06/{RUN}.parquet",
        f"videos/service=lab/utc_date=2026-12-07/{RUN}.parquet",
        f"videos/service=yt/utc_date=2026-12-06/{RUN}.parquet",
        f"videos/service={DEFAULT_PARTITION}/utc_date=2026-12-06/{RUN}.parquet",  # NULL and "" alike
    ])
    con = duckdb.connect()
    rows = con.execute("SELECT id, service, utc_date FROM read_parquet(?, hive_partitioning=true) ORDER BY id",
                       [str(tmp_path / "videos" / "**" / "*.parquet")]).fetchall()
    assert [(i, s, str(d)) for i, s, d in rows] == [
        (1, "lab", "2026-12-06"), (2, "lab", "2026-12-07"), (3, "yt", "2026-12-06"),
        (4, None, "2026-12-06"), (5, None, "2026-12-06"), (6, "lab", "2026-12-06")]  # DuckDB: Hive's NULL
    assert pq.read_table(tmp_path / f"samples/service=lab/utc_date=2026-12-06/{RUN}.parquet").column("bin") \
        .to_pylist() == list(range(1000))
    def codec(path: str) -> str:
        return pq.ParquetFile(tmp_path / path).metadata.row_group(0).column(0).compression

    assert codec(f"samples/service=lab/utc_date=2026-12-06/{RUN}.parquet") == "ZSTD"  # 1,000 rows
    assert codec(f"run/service=lab/utc_date=2026-12-06/{RUN}.parquet") == "UNCOMPRESSED"  # one row: not worth it
    # written again: one copy, no temporary file left
    write_run(_tables(), tmp_path)
    assert len(_files(tmp_path)) == 7 and not list(tmp_path.rglob(".*"))


def test_a_failure_midway_leaves_no_temporary_file_and_no_run(tmp_path, monkeypatch):
    calls = []
    real = pq.write_table

    def failing(data, where, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(data, where, **kw)

    monkeypatch.setattr(parquet.pq, "write_table", failing)
    with pytest.raises(OSError):
        write_run(_tables(), tmp_path)
    assert _files(tmp_path) == []  # nothing renamed before every file was written
