"""The one command: ``pytomo crawl | server | lab | rrd | p1203 | export | analyse | upload | tokens``, every entry
point's way in and its exit status."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytomo.cli.status import ExitStatus, exit_status, guarded

__all__ = ["COMMANDS", "ExitStatus", "crawl_main", "exit_status", "guarded", "main", "parse_crawl_args", "run_command",
           "server_main"]
_LAZY = {"crawl_main": "pytomo.cli.crawl", "parse_crawl_args": "pytomo.cli.crawl", "server_main": "pytomo.cli.server"}


def __getattr__(name: str) -> Any:
    """``from pytomo.cli import crawl_main`` without importing the crawler into Pytomo's child processes."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Command:
    """One sub-command: where its ``main(argv, prog)`` is, and its line in ``pytomo --help``."""

    module: str
    function: str
    summary: str


COMMANDS: dict[str, Command] = {
    "crawl": Command("pytomo.cli.crawl", "crawl_main",
                     "measure videos: cache servers, DNS, RTT, throughput, stalls (start_crawl.py)"),
    "server": Command("pytomo.cli.server", "server_main",
                      "graphs and pages of the run databases in a browser (start_server.py)"),
    "lab": Command("pytomo.cli.tools", "lab_main", "run the test lab alone, print its addresses, serve until Ctrl-C"),
    "rrd": Command("pytomo.cli.server", "rrd_main",
                   "rebuild the RRD files of run databases (start_server.py --rebuild-rrd)"),
    "p1203": Command("pytomo.cli.tools", "p1203_main", "the ITU-T P.1203 inputs of a run's videos, JSON lines"),
    "upload": Command("pytomo.cli.upload", "upload_main",
                      "send ended runs to a collector (--collector URL; a killed run is closed first), or show the "
                      "outbox (--status)"),
    "tokens": Command("pytomo.cli.tokens", "tokens_main",
                      "the collector's tokens: add NAME, list, revoke NAME (--tokens FILE)"),
    "withdraw": Command("pytomo.cli.withdraw", "withdraw_main",
                        "remove runs from a collector: stored file, index row, dataset files (--collect-dir DIR)"),
    "import": Command("pytomo.cli.import_", "import_main",
                      "2015 databases and 2013 dumps (--tz ZONE) as run databases of today's schema"),
    "export": Command("pytomo.cli.export", "export_main",
                      "run databases as a Hive-partitioned Parquet dataset (or CSV files) for researchers"),
    "analyse": Command("pytomo.cli.analyse", "analyse_main",
                       "the analyses of a Parquet dataset (five, and the verdict's aggregates), with DuckDB "
                       "(default) or Dask: tables, PNGs"),
}
CHILDREN = {"_delayline": ("pytomo.lab.delayline", "main"), "_mediainfo": ("pytomo.media.sandbox", "child_main")}
"""Pytomo's own child processes (pytomo/paths.py child_command), not listed: their argv comes from the parent."""


def usage() -> str:
    """``pytomo --help``: the sub-commands, one line each."""
    width = max(map(len, COMMANDS))
    lines = ["usage: pytomo COMMAND [options]   (pytomo COMMAND --help: the options of one)", "", "commands:"]
    lines += [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
    lines += ["", "  -V, --version  the versions of Pytomo, yt-dlp, its JS runtime and yt-dlp-ejs", "",
              f"exit status: {', '.join(f'{int(s)} {s.name.lower()}' for s in ExitStatus)}"]
    return "\n".join(lines)


def _function(module: str, name: str) -> Callable[..., int]:
    return getattr(importlib.import_module(module), name)


def run_command(name: str, argv: list[str], prog: str | None = None) -> int:
    """Run one sub-command (``start_crawl.py`` and ``start_server.py`` come in here with their 2015 names)."""
    command = COMMANDS[name]
    return _function(command.module, command.function)(argv, prog or f"pytomo {name}")


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``pytomo COMMAND ...`` (``python -m pytomo`` and the one-file executable)."""
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command in COMMANDS:
        return run_command(command, rest)
    if command in CHILDREN:
        return _function(*CHILDREN[command])(rest)
    if command in ("-V", "--version"):  # what ``crawl --version`` prints: Pytomo's, yt-dlp's, the JS runtime's
        from pytomo.version import version_lines

        print("\n".join(version_lines()), flush=True)
        return ExitStatus.OK
    if command in ("-h", "--help"):
        print(usage())
        return ExitStatus.OK
    print(usage(), file=sys.stderr)
    print(f"pytomo: error: {'no command given' if not command else f'unknown command {command!r}'}", file=sys.stderr)
    return ExitStatus.USAGE
