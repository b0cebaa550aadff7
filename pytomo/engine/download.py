"""The fixed-window download from a chosen address: raw arrival events, 100 ms bins, time to first byte."""

from __future__ import annotations

import random
import select
import socket
import statistics
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests
import urllib3.exceptions

from pytomo.engine import tcpinfo
from pytomo.engine.http import HttpClient
from pytomo.results import utc_now

READ_CHUNK_BYTES = 1 << 20
TAIL_LIMIT_BYTES = 64 << 20


@dataclass
class Transfer:
    """What one media GET observed. Times are seconds since the request was sent."""

    url: str
    address: str
    started_at: datetime
    window_s: float
    bin_s: float
    status: int | None = None
    http_version: str | None = None
    content_type: str | None = None
    content_length_bytes: int | None = None
    headers_s: float | None = None
    first_byte_s: float | None = None
    first_read_bytes: int = 0
    last_byte_s: float | None = None
    bytes_total: int = 0
    ended_by: str | None = None  # window, eof, error, interrupted
    error: str | None = None
    error_kind: str | None = None
    head: bytes = b""
    event_t_s: array = field(default_factory=lambda: array("d"))
    event_bytes: array = field(default_factory=lambda: array("q"))
    bins_bytes: list[int] = field(default_factory=list)
    tail_range: tuple[int, int] | None = None
    tail: bytes | None = None
    tail_error: str | None = None
    tcp_info: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (t_s, kernel fields)

    @property
    def tcp_min_rtt_ms(self) -> float | None:
        """``tcpi_min_rtt`` of the receiving socket at its last sample, in ms (mostly the handshake's RTT)."""
        values = [f["tcpi_min_rtt"] for _t, f in self.tcp_info if f.get("tcpi_min_rtt")]
        return values[-1] / 1000 if values else None

    @property
    def tcp_rcv_rtt_ms(self) -> float | None:
        """Median ``tcpi_rcv_rtt`` over the samples: the receiver's own RTT estimate under load, in ms."""
        values = [f["tcpi_rcv_rtt"] for _t, f in self.tcp_info if f.get("tcpi_rcv_rtt")]
        return statistics.median(values) / 1000 if values else None

    @property
    def duration_s(self) -> float | None:
        """From the response headers to the last byte read (the 2015 ``DownloadTime``)."""
        if self.headers_s is None or self.last_byte_s is None:
            return None
        return self.last_byte_s - self.headers_s

    @property
    def avg_throughput_bps(self) -> float | None:
        """Bytes after the first read over the time from first to last byte, in bit/s; None if not measurable."""
        if self.first_byte_s is None or self.last_byte_s is None or self.last_byte_s <= self.first_byte_s:
            return None
        return (self.bytes_total - self.first_read_bytes) * 8 / (self.last_byte_s - self.first_byte_s)

    @property
    def peak_1s_bps(self) -> float | None:
        """Highest throughput over any 1 s of consecutive bins, in bit/s; None for transfers shorter than 1 s."""
        n = round(1.0 / self.bin_s)
        if self.first_byte_s is None or self.last_byte_s is None or self.last_byte_s - self.first_byte_s < 1.0:
            return None
        bins = self.bins_bytes
        if len(bins) < n:
            return None
        best = cur = sum(bins[:n])
        for i in range(n, len(bins)):
            cur += bins[i] - bins[i - n]
            best = max(best, cur)
        return best * 8 / (n * self.bin_s)

    @property
    def complete(self) -> bool:
        """True when the whole body arrived."""
        return self.ended_by == "eof" and (self.content_length_bytes is None
                                           or self.bytes_total >= self.content_length_bytes)


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3 drops ``conn.sock`` once the response is handed over)."""
    conn = getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, socket.socket):
        fp = getattr(getattr(resp.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _classify(exc: BaseException) -> tuple[str, str]:
    text = f"{exc.__class__.__name__}: {exc}"
    low = text.lower()
    if "incompleteread" in low or "incomplete" in low:
        return "short_body", f"body shorter than its Content-Length ({exc})"
    if "reset" in low:
        return "reset", "connection reset by the server"
    if isinstance(exc, (socket.timeout, urllib3.exceptions.ReadTimeoutError, requests.Timeout)):
        return "timeout", "no data within the timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connect", f"cannot connect: {exc}"
    return "transfer", text


def download(http: HttpClient, url: str, address: str, *, window_s: float, bin_s: float = 0.1,
             head_limit_bytes: int = 2 << 20, on_data: Callable[[memoryview], None] | None = None,
             should_stop: Callable[[], bool] | None = None, timeout_s: float = 5.0) -> Transfer:
    """GET ``url`` from ``address`` for ``window_s`` seconds after the response headers, or to the end."""
    tr = Transfer(url=url, address=address, started_at=utc_now(), window_s=window_s, bin_s=bin_s)
    t0 = time.perf_counter()
    try:
        resp = http.request("GET", url, address=address, stream=True, timeout_s=timeout_s)
    except Exception as exc:  # connection refused, timeout before headers...
        tr.ended_by = "error"
        tr.error_kind, tr.error = _classify(exc)
        return tr
    tr.headers_s = time.perf_counter() - t0
    tr.status = resp.status_code
    tr.http_version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(getattr(resp.raw, "version", 0))
    tr.content_type = resp.headers.get("Content-Type")
    length = resp.headers.get("Content-Length")
    tr.content_length_bytes = int(length) if length and length.isdigit() else None
    if resp.status_code != 200:
        resp.close()
        tr.ended_by = "error"
        tr.error_kind, tr.error = "http_status", f"HTTP {resp.status_code} from {url}"
        return tr
    deadline = tr.headers_s + window_s
    sock = _socket_of(resp)
    chunked = "chunked" in resp.headers.get("Transfer-Encoding", "").lower()
    rng = random.Random()
    next_sample = tr.headers_s

    def sample(now: float) -> None:
        info = tcpinfo.read(sock) if sock is not None else None
        if info is not None:
            tr.tcp_info.append((now, info))
    raw = resp.raw
    head = bytearray()
    events_t, events_b, bins = tr.event_t_s, tr.event_bytes, tr.bins_bytes
    total = 0
    try:
        while True:
            if should_stop is not None and should_stop():
                tr.ended_by = "interrupted"
                break
            now = time.perf_counter() - t0
            if now >= next_sample:
                sample(now)
                next_sample = now + tcpinfo.next_interval_s(rng)
            remaining = deadline - now
            if remaining <= 0:
                tr.ended_by = "window"
                break
            if sock is not None and sock.fileno() != -1:
                # urllib3 closes the socket itself once the whole body has been read
                sock.settimeout(min(remaining, timeout_s))
                if not chunked and tr.first_byte_s is not None:
                    # the first read returns what http.client buffered with the headers; after it, with a
                    # Content-Length body nothing stays buffered between our 1 MiB reads, so waiting on the socket
                    # is exact, and the window ends with the connection still open for a last TCP_INFO
                    ready, _, _ = select.select([sock], [], [], min(remaining, timeout_s))
                    if not ready:
                        if time.perf_counter() - t0 >= deadline - 1e-3:
                            tr.ended_by = "window"
                            break
                        raise TimeoutError("no data within the timeout")
            try:
                data = raw.read1(READ_CHUNK_BYTES, decode_content=False)
            except (TimeoutError, urllib3.exceptions.ReadTimeoutError):
                if time.perf_counter() - t0 >= deadline - 1e-3:
                    tr.ended_by = "window"
                    break
                raise
            t = time.perf_counter() - t0
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
            if len(head) < head_limit_bytes:
                head += data[: head_limit_bytes - len(head)]
            if on_data is not None:
                on_data(memoryview(data))
    except Exception as exc:
        tr.ended_by = "error"
        tr.error_kind, tr.error = _classify(exc)
    finally:
        tr.bytes_total = total
        tr.head = bytes(head)
        sample(time.perf_counter() - t0)
        resp.close()
    if tr.ended_by == "eof" and tr.content_length_bytes is not None and total < tr.content_length_bytes:
        tr.ended_by = "error"
        tr.error_kind = "short_body"
        tr.error = f"body shorter than its Content-Length ({total} of {tr.content_length_bytes} bytes)"
    return tr


def fetch_range(http: HttpClient, url: str, address: str, offset: int, length: int | None,
                timeout_s: float = 5.0) -> bytes:
    """GET one byte range (``length`` None: to the end); raises on anything but a 206 with the bytes asked."""
    end = "" if length is None else str(offset + length - 1)
    resp = http.request("GET", url, address=address, stream=True, headers={"Range": f"bytes={offset}-{end}"},
                        timeout_s=timeout_s)
    try:
        if resp.status_code != 206:
            raise OSError(f"range request answered HTTP {resp.status_code}")
        data = resp.raw.read(TAIL_LIMIT_BYTES, decode_content=False) or b""
    finally:
        resp.close()
    return data
