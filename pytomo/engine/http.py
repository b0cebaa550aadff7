"""HTTP requests pinned to an address we resolved ourselves, keeping the original Host (and SNI for HTTPS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from pytomo.errors import ResolveFailed


class _PinnedTLSAdapter(HTTPAdapter):
    """Connects to an IP address but sends SNI and checks the certificate for the name in the Host header."""

    def send(self, request, **kwargs):  # type: ignore[override]
        host = request.headers.get("Host")
        if host:
            name = urlsplit(f"//{host}").hostname
            self.poolmanager.connection_pool_kw.update(server_hostname=name, assert_hostname=name)
        else:
            self.poolmanager.connection_pool_kw.pop("server_hostname", None)
            self.poolmanager.connection_pool_kw.pop("assert_hostname", None)
        return super().send(request, **kwargs)


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

    def __init__(self, resolve: Callable[[str], list[str]], *, timeout_s: float = 5.0, user_agent: str = "",
                 proxy: str | None = None) -> None:
        self.resolve = resolve
        self.timeout_s = timeout_s
        self.proxy = proxy
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("https://", _PinnedTLSAdapter())
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        if proxy:
            self.session.proxies = {"http": proxy, "https": proxy}

    def request(self, method: str, url: str, *, address: str | None = None, stream: bool = False,
                headers: dict[str, str] | None = None, timeout_s: float | None = None) -> requests.Response:
        """Send one request without following redirects; ``address`` defaults to the first one resolved."""
        host, _port = host_and_port(url)
        hdrs = dict(headers or {})
        target = url
        if self.proxy is None:
            if address is None:
                address = host if is_ip(host) else next(iter(self.resolve(host)), None)
                if address is None:
                    raise ResolveFailed(host=host)
            if address != host:
                target = pinned_url(url, address)
                hdrs["Host"] = urlsplit(url).netloc.rsplit("@", 1)[-1]
        t = timeout_s or self.timeout_s
        return self.session.request(method, target, headers=hdrs, stream=stream, allow_redirects=False,
                                    timeout=(t, t))

    def get_text(self, url: str, *, limit_bytes: int = 4 * 1024 * 1024) -> tuple[requests.Response, str]:
        """GET a page (no redirect following) and return the response and at most ``limit_bytes`` of its text."""
        resp = self.request("GET", url, stream=True)
        try:
            body = resp.raw.read(limit_bytes, decode_content=True) or b""
        finally:
            resp.close()
        return resp, body.decode(resp.encoding or "utf-8", errors="replace")

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
