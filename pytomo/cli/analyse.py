"""``pytomo analyse DATASET``: the analyses of a Parquet dataset (five, and the aggregates), DuckDB or Dask."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import UsageError


def analyse_parser(prog: str = "pytomo analyse") -> argparse.ArgumentParser:
    """The options of ``pytomo analyse``."""
    p = Parser(prog=prog, description="Throughput CDF per cache-server AS, stall ratio per service and country, "
                                      "time to start, RTT against throughput, median per local hour of the day "
                                      "('unknown' for a run without local times), the verdict's aggregates: tables "
                                      "printed and, with --out, as CSV (counts as integers) and PNG files.")
    p.add_argument("dataset", metavar="DATASET", help="a dataset written by pytomo export (or the collector)")
    p.add_argument("--engine", choices=("duckdb", "dask"), default="duckdb", help="default: duckdb (embedded)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask: the scheduler's address (tcp://host:8786); default: a local cluster of 2 workers")
    p.add_argument("--out", metavar="DIR", help="write <analysis>.csv and <analysis>.png here")
    return p


def _analyse(argv: list[str], prog: str) -> int:
    from pytomo.dataset import analyses

    args = analyse_parser(prog).parse_args(argv)
    root = Path(args.dataset)
    if not root.is_dir():
        raise UsageError(f"no dataset at {root}")
    if args.scheduler and args.engine != "dask":
        raise UsageError("--scheduler needs --engine dask")
    if args.engine == "dask":
        tables, notes = analyses.run_dask(root, args.scheduler)
    else:
        tables, notes = analyses.run_duckdb(root)
    print(analyses.write_outputs(tables, notes, Path(args.out) if args.out else None), flush=True)
    return ExitStatus.OK


def analyse_main(argv: list[str] | None = None, prog: str = "pytomo analyse") -> int:
    """``pytomo analyse``: 0 done, 1 failed, 2 bad usage or no dataset."""
    return guarded(prog, lambda: _analyse(sys.argv[1:] if argv is None else argv, prog))
