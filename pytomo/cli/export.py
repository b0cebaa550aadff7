"""``pytomo export DB... --to DIR --format parquet|csv``: run databases as a Parquet dataset or CSV files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, BinaryIO

from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import StorageError, UsageError


def export_parser(prog: str = "pytomo export") -> argparse.ArgumentParser:
    """The options of ``pytomo export``."""
    p = Parser(prog=prog, description="Export run databases: a Hive-partitioned Parquet dataset (one per table and "
                                      "the 2015 pytomo_crawl view, DIR/<table>/service=S/utc_date=D/<run_uuid>"
                                      ".parquet; UTC times as timestamps, local ones as wall clock with their UTC "
                                      "offset beside them, units and descriptions as field metadata) or one CSV file "
                                      "per table and run (DIR/<run_uuid>/<table>.csv).")
    p.add_argument("databases", nargs="+", metavar="DB", help="run databases")
    p.add_argument("--to", required=True, metavar="DIR", help="the dataset's (or the CSV files') folder")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="default: parquet")
    return p


def _export(argv: list[str], prog: str) -> int:
    from pytomo.dataset.parquet import write_run
    from pytomo.readers.tables import tables_of

    args = export_parser(prog).parse_args(argv)
    root = Path(args.to)
    for db in map(Path, args.databases):
        try:
            _close_if_killed(db)
            tables = tables_of(db)
        except StorageError as exc:  # a file named on the command line
            raise UsageError(str(exc)) from None
        if args.format == "parquet":
            write_run(tables, root)
        else:
            _write_csv(tables, root)
        run_uuid = tables["run"].column("run_uuid")[0].as_py() if tables["run"].num_rows else "?"
        print(f"{db}: run {run_uuid}, {sum(t.num_rows for t in tables.values())} rows", flush=True)
    print(root, flush=True)
    return ExitStatus.OK


def _close_if_killed(db: Path) -> None:
    """A run whose crawler was killed is closed as ``interrupted`` first (``pytomo.storage.recover``); one still
    being written is refused (``StillWriting``, a ``StorageError``)."""
    from pytomo.readers.facts import run_status
    from pytomo.storage.recover import close_killed

    try:
        running = run_status(db) == "running"
    except StorageError:
        return  # not a run database of ours: tables_of says what it is
    if running:
        close_killed(db, closer="pytomo export")


def _write_csv(tables: dict[str, Any], root: Path) -> None:
    """One CSV file per table and the view: ``root/<run_uuid>/<table>.csv``, each written atomically."""
    import pyarrow.csv as pcsv

    from pytomo.dataset.parquet import write_atomically_with

    run_uuid = next(t.column("run_uuid")[0].as_py() for t in tables.values() if t.num_rows)
    for name, table in tables.items():
        def write(f: BinaryIO, data: Any = table) -> None:
            pcsv.write_csv(data, f)

        write_atomically_with(write, root / str(run_uuid) / f"{name}.csv")


def export_main(argv: list[str] | None = None, prog: str = "pytomo export") -> int:
    """``pytomo export``: 0 done, 1 could not write, 2 bad usage or a file that is not a run database."""
    return guarded(prog, lambda: _export(sys.argv[1:] if argv is None else argv, prog))
