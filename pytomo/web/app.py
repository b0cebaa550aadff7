"""The web.py application: URL map, the site's shared state, error pages, and the HTTP server (cheroot)."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import web

from pytomo import paths
from pytomo.web.catalog import Catalog
from pytomo.web.graphs import GraphCache
from pytomo.web.overview import ObservationCache
from pytomo.web.wsgi import finished

web.config.debug = False  # no tracebacks to clients, no autoreload, cached templates

THREADS = 8  # workers: idle keep-alive connections wait in cheroot's selector; 16 gave p95 ×2 at 50 clients (GIL)
MEMO_ENTRIES = 500  # figures, views and charts kept in memory (least recently used dropped first)
BACKLOG = 128  # listen backlog: 5 (cheroot's default) made the kernel drop SYNs from 50 clients
MAX_HEADER_BYTES = 256 * 1024  # request line and headers: beyond it cheroot answers 414/413 itself
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


class Site:
    """What every request needs: the database allow-list, templates, static files and the graph cache."""

    def __init__(self, catalog: Catalog, cache_dir: Path | None = None, tz: str | None = None) -> None:
        self.catalog = catalog
        self.tz = tz  # --tz: the zone of the local times of 2015 databases (None: "local, zone unknown")
        self.templates_dir = paths.templates_dir()
        shared = template_globals()
        self.render = web.template.render(str(self.templates_dir), cache=True, globals=shared)
        shared["header"] = self.render.header  # every page starts and ends with these two
        shared["footer"] = self.render.footer
        shared["choices"] = self.render.choices  # a row of links, the chosen one marked (spans, sources)
        self.static = load_static(self.templates_dir / "static")
        self.graphs = GraphCache((cache_dir or paths.cache_dir()) / "web-graphs")
        self.memo: OrderedDict[tuple, Any] = OrderedDict()
        self.observations = ObservationCache()
        self.memo_lock = threading.Lock()

    def remember(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A value cached under ``key`` (which holds the database's mtime, so a change recomputes it); the least
        recently used values go first once there are ``MEMO_ENTRIES``."""
        with self.memo_lock:
            if key in self.memo:
                self.memo.move_to_end(key)
                return self.memo[key]
        value = compute()
        with self.memo_lock:
            self.memo[key] = value
            while len(self.memo) > MEMO_ENTRIES:
                self.memo.popitem(last=False)
        return value


def load_static(folder: Path) -> dict[str, tuple[bytes, str]]:
    """Every static file, read once at start: requests look names up here and never build a path."""
    files: dict[str, tuple[bytes, str]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix in STATIC_TYPES:
                files[p.name] = (p.read_bytes(), STATIC_TYPES[p.suffix])
    return files


def template_globals() -> dict[str, Any]:
    """Formatting helpers the templates may call."""
    from pytomo.web import views

    return {"fmt": views.fmt, "pct": views.pct, "safe_href": views.safe_href, "at": views.at, "str": str}


def make_app(site: Site) -> web.application:
    """The web.py application bound to ``site``."""
    from pytomo.web import api, graph_pages, history, operator_pages, run_pages, views

    urls = (
        "/", operator_pages.Overview,
        r"/overview/(plays|start|ratio|rtt)\.svg", operator_pages.OverviewChart,
        "/graphs/(main|qoe|qos|characteristics|all)", graph_pages.GroupPage,
        "/videos", run_pages.Videos,
        r"/video/([0-9]{1,12})", run_pages.Video,
        r"/video/([0-9]{1,12})/(throughput|playout|rtt)\.svg", run_pages.VideoGraph,
        r"/graph/([a-z0-9_]{1,19})\.(png|svg)", graph_pages.Graph,
        "/servers", run_pages.Servers,
        "/archive", run_pages.Archive,
        r"/static/([A-Za-z0-9_-]{1,64}\.(?:css|svg|png))", views.Static,
        "/favicon.ico", views.Favicon,
        "/api/v1/verdict", api.Verdict,
        "/api/v1/runs", api.Runs,
        "/api/v1/videos", api.Videos,
        r"/api/v1/video/([0-9]{1,12})", api.Video,
        "/metrics", api.Metrics,
        "/history", history.History,
        r"/history/(plays|start|ratio|rtt)\.svg", history.HistoryChart,
    )
    app = web.application(urls, {}, autoreload=False)

    def attach() -> None:
        web.ctx.site = site
        for name, value in SECURITY_HEADERS:
            web.header(name, value)

    app.add_processor(web.loadhook(attach))
    app.notfound = lambda: views.error_page(404, "Not found", "There is no such page.")
    app.internalerror = lambda: views.error_page(500, "Internal error", "The server could not answer; see its log.")
    return app


def serve(site: Site, bind: str, port: int, *, on_ready: Callable[[str], None] | None = None,
          threads: int = THREADS, backlog: int = BACKLOG) -> None:
    """Serve until interrupted; ``on_ready`` gets the URL once the socket listens."""
    from cheroot import wsgi

    os.environ["TZ"] = "UTC"  # rrdtool draws time axes in the process's zone; the pages speak UTC
    time.tzset()
    app = make_app(site)
    server = wsgi.Server((bind, port), finished(app.wsgifunc()), numthreads=threads, server_name="pytomo",
                         request_queue_size=backlog)
    run_server(server, on_ready)


def run_server(server: Any, on_ready: Callable[[str], None] | None = None, max_body_bytes: int = 0) -> None:
    """Bind a cheroot server (OSError when the port is taken), tell ``on_ready`` its URL, serve until interrupted.

    ``max_body_bytes`` (0: none): a larger Content-Length is answered 413 before the body is read.
    """
    server.max_request_header_size = MAX_HEADER_BYTES
    server.max_request_body_size = max_body_bytes
    server.prepare()
    host, real_port = server.bind_addr[:2]
    shown = f"[{host}]" if ":" in host else host
    if on_ready:
        on_ready(f"http://{shown}:{real_port}/")
    try:
        server.serve()
    finally:
        server.stop()
