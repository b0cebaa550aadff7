"""HTTP requests pinned to an address we resolved ourselves, keeping the original Host (and SNI for HTTPS)."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import ipaddress
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import certifi
import requests
import requests.cookies
import urllib3.exceptions
import urllib3.response
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.util.ssl_match_hostname import CertificateError

from pytomo.engine.curl import CurlTransport
from pytomo.engine.targets import TargetPolicy
from pytomo.errors import ResolveFailed
from pytomo.results import ConnectionUse
from pytomo.settings import DEFAULTS

# What network code may catch: everything else (a parser's TypeError, say) is a bug and reaches the bug handler.
NETWORK_ERRORS = (OSError, requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException)

# What we can decode ourselves (pytomo/engine/download.py); a server must not send anything else.
ACCEPT_ENCODING = "gzip, deflate"


_local = threading.local()  # the headers deadline of the request being sent on this thread

# OpenSSL's verify results (x509_vfy.h) that say which check a certificate failed
_X509_EXPIRED = {10}  # X509_V_ERR_CERT_HAS_EXPIRED
_X509_NOT_YET = {9}  # X509_V_ERR_CERT_NOT_YET_VALID
_X509_NAME = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_X509_UNKNOWN_CA = {2, 18, 19, 20, 21}  # unable to get the issuer; self-signed leaf or chain; unable to verify
TLS_ERROR_KINDS = ("tls_unknown_ca", "tls_name_mismatch", "tls_expired", "tls_handshake")


def tls_failure(exc: BaseException) -> tuple[str, str] | None:
    """The kind (one of TLS_ERROR_KINDS) and a one-line message of a TLS failure anywhere in ``exc``'s chain."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            code = e.verify_code
            message = f"the server's certificate was refused: {e.verify_message}"
            if code in _X509_EXPIRED or code in _X509_NOT_YET:
                return "tls_expired", message
            if code in _X509_NAME:
                return "tls_name_mismatch", message
            if code in _X509_UNKNOWN_CA:
                return "tls_unknown_ca", message + " (add its CA with --ca-file)"
            return "tls_unknown_ca", message
        if isinstance(e, CertificateError):  # urllib3's own check of the name (assert_hostname)
            return "tls_name_mismatch", f"the server's certificate was refused: {e}"
        if isinstance(e, ssl.SSLError):
            return "tls_handshake", f"the TLS handshake failed: {e.reason or e}"
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [r for r in (getattr(e, "reason", None),) if isinstance(r, BaseException)]
    return None


def trust_bundle(ca_files: Sequence[str | os.PathLike[str]]) -> str | None:
    """A PEM file of certifi's bundle followed by each of ``ca_files`` (the caller deletes it); None: no extra CA."""
    if not ca_files:
        return None
    fd, path = tempfile.mkstemp(prefix="pytomo-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as out:
        with open(certifi.where(), "rb") as default:
            out.write(default.read())
        for name in ca_files:
            with open(name, "rb") as extra:
                out.write(b"\n" + extra.read() + b"\n")
    return path


class Watchdog:
    """Shuts a socket down when a deadline passes, so that no read on it can outlast the deadline.

    A server sending its headers or a page one byte at a time never trips a per-read timeout; this does.
    """

    def __init__(self, sock: socket.socket | None, seconds: float) -> None:
        self.fired = False
        self._sock = sock
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        if sock is not None:
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            if self._sock is not None:
                self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        """Stop watching (the deadline was met)."""
        self._timer.cancel()


class _TimedConnection(HTTPConnection):
    """An HTTP connection that remembers when it was opened and how long the TCP handshake took.

    Its response headers must arrive whole within the thread's headers deadline (``HttpClient.request``'s
    timeout), however slowly the server drips them.
    """

    pytomo_fresh = False
    pytomo_tcp_connect_s: float | None = None
    pytomo_tls_handshake_s: float | None = None
    pytomo_tls_version: str | None = None
    pytomo_requests = 0

    def _new_conn(self) -> socket.socket:
        t = time.perf_counter()
        sock = super()._new_conn()
        self.pytomo_tcp_connect_s = time.perf_counter() - t
        self.pytomo_tls_handshake_s = None
        self.pytomo_fresh, self.pytomo_requests = True, 0
        return sock

    # urllib3 narrows http.client's getresponse to its own response class the same way (with the same ignore).
    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        _local.connection = self  # this thread's answer came over it (urllib3 may hand it back before we look)
        limit_s = getattr(_local, "headers_deadline_s", None)
        if not limit_s:
            return super().getresponse()
        dog = Watchdog(self.sock, limit_s)
        try:
            resp = super().getresponse()
            if dog.fired:  # the shutdown ended the header block early: what was read is not the whole answer
                resp.close()
                _local.headers_expired = True
                raise TimeoutError(f"the response headers did not all arrive within {limit_s:g} s")
            return resp
        except Exception:
            if dog.fired:
                _local.headers_expired = True
                raise TimeoutError(f"the response headers did not all arrive within {limit_s:g} s") from None
            raise
        finally:
            dog.cancel()


class _TimedTLSConnection(_TimedConnection, HTTPSConnection):
    """An HTTPS connection that also times its TLS handshake."""

    def connect(self) -> None:
        t = time.perf_counter()
        super().connect()
        if self.pytomo_fresh and self.pytomo_tcp_connect_s is not None:
            self.pytomo_tls_handshake_s = max(0.0, time.perf_counter() - t - self.pytomo_tcp_connect_s)
        sock = self.sock
        self.pytomo_tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None


class _TimedPool(HTTPConnectionPool):
    ConnectionCls = _TimedConnection


class _TimedTLSPool(HTTPSConnectionPool):
    ConnectionCls = _TimedTLSConnection


def connection_use(resp: requests.Response) -> ConnectionUse | None:
    """Whether ``resp`` came over a connection opened for it; call once per response, on the thread that sent the
    request, before any other request of that thread."""
    conn = getattr(resp.raw, "connection", None) or getattr(_local, "connection", None)
    if not isinstance(conn, _TimedConnection):
        return None
    conn.pytomo_requests += 1
    fresh, conn.pytomo_fresh = conn.pytomo_fresh, False
    return ConnectionUse(new=fresh, tcp_connect_s=conn.pytomo_tcp_connect_s if fresh else None,
                         tls_handshake_s=conn.pytomo_tls_handshake_s if fresh else None,
                         request_on_connection=conn.pytomo_requests, tls_version=conn.pytomo_tls_version)


class _TimedAdapter(HTTPAdapter):
    """Pools whose connections say whether they were opened or reused (see ``connection_use``)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TimedPool, "https": _TimedTLSPool}


class _PinnedPoolManager(PoolManager):
    """Pools keyed by the TLS name of the request being sent on this thread (``_local.tls_name``) as well."""

    def connection_from_host(self, host: str | None, port: int | None = None, scheme: str | None = "http",
                             pool_kwargs: dict[str, Any] | None = None) -> HTTPConnectionPool:
        name = getattr(_local, "tls_name", None)
        if scheme == "https" and name:
            pool_kwargs = {**(pool_kwargs or {}), "server_hostname": name, "assert_hostname": name}
        return super().connection_from_host(host, port, scheme, pool_kwargs)


class _PinnedTLSAdapter(_TimedAdapter):
    """Connects to an IP address but sends SNI and checks the certificate for the name in the Host header.

    The name goes with the request on its own thread, never into state shared with other threads: two requests
    to different names at once (a pair's video and audio) each keep their own SNI and check.
    """

    def init_poolmanager(self, connections: int, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(connections, *args, **kwargs)
        pinned = _PinnedPoolManager(num_pools=connections, **self.poolmanager.connection_pool_kw)
        pinned.pool_classes_by_scheme = self.poolmanager.pool_classes_by_scheme
        self.poolmanager = pinned

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        host = request.headers.get("Host")
        _local.tls_name = urlsplit(f"//{host}").hostname if host else None
        try:
            return super().send(request, **kwargs)
        finally:
            _local.tls_name = None


def http_version_of(resp: requests.Response) -> str | None:
    """HTTP/1.0 or HTTP/1.1: the version of the answer's status line (None: not known)."""
    return {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(getattr(resp.raw, "version", 0))


def socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3 drops ``conn.sock`` once the response is handed over)."""
    conn = getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, socket.socket):
        fp = getattr(getattr(resp.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def host_and_port(url: str) -> tuple[str, int]:
    """The host name and the port (default for the scheme) of a URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def pinned_url(url: str, address: str) -> str:
    """The URL with its host replaced by ``address`` (bracketed for IPv6), port kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


class HttpClient:
    """A requests session whose every request goes to an address chosen by us, never by the system resolver."""

    def __init__(self, resolve: Callable[[str], list[str]], *, timeout_s: float = DEFAULTS.http_timeout_s,
                 user_agent: str = "", proxy: str | None = None, policy: TargetPolicy | None = None,
                 cookies: http.cookiejar.CookieJar | None = None, ca_files: Sequence[str | os.PathLike[str]] = (),
                 http_protocol: str = DEFAULTS.http_protocol) -> None:
        self.resolve = resolve
        self.cookies = cookies  # matched against each request's own URL (we send to an address, not a name)
        self.policy = policy or TargetPolicy(allow_private=True)
        self.timeout_s = timeout_s
        self.proxy = proxy
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment; its CA files come in as ca_files
        self._bundle = trust_bundle(ca_files)
        if self._bundle is not None:
            self.session.verify = self._bundle
        # media over HTTPS through libcurl, as --http asks (pytomo/engine/curl.py); None: all through requests
        self.transport = None if http_protocol == "1.1" else CurlTransport(
            http_protocol, ca_file=self._bundle or certifi.where(), user_agent=user_agent,
            accept_encoding=ACCEPT_ENCODING)
        self.session.mount("http://", _TimedAdapter())
        self.session.mount("https://", _PinnedTLSAdapter())
        self.session.headers["Accept-Encoding"] = ACCEPT_ENCODING
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}

    def request(self, method: str, url: str, *, address: str | None = None, stream: bool = False,
                headers: dict[str, str] | None = None, timeout_s: float | None = None) -> requests.Response:
        """Send one request without following redirects; ``address`` defaults to the first one resolved.

        The address is checked against the target policy first: ForbiddenAddress, and nothing sent, when refused.
        """
        try:
            host, _port = host_and_port(url)
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(str(exc)) from None
        hdrs = dict(headers or {})
        target = url
        if self.proxy is None:
            if address is None:
                address = host if is_ip(host) else next(iter(self.resolve(host)), None)
                if address is None:
                    raise ResolveFailed(host=host)
            self.policy.check(address, host, url)
            if self.cookies is not None and "Cookie" not in hdrs:
                cookie = requests.cookies.get_cookie_header(self.cookies, requests.Request("GET", url).prepare())
                if cookie:
                    hdrs["Cookie"] = cookie
            if address != host:
                target = pinned_url(url, address)
                hdrs["Host"] = urlsplit(url).netloc.rsplit("@", 1)[-1]
        t = timeout_s or self.timeout_s
        _local.headers_deadline_s, _local.headers_expired = t, False  # the whole header section within t
        try:
            resp = self.session.request(method, target, headers=hdrs, stream=stream, allow_redirects=False,
                                        timeout=(t, t))
            if self.transport is not None:  # what an answer over HTTP/1.1 advertised serves the media requests
                self.transport.learn(host, _port, resp.headers.get("Alt-Svc"))
            return resp
        except requests.Timeout as exc:
            if _local.headers_expired:  # say which deadline passed, not urllib3's per-read wording
                raise requests.ReadTimeout(f"the response headers did not all arrive within {t:g} s") from exc
            raise
        finally:
            _local.headers_deadline_s = None

    def cookie_headers(self, url: str, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the Cookie the jar has for ``url`` (as ``request`` sends them), when none is given."""
        sent = dict(headers)
        if self.cookies is not None and "Cookie" not in sent:
            cookie = requests.cookies.get_cookie_header(self.cookies, requests.Request("GET", url).prepare())
            if cookie:
                sent["Cookie"] = cookie
        return sent

    def read_body(self, resp: requests.Response, limit_bytes: int, deadline_s: float) -> tuple[bytes, bool]:
        """At most ``limit_bytes`` of a streamed response's decoded body, read within ``deadline_s``.

        Returns the bytes and whether the body was longer than the limit. Raises ``requests.ReadTimeout`` when the
        deadline passes first.
        """
        dog = Watchdog(socket_of(resp), deadline_s)
        try:
            body = resp.raw.read(limit_bytes + 1, decode_content=True) or b""
        except Exception as exc:
            if dog.fired:
                raise requests.ReadTimeout(f"the body did not arrive within {deadline_s:g} s") from exc
            raise
        finally:
            dog.cancel()
        if dog.fired:
            raise requests.ReadTimeout(f"the body did not arrive within {deadline_s:g} s")
        return body[:limit_bytes], len(body) > limit_bytes

    def get_text(self, url: str, *, deadline_s: float,
                 limit_bytes: int = 4 * 1024 * 1024) -> tuple[requests.Response, str]:
        """GET a page (no redirect following): the response and at most ``limit_bytes`` of its text."""
        resp = self.request("GET", url, stream=True)
        try:
            body, _longer = self.read_body(resp, limit_bytes, deadline_s)
        finally:
            resp.close()
        return resp, body.decode(resp.encoding or "utf-8", errors="replace")

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
        if self.transport is not None:
            self.transport.close()
        if self._bundle is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._bundle)
            self._bundle = None
