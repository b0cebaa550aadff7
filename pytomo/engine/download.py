"""The fixed-window download from a chosen address: raw arrival events, 100 ms bins, time to first byte."""

from __future__ import annotations

import random
import select
import socket
import time
import zlib
from collections.abc import Callable, Iterator

import requests
import urllib3.exceptions

from pytomo.engine import tcpinfo
from pytomo.engine.curl import CurlAnswer, curl_failure, read_chunk
from pytomo.engine.http import NETWORK_ERRORS, HttpClient, connection_use, http_version_of, socket_of, tls_failure
from pytomo.results import Transfer, utc_now
from pytomo.settings import DEFAULTS

READ_CHUNK_BYTES = 1 << 20
TAIL_LIMIT_BYTES = 64 << 20
CURL_END_WAIT_S = 1.0  # a complete body's request ends within this, its handle back in the pool
CURL_SLACK_S = 5.0  # libcurl ends a request this long after its window and its head's timeout, whatever happens
DECODE_STEP_BYTES = 1 << 20  # decoded bytes produced per step from a compressed body (bounded memory)
DECODED_RATIO_MAX = 100  # a compressed body may decode to this many times its wire bytes (media does not shrink)...
DECODED_FREE_BYTES = 8 << 20  # ...past these first decoded bytes (more than a page's or a manifest's budget)


def _classify(exc: BaseException) -> tuple[str, str]:
    failure = curl_failure(exc)
    if failure is not None:
        return failure
    tls = tls_failure(exc)
    if tls is not None:
        return tls
    text = f"{exc.__class__.__name__}: {exc}"
    low = text.lower()
    if "incompleteread" in low or "incomplete" in low:
        return "short_body", f"body shorter than its Content-Length ({exc})"
    if "reset" in low:
        return "reset", "connection reset by the server"
    if isinstance(exc, (socket.timeout, urllib3.exceptions.ReadTimeoutError, requests.Timeout)):
        if "did not all arrive" in text:  # the headers' deadline (pytomo/engine/http.py Watchdog)
            return "timeout", str(exc)
        return "timeout", "no data within the timeout"
    if isinstance(exc, zlib.error):
        return "content_encoding", f"the body does not decode as its Content-Encoding says: {exc}"
    if isinstance(exc, requests.ConnectionError):
        return "connect", f"cannot connect: {exc}"
    return "transfer", text


class _Decoder:
    """Decodes a gzip or deflate body as it arrives, in bounded steps."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_deflate = False
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next wire bytes, each at most DECODE_STEP_BYTES, made one at a time."""
        if self._first and self.encoding == "deflate":
            self._first = False
            try:  # "deflate" is zlib-wrapped by the RFC, raw deflate in practice for some servers
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(data[:2])
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = data
        while pending:  # a few wire bytes can decode to gigabytes: never more than one step held at once
            piece = self._z.decompress(pending, DECODE_STEP_BYTES)
            if piece:
                yield piece
            pending = self._z.unconsumed_tail
            if self._z.eof:
                break


class _TooLarge(Exception):
    """The body outgrew a budget: its caller's (a manifest, an index: too_large), or decoding's (decoded_too_large)."""

    def __init__(self, message: str, kind: str = "too_large") -> None:
        super().__init__(message)
        self.kind = kind


def _check_expansion(decoded_bytes: int, wire_bytes: int) -> None:
    """Refuse a compressed body that decodes to more than its budget (a gzip bomb), before it costs memory or time."""
    if decoded_bytes > DECODED_FREE_BYTES + DECODED_RATIO_MAX * wire_bytes:
        raise _TooLarge(f"the compressed body decodes to more than {DECODED_RATIO_MAX} times its {wire_bytes} bytes "
                        f"on the wire (past the first {DECODED_FREE_BYTES} bytes): refused as a decompression bomb",
                        kind="decoded_too_large")


def _content_length(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _range_header(byte_range: tuple[int, int | None]) -> str:
    first, last = byte_range
    return f"bytes={first}-{'' if last is None else last}"


def _refusal(resp: requests.Response | CurlAnswer, url: str,
             byte_range: tuple[int, int | None] | None) -> tuple[str, str] | None:
    """Why a response cannot be measured as the body asked for (kind, message), or None."""
    if byte_range is None:
        return None if resp.status_code == 200 else ("http_status", f"HTTP {resp.status_code} from {url}")
    if resp.status_code == 200:
        return "range_ignored", f"the server ignored the Range header ({_range_header(byte_range)}) and sent HTTP 200"
    if resp.status_code != 206:
        return "http_status", f"HTTP {resp.status_code} from {url}"
    content_range = resp.headers.get("Content-Range", "")
    start = content_range.removeprefix("bytes ").split("-", 1)[0].strip()
    if not start.isdigit() or int(start) != byte_range[0]:
        return "bad_range", f"asked for {_range_header(byte_range)}, the server sent Content-Range {content_range!r}"
    return None


def _overrun(sock: socket.socket | None) -> bool:
    """True when bytes are already waiting on the connection after a body that ended at its Content-Length."""
    if sock is None or sock.fileno() == -1:
        return False
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready) and bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:
        return False


def download(http: HttpClient, url: str, address: str, *, window_s: float, bin_s: float = DEFAULTS.throughput_bin_s,
             head_limit_bytes: int = DEFAULTS.media_head_bytes, on_data: Callable[[memoryview], None] | None = None,
             should_stop: Callable[[], bool] | None = None, timeout_s: float = DEFAULTS.http_timeout_s,
             byte_range: tuple[int, int | None] | None = None,
             headers: dict[str, str] | None = None, body_limit_bytes: int | None = None,
             on_headers: Callable[[Transfer], None] | None = None, impersonate: str | None = None) -> Transfer:
    """GET ``url`` from ``address`` for ``window_s`` seconds after the response headers, or to the end of the body.

    The body ends where HTTP says: at its Content-Length, at the last chunk, or at the connection's close when it
    has neither; a complete body leaves its connection open in the pool for the next request to the same server.
    With ``byte_range`` only that range is asked for, and anything but a 206 starting there is refused. A body
    (decoded) longer than ``body_limit_bytes`` ends the transfer as the error ``too_large``.
    ``head`` and ``on_data`` get the decoded body when the server compressed it; counts are of wire bytes.
    ``impersonate``: a curl_cffi browser target presented over libcurl (``CurlTransport.request``); with ``--http
    1.1`` (no libcurl transport) the request goes through ``requests`` and ``tr.impersonate`` stays None.
    """
    tr = Transfer(url=url, address=address, started_at=utc_now(), window_s=window_s, bin_s=bin_s,
                  byte_range=byte_range)
    hdrs = dict(headers or {})
    if byte_range is not None:
        hdrs["Range"] = _range_header(byte_range)
    t0 = time.perf_counter()
    answer: requests.Response | CurlAnswer
    if http.transport is not None and url.startswith("https:"):  # --http 2, 3, auto: libcurl (pytomo/engine/curl.py)
        answer = http.transport.request(url, address, headers=hdrs, timeout_s=timeout_s,
                                        deadline_s=timeout_s + window_s + CURL_SLACK_S, impersonate=impersonate)
        tr.impersonate = answer.impersonate
        if answer.error is not None:
            tr.ended_by = "error"
            tr.error_kind, tr.error = _classify(answer.error)
            return tr
        tr.headers_s = (answer.headers_at or time.perf_counter()) - t0
        tr.http_version, tr.connection = answer.http_version, answer.connection
        tr.http_stream_id, tr.quic_fallback = answer.http_stream_id, answer.quic_fallback
    else:
        try:
            answer = http.request("GET", url, address=address, stream=True, timeout_s=timeout_s, headers=hdrs)
        except NETWORK_ERRORS as exc:  # connection refused, timeout before headers...
            tr.ended_by = "error"
            tr.error_kind, tr.error = _classify(exc)
            return tr
        tr.headers_s = time.perf_counter() - t0
        tr.connection = connection_use(answer)
        tr.http_version = http_version_of(answer)
    decoder = _take_head(tr, answer, url, byte_range, body_limit_bytes)
    if tr.ended_by == "error":
        _close(answer)
        return tr
    if on_headers is not None:
        on_headers(tr)
    args = (decoder, head_limit_bytes, on_data, timeout_s, body_limit_bytes)
    if isinstance(answer, CurlAnswer):
        _CurlBodyReader(tr, answer, t0, *args).run(should_stop)
    else:
        _BodyReader(tr, answer, t0, *args).run(should_stop)
    return tr


def _take_head(tr: Transfer, answer: requests.Response | CurlAnswer, url: str,
               byte_range: tuple[int, int | None] | None, body_limit_bytes: int | None) -> _Decoder | None:
    """Fill ``tr`` from the answer's status and headers; its decoder (or None); ``tr.ended_by`` is "error" when the
    answer cannot be measured as asked (a refused range, an encoding not asked for, a body announced too large)."""
    headers = answer.headers
    tr.status = answer.status_code
    tr.content_type = headers.get("Content-Type")
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    tr.content_length_bytes = None if chunked else _content_length(headers.get("Content-Length"))
    encoding = headers.get("Content-Encoding", "").strip().lower() or None
    total = headers.get("Content-Range", "").rpartition("/")[2].strip()
    tr.instance_bytes = int(total) if answer.status_code == 206 and total.isdigit() and len(total) <= 18 else None
    refused = _refusal(answer, url, byte_range)
    if refused is None and encoding not in (None, "identity", "gzip", "x-gzip", "deflate"):
        refused = ("content_encoding", f"the server sent Content-Encoding {encoding!r}, which was not asked for")
    if refused is not None:
        tr.ended_by = "error"
        tr.error_kind, tr.error = refused
        return None
    decoder = _Decoder(encoding) if encoding not in (None, "identity") else None
    if decoder is not None:
        tr.content_encoding, tr.decoded_bytes = encoding, 0
    if body_limit_bytes is not None and (tr.content_length_bytes or 0) > body_limit_bytes and decoder is None:
        tr.ended_by, tr.error_kind = "error", "too_large"
        tr.error = f"the body announces {tr.content_length_bytes} bytes, more than the {body_limit_bytes} allowed"
    return decoder


def _close(answer: requests.Response | CurlAnswer) -> None:
    """Give up an answer whose body will not be read."""
    if isinstance(answer, CurlAnswer):
        answer.cancel()
        if answer.sock is not None:
            answer.sock.close()
    else:
        answer.close()


class _BodyReader:
    """One body read by ``_read_body``. The loop (``run``) keeps its state in locals and makes two calls per read:
    ``_next_chunk`` (wait for data and read it, timed as it returns) and ``_deliver`` (decode, keep the head, pass it
    on); setting up and tearing down the connection are methods of their own."""

    def __init__(self, tr: Transfer, resp: requests.Response, t0: float, decoder: _Decoder | None,
                 head_limit_bytes: int, on_data: Callable[[memoryview], None] | None, timeout_s: float,
                 body_limit_bytes: int | None) -> None:
        self.tr = tr
        self.resp = resp
        self.raw = resp.raw
        self.t0 = t0
        self.chunked = "chunked" in resp.headers.get("Transfer-Encoding", "").lower()
        self.decoder = decoder
        self.head_limit_bytes = head_limit_bytes
        self.on_data = on_data
        self.timeout_s = timeout_s
        self.body_limit_bytes = body_limit_bytes
        self.deadline = (tr.headers_s or 0.0) + tr.window_s
        self.sock = socket_of(resp)
        self.length = tr.content_length_bytes
        self.head = bytearray()

    def run(self, should_stop: Callable[[], bool] | None) -> None:
        tr, t0, length, deadline = self.tr, self.t0, self.length, self.deadline
        next_chunk, deliver = self._next_chunk, self._deliver
        rng = random.Random()
        next_sample = tr.headers_s or 0.0
        events_t, events_b, bins = tr.event_t_s, tr.event_bytes, tr.bins_bytes
        bin_s = tr.bin_s
        total = 0
        try:
            while True:
                if length is not None and total >= length:
                    tr.ended_by = "eof"  # the body is complete: never wait on a connection kept alive
                    break
                if should_stop is not None and should_stop():
                    tr.ended_by = "interrupted"
                    break
                now = time.perf_counter() - t0
                if now >= next_sample:
                    self._sample(now)
                    next_sample = now + tcpinfo.next_interval_s(rng)
                remaining = deadline - now
                if remaining <= 0:
                    tr.ended_by = "window"
                    break
                arrival = next_chunk(remaining)
                if arrival is None:
                    tr.ended_by = "window"
                    break
                data, t = arrival
                if not data:
                    tr.ended_by = "eof"
                    break
                n = len(data)
                if tr.first_byte_s is None:
                    tr.first_byte_s, tr.first_read_bytes = t, n
                total += n
                tr.last_byte_s = t
                events_t.append(t)
                events_b.append(total)
                k = int(t / bin_s)
                if k >= len(bins):
                    bins.extend([0] * (k + 1 - len(bins)))
                bins[k] += n
                deliver(data, total)
        except _TooLarge as exc:
            tr.ended_by, tr.error_kind, tr.error = "error", exc.kind, str(exc)
        except (*NETWORK_ERRORS, zlib.error) as exc:
            tr.ended_by = "error"
            tr.error_kind, tr.error = _classify(exc)
        finally:
            self._finish(total)
        self._check_length(total)

    def _next_chunk(self, remaining: float) -> tuple[bytes, float] | None:
        """The next bytes on the wire and when they were read (s since ``t0``); None when the window ended first."""
        sock, timeout_s = self.sock, self.timeout_s
        if sock is not None and sock.fileno() != -1:
            sock.settimeout(min(remaining, timeout_s))
            if not self.chunked and self.tr.first_byte_s is not None:
                # the first read returns what http.client buffered with the headers; after it nothing stays
                # buffered between our reads (each is one recv of at most what the body still lacks), so
                # waiting on the socket is exact, and the window ends with the connection still open
                ready, _, _ = select.select([sock], [], [], min(remaining, timeout_s))
                if not ready:
                    if time.perf_counter() - self.t0 >= self.deadline - 1e-3:
                        return None
                    raise TimeoutError("no data within the timeout")
        try:
            data = self.raw.read1(READ_CHUNK_BYTES, decode_content=False)
        except (TimeoutError, urllib3.exceptions.ReadTimeoutError):
            if time.perf_counter() - self.t0 >= self.deadline - 1e-3:
                return None
            raise
        return data, time.perf_counter() - self.t0

    def _deliver(self, data: bytes, total: int) -> None:
        """Decode the bytes just read (``total`` so far on the wire), keep the head, pass them to ``on_data``."""
        tr, decoder, head, head_limit_bytes = self.tr, self.decoder, self.head, self.head_limit_bytes
        body_limit_bytes, on_data = self.body_limit_bytes, self.on_data
        pieces = (data,) if decoder is None else decoder.decode(data)
        for piece in pieces:
            if decoder is not None:
                tr.decoded_bytes = (tr.decoded_bytes or 0) + len(piece)
                _check_expansion(tr.decoded_bytes, total)
            if body_limit_bytes is not None and (tr.decoded_bytes or total) > body_limit_bytes:
                raise _TooLarge(f"the body is larger than the {body_limit_bytes} bytes allowed")
            if len(head) < head_limit_bytes:
                head.extend(piece[: head_limit_bytes - len(head)])
            if on_data is not None:
                on_data(memoryview(piece))

    def _sample(self, now: float) -> None:
        """The kernel's TCP state of the connection at ``now``."""
        info = tcpinfo.read(self.sock) if self.sock is not None else None
        if info is not None:
            self.tr.tcp_info.append((now, info))

    def _finish(self, total: int) -> None:
        """Fill in the totals and a last TCP sample; give a complete body's connection back to the pool, else close."""
        tr, length = self.tr, self.length
        tr.bytes_total = total
        tr.head = bytes(self.head)
        self._sample(time.perf_counter() - self.t0)
        reusable = tr.ended_by == "eof" and (length is None or total == length)
        if reusable and length is not None:
            tr.body_overrun = _overrun(self.sock)
        if reusable and not tr.body_overrun:
            self.raw.release_conn()  # back to the pool: the next request to this server reuses the connection
        else:
            self.resp.close()

    def _check_length(self, total: int) -> None:
        """A body that ended before its Content-Length is an error."""
        tr, length = self.tr, self.length
        if tr.ended_by == "eof" and length is not None and total < length:
            tr.ended_by = "error"
            tr.error_kind = "short_body"
            tr.error = f"body shorter than its Content-Length ({total} of {length} bytes)"


class _CurlBodyReader(_BodyReader):
    """A body arriving through libcurl (pytomo/engine/curl.py): each chunk with the time libcurl handed it over;
    TCP_INFO from a duplicate of its TCP socket (none over QUIC); a body cut short is ended by libcurl (its stream reset
    over HTTP/2 and HTTP/3, its connection closed over HTTP/1.1)."""

    def __init__(self, tr: Transfer, answer: CurlAnswer, t0: float, decoder: _Decoder | None,
                 head_limit_bytes: int, on_data: Callable[[memoryview], None] | None, timeout_s: float,
                 body_limit_bytes: int | None) -> None:
        self.answer = answer
        self.tr, self.t0, self.chunked, self.decoder = tr, t0, False, decoder
        self.head_limit_bytes, self.on_data, self.timeout_s = head_limit_bytes, on_data, timeout_s
        self.body_limit_bytes = body_limit_bytes
        self.deadline = (tr.headers_s or 0.0) + tr.window_s
        self.sock = answer.sock  # over TCP: TCP_INFO sampled from a duplicate of libcurl's socket
        self.length = tr.content_length_bytes
        self.head = bytearray()

    def _next_chunk(self, remaining: float) -> tuple[bytes, float] | None:
        arrival = read_chunk(self.answer, min(remaining, self.timeout_s))
        if arrival is None:
            if time.perf_counter() - self.t0 >= self.deadline - 1e-3:
                return None
            raise TimeoutError("no data within the timeout")
        data, at = arrival
        return data, at - self.t0

    def _finish(self, total: int) -> None:
        tr, answer = self.tr, self.answer
        tr.bytes_total = total
        tr.head = bytes(self.head)
        self._sample(time.perf_counter() - self.t0)
        if self.sock is not None:
            self.sock.close()  # the duplicate only
        if tr.ended_by != "eof":
            answer.cancel()
        else:  # libcurl ends the request just after the body's last byte: then its connection is idle again, for
            answer.ended.wait(CURL_END_WAIT_S)  # the next request (a new one would open while this one still runs)
        tr.connection = answer.connection


def fetch_range(http: HttpClient, url: str, address: str, offset: int, length: int | None, *,
                timeout_s: float, headers: dict[str, str] | None = None,
                impersonate: str | None = None) -> Transfer:
    """GET one byte range (``length`` None: to the end) over the pool's connection, at most TAIL_LIMIT_BYTES.

    The body is in ``head``; anything but a complete 206 starting at ``offset`` is an error in the transfer.
    """
    last = None if length is None else offset + length - 1
    return download(http, url, address, window_s=max(timeout_s, 30.0), head_limit_bytes=TAIL_LIMIT_BYTES,
                    timeout_s=timeout_s, byte_range=(offset, last), body_limit_bytes=TAIL_LIMIT_BYTES,
                    headers=headers, impersonate=impersonate)


def merge_arrivals(agg: Transfer, tr: Transfer, offset_s: float, state: dict) -> None:
    """Add one request's arrivals to a session's series (``agg``), on the session's clock (``offset_s`` later).

    ``state["bytes"]`` carries the session's running byte count between calls.
    """
    last = 0
    for t, cum in zip(tr.event_t_s, tr.event_bytes):
        n = cum - last
        last = cum
        state["bytes"] += n
        at = offset_s + t
        if agg.first_byte_s is None:
            agg.first_byte_s, agg.first_read_bytes = at, n
        agg.last_byte_s = at
        agg.event_t_s.append(at)
        agg.event_bytes.append(state["bytes"])
        k = int(at / agg.bin_s)
        if k >= len(agg.bins_bytes):
            agg.bins_bytes.extend([0] * (k + 1 - len(agg.bins_bytes)))
        agg.bins_bytes[k] += n
    agg.bytes_total = state["bytes"]
    agg.tcp_info.extend((offset_s + t, f) for t, f in tr.tcp_info)
