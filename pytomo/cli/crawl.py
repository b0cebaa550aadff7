"""``pytomo crawl`` (start_crawl.py): argv -> settings (from the settings table) -> crawl run -> exit status."""

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
from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.crawl.seeds import check_url
from pytomo.errors import UsageError
from pytomo.settings import GROUPS, SETTINGS, Setting, described

log = logging.getLogger("pytomo")

PROG = "start_crawl.py"
REMOVED = {
    "--centralisation_server": "the anonymous FTP server was replaced by a collector: -c --collector URL",
    "--snmp": "the SNMP sub-agent was removed",
    "-H": "the 2015 YouTube itag order was removed; choose the format with --format",
    "--hd": "the 2015 YouTube itag order was removed; choose the format with --format",
}


class _VersionAction(argparse.Action):
    """``--version`` of the crawler: asks yt-dlp, at that moment, what it detects (pytomo/version.py)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> NoReturn:
        from pytomo.services.jsruntime import version_lines

        print("\n".join(version_lines()), flush=True)
        parser.exit(0)


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(what: str) -> Any:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return convert


def help_text(s: Setting) -> str:
    """The --help line of a setting: its help and its real default, both from the table."""
    shown = s.shown_default()
    text = described(s) + (f" (default {shown})" if shown else "")
    return text.replace("%", "%%")


def _add_option(group: Any, s: Setting) -> None:
    """The argparse options of one row of the settings table (none for a config-file-only setting)."""
    names = [f for f in s.flag if f.startswith("-")]
    if s.kind is bool:
        if names:
            group.add_argument(*names, dest=s.name, action="store_true", help=help_text(s))
        if s.negative:
            undo = f"undo {'/'.join(names)}" if names else f"do not {described(s)}"
            group.add_argument(*s.negative, dest=s.name, action="store_false", help=undo)
        return
    kw: dict[str, Any] = {"metavar": s.metavar or None, "help": help_text(s)}
    if s.kind is int:
        kw["type"] = _whole_number
    elif s.kind is float:
        kw["type"] = _number("a number of seconds" if s.unit == "s" else "a number")
    if s.many and not names:  # positional
        group.add_argument(s.name, nargs="*", **kw)
    elif names:
        group.add_argument(*names, dest=s.name, action="append" if s.many else "store", **kw)


def crawl_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The options of ``start_crawl.py``: one per row of the settings table that has a flag, plus --config, -V."""
    p = Parser(prog=prog, argument_default=argparse.SUPPRESS,
               description="Measure video streaming: cache servers, DNS, RTT, throughput and playout stalls.",
               epilog="Settings: defaults < --config FILE (TOML; keys are the setting names, also those without an "
                      "option; a plugin's own in its table: [youtube] api_key = ...) < command line. See "
                      "docs/options.md.")
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    for s in SETTINGS:
        _add_option(p if s.flag == (s.name,) else groups[s.group], s)
    groups["output"].add_argument("--config", dest="config", metavar="FILE", help="TOML file of settings")
    p.add_argument("-V", "--version", action=_VersionAction, nargs=0,
                   help="show Pytomo's version, yt-dlp's, and the JS runtime and yt-dlp-ejs yt-dlp finds, and exit")
    return p


def parse_crawl_args(argv: list[str], prog: str = PROG) -> settings_mod.Settings:
    """Command line -> layered, checked settings (defaults < environment < config file < command line)."""
    for arg in argv:
        name = arg.split("=", 1)[0]
        if name in REMOVED:
            raise UsageError(f"option {name} no longer exists: {REMOVED[name]}")
    ns = vars(crawl_parser(prog).parse_args(argv))
    config = settings_mod.load_config_file(ns.pop("config")) if "config" in ns else {}
    if "urls" in ns:
        ns["urls"] = tuple(check_url(u, "argument") for u in ns["urls"])
    return settings_mod.build({**settings_mod.from_environment(os.environ), **config}, ns)


class _OneLine(logging.Formatter):
    """One line per record on the terminal: the first line of the message, no traceback (that is in the log)."""

    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.prog}: " + (record.getMessage().splitlines() or [""])[0]


def _logging_setup(prog: str) -> Any:
    def setup(level: str, logfile: Path | None) -> None:
        """Everything at ``level`` to the run's log file; warnings also to stderr, one line each."""
        logging.raiseExceptions = False  # a log line that cannot be written (a full disk) must not print a traceback
        root = logging.getLogger()
        root.setLevel(level)
        for h in list(root.handlers):
            root.removeHandler(h)
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.WARNING)
        err.setFormatter(_OneLine(prog))
        root.addHandler(err)
        if logfile is not None:
            fh = logging.FileHandler(logfile, encoding="utf-8")
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(fh)

    return setup


def _confirm(s: settings_mod.Settings) -> bool:
    from pytomo.consent import ask

    return ask(s, sys.stdin, sys.stdout)


def _uploader(s: settings_mod.Settings) -> Any:
    """-c: the uploader to the collector (checked now), or None without -c."""
    if not s.centralise:
        if s.collector_url:
            log.debug("--collector without -c: nothing is sent")
        return None
    if not s.collector_url:
        raise UsageError("-c needs --collector URL (or collector_url in the config file)")
    from pytomo.upload.client import Uploader

    return Uploader(s.collector_url, s.collector_token)


def _upload(uploader: Any, db_path: Path, prog: str) -> bool:
    """Send the run's database when the run ends; a failure is one line (the outbox keeps it for pytomo upload)."""
    from pytomo.upload.client import UploadFailed

    try:
        answer = uploader.upload(db_path)
    except UploadFailed as exc:
        print(f"{prog}: error: upload to {uploader.collector} failed: {exc}; `pytomo upload` sends it later",
              file=sys.stderr, flush=True)
        return False
    print(f"{prog}: uploaded to {uploader.collector}: {answer.message}", file=sys.stderr, flush=True)
    return True


def _crawl(argv: list[str], prog: str) -> int:
    from pytomo.console import summary_table
    from pytomo.run import CrawlRun

    s = parse_crawl_args(argv, prog)
    uploader = _uploader(s)  # -c: a bad collector URL or no token is a usage error before anything is measured
    if not _confirm(s):
        print(f"{prog}: not started", file=sys.stderr)
        return ExitStatus.OK
    run = CrawlRun(s)
    stop = run.stop

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"\n{prog}: stopping after the current stage (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    outcome = run.execute(_logging_setup(prog))
    summary_table(outcome.summary, sys.stdout)
    print(outcome.db_path, flush=True)
    if uploader is not None and not _upload(uploader, outcome.db_path, prog):
        return ExitStatus.FAILURE
    if outcome.summary.error:
        print(f"{prog}: error: {outcome.summary.error}", file=sys.stderr)
        return ExitStatus.FAILURE
    return ExitStatus.INTERRUPTED if outcome.summary.stop_reason == "interrupted" else ExitStatus.OK


def crawl_main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """``pytomo crawl`` / ``start_crawl.py``: the exit status (ExitStatus: 0 done, 1 failed, 2 usage, 130 stopped)."""
    return guarded(prog, lambda: _crawl(sys.argv[1:] if argv is None else argv, prog))
