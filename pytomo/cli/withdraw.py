"""``pytomo withdraw RUN_UUID... --collect-dir DIR``: remove runs from a collector everywhere they went."""

from __future__ import annotations

import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded


def withdraw_parser(prog: str) -> Parser:
    """The options of ``pytomo withdraw``."""
    p = Parser(prog=prog, description="Remove runs from a collector's folder: the stored database, the index row and "
               "every Parquet file of the run in the dataset (all tables, all partitions). Safe beside a running "
               "collector, and to run again after a crash midway (see docs/web.md).")
    p.add_argument("runs", nargs="+", metavar="RUN_UUID", help="the run UUID (GET /api/v1/runs lists them)")
    p.add_argument("--collect-dir", required=True, metavar="DIR", help="the collector's folder (its --collect DIR)")
    return p


def _withdraw(argv: list[str], prog: str) -> int:
    from pytomo.collector.store import Collector, NotHeld

    ns = withdraw_parser(prog).parse_args(argv)
    collector = Collector(Path(ns.collect_dir), owner=False)
    status = ExitStatus.OK
    for run_uuid in ns.runs:
        try:
            done = collector.withdraw(run_uuid)
        except NotHeld as exc:
            print(f"{prog}: {exc}", file=sys.stderr, flush=True)
            status = ExitStatus.FAILURE
            continue
        parts = [f"{done.dataset_files} dataset file{'s' if done.dataset_files != 1 else ''}"]
        parts.insert(0, "its stored database" if done.file else "no stored database (already gone)")
        parts.insert(1, "its index row" if done.row else "no index row")
        print(f"run {done.run_uuid} withdrawn from {ns.collect_dir}: {', '.join(parts)} removed", flush=True)
    return status


def withdraw_main(argv: list[str] | None = None, prog: str = "pytomo withdraw") -> int:
    """``pytomo withdraw``: 0 every run withdrawn, 1 a run not held (or being stored right now), 2 bad usage."""
    return guarded(prog, lambda: _withdraw(sys.argv[1:] if argv is None else argv, prog))
