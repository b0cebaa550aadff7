"""Media requests over libcurl (curl_cffi): HTTP/1.1, HTTP/2 or HTTP/3, pinned to our address, timed as they arrive."""

from __future__ import annotations

import os
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import get_args
from urllib.parse import urlsplit

from curl_cffi import Curl, CurlError, CurlHttpVersion, CurlInfo, CurlOpt
from curl_cffi.curl import CURL_WRITEFUNC_ERROR
from curl_cffi.requests.impersonate import BrowserTypeLiteral, resolve_latest_browser_type
from requests.structures import CaseInsensitiveDict

from pytomo.engine.altsvc import AltServices
from pytomo.results import ConnectionUse
from pytomo.settings import DEFAULTS

HTTP_CHOICES = ("1.1", "2", "3", "auto")
_VERSIONS = {"1.1": CurlHttpVersion.V1_1, "2": CurlHttpVersion.V2TLS, "3": CurlHttpVersion.V3ONLY,
             "auto": CurlHttpVersion.V2TLS}
# Go's HTTP/2 server (Caddy) may acknowledge curl-impersonate's two SETTINGS frames with one ACK and then stall the
# stream at 1 MiB (docs/lab.md): curl's own window, announced in its first SETTINGS frame, avoids the second
_H2_SETTINGS = "1:65536;2:0;4:1048576;6:262144"
_CURLINFO_TEXT = 0
_TLS_TEXT = re.compile(rb"SSL connection using (TLSv[\d.]+)")
# libcurl's verbose text (lib/http2.c, lib/vquic/curl_ngtcp2.c): "[HTTP/2] [1] OPENED stream for https://..."
_STREAM_TEXT = re.compile(rb"^\[HTTP/[23]\] \[(\d+)\] OPENED stream for ")
# ...and why QUIC failed (lib/vquic: "QUIC connect to 127.0.0.1 port 443 failed: Could not connect to server",
# after its details, such as "QUIC: connection to 127.0.0.1 port 443 refused")
_QUIC_TEXT = re.compile(rb"^QUIC[ :]")
_QUIC_REASON_CHARS = 1000
# stored when HTTP/3 was asked for, TCP was used and libcurl said nothing about QUIC (it drops a QUIC attempt that
# is still under way once TCP connected: a QUIC port that never answers)
RACE_LOST = "TCP connected first: libcurl reported no QUIC error (no QUIC answer yet)"
_STATUS = re.compile(rb"HTTP/([\d.]+) (\d{3})")
_READ_CHUNK_BYTES = 256 * 1024
# the browsers libcurl itself can present (curl-impersonate's own targets); a family name ("chrome") is its newest
IMPERSONATE_TARGETS = frozenset(get_args(BrowserTypeLiteral))


def impersonation_target(name: str) -> str:
    """curl_cffi's exact browser target for ``name`` (``chrome`` -> its newest Chrome, e.g. ``chrome152``).
    Raises ValueError for a name libcurl cannot present."""
    if name not in IMPERSONATE_TARGETS:
        raise ValueError(f"cannot impersonate {name!r}: not one of curl_cffi's browser targets")
    return str(resolve_latest_browser_type(name))


class CurlTransportError(OSError):
    """libcurl ended a request with an error (its code and message); an OSError like any network failure."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class CurlAnswer:
    """One request in flight: its answer's head once it came, then its body's chunks with their arrival times."""

    status_code: int = 0
    http_version: str | None = None
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    headers_at: float | None = None  # perf_counter() when the head was whole
    chunks: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # (bytes, t) then (b"", t) or an error
    connection: ConnectionUse | None = None  # known when the request has ended
    ended: threading.Event = field(default_factory=threading.Event)
    head_ready: threading.Event = field(default_factory=threading.Event)
    error: CurlTransportError | None = None
    sock: socket.socket | None = None  # a duplicate of libcurl's TCP socket (TCP_INFO); None over QUIC; close it
    impersonate: str | None = None  # the browser target whose TLS and HTTP/2 fingerprint was presented; None: libcurl's
    http_stream_id: int | None = None  # the HTTP/2 or HTTP/3 stream libcurl opened for it; None over HTTP/1.x
    quic_fallback: str | None = None  # HTTP/3 was tried and TCP used: libcurl's words why; None: HTTP/3 or not tried
    tried_h3: bool = False  # HTTP/3 asked for, TCP allowed (auto)
    origin: tuple[str, int] = ("", 0)  # host, port
    quic_text: list[str] = field(default_factory=list)  # libcurl's lines about QUIC
    _stop: bool = False

    def cancel(self) -> None:
        """Stop the transfer at its next chunk (libcurl then closes or resets its stream)."""
        self._stop = True


_Key = tuple[str, str, int, str, bool, str | None]  # scheme, host, port, address, HTTP/3 tried, impersonated


class _Handle:
    """One libcurl easy handle (its connections kept alive for the next request) and the TLS version it last saw."""

    def __init__(self) -> None:
        self.curl = Curl()
        self.tls_version: str | None = None
        self.requests = 0  # on its current connection


class CurlTransport:
    """Requests of one crawl over libcurl, as a browser makes them: ``http`` is the protocol asked for (one of
    HTTP_CHOICES; ``auto``: HTTP/2 by ALPN, HTTP/3 once the server advertised it in ``Alt-Svc``, HTTP/1.1 over plain
    TCP). Each request is pinned to the address we resolved; its answer streams through a worker thread so that each
    chunk carries the time libcurl handed it over. ``impersonate`` (a curl_cffi browser target, see ``request``) is
    the default of every request."""

    def __init__(self, http: str, *, ca_file: str | None = None, user_agent: str = "",
                 accept_encoding: str = "gzip, deflate", impersonate: str | None = None) -> None:
        if http not in HTTP_CHOICES:
            raise ValueError(f"http must be one of {', '.join(HTTP_CHOICES)}, not {http!r}")
        self.http = http
        self.impersonate = impersonation_target(impersonate) if impersonate else None
        self.ca_file = ca_file
        self.user_agent = user_agent
        self.accept_encoding = accept_encoding
        self._idle: dict[_Key, list[_Handle]] = {}
        self.alt_svc = AltServices()  # origins that advertised HTTP/3, and those where QUIC failed
        self._lock = threading.Lock()

    def request(self, url: str, address: str, *, headers: dict[str, str] | None = None,
                timeout_s: float = DEFAULTS.http_timeout_s, deadline_s: float = 60.0, impersonate: str | None = None,
                method: str = "GET") -> CurlAnswer:
        """Start a GET (or a HEAD: ``method``) of ``url`` from ``address``; returns once the head came (or the
        request failed first).

        ``timeout_s`` bounds the connection and the head; ``deadline_s`` the whole request (libcurl ends it then).
        ``impersonate`` (default: the transport's): a curl_cffi browser target (``chrome``, ``firefox``,
        ``safari``, or an exact one such as ``chrome131``) whose TLS ClientHello, HTTP/2 settings and default headers
        libcurl presents; the User-Agent is then the browser's unless ``headers`` carries one, and Accept-Encoding
        stays ours (what the crawler decodes). Raises ValueError for a target libcurl cannot present."""
        if method not in ("GET", "HEAD"):
            raise ValueError(f"libcurl requests are GET or HEAD, not {method!r}")
        target = impersonation_target(impersonate) if impersonate else self.impersonate
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # a handle per protocol asked for and fingerprint: an impersonating connection is never reused by a plain one
        tried_h3 = self.http == "auto" and parts.scheme == "https" and self.alt_svc.try_h3(host, port)
        key = (parts.scheme, host, port, address, tried_h3, target)
        handle = self._take(key)
        answer = CurlAnswer(impersonate=target, tried_h3=tried_h3, origin=(host, port))
        self._configure(handle, url, (host, port, address), headers or {}, timeout_s, deadline_s, answer)
        if method == "HEAD":
            handle.curl.setopt(CurlOpt.NOBODY, 1)  # libcurl sends HEAD and expects no body (reset by the next request)
        worker = threading.Thread(target=self._perform, args=(handle, key, answer), name="curl", daemon=True)
        worker.start()
        answer.head_ready.wait(timeout_s + 1.0)
        if not answer.head_ready.is_set():
            answer.cancel()
            answer.error = CurlTransportError(28, f"the response headers did not all arrive within {timeout_s:g} s")
        return answer

    def learn(self, host: str, port: int, alt_svc: str | None) -> None:
        """Remember that an origin advertised HTTP/3 on its own port (an answer's ``Alt-Svc``, over any transport),
        as Chrome does: its next new connections try QUIC, unless QUIC failed there (``AltServices.mark_broken``)."""
        self.alt_svc.learn(host, port, alt_svc)

    def _take(self, key: _Key) -> _Handle:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else _Handle()

    def _give_back(self, key: _Key, handle: _Handle) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(handle)

    def _configure(self, handle: _Handle, url: str, origin: tuple[str, int, str], headers: dict[str, str],
                   timeout_s: float, deadline_s: float, answer: CurlAnswer) -> None:
        c = handle.curl
        c.reset()
        host, port, address = origin
        pinned = f"[{address}]" if ":" in address else address
        c.setopt(CurlOpt.URL, url)
        c.setopt(CurlOpt.RESOLVE, [f"{host}:{port}:{pinned}"])
        version = _VERSIONS[self.http] if url.startswith("https:") else CurlHttpVersion.V1_1
        if answer.tried_h3:
            version = CurlHttpVersion.V3  # HTTP/3, and HTTP/2 or 1.1 over TCP when QUIC fails (libcurl races them)
        c.setopt(CurlOpt.HTTP_VERSION, version)  # before impersonating: its HTTP/3 settings depend on it
        sent = {"User-Agent": self.user_agent, "Accept-Encoding": self.accept_encoding, **headers}
        if answer.impersonate:
            if c.impersonate(answer.impersonate, default_headers=True) != 0:
                raise ValueError(f"libcurl cannot impersonate {answer.impersonate!r}")
            c.setopt(CurlOpt.HTTP_VERSION, version)  # the browser's own choice (HTTP/2) would override ours
            if "user-agent" not in {k.lower() for k in headers}:
                del sent["User-Agent"]  # the browser's, consistent with its fingerprint
        elif version == CurlHttpVersion.V2TLS:  # the browser's SETTINGS are part of its fingerprint: only ours
            c.setopt(CurlOpt.HTTP2_SETTINGS, _H2_SETTINGS)
        if self.ca_file:
            c.setopt(CurlOpt.CAINFO, self.ca_file)
        c.setopt(CurlOpt.CONNECTTIMEOUT_MS, int(timeout_s * 1000))
        c.setopt(CurlOpt.TIMEOUT_MS, int(deadline_s * 1000))
        c.setopt(CurlOpt.FOLLOWLOCATION, 0)
        c.setopt(CurlOpt.BUFFERSIZE, _READ_CHUNK_BYTES)
        c.setopt(CurlOpt.HTTPHEADER, [f"{k}: {v}".encode() for k, v in sent.items() if v])
        c.setopt(CurlOpt.HEADERFUNCTION, lambda line: self._on_header(handle, answer, line))
        c.setopt(CurlOpt.WRITEFUNCTION, lambda data: self._on_body(answer, data))
        c.setopt(CurlOpt.VERBOSE, 1)
        c.setopt(CurlOpt.DEBUGFUNCTION, lambda kind, text: self._on_debug(handle, answer, kind, text))

    def _on_header(self, handle: _Handle, answer: CurlAnswer, line: bytes) -> int:
        if m := _STATUS.match(line):
            answer.status_code, answer.headers = int(m.group(2)), CaseInsensitiveDict()
            version = m.group(1).decode()
            answer.http_version = f"HTTP/{'1.1' if version == '1.1' else version.split('.')[0]}"
            if version == "1.0":
                answer.http_version = "HTTP/1.0"
        elif line in (b"\r\n", b"\n"):
            if answer.status_code >= 200:  # not a 1xx: this head is the answer's
                answer.headers_at = time.perf_counter()
                answer.connection = _connection_use(handle.curl, answer.http_version, handle)  # allowed in a callback
                self._fell_back(answer)
                if answer.http_version != "HTTP/3":
                    answer.sock = _tcp_socket(handle.curl)
                answer.head_ready.set()
        elif b":" in line:
            name, _, value = line.decode("latin-1").partition(":")
            answer.headers[name.strip()] = value.strip()
        return len(line)

    @staticmethod
    def _on_body(answer: CurlAnswer, data: bytes) -> int:
        if answer._stop:
            # libcurl ends the transfer (CURLE_WRITE_ERROR); curl_cffi passes on only this value (any other count
            # that differs from the chunk's is taken as the whole chunk, with a warning, and the transfer goes on)
            return CURL_WRITEFUNC_ERROR
        answer.chunks.put((data, time.perf_counter()))
        return len(data)

    @staticmethod
    def _on_debug(handle: _Handle, answer: CurlAnswer, kind: int, text: bytes) -> None:
        if kind != _CURLINFO_TEXT:
            return
        if m := _TLS_TEXT.search(text):
            handle.tls_version = m.group(1).decode()
        elif answer.http_stream_id is None and (m := _STREAM_TEXT.match(text)):
            answer.http_stream_id = int(m.group(1))
        elif answer.tried_h3 and _QUIC_TEXT.match(text):
            answer.quic_text.append(text.decode("utf-8", "replace").strip())

    def _fell_back(self, answer: CurlAnswer) -> None:
        """HTTP/3 was tried and the request went over TCP: why (libcurl's words), and no QUIC to that origin for a
        while, as Chrome marks a broken alternative service."""
        if not answer.tried_h3 or answer.http_version in (None, "HTTP/3") or answer.quic_fallback is not None:
            return
        reason = "; ".join(dict.fromkeys(answer.quic_text)) or RACE_LOST
        answer.quic_fallback = reason[:_QUIC_REASON_CHARS]
        self.alt_svc.mark_broken(*answer.origin)

    def _perform(self, handle: _Handle, key: _Key, answer: CurlAnswer) -> None:
        c = handle.curl
        try:
            c.perform()
        except CurlError as exc:
            if not answer._stop:
                answer.error = CurlTransportError(getattr(exc, "code", 0) or 0, str(exc))
        finally:
            self.learn(key[1], key[2], answer.headers.get("Alt-Svc"))
            if answer.connection is None:  # no head came: how far the connection got
                answer.connection = _connection_use(c, answer.http_version, handle)
            if answer.quic_fallback is not None:  # its connection is TCP: for the origin's next requests
                key = (*key[:4], False, key[5])
            # back in the pool before the reader hears of the end: the request it sends next finds the connection
            self._give_back(key, handle)
            answer.chunks.put((b"", time.perf_counter()) if answer.error is None else answer.error)
            answer.head_ready.set()
            answer.ended.set()

    def close(self) -> None:
        """Close every idle handle and its connections."""
        with self._lock:
            handles = [h for hs in self._idle.values() for h in hs]
            self._idle.clear()
        for h in handles:
            h.curl.close()


def _connection_use(c: Curl, http_version: str | None, handle: _Handle) -> ConnectionUse | None:
    """How the request used its connection, from libcurl's own timers (seconds since the request started)."""
    try:
        new = int(c.getinfo(CurlInfo.NUM_CONNECTS)) > 0  # type: ignore[arg-type]
        connect_s = float(c.getinfo(CurlInfo.CONNECT_TIME))  # type: ignore[arg-type]
        appconnect_s = float(c.getinfo(CurlInfo.APPCONNECT_TIME))  # type: ignore[arg-type]
        lookup_s = float(c.getinfo(CurlInfo.NAMELOOKUP_TIME))  # type: ignore[arg-type]
    except CurlError:
        return None
    handle.requests = 1 if new else handle.requests + 1
    quic = http_version == "HTTP/3"
    tls = "TLSv1.3" if quic else handle.tls_version  # QUIC carries TLS 1.3 only (RFC 9001)
    if not new:
        return ConnectionUse(new=False, tcp_connect_s=None, tls_handshake_s=None,
                             request_on_connection=handle.requests, tls_version=tls)
    if quic:  # one handshake, QUIC and TLS together: no TCP
        return ConnectionUse(new=True, tcp_connect_s=None, tls_handshake_s=max(0.0, appconnect_s - lookup_s),
                             request_on_connection=1, tls_version=tls)
    return ConnectionUse(new=True, tcp_connect_s=max(0.0, connect_s - lookup_s),
                         tls_handshake_s=max(0.0, appconnect_s - connect_s) if appconnect_s else None,
                         request_on_connection=1, tls_version=tls)


def _tcp_socket(c: Curl) -> socket.socket | None:
    """A duplicate of the TCP socket libcurl uses for the transfer (its own stays open), or None."""
    try:
        fd = int(c.getinfo(CurlInfo.ACTIVESOCKET))  # type: ignore[arg-type]
    except CurlError:
        return None
    if fd < 0:
        return None
    try:
        return socket.socket(fileno=os.dup(fd))
    except OSError:
        return None


def read_chunk(answer: CurlAnswer, timeout_s: float) -> tuple[bytes, float] | None:
    """The next chunk and when it arrived (perf_counter); ``(b"", t)`` at the end; None when none came in time.
    Raises the transfer's CurlTransportError."""
    try:
        item = answer.chunks.get(timeout=max(0.0, timeout_s))
    except queue.Empty:
        return None
    if isinstance(item, BaseException):
        raise item
    return item



# libcurl's error codes (curl.h) as the crawler's error kinds; CURLE_PEER_FAILED_VERIFICATION by its message
_KINDS = {6: "connect", 7: "connect", 28: "timeout", 35: "tls_handshake", 18: "short_body", 52: "reset",
          55: "reset", 56: "reset", 92: "reset", 95: "connect", 16: "transfer"}


def curl_failure(exc: BaseException) -> tuple[str, str] | None:
    """The error kind and message of a libcurl failure (None for any other exception)."""
    if not isinstance(exc, CurlTransportError):
        return None
    text = str(exc)
    low = text.lower()
    if exc.code == 60:
        if "expired" in low:
            return "tls_expired", text
        if "subject name" in low or "does not match" in low or "hostname" in low:
            return "tls_name_mismatch", text
        return "tls_unknown_ca", text + " (add its CA with --ca-file)"
    if exc.code == 28 and "response headers" in low:
        return "timeout", text
    return _KINDS.get(exc.code, "transfer"), text
