"""``pytomo import SOURCE... --tz ZONE --out DIR``: 2015 databases and 2013 dumps as run databases of our schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import UsageError


def import_parser(prog: str = "pytomo import") -> argparse.ArgumentParser:
    """The options of ``pytomo import``."""
    p = Parser(prog=prog, description="Import the 2015 Pytomo's databases (one table pytomo_crawl_<time>) and "
                                      "'|'-separated dumps of its table (24 columns in 2013, 29 in 2015): one run "
                                      "database of today's schema per source, which export, analyse, the server and "
                                      "the collector read. The same source always gives the same run (its UUID comes "
                                      "from the file's SHA-256).")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="2015 databases or dumps of their table")
    p.add_argument("--tz", metavar="ZONE",
                   help="IANA zone of the volunteer's clock (Europe/Paris): the 2015 ID is a local time without "
                        "offset; required, never guessed (UTC for a database written in UTC)")
    p.add_argument("--out", default=".", metavar="DIR", help="folder of the run databases (default: .)")
    p.add_argument("--label", metavar="LABEL", help="run.host_label of the imported runs (default: none)")
    return p


def _import(argv: list[str], prog: str) -> int:
    from pytomo.readers.facts import fallback_uuid
    from pytomo.readers.legacy_source import open_source
    from pytomo.storage.imported import ImportFacts, write_imported
    from pytomo.zones import zone

    args = import_parser(prog).parse_args(argv)
    if not args.tz:
        raise UsageError("--tz ZONE is required: the 2015 ID is the volunteer's local time without its offset "
                         "(give Europe/Paris, or UTC if the clock was UTC)")
    zone(args.tz)  # an unknown zone: one line, before any file is read
    for path in map(Path, args.sources):
        source, rows = open_source(path)
        facts = ImportFacts(source.name, source.sha256, source.layout, source.missing(), source.rows, args.tz,
                            fallback_uuid(source.sha256), args.label)
        try:
            target, counts = write_imported(rows, facts, Path(args.out))
        finally:
            rows.close()
        print(f"{path}: run {facts.run_uuid} ({source.layout}, {source.rows} rows: {counts['videos']} videos, "
              f"{counts['hops']} hops, {counts['downloads']} downloads) -> {target}", flush=True)
    return ExitStatus.OK


def import_main(argv: list[str] | None = None, prog: str = "pytomo import") -> int:
    """``pytomo import``: 0 done, 1 could not write, 2 bad usage or a source that is not a 2015 database or dump."""
    return guarded(prog, lambda: _import(sys.argv[1:] if argv is None else argv, prog))
