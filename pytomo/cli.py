"""Command lines: argv -> settings -> crawl; the only place where exceptions become exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

from pytomo import settings as settings_mod
from pytomo.errors import PytomoError, UsageError
from pytomo.seeds import check_url
from pytomo.version import __version__

log = logging.getLogger("pytomo")

REMOVED = {
    "-c": "the anonymous FTP upload was removed",
    "--centralise": "the anonymous FTP upload was removed",
    "--centralize": "the anonymous FTP upload was removed",
    "--centralisation_server": "the anonymous FTP upload was removed",
    "--snmp": "the SNMP sub-agent was removed",
    "-H": "the 2015 YouTube itag order was removed; choose the format with --format",
    "--hd": "the 2015 YouTube itag order was removed; choose the format with --format",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _VersionAction(argparse.Action):
    """``--version`` of the crawler: asks yt-dlp, at that moment, what it detects (pytomo/version.py)."""

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        from pytomo.version import version_lines

        print("\n".join(version_lines()), flush=True)
        parser.exit(0)


def _int_at_least(minimum: int):
    """An argparse type: a whole number not below ``minimum``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{text} must be at least 1" if minimum == 1 else f"{text} must not be negative")
        return value

    return convert


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _non_negative_seconds(text: str) -> float:
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def crawl_parser() -> argparse.ArgumentParser:
    """The options of ``start_crawl.py`` (those of 2015, with the documented -B/-M and the new ones)."""
    S = argparse.SUPPRESS
    p = _Parser(prog="start_crawl.py", argument_default=S,
                description="Measure video streaming: cache servers, DNS, RTT, throughput and playout stalls.",
                epilog="Settings: defaults < --config FILE (TOML) < command line. See docs/options.md.")
    p.add_argument("urls", nargs="*", metavar="URL", help="page or media URLs to crawl (instead of a popular list)")
    g = p.add_argument_group("crawl")
    g.add_argument("-s", dest="service", metavar="SERVICE",
                   help="service plugin: lab, youtube, dailymotion, generic (default generic)")
    g.add_argument("-f", "--input-file", dest="input_file", metavar="FILE", help="file of URLs, one per line")
    g.add_argument("-b", "--batch", dest="batch", action="store_true", help="never prompt")
    g.add_argument("-u", dest="max_crawled_urls", type=_positive_int, metavar="N",
                   help="stop after N distinct videos measured (default 10000)")
    g.add_argument("-r", dest="max_rounds", type=_positive_int, metavar="N", help="maximum rounds (default 10000)")
    g.add_argument("-l", "--loop", dest="loop", action="store_true",
                   help="crawl the same seeds again, round after round")
    g.add_argument("--no-loop", dest="loop", action="store_false", help="do not loop (default)")
    g.add_argument("-R", "--related", dest="related", action="store_true", help="also crawl related videos")
    g.add_argument("--no-related", dest="related", action="store_false", help="do not crawl related videos (default)")
    g.add_argument("-p", dest="max_per_url", type=_non_negative_int, metavar="N",
                   help="related videos sampled per video (default 10)")
    g.add_argument("-P", dest="max_per_page", type=_non_negative_int, metavar="N",
                   help="related links considered per page, and size of the popular list (default 10)")
    g.add_argument("-t", dest="time_frame", choices=settings_mod.TIME_FRAMES, metavar="FRAME",
                   help="popular list: today, week, month, all_time (default today)")
    g.add_argument("-S", dest="delay_between_requests_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="pause after each video (default 10; with -l the random spacing below)")
    # volunteer defaults (pytomo/engine/schedule.py)
    g.add_argument("--loop-interval", dest="loop_mean_interval_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="-l: mean of the random (exponential) spacing between measurements (default 600; 0: -S)")
    g.add_argument("--loop-min-interval", dest="loop_min_interval_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="-l: shortest spacing (default 60)")
    g.add_argument("--loop-max-interval", dest="loop_max_interval_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="-l: longest spacing (default 1500)")
    g = p.add_argument_group("platforms (docs/platforms.md)")
    g.add_argument("--format", dest="media_format", metavar="CHOICE",
                   help="format to measure: player (default: what a 1080p player plays), <N>p, best, worst, "
                        "progressive, or a format id such as 18 or 137+140")
    g.add_argument("--youtube-api-key", dest="youtube_api_key", metavar="KEY",
                   help="YouTube Data API key (also $PYTOMO_YOUTUBE_API_KEY): -t uses videos.list?chart=mostPopular")
    g.add_argument("--youtube-region", dest="youtube_region", metavar="CC", help="country of the chart and searches")
    g.add_argument("--youtube-search", dest="youtube_search", metavar="QUERY",
                   help="seed search (with a key: search.list by view count in the -t frame; without: yt-dlp)")
    g.add_argument("--youtube-playlist", dest="youtube_playlist", metavar="ID", help="seed playlist")
    g.add_argument("--youtube-related", dest="youtube_related", choices=settings_mod.YOUTUBE_RELATED,
                   help="related videos: search (by tags or title, default), channel (its uploads), none")
    g.add_argument("--youtube-client", dest="youtube_player_client", action="append", metavar="CLIENT",
                   help="yt-dlp player_client to use (repeatable; default: yt-dlp's own choice)")
    g.add_argument("--dailymotion-sort", dest="dailymotion_sort", metavar="SORT",
                   help="API sort of the seed list, e.g. trending (default: visited-today/-week/-month from -t)")
    g.add_argument("--dailymotion-media", dest="dailymotion_media", choices=settings_mod.DAILYMOTION_MEDIA,
                   help="media through yt-dlp (default) or the API's stream fields (partner access)")
    g = p.add_argument_group("probes")
    g.add_argument("-n", dest="ping_count", type=_positive_int, metavar="N", help="RTT probes per address (default 10)")
    g.add_argument("--dns-resolver", dest="dns_extra", action="append", metavar="LABEL=IP[:PORT]",
                   help="an extra resolver to query (repeatable)")
    g.add_argument("--no-system-dns", dest="dns_system", action="store_false",
                   help="do not query the system's nameservers")
    g.add_argument("--download-extra-dns", dest="download_extra_dns", action="store_true",
                   help="also download from addresses that only extra resolvers gave")
    g.add_argument("--http-proxy", dest="http_proxy", metavar="PROXY", help="HTTP proxy for every request")
    g.add_argument("--cookies", dest="cookies_file", metavar="FILE",
                   help="cookies in Netscape format (as yt-dlp reads them), sent by yt-dlp and with media requests")
    g.add_argument("--allow-private-targets", dest="allow_private_targets", action="store_true",
                   help="let redirects, pages, manifests and DNS answers lead to private, loopback, link-local and "
                        "other non-global addresses the URLs given did not name (default: refused)")
    g = p.add_argument_group("download and playout")
    g.add_argument("-D", dest="download_time_s", type=_seconds, metavar="SECONDS",
                   help="download window per video (default 30; <= 0: 600)")
    g.add_argument("-B", dest="initial_buffer_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="media buffered before playback starts (default 2.0)")
    g.add_argument("-M", dest="min_buffer_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="buffer under which playback stalls (default 0.1)")
    g.add_argument("--restart-buffer", dest="restart_buffer_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="buffer needed to resume after a stall (default 1.0)")
    g.add_argument("--abr", dest="abr", choices=settings_mod.ABR_MODES,
                   help="HLS/DASH: fixed (one rendition at full rate, default) or buffer (buffer-based adaptation)")
    g.add_argument("--rendition", dest="rendition", metavar="CHOICE",
                   help="HLS/DASH fixed mode: highest (default), lowest, an index from the lowest, or a bit/s cap")
    g.add_argument("--max-buffer", dest="max_buffer_s", type=_non_negative_seconds, metavar="SECONDS",
                   help="HLS/DASH: do not fetch more than this ahead of the playhead (default 30)")
    g = p.add_argument_group("output")
    g.add_argument("--database-dir", dest="database_dir", metavar="DIR", help="where run databases go (databases)")
    g.add_argument("--provider", dest="provider", metavar="ISP", help="ISP label, put into file names")
    g.add_argument("-x", "--no-log-ip", dest="no_log_ip", action="store_true",
                   help="do not record the public address (always the case: this version never looks it up)")
    g.add_argument("--label", dest="label", metavar="NAME",
                   help="name of this computer in file names and the run row (default: the host name)")
    g.add_argument("-L", dest="log_level", metavar="LEVEL", help="log level: DEBUG, INFO, WARNING, ERROR, CRITICAL")
    g.add_argument("--config", dest="config", metavar="FILE", help="TOML file of settings")
    g = p.add_argument_group("lab")
    g.add_argument("--lab", dest="lab", action="store_true",
                   help="run the lab here; -s youtube/dailymotion use its recorded APIs and pages")
    g.add_argument("--lab-scenario", dest="lab_scenario", metavar="FILE", help="scenario of the lab (-s lab)")
    g.add_argument("--lab-truth", dest="lab_truth", metavar="FILE", help="write the lab's ground-truth log here")
    p.add_argument("-V", "--version", action=_VersionAction, nargs=0,
                   help="show Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs yt-dlp finds, and exit")
    return p


def parse_crawl_args(argv: list[str]) -> settings_mod.Settings:
    """Command line -> layered, checked settings."""
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in REMOVED:
            raise UsageError(f"option {name} no longer exists: {REMOVED[name]}")
    ns = vars(crawl_parser().parse_args(argv))
    config = settings_mod.load_config_file(ns.pop("config")) if "config" in ns else {}
    if "urls" in ns:
        ns["urls"] = tuple(check_url(u, "argument") for u in ns["urls"])
    env = {"youtube_api_key": os.environ["PYTOMO_YOUTUBE_API_KEY"]} if os.environ.get("PYTOMO_YOUTUBE_API_KEY") else {}
    return settings_mod.build({**env, **config}, ns)


class _OneLine(logging.Formatter):
    """One line per record on the terminal: the first line of the message, no traceback (that is in the log)."""

    def format(self, record: logging.LogRecord) -> str:
        return "start_crawl.py: " + (record.getMessage().splitlines() or [""])[0]


def _setup_logging(level: str, logfile: Path | None) -> None:
    """Everything at ``level`` to the run's log file; warnings also to stderr, one line each."""
    logging.raiseExceptions = False  # a log line that cannot be written (a full disk) must not print a traceback
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(_OneLine())
    root.addHandler(err)
    if logfile is not None:
        fh = logging.FileHandler(logfile, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _confirm(s: settings_mod.Settings) -> bool:
    from pytomo.consent import ask

    return ask(s, sys.stdin, sys.stdout)


def crawl_main(argv: list[str] | None = None) -> int:
    """``start_crawl.py``: returns the exit status (0 done, 1 failed, 2 bad usage, 130 interrupted early)."""
    from pytomo.console import summary_table
    from pytomo.run import CrawlRun

    argv = sys.argv[1:] if argv is None else argv
    try:
        s = parse_crawl_args(argv)
        if not _confirm(s):
            print("start_crawl.py: not started", file=sys.stderr)
            return 0
        run = CrawlRun(s)
        stop = run.stop

        def on_sigint(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()
            print("\nstart_crawl.py: stopping after the current stage (Ctrl-C again to abort)",
                  file=sys.stderr, flush=True)

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_sigint)
        outcome = run.execute(_setup_logging)
    except UsageError as exc:
        print(f"start_crawl.py: error: {exc}", file=sys.stderr)
        return 2
    except PytomoError as exc:
        print(f"start_crawl.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("start_crawl.py: aborted", file=sys.stderr)
        return 130
    summary_table(outcome.summary, sys.stdout)
    print(outcome.db_path, flush=True)
    if outcome.summary.error:
        print(f"start_crawl.py: error: {outcome.summary.error}", file=sys.stderr)
        return 1
    return 130 if outcome.summary.stop_reason == "interrupted" else 0



def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if value != 0 and not 1024 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} must be 0 (any free port) or within 1024-65535")
    return value


def server_parser() -> argparse.ArgumentParser:
    """The options of ``start_server.py`` (those of 2015, plus --bind and the RRD rebuild)."""
    p = _Parser(prog="start_server.py",
                description="Show the run databases and their RRD graphs in a browser (see docs/web.md).")
    p.add_argument("port", nargs="?", type=_port, default=5555, help="TCP port (default 5555; 0: any free port)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request (DEBUG)")
    p.add_argument("-f", "--file", dest="db_file", metavar="DB", help="database shown first (default: the newest)")
    p.add_argument("-d", "--dir", dest="db_dir", metavar="DIR", default="databases",
                   help="folder of the run databases (default databases)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--rebuild-rrd", action="store_true",
                   help="rebuild the RRD files of -f DB (or of every database in -d DIR) and exit")
    zone = p.add_mutually_exclusive_group()
    zone.add_argument("--local", dest="utc_2015", action="store_false", default=False,
                      help="with --rebuild-rrd: the IDs of 2015 tables are local time of this machine (default)")
    zone.add_argument("--utc", dest="utc_2015", action="store_true",
                      help="with --rebuild-rrd: the IDs of 2015 tables are UTC")
    p.add_argument("-V", "--version", action="version", version=f"pytomo {__version__}")
    return p


def _rebuild_all(ns: argparse.Namespace) -> int:
    from pytomo.rrd.rebuild import rebuild
    from pytomo.web.catalog import DB_GLOB

    targets = [Path(ns.db_file)] if ns.db_file else sorted(Path(ns.db_dir).glob(DB_GLOB))
    if not targets:
        raise UsageError(f"no run database in {ns.db_dir}")
    for db in targets:
        if not db.is_file():
            raise UsageError(f"no database at {db}")
        r = rebuild(db, utc_2015=ns.utc_2015)
        print(f"{r.folder}: {r.layout} layout, {r.points} points, {r.skipped} out of order, "
              f"{r.bad_times} without a time, {len(r.files)} files", flush=True)
    return 0


def server_main(argv: list[str] | None = None) -> int:
    """``start_server.py``: returns the exit status (0 stopped or rebuilt, 1 failed, 2 bad usage)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = server_parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if ns.rebuild_rrd:
            return _rebuild_all(ns)
        from pytomo.web.app import Site, serve
        from pytomo.web.catalog import Catalog

        if ns.db_file and not Path(ns.db_file).is_file():
            raise UsageError(f"no database at {ns.db_file}")
        site = Site(Catalog(Path(ns.db_dir), Path(ns.db_file) if ns.db_file else None))
        serve(site, ns.bind, ns.port, on_ready=lambda url: print(f"serving {url}", flush=True))
    except UsageError as exc:
        print(f"start_server.py: error: {exc}", file=sys.stderr)
        return 2
    except PytomoError as exc:
        print(f"start_server.py: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"start_server.py: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("start_server.py: stopped", file=sys.stderr)
        return 0
    return 0
