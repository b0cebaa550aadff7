"""A platform's page or API request through the crawler's libcurl transport, as its media requests go: the address
resolved by us and checked by the target policy, a browser presented when asked, the body bounded and decoded."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

import requests
import requests.cookies
from requests.structures import CaseInsensitiveDict

from pytomo.engine.curl import read_chunk
from pytomo.engine.http import HttpClient, host_and_port, is_ip
from pytomo.errors import ResolveFailed
from pytomo.settings import DEFAULTS


@dataclass
class Page:
    """An answer: its status, headers, decoded body (at most the limit) and the browser presented (None: none)."""

    status_code: int
    headers: CaseInsensitiveDict
    body: bytes
    impersonate: str | None


def through_transport(http: HttpClient) -> bool:
    """True when page requests can go through libcurl: a transport, and no proxy (libcurl is pinned, not proxied);
    a stand-in client without a transport keeps ``requests``."""
    return getattr(http, "transport", None) is not None and getattr(http, "proxy", None) is None


def get_page(http: HttpClient, url: str, *, headers: dict[str, str] | None = None, impersonate: str | None = None,
             limit_bytes: int = 4 << 20, deadline_s: float = DEFAULTS.request_deadline_s) -> Page:
    """GET ``url`` over libcurl (``through_transport`` must be True). Raises ResolveFailed, ForbiddenAddress, or an
    OSError (libcurl's error, a body that does not decode, the deadline)."""
    transport = http.transport
    assert transport is not None, "get_page needs the libcurl transport"
    host, _port = host_and_port(url)
    address = host if is_ip(host) else next(iter(http.resolve(host)), None)
    if address is None:
        raise ResolveFailed(host=host)
    http.policy.check(address, host, url)
    sent = dict(headers or {})
    if http.cookies is not None and "Cookie" not in sent:
        cookie = requests.cookies.get_cookie_header(http.cookies, requests.Request("GET", url).prepare())
        if cookie:
            sent["Cookie"] = cookie
    answer = transport.request(url, address, headers=sent, timeout_s=http.timeout_s, deadline_s=deadline_s,
                               impersonate=impersonate)
    if answer.sock is not None:
        answer.sock.close()
    if answer.error is not None:
        raise answer.error
    wire = bytearray()
    end = time.monotonic() + deadline_s
    while len(wire) <= 2 * limit_bytes:  # a compressed page: its wire bytes are fewer than its text's
        item = read_chunk(answer, end - time.monotonic())
        if item is None:
            answer.cancel()
            raise TimeoutError(f"the page did not arrive within {deadline_s:g} s")
        if not item[0]:
            break
        wire += item[0]
    else:
        answer.cancel()
    return Page(answer.status_code, answer.headers, _decoded(bytes(wire), answer.headers, limit_bytes),
                answer.impersonate)


def _decoded(wire: bytes, headers: CaseInsensitiveDict, limit_bytes: int) -> bytes:
    """The body as its Content-Encoding says (gzip, deflate; what the transport asks for), at most ``limit_bytes``."""
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return wire[:limit_bytes]
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    try:
        return zlib.decompressobj(wbits).decompress(wire, limit_bytes)
    except zlib.error as exc:
        raise OSError(f"the page does not decode as its Content-Encoding says: {exc}") from exc
