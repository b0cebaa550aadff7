"""The collector mode of the web server: ``POST/GET /api/v1/runs`` and ``GET /api/v1/runs/<uuid>.db``.

The same web.py application and cheroot server as the pages (pytomo/web/app.py), with its own URL map. Every route
needs a bearer token: a volunteer's may upload, a researcher's may also list and fetch. The uploader's address is
looked up for its AS and country before the application sees the request, and then removed from it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import web

from pytomo.collector.origin import Origin
from pytomo.collector.store import BadUpload, Collector, Result, TooLarge, log_upload
from pytomo.collector.tokens import Holder, TokenStore
from pytomo.readers.across import Combined, combine, history_doc, reader
from pytomo.readers.tables import open_run_database
from pytomo.readers.verdict import SPAN_LENGTH_S
from pytomo.web.app import BACKLOG, THREADS, run_server
from pytomo.web.wsgi import finished

log = logging.getLogger(__name__)

UUID_PATTERN = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
STATUS_TEXT = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
               404: "Not Found", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
               422: "Unprocessable Entity",
               500: "Internal Server Error", 503: "Service Unavailable"}
ORIGIN_KEY = "pytomo.origin"


class Service:
    """What every request of the collector needs."""

    def __init__(self, collector: Collector, tokens: TokenStore) -> None:
        self.collector = collector
        self.tokens = tokens
        self.lock = threading.Lock()
        self.history: tuple[tuple[Path, ...], Combined] | None = None  # the stored runs' videos, while they last

    def combined(self) -> Combined:
        """Every stored run's videos (2015 databases are not taken by the collector), read again when runs arrive."""
        files = tuple(self.collector.stored_files())
        with self.lock:
            if self.history is None or self.history[0] != files:
                self.history = (files, combine(files, reader(open_run_database, None)))
            return self.history[1]


def answer(status: int, payload: Any, *, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A JSON answer with its status."""
    web.ctx.status = f"{status} {STATUS_TEXT.get(status, '')}".strip()
    web.header("Content-Type", "application/json")
    web.header("Cache-Control", "no-store")
    for name, value in extra:
        web.header(name, value)
    return (json.dumps(payload, sort_keys=True) + "\n").encode("utf-8")


def holder(role: str | None = None) -> Holder | bytes:
    """The token's holder, or the 401/403 answer to return."""
    service: Service = web.ctx.service
    header = web.ctx.env.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    who = service.tokens.check(token.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        return answer(401, {"error": "unauthorized", "message": "a valid bearer token is needed"},
                      extra=[("WWW-Authenticate", 'Bearer realm="pytomo"')])
    if role and who.role != role:
        return answer(403, {"error": "forbidden", "message": f"this needs a {role} token"})
    return who


class _Body:
    """The request body, cheroot's own size check (a chunked body past the limit) turned into TooLarge."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        from cheroot.errors import MaxSizeExceeded

        try:
            return self.stream.read(size)
        except MaxSizeExceeded:
            raise TooLarge("the body is over the limit") from None
        except (OSError, ValueError) as exc:  # cheroot's chunked reader: IOError("Request Entity Too Large")
            if "Too Large" in str(exc):
                raise TooLarge("the body is over the limit") from None
            raise BadUpload(f"the body cannot be read: {exc}") from None


def _declared_length() -> int | None:
    text = web.ctx.env.get("CONTENT_LENGTH") or ""
    return int(text) if text.isdigit() else None


def _log_refusal(uploader: str, reason: str) -> None:
    """The log line of an upload refused before its body was read (the status already set)."""
    log_upload(uploader, Result(int(web.ctx.status.split()[0]), reason), 0, 0, 0.0)


class Runs:
    """``POST /api/v1/runs``: upload a run database; ``GET``: the listing (researcher)."""

    def POST(self) -> bytes:
        who = holder()
        if isinstance(who, bytes):
            _log_refusal("", "no valid token" if web.ctx.status.startswith("401") else "not allowed for this token")
            return who
        env = web.ctx.env
        chunked = "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower()
        declared = _declared_length()
        if declared is None and not chunked:
            refused = answer(411, {"error": "length", "message": "Content-Length or chunked needed"})
            _log_refusal(who.name, "no Content-Length and not chunked")
            return refused
        service: Service = web.ctx.service
        result: Result = service.collector.receive(
            _Body(env["wsgi.input"]), declared=None if chunked else declared,
            encoding=env.get("HTTP_CONTENT_ENCODING", ""),
            uploader=who.name, origin=env.get(ORIGIN_KEY) or Origin(), claimed_uuid=env.get("HTTP_X_PYTOMO_RUN", ""),
            claimed_sha=env.get("HTTP_X_PYTOMO_SHA256", ""))
        extra = [("Retry-After", str(result.retry_after_s))] if result.retry_after_s else []
        return answer(result.status, {"run_uuid": result.run_uuid, "message": result.message}, extra=extra)

    def GET(self) -> bytes:
        who = holder("researcher")
        if isinstance(who, bytes):
            return who
        if web.ctx.env.get("QUERY_STRING"):
            return answer(400, {"error": "query", "message": "the listing takes no parameter"})
        service: Service = web.ctx.service
        return answer(200, {"runs": service.collector.listing()})


class History:
    """``GET /api/v1/history?span=``: every stored run together, per service and cache server, and day by day, with
    the web pages' definitions (researcher)."""

    def GET(self) -> bytes:
        who = holder("researcher")
        if isinstance(who, bytes):
            return who
        try:
            query = parse_qs(web.ctx.env.get("QUERY_STRING", ""), keep_blank_values=True, max_num_fields=5)
        except ValueError:
            query = {"": []}
        spans = query.pop("span", ["month"])
        if query or spans[-1] not in SPAN_LENGTH_S:
            return answer(400, {"error": "query", "message": f"span= one of {', '.join(SPAN_LENGTH_S)}, nothing else"})
        service: Service = web.ctx.service
        return answer(200, history_doc(service.combined(), spans[-1]))


class RunFile:
    """``GET /api/v1/runs/<uuid>.db``: the database as uploaded (researcher)."""

    def GET(self, run_uuid: str) -> bytes:
        who = holder("researcher")
        if isinstance(who, bytes):
            return who
        service: Service = web.ctx.service
        path = service.collector.file_of(run_uuid)
        if path is None:
            return answer(404, {"error": "not found", "message": "no such run"})
        web.header("Content-Type", "application/vnd.sqlite3")
        web.header("Content-Disposition", f'attachment; filename="{run_uuid}.db"')
        return path.read_bytes()


def make_collector_app(service: Service) -> web.application:
    """The web.py application of the collector."""
    urls = ("/api/v1/runs", Runs, rf"/api/v1/runs/{UUID_PATTERN}\.db", RunFile, "/api/v1/history", History)
    app = web.application(urls, {"Runs": Runs, "RunFile": RunFile, "History": History}, autoreload=False)

    def attach() -> None:
        web.ctx.service = service
        web.header("X-Content-Type-Options", "nosniff")

    app.add_processor(web.loadhook(attach))
    app.notfound = lambda: web.notfound(answer(404, {"error": "not found", "message": "no such route"}))
    app.internalerror = lambda: web.internalerror(answer(500, {"error": "internal", "message": "see the log"}))
    return app


def without_address(app: Callable, lookup: Callable[[str | None], Origin] | None) -> Callable:
    """WSGI middleware: an upload's remote address -> its Origin (AS, country); the address leaves the request."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        address = environ.pop("REMOTE_ADDR", None)
        environ.pop("REMOTE_PORT", None)
        if lookup is not None and environ.get("REQUEST_METHOD") == "POST":
            environ[ORIGIN_KEY] = lookup(address)
        return app(environ, start_response)

    return wrapped


def vantage_lookup(ip_dbs: Iterable[str]) -> Callable[[str | None], Origin] | None:
    """AS and country of an address from the ``--ip-db`` files (pytomo/engine/vantage.py); None without files."""
    files = list(ip_dbs)
    if not files:
        return None
    from pytomo.engine.vantage import Vantage

    vantage = Vantage(files, lookup_private=True)

    def lookup(address: str | None) -> Origin:
        found = vantage.lookup(address)
        return Origin(found.as_number, found.country, found.problem)

    return lookup


def serve_collector(service: Service, bind: str, port: int, *, lookup: Callable[[str | None], Origin] | None = None,
                    on_ready: Callable[[str], None] | None = None, threads: int = THREADS) -> None:
    """Serve the collector until interrupted; ``on_ready`` gets the URL once the socket listens."""
    from cheroot import wsgi

    app = make_collector_app(service)
    server = wsgi.Server((bind, port), without_address(finished(app.wsgifunc()), lookup), numthreads=threads,
                         server_name="pytomo-collector", request_queue_size=BACKLOG)
    run_server(server, on_ready, max_body_bytes=service.collector.max_bytes)
