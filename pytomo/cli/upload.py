"""``pytomo upload --collector URL [DB...]`` sends ended runs (a killed one closed first); ``--status``: the outbox."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pytomo import settings as settings_mod
from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import UsageError

DB_GLOB = "*pytomo_database.db"


def upload_parser(prog: str) -> Parser:
    """The options of ``pytomo upload``."""
    p = Parser(prog=prog, description="Send finished run databases to a collector, or show the outbox. The token "
               "comes from collector_token in the config file or PYTOMO_COLLECTOR_TOKEN.")
    p.add_argument("databases", nargs="*", metavar="DB",
                   help="run databases to send (default: every one in --database-dir whose run has ended, a killed "
                   "one closed as interrupted first, not sent yet)")
    p.add_argument("--collector", metavar="URL", help="the collector (https://; http:// only to loopback; default "
                   "collector_url of the config file)")
    p.add_argument("--database-dir", metavar="DIR", help="folder of the run databases and of the outbox "
                   "(default database_dir of the config file, else databases)")
    p.add_argument("--config", metavar="FILE", help="TOML file of settings (collector_url, collector_token, ...)")
    p.add_argument("--status", action="store_true", help="print the outbox (pending, uploaded, failed and why)")
    return p


def _settings(ns: argparse.Namespace) -> settings_mod.Settings:
    config = settings_mod.load_config_file(ns.config) if getattr(ns, "config", None) else {}
    overrides = {k: v for k, v in (("collector_url", getattr(ns, "collector", None)),
                                   ("database_dir", getattr(ns, "database_dir", None))) if v}
    return settings_mod.build({**settings_mod.from_environment(os.environ), **config}, overrides)


def _status(folder: Path) -> int:
    from pytomo.upload.outbox import Outbox

    entries = Outbox(folder).entries()
    known = {e.file for e in entries}
    new = sorted(p.name for p in folder.glob(DB_GLOB) if p.name not in known) if folder.is_dir() else []
    for e in entries:
        print(f"{e.state:<8}  {e.file}  run {e.run_uuid or '?'}  {e.collector}  {e.why}".rstrip())
    for name in new:
        print(f"{'new':<8}  {name}  not sent yet")
    counts = {state: sum(e.state == state for e in entries) for state in ("pending", "uploaded", "failed")}
    print(f"{counts['uploaded']} uploaded, {counts['pending']} pending, {counts['failed']} failed, "
          f"{len(new)} not sent yet ({folder})")
    return ExitStatus.OK


def _targets(ns: argparse.Namespace, folder: Path, collector: str) -> list[Path]:
    from pytomo.upload.outbox import Outbox

    given = [Path(d) for d in getattr(ns, "databases", [])]
    for path in given:
        if not path.is_file():
            raise UsageError(f"no database at {path}")
    if given:
        return given
    if not folder.is_dir():
        raise UsageError(f"no folder {folder}")
    outbox = Outbox(folder)
    done = {e.file for e in outbox.entries() if e.state == "uploaded" and e.collector == collector}
    return [p for p in sorted(folder.glob(DB_GLOB)) if p.name not in done]


def _upload(argv: list[str], prog: str) -> int:
    from pytomo.storage.writer_lock import writer_alive
    from pytomo.upload.client import TokenRefused, Uploader, UploadFailed

    ns = upload_parser(prog).parse_args(argv)
    s = _settings(ns)
    folder = Path(s.database_dir)
    if ns.status:
        return _status(folder)
    if not s.collector_url:
        raise UsageError("no collector: give --collector URL (or collector_url in the config file)")
    uploader = Uploader(s.collector_url, s.collector_token)
    failed = sent = 0
    for path in _targets(ns, folder, s.collector_url):
        if not ns.databases and writer_alive(path):
            continue  # a crawl still writing it: sent once it ends (a killed one is closed and sent)
        try:
            answer = uploader.upload(path)
        except TokenRefused as exc:
            raise UploadFailed(str(exc)) from None  # one line, exit status 1: no other run would be taken
        except UploadFailed as exc:
            print(f"{prog}: {path.name}: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        sent += 1
        print(f"{path.name}: {answer.message}", flush=True)
    print(f"{sent} sent, {failed} failed", flush=True)
    return ExitStatus.FAILURE if failed else ExitStatus.OK


def upload_main(argv: list[str] | None = None, prog: str = "pytomo upload") -> int:
    """``pytomo upload``: 0 all sent, 1 a run failed (or the token was refused), 2 bad usage."""
    return guarded(prog, lambda: _upload(sys.argv[1:] if argv is None else argv, prog))
