"""A TLS ClientHello read off a socket before the handshake, parsed (bounded, safe on any bytes) and judged.

Parsed per RFC 8446 section 4.1.2 (and RFC 5246 for TLS 1.2): the record header, then the handshake's cipher
suites and extensions. What "looks like a browser" rests on published fingerprint knowledge:

- **Chrome** (BoringSSL with ``SSL_CTX_set_grease_enabled``) puts GREASE values (RFC 8701: 0x0A0A, 0x1A1A, ...,
  0xFAFA) among its cipher suites and its extensions, as RFC 8701 section 3 describes for clients;
- **Firefox** (NSS) sends no GREASE but sends extensions that OpenSSL's and BoringSSL's default hellos do not:
  ``record_size_limit`` (28, RFC 8449, since Firefox 65) and ``delegated_credentials`` (34, RFC 9345, since
  Firefox 77);
- Python's ``ssl`` (OpenSSL), ``requests`` and libcurl without impersonation send neither.

The summary is JA4's first part (FoxIO's JA4 technical details: ``t`` over TCP, the TLS version, ``d`` with SNI,
cipher and extension counts without GREASE, the first and last character of the first ALPN value), plus the marks
above, e.g. ``t13d1516h2 grease``.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field

MAX_RECORD_BYTES = 16384 + 5  # one TLS record (RFC 8446 section 5.1: at most 2^14 bytes of plaintext)
PEEK_TIMEOUT_S = 5.0
EXT_SNI, EXT_ALPN, EXT_VERSIONS = 0, 16, 43
EXT_RECORD_SIZE_LIMIT, EXT_DELEGATED_CREDENTIALS = 28, 34
BROWSER_RULES = ("browser", "refuse")  # a lab server's tls_fingerprint: answer 403 unless a browser's; always 403
_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}


def is_grease(value: int) -> bool:
    """True for an RFC 8701 GREASE value: 0x?A?A with both bytes equal."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass
class ClientHello:
    """What a client offered in its hello (values in the order sent; GREASE values included)."""

    legacy_version: int = 0
    ciphers: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)  # supported_versions (43)
    alpn: list[str] = field(default_factory=list)
    sni: str | None = None
    truncated: bool = False  # the hello ran past what was read: parsed as far as it went

    @property
    def grease(self) -> bool:
        """GREASE among the cipher suites and among the extensions (RFC 8701, as Chrome sends it)."""
        return any(map(is_grease, self.ciphers)) and any(map(is_grease, self.extensions))

    @property
    def firefox_marks(self) -> bool:
        """record_size_limit and delegated_credentials both offered (NSS, as Firefox sends them)."""
        return EXT_RECORD_SIZE_LIMIT in self.extensions and EXT_DELEGATED_CREDENTIALS in self.extensions

    def looks_like_browser(self) -> bool:
        """True when the hello bears Chrome's or Firefox's marks (see the module docstring)."""
        return self.grease or self.firefox_marks

    def ja4_a(self) -> str:
        """JA4's first part: t, TLS version, d/i (SNI), cipher and extension counts, ALPN's first and last chars."""
        offered = [v for v in self.versions if not is_grease(v)]
        version = _VERSIONS.get(max(offered) if offered else self.legacy_version, "00")
        ciphers = min(99, sum(1 for c in self.ciphers if not is_grease(c)))
        exts = min(99, sum(1 for e in self.extensions if not is_grease(e)))
        first = self.alpn[0] if self.alpn else ""
        alpn = "".join(c if c.isascii() and c.isalnum() else "9" for c in (first[0], first[-1])) if first else "00"
        return f"t{version}{'d' if self.sni else 'i'}{ciphers:02d}{exts:02d}{alpn}"

    def summary(self) -> str:
        """A short fingerprint: JA4's first part and the browser marks found."""
        marks = [m for m, on in (("grease", self.grease), ("record_size_limit+delegated_credentials",
                                                           self.firefox_marks), ("truncated", self.truncated)) if on]
        return " ".join([self.ja4_a(), *marks])


class _Reader:
    """Big-endian fields off a bytes object; ``ok`` turns False at the first read past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.ok = data, 0, True

    def take(self, n: int) -> bytes:
        if not self.ok or self.pos + n > len(self.data):
            self.ok = False
            return b""
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def num(self, n: int) -> int:
        raw = self.take(n)
        return int.from_bytes(raw, "big") if raw else 0

    def block(self, n: int) -> _Reader:
        """The next length-prefixed block (an ``n``-byte length), as a reader of its own."""
        length = self.num(n)
        return _Reader(self.take(length))


def record_length(head: bytes) -> int | None:
    """The whole first record's length from its 5-byte header; None when it is not a TLS handshake record."""
    if len(head) < 5 or head[0] != 0x16 or head[1] != 0x03:
        return None
    return 5 + int.from_bytes(head[3:5], "big")


def parse(data: bytes) -> ClientHello | None:
    """The ClientHello in the first TLS record of ``data``; None when the bytes are not one."""
    total = record_length(data[:5])
    if total is None:
        return None
    r = _Reader(data[5:total])
    if r.num(1) != 1:  # handshake type client_hello
        return None
    hello = ClientHello()
    body_length = r.num(3)
    hello.truncated = len(data) < total or body_length > len(r.data) - 4
    hello.legacy_version = r.num(2)
    r.take(32)  # random
    r.block(1)  # legacy_session_id
    suites = r.block(2)
    hello.ciphers = [suites.num(2) for _ in range(len(suites.data) // 2)]
    r.block(1)  # legacy_compression_methods
    exts = r.block(2)
    if not r.ok:
        hello.truncated = True
    for _ in range(512):  # at most one extension per 4 bytes of a record anyway
        if exts.pos + 4 > len(exts.data):
            break
        kind = exts.num(2)
        hello.extensions.append(kind)
        _extension(hello, kind, exts.block(2))
    return hello


def _extension(hello: ClientHello, kind: int, body: _Reader) -> None:
    """Read the extensions the summary uses: SNI, ALPN, supported_versions."""
    if kind == EXT_SNI:
        names = body.block(2)
        if names.num(1) == 0:
            host = names.block(2).data
            hello.sni = host.decode("ascii", errors="replace")[:255]
    elif kind == EXT_ALPN:
        protocols = body.block(2)
        while protocols.ok and protocols.pos < len(protocols.data) and len(hello.alpn) < 16:
            name = protocols.block(1).data
            if protocols.ok:
                hello.alpn.append(name.decode("ascii", errors="replace"))
    elif kind == EXT_VERSIONS:
        versions = body.block(1)
        hello.versions = [versions.num(2) for _ in range(len(versions.data) // 2)]


def peek(sock: socket.socket, timeout_s: float = PEEK_TIMEOUT_S) -> bytes:
    """The client's first TLS record as it waits on ``sock``, read without consuming it (MSG_PEEK), so that the
    TLS handshake still sees it; what came within ``timeout_s`` (b"" when nothing did)."""
    deadline = time.monotonic() + timeout_s
    want = 5
    data = b""
    while len(data) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data = socket.socket.recv(sock, MAX_RECORD_BYTES, socket.MSG_PEEK)  # the raw socket's, not TLS's
        except (OSError, ValueError):
            break
        if not data:  # the client closed
            break
        want = min(MAX_RECORD_BYTES, record_length(data[:5]) or len(data))
        if len(data) < want:
            time.sleep(0.002)  # the rest of the record is on its way: peek again
    return data


def judge(rule: str | None, data: bytes) -> dict:
    """The truth fields of a connection under a server's ``tls_fingerprint`` rule (one of BROWSER_RULES, or None):
    ``client_hello`` (the summary), ``tls_client`` (``browser`` or ``not_browser``; None: no hello) and
    ``tls_client_refused`` (True when the rule answers 403)."""
    hello = parse(data) if data else None
    if hello is None:
        return {"client_hello": None, "tls_client": None, "tls_client_refused": rule is not None}
    browser = hello.looks_like_browser()
    refused = rule == "refuse" or (rule == "browser" and not browser)
    return {"client_hello": hello.summary(), "tls_client": "browser" if browser else "not_browser",
            "tls_client_refused": refused}
