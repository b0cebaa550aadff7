"""Arrow tables of a run (``pytomo.readers.tables.tables_of``) -> one Hive-partitioned Parquet dataset per table.

``write_run(tables, root)`` writes ``root/<table>/service=<s>/utc_date=<d>/<run_uuid>.parquet``: each file is
written to a temporary name in its folder (ignored by readers: it starts with a dot), fsynced and renamed over
the final name, so a reader sees a whole file or none, and the same run written twice is one copy. The ``run``
table is written last: a run listed in ``run`` has all its rows in the other tables. A run's files are written
first, then fsynced together, renamed (``run`` last) and their folders fsynced once each: the same guarantees as
one file after the other, with fsyncs the filesystem can commit together.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pytomo.errors import StorageError

PARTITIONS = ("service", "utc_date")
COMPRESSED_FROM_ROWS = 100
"""A file of fewer rows is written uncompressed: zstd's cost per column chunk is more than it saves on a few rows
(the collector's bench: 17.4 → 10.9 ms of CPU a run for its 14 tables, 5 % more bytes)."""
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # a NULL partition value, as Hive, Spark and DuckDB write it


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
    """The rows of a table by partition (service, utc_date), without the partition columns (they are the path);
    None and "" of a key go to one file (they quote alike). Grouped by Arrow at once, rows in their order."""
    keys = [pc.if_else(pc.equal(data.column(k), ""), pa.scalar(None, pa.string()), data.column(k)) for k in PARTITIONS]
    body = data.drop_columns(list(PARTITIONS))
    one = _one_partition(keys)
    if one is not None:  # the common case (one service, one day): no grouping
        yield (partition_value(one[0]), partition_value(one[1])), body
        return
    distinct = pa.table(dict(zip(PARTITIONS, keys))).group_by(list(PARTITIONS), use_threads=False).aggregate([])
    for service, day in zip(distinct.column(PARTITIONS[0]).to_pylist(), distinct.column(PARTITIONS[1]).to_pylist()):
        mask = pc.and_(*(pc.is_null(k) if v is None else pc.fill_null(pc.equal(k, v), False)
                         for k, v in zip(keys, (service, day))))
        yield (partition_value(service), partition_value(day)), body.filter(mask)


def _one_partition(keys: list[Any]) -> tuple[Any, ...] | None:
    """The one (service, utc_date) of every row, or None (rows of several partitions, or none)."""
    values = []
    for k in keys:
        if len(k) == 0:
            return None
        first = k[0].as_py()
        if first is None:
            same = k.null_count == len(k)
        else:
            same = k.null_count == 0 and bool(pc.all(pc.equal(k, first)).as_py())
        if not same:
            return None
        values.append(first)
    return tuple(values)


def _staged(data: pa.Table, target: Path) -> tuple[str, int]:
    """``data`` written to a temporary name beside ``target``, not yet fsynced: (its name, its open descriptor)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(os.dup(fd), "wb") as f:
            pq.write_table(data, f, compression="zstd" if data.num_rows >= COMPRESSED_FROM_ROWS else "none")
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, fd


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
    staged: list[tuple[str, int, Path]] = []
    try:
        for name in sorted(tables, key=lambda n: n == "run"):
            data = tables[name]
            groups = list(_groups(data)) or [(default, data.drop_columns(list(PARTITIONS)))]
            for (service, date), part in groups:
                target = root / name / f"service={service}" / f"utc_date={date}" / f"{run_uuid}.parquet"
                staged.append((*_staged(part, target), target))
        for _, fd, _ in staged:
            os.fsync(fd)
        for tmp, _, target in staged:  # the run table last
            os.replace(tmp, target)
    except BaseException:
        for tmp, _, _ in staged:
            Path(tmp).unlink(missing_ok=True)  # those not renamed yet
        raise
    finally:
        for _, fd, _ in staged:
            os.close(fd)
    for folder in dict.fromkeys(target.parent for _, _, target in staged):
        _fsync_dir(folder)
