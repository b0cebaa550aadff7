"""WSGI middleware: whole answers with a Content-Length, one Content-Type, and HEAD answered without a body."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("pytomo.web.app")

NO_BODY_STATUSES = ("1", "204", "304")
SINGLE_HEADERS = {"content-type", "content-length", "cache-control"}


def finished(app: Callable) -> Callable:
    """Wrap a WSGI ``app``: its answer is read whole (pages and graphs are small), duplicated single headers keep
    their last value, ``Content-Length`` is set, and a HEAD request gets the same headers with no body."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def start(status: str, headers: list, exc_info: Any = None) -> Callable:
            seen["status"], seen["headers"] = status, headers
            return lambda _data: None  # the legacy write() is not used by web.py

        result = app(environ, start)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        status: str = seen["status"]
        last: dict[str, tuple[str, str]] = {}
        headers: list[tuple[str, str]] = []
        for name, value in seen["headers"]:
            if name.lower() in SINGLE_HEADERS:
                last[name.lower()] = (name, value)
            else:
                headers.append((name, value))
        last.pop("content-length", None)
        headers.extend(last.values())
        if not status.startswith(NO_BODY_STATUSES):
            headers.append(("Content-Length", str(len(body))))
        else:
            body = b""
        method = environ.get("REQUEST_METHOD")
        log.debug("%s %s %s -> %s", environ.get("REMOTE_ADDR"), method, environ.get("PATH_INFO"), status)
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    return wrapped
