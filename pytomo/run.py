"""One crawl run wired together: the lab when asked, resolvers, HTTP client, service, sinks, crawler."""

from __future__ import annotations

import http.cookiejar
import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytomo.console import ConsoleSink
from pytomo.crawl.loop import Crawler
from pytomo.crawl.seeds import seeds_for
from pytomo.engine.http import HttpClient
from pytomo.engine.pipeline import Pipeline
from pytomo.engine.resolve import DnsProbe, ResolverSpec, addresses, parse_resolver
from pytomo.engine.targets import TargetPolicy
from pytomo.engine.vantage import Vantage
from pytomo.errors import LabError, UsageError
from pytomo.results import CrawlSummary, Sink
from pytomo.rrd.recorder import RrdRecorder
from pytomo.services import by_name
from pytomo.services.base import ServiceContext
from pytomo.settings import SETTINGS, Settings
from pytomo.storage.sink import DatabaseSink
from pytomo.storage.sqlite import RunDatabase

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """The crawl's summary and where its database is."""

    summary: CrawlSummary
    db_path: Path


class CrawlRun:
    """Builds the components of a run from its settings and executes it."""

    def __init__(self, settings: Settings, lab: Any = None) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.lab = lab  # a lab already running (bench/players.py crawls and plays in one lab run); None: start one

    def _resolvers(self, lab: Any) -> tuple[list[ResolverSpec], set[str]]:
        s = self.settings
        specs: list[ResolverSpec] = []
        primary: set[str] = set()
        if lab is not None:
            specs.append(ResolverSpec("lab", lab.dns.host, lab.dns.port))
            primary.add("lab")
        elif s.dns_system:
            specs.append(ResolverSpec("system"))
            primary.add("system")
        specs += [parse_resolver(text) for text in s.dns_extra]
        return specs, primary

    def execute(self, setup_logging: Callable[[str, Path | None], None]) -> RunOutcome:
        """Run the crawl; the database is whole whatever happens."""
        s = self.settings
        service_cls = by_name(s.service)
        with ExitStack() as stack:
            lab = self.lab
            if lab is None and (service_cls.NAME == "lab" or s.lab):  # --lab: youtube/dailymotion on recordings
                from pytomo.lab.runtime import Lab
                from pytomo.lab.scenario import default_scenario_path, load_scenario

                try:
                    scenario = load_scenario(s.lab_scenario or default_scenario_path())
                except LabError as exc:  # a file the user named: missing, not TOML, or not a valid scenario
                    if s.lab_scenario:
                        raise UsageError(str(exc)) from None
                    raise
                lab = Lab(scenario, truth_path=s.lab_truth).start()
                stack.callback(lab.stop)
            # AS and country of the cache servers from the user's offline databases; the lab's are on loopback
            vantage = stack.enter_context(Vantage(s.ip_db, lookup_private=lab is not None))
            specs, primary = self._resolvers(lab)
            dns = DnsProbe(specs, timeout_s=s.dns_timeout_s, getaddrinfo_fallback=lab is None)
            policy = TargetPolicy(allow_private=s.allow_private_targets or lab is not None)
            policy.give(_given_hosts(s))
            http = HttpClient(lambda host: addresses(dns.lookup(host)), timeout_s=s.http_timeout_s,
                              user_agent=s.user_agent, proxy=s.http_proxy, policy=policy,
                              cookies=load_cookies(s.cookies_file) if s.cookies_file else None,
                              ca_files=[f for f in (s.ca_file, lab.ca_file if lab is not None else None) if f],
                              http_protocol=s.http_protocol)
            stack.callback(http.close)
            # the plugins see the lab only as URLs in their settings; the run row stores the settings as given
            ctx = ServiceContext(http=http, settings=lab.layer(s) if lab is not None else s)
            service = service_cls(ctx)
            seeds = seeds_for(s, service)
            policy.give(urlsplit(url).hostname or "" for url, source in seeds if source == "input")
            db = RunDatabase.create(s.database_dir, s, lab_scenario=lab.scenario.source if lab else None)
            setup_logging(s.log_level, db.path.with_suffix(".log"))
            log.info("run %s: service %s, %d seeds, settings %s", db.path.name, s.service, len(seeds), s.as_dict())
            pipeline = Pipeline(s, http, dns, primary, self.stop, vantage=vantage)
            # the database first (a full disk stops the crawl), then the RRD files beside it and the console line,
            # whose failures never stop the crawl
            sinks: list[Sink] = [DatabaseSink(db), RrdRecorder(db.path), ConsoleSink()]
            crawler = Crawler(s, ctx, service, pipeline, sinks, self.stop)
            status = "failed"
            summary = CrawlSummary(stop_reason="failed")
            try:
                summary = crawler.run(seeds)
                status = {"interrupted": "interrupted", "failed": "failed"}.get(summary.stop_reason, "finished")
            except KeyboardInterrupt:
                summary.stop_reason = status = "interrupted"
                raise
            finally:
                for sink in sinks:
                    sink.close(status, summary.stop_reason)
        return RunOutcome(summary=summary, db_path=db.path)


def _given_hosts(s: Settings) -> list[str]:
    """Hosts the user named in settings whose row trusts their host (API and recording URLs, the proxy):
    non-global addresses of theirs may be reached."""
    urls = (getattr(s, row.name) for row in SETTINGS if row.trusted_host)
    return [urlsplit(u).hostname or "" for u in urls if u]


def load_cookies(path: str) -> http.cookiejar.MozillaCookieJar:
    """A Netscape cookies file, as yt-dlp reads it (``--cookies``); a bad file is a usage error."""
    jar = http.cookiejar.MozillaCookieJar(path)
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, http.cookiejar.LoadError) as exc:
        raise UsageError(f"cannot read the cookies file {path}: {exc}") from None
    return jar
