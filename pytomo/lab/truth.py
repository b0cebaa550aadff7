"""The lab's ground-truth log: one JSON line per media transfer served by a cache server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRUTH_FIELDS = ("video_id", "page_url", "media_url", "cache_host", "cache_ip", "rate_bps", "burst_bytes",
                "ttfb_delay_s", "stalls", "fault", "container", "bitrate_bps", "duration_s", "size_bytes",
                "method", "status", "range", "bytes_sent", "started_at", "ended_at", "segment",
                # the network path to the cache server (all null when the lab runs on loopback)
                "path_delay_ms", "path_rate_bps", "path_loss", "path_loss_up", "path_queue_bytes", "path_mtu_bytes",
                # which server software wrote the record: "lab" (pytomo/lab/http.py) or "nginx" (its access log)
                "software",
                # the connection's serial number and this request's number on it (1: a new connection): nginx's
                # $connection and $connection_requests, or the lab server's own count
                "connection", "connection_requests",
                # the request's User-Agent (every server: nginx's $http_user_agent, Caddy's request headers); the
                # lab's server only (null for nginx): the server's rules (null or
                # "youtube", see pytomo/lab/rules.py); why a request was refused (403: "user_agent",
                # "not_available_yet"); the video's available_at then (UNIX time, null: none); the rate the answer
                # was paced at (null: unlimited); the file of a pair served ("video", "audio"; null: the video's file)
                "user_agent", "rules", "refused", "available_at_s", "pace_rate_bps", "part",
                # nginx's own word (null for the lab's server): $body_bytes_sent, $bytes_sent (headers included),
                # $request_time, $msec, $sent_http_content_length, $sent_http_content_encoding, $request_uri
                "body_bytes_sent", "total_bytes_sent", "request_time_s", "msec",
                "content_length_bytes", "content_encoding", "request_uri",
                # nginx's limit_rate (bit/s), limit_rate_after, and the most bytes (headers included) its formula
                # let through during the request (see pytomo/lab/nginx.py LIMIT_RATE_FORMULA); null: unlimited
                "limit_rate_bps", "limit_rate_after_bytes", "limit_bound_bytes",
                # the server's word on the transport: HTTP/1.1, HTTP/2.0 (nginx), HTTP/2, HTTP/3 (Caddy); the TLS
                # version (TLSv1.3); both null where the server does not say (the lab's own server: HTTP/1.1 only)
                "protocol", "tls_version",
                # the server name the client's TLS handshake asked for (SNI), as the lab's own TLS server received
                # it; null over plain HTTP, without SNI, and in nginx's and Caddy's records
                "sni",
                # the client's TLS hello as the lab's own TLS server peeked at it before the handshake: JA4's first
                # part and the browser marks found (client_hello), browser or not_browser (tls_client); null over
                # plain HTTP and in nginx's and Caddy's records (pytomo/lab/clienthello.py)
                "client_hello", "tls_client")

# The lab's request log (``requests_file`` beside the truth log): one line per request that any of the lab's own
# HTTP servers answered (platform, redirectors, recorded platforms, the lab's cache servers; HEAD, redirects and
# errors included), as that server saw it: its role and its own host name, the address and port the connection
# arrived at, the Host header, the SNI and TLS version of the connection, and the connection's serial number
# (shared with the truth log's) and this request's number on it.
REQUEST_FIELDS = ("role", "server_host", "server_ip", "server_port", "client_ip", "method", "path", "host",
                  "status", "scheme", "sni", "tls_version", "protocol", "connection", "connection_requests", "at")


class TruthLog:
    """Collects transfer records in memory and, when given a path, appends them to a JSON-lines file.

    Records written by other processes (nginx's access log) come in through sources: callables that add their
    new records, run before ``records`` is read.
    """

    def __init__(self, path: str | Path | None = None, fields: tuple[str, ...] = TRUTH_FIELDS) -> None:
        self.path = Path(path) if path else None
        self.fields = fields
        self._records: list[dict[str, Any]] = []
        self._sources: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record so far, after reading what the sources have to add."""
        self.collect()
        return self._records

    def add_source(self, source: Callable[[], object]) -> None:
        """Have ``source()`` called (it adds its new records) before records are read."""
        self._sources.append(source)

    def remove_source(self, source: Callable[[], object]) -> None:
        """Stop calling ``source``."""
        if source in self._sources:
            self._sources.remove(source)

    def collect(self) -> None:
        """Bring in every source's new records."""
        for source in list(self._sources):
            source()

    def add(self, record: dict[str, Any]) -> None:
        """Store one record (all of the log's fields: TRUTH_FIELDS unless told)."""
        row = {k: record.get(k) for k in self.fields}
        with self._lock:
            self._records.append(row)
            if self.path:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def path_stats_file(truth_path: str | Path) -> Path:
    """Where the lab leaves the network path's final counters beside a truth log (the delay line's own record)."""
    truth_path = Path(truth_path)
    return truth_path.with_name(truth_path.name + ".path.json")


def requests_file(truth_path: str | Path) -> Path:
    """Where the lab writes its request log (REQUEST_FIELDS) beside a truth log."""
    truth_path = Path(truth_path)
    return truth_path.with_name(truth_path.name + ".requests.jsonl")


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read a ground-truth log back."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
