"""``pytomo server`` (start_server.py) and ``pytomo rrd`` (start_server.py --rebuild-rrd): argv -> exit status."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import UsageError
from pytomo.version import __version__
from pytomo.zones import Clock, zone

PROG = "start_server.py"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if value != 0 and not 1024 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} must be 0 (any free port) or within 1024-65535")
    return value


def _databases_options(p: argparse.ArgumentParser, first: str) -> None:
    """-v, -f DB, -d DIR: shared by the server and the RRD rebuild."""
    p.add_argument("-v", "--verbose", action="store_true", help="log everything (DEBUG): every request of the server")
    p.add_argument("-f", "--file", dest="db_file", metavar="DB", help=first)
    p.add_argument("-d", "--dir", dest="db_dir", metavar="DIR", default="databases",
                   help="folder of the run databases (default databases)")


def _zone_options(p: argparse.ArgumentParser, what: str) -> None:
    """--tz ZONE (--utc: --tz UTC): the zone of the local times of 2015 databases; --local is refused."""
    zone = p.add_mutually_exclusive_group()
    zone.add_argument("--tz", metavar="ZONE", help=f"IANA zone (Europe/Paris) of the local times of 2015 databases: "
                      f"{what} (default: zone unknown, times shown as \"local, zone unknown\")")
    zone.add_argument("--utc", dest="tz", action="store_const", const="UTC", help="the same as --tz UTC")
    zone.add_argument("--local", action="store_true", help=argparse.SUPPRESS)


def _zone(ns: argparse.Namespace) -> str | None:
    """The checked ``--tz`` (None: zone unknown); UsageError for --local or an unknown zone."""
    if getattr(ns, "local", False):
        raise UsageError("--local is gone: the local times of 2015 databases are never read in this machine's zone; "
                         "give their zone with --tz ZONE (an IANA name such as Europe/Paris), or nothing to show "
                         "them as \"local, zone unknown\"")
    tz = getattr(ns, "tz", None)
    if tz is not None:
        zone(tz)
    return tz


def server_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The options of ``start_server.py`` (those of 2015, plus --bind and the RRD rebuild)."""
    p = Parser(prog=prog, description="Show the run databases and their RRD graphs in a browser (see docs/web.md).")
    p.add_argument("port", nargs="?", type=_port, default=5555, help="TCP port (default 5555; 0: any free port)")
    _databases_options(p, "database shown first (default: the newest)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--rebuild-rrd", action="store_true",
                   help="rebuild the RRD files of -f DB (or of every database in -d DIR) and exit")
    _zone_options(p, "how the pages show them, and how --rebuild-rrd reads them")
    collect = p.add_argument_group("collector mode (docs/web.md)")
    collect.add_argument("--collect", metavar="DIR", help="be a collector: take run uploads into DIR (files, index, "
                         "Parquet dataset) on /api/v1/runs instead of showing pages")
    collect.add_argument("--tokens", metavar="FILE", help="with --collect: the tokens file (pytomo tokens add)")
    collect.add_argument("--ip-db", dest="ip_db", metavar="FILE", action="append", default=[],
                         help="with --collect: IP database (.mmdb) giving the uploader's AS and country (repeatable)")
    collect.add_argument("--max-upload-mib", dest="max_upload_mib", type=int, default=256, metavar="MIB",
                         help="with --collect: the largest upload, compressed or not (default 256)")
    collect.add_argument("--workers", type=int, default=None, metavar="N",
                         help="with --collect: processes that check, store and ingest uploads (default: two per "
                         "core, so that one computes while another waits on the disk; 0: in the server's own "
                         "threads)")
    p.add_argument("-V", "--version", action="version", version=f"pytomo {__version__}")
    return p


def rrd_parser(prog: str = "pytomo rrd") -> argparse.ArgumentParser:
    """The options of ``pytomo rrd`` (the same as ``start_server.py --rebuild-rrd``)."""
    p = Parser(prog=prog, description="Rebuild the RRD files of run databases, ours or 2015's (see docs/rrd.md).")
    _databases_options(p, "the database to rebuild (default: every database in -d DIR)")
    _zone_options(p, "the rebuild reads them in this zone")
    return p


def _logging(ns: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _rebuild_all(ns: argparse.Namespace) -> int:
    from pytomo.rrd.rebuild import rebuild
    from pytomo.web.catalog import DB_GLOB

    _logging(ns)
    tz = _zone(ns)
    targets = [Path(ns.db_file)] if ns.db_file else sorted(Path(ns.db_dir).glob(DB_GLOB))
    if not targets:
        raise UsageError(f"no run database in {ns.db_dir}")
    for db in targets:
        if not db.is_file():
            raise UsageError(f"no database at {db}")
        r = rebuild(db, tz=tz)
        print(f"{r.folder}: {r.layout} layout, {r.points} points, {r.skipped} out of order, "
              f"{r.bad_times} without a time, {len(r.files)} files, times {Clock(r.zone).label}", flush=True)
    return ExitStatus.OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _workers(asked: int | None) -> int:
    """``--workers``: the worker processes of the collector (two per core by default; none in the executable)."""
    if asked is None:
        return 0 if getattr(sys, "frozen", False) else 2 * max(1, os.cpu_count() or 1)
    if not 0 <= asked <= 64:
        raise UsageError("--workers must be within 0-64")
    return asked


def _collect(ns: argparse.Namespace, prog: str) -> int:
    """``--collect DIR --tokens FILE``: the collector."""
    from pytomo.collector.app import Service, serve_collector, vantage_lookup
    from pytomo.collector.store import Collector
    from pytomo.collector.tokens import TokenStore

    if not ns.tokens:
        raise UsageError("--collect needs --tokens FILE (make one with: pytomo tokens add NAME --tokens FILE)")
    import pyarrow  # noqa: F401  the dataset's: missing from the volunteer executable, said at start, not per upload
    if not 1 <= ns.max_upload_mib <= 65536:
        raise UsageError("--max-upload-mib must be within 1-65536")
    workers = _workers(ns.workers)
    _logging(ns)
    logging.getLogger("pytomo.collector.uploads").setLevel(logging.INFO)  # a line per upload, whatever -v says
    tokens = TokenStore(Path(ns.tokens))
    lookup = vantage_lookup(ns.ip_db)
    collector = Collector(Path(ns.collect), ip_dbs=ns.ip_db, max_bytes=ns.max_upload_mib * 1024 * 1024)
    try:
        if workers:
            from pytomo.collector.workers import Workers

            collector.workers = pool = Workers(collector.root, collector.ip_dbs, collector.max_bytes, workers)
            pool.warm()  # started before the server listens
        signal.signal(signal.SIGTERM, _interrupt)  # a stopped collector stops its worker processes too
        serve_collector(Service(collector, tokens), ns.bind, ns.port, lookup=lookup,
                        on_ready=lambda url: print(f"collecting on {url}api/v1/runs", flush=True))
    except KeyboardInterrupt:
        print(f"{prog}: stopped", file=sys.stderr)
    finally:
        collector.close()
    return ExitStatus.OK


def _serve(argv: list[str], prog: str) -> int:
    ns = server_parser(prog).parse_args(argv)
    if ns.rebuild_rrd:
        return _rebuild_all(ns)
    if ns.collect:
        return _collect(ns, prog)
    if ns.tokens or ns.ip_db or ns.workers is not None:
        raise UsageError("--tokens, --ip-db and --workers are options of --collect")
    _zone(ns)
    _logging(ns)
    from pytomo.web.app import Site, serve
    from pytomo.web.catalog import Catalog

    if ns.db_file and not Path(ns.db_file).is_file():
        raise UsageError(f"no database at {ns.db_file}")
    site = Site(Catalog(Path(ns.db_dir), Path(ns.db_file) if ns.db_file else None), tz=getattr(ns, "tz", None))
    try:
        serve(site, ns.bind, ns.port, on_ready=lambda url: print(f"serving {url}", flush=True))
    except KeyboardInterrupt:  # the way a server is stopped: not an interruption
        print(f"{prog}: stopped", file=sys.stderr)
    return ExitStatus.OK


def server_main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """``pytomo server`` / ``start_server.py``: the exit status (0 stopped or rebuilt, 1 failed, 2 bad usage)."""
    return guarded(prog, lambda: _serve(sys.argv[1:] if argv is None else argv, prog))


def rrd_main(argv: list[str] | None = None, prog: str = "pytomo rrd") -> int:
    """``pytomo rrd``: rebuild the RRD files (0 rebuilt, 1 failed, 2 bad usage or no database)."""
    return guarded(prog, lambda: _rebuild_all(rrd_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)))
