"""A progressive file fetched as the platform's player fetches it: one GET, or byte ranges back to back.

yt-dlp gives some formats a chunk size (``downloader_options.http_chunk_size``): its downloader, like YouTube's own
players, asks for the file in closed byte ranges (googlevideo refuses a request without one, with an open one, or
a HEAD, since August 2026), each of a size drawn between 95 % and 100 % of the chunk size
(yt_dlp/downloader/http.py, ``establish_connection``, yt-dlp 2026.10.26) and ending at the file's last byte once
its size is known. Here the ranges follow one another over one kept-alive connection; every range is a request
record (start, response, end, bytes, new or reused connection), and together they make one transfer on one clock.
A range refused (a 403, as for a range over a server's cap) ends the transfer as that error, as yt-dlp's download
ends at an HTTP error under 500.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pytomo.engine.download import download, merge_arrivals
from pytomo.engine.http import HttpClient
from pytomo.engine.impersonate import Presenting, as_browser
from pytomo.results import SegmentRecord, Transfer, utc_now

CHUNK_DRAW_LOW = 0.95  # yt-dlp draws each chunk between this share of http_chunk_size and all of it


def fetch_progressive(http: HttpClient, url: str, address: str, *, window_s: float, bin_s: float,
                      timeout_s: float, head_limit_bytes: int, on_data: Callable[[memoryview], None] | None = None,
                      on_headers: Callable[[Transfer], None] | None = None,
                      should_stop: Callable[[], bool] | None = None, headers: dict[str, str] | None = None,
                      chunk_bytes: int | None = None, stream: str = "progressive",
                      presenting: Presenting | None = None) -> tuple[Transfer, list[SegmentRecord]]:
    """The transfer of ``url`` within the window, and the record of every range request (none for one GET).

    The window starts when the first response's headers arrive, as for a single GET. A range answered with
    anything but a 206 starting where it was asked ends the transfer as that error. ``presenting``: a platform
    format's impersonation; a request it refuses is asked again as the next browser (a range's refusal is a record).
    """
    if not chunk_bytes:
        return as_browser(presenting, lambda target: download(
            http, url, address, window_s=window_s, bin_s=bin_s, head_limit_bytes=head_limit_bytes, on_data=on_data,
            should_stop=should_stop, timeout_s=timeout_s, headers=headers, on_headers=on_headers,
            impersonate=target)), []
    agg = Transfer(url=url, address=address, started_at=utc_now(), window_s=window_s, bin_s=bin_s)
    records: list[SegmentRecord] = []
    state = {"bytes": 0}
    head = bytearray()
    t0 = time.perf_counter()
    offset = 0

    def first_headers(tr: Transfer) -> None:
        agg.status, agg.content_type = tr.status, tr.content_type
        agg.content_length_bytes = agg.instance_bytes = tr.instance_bytes
        agg.take_transport(tr)
        if on_headers is not None:
            on_headers(agg)

    while True:
        start_s = time.perf_counter() - t0
        remaining_s = window_s if agg.headers_s is None else agg.headers_s + window_s - start_s
        if remaining_s <= 0:
            agg.ended_by = "window"
            break
        tr = download(http, url, address, window_s=remaining_s, bin_s=bin_s,
                      head_limit_bytes=max(0, head_limit_bytes - len(head)), on_data=on_data,
                      should_stop=should_stop, timeout_s=timeout_s, headers=headers,
                      byte_range=chunk_range(offset, chunk_bytes, agg.instance_bytes),
                      on_headers=first_headers if agg.headers_s is None else None,
                      impersonate=presenting.target if presenting else None)
        if presenting is not None and presenting.answered(tr.status, tr.impersonate):
            records.append(_record(len(records), stream, tr, start_s))  # refused: asked again as the next browser
            continue
        if agg.headers_s is None:
            agg.headers_s = None if tr.headers_s is None else start_s + tr.headers_s
            if agg.status is None:  # refused before any header hook ran (an error status)
                agg.status, agg.content_type = tr.status, tr.content_type
        merge_arrivals(agg, tr, start_s, state)
        head += tr.head
        records.append(_record(len(records), stream, tr, start_s))
        if tr.ended_by != "eof" or not tr.complete:
            agg.ended_by, agg.error_kind, agg.error = tr.ended_by, tr.error_kind, tr.error
            if tr.status is not None and tr.status != 206:
                agg.status = tr.status
            break
        offset += tr.bytes_total
        size = tr.instance_bytes or agg.instance_bytes
        if size is None or offset >= size or tr.bytes_total == 0:
            agg.ended_by = "eof"
            break
    agg.head = bytes(head)
    agg.tcp_info.sort(key=lambda sample: sample[0])
    return agg, records


def chunk_range(offset: int, chunk_bytes: int, size_bytes: int | None,
                draw: Callable[[int, int], int] = random.randint) -> tuple[int, int]:
    """The next closed range from ``offset``, as yt-dlp asks it: a size drawn in [95 %, 100 %] of the chunk size,
    ending at the last byte when the file's size is known."""
    last = offset + draw(int(chunk_bytes * CHUNK_DRAW_LOW), chunk_bytes) - 1
    return (offset, last if size_bytes is None else min(last, size_bytes - 1))


def _record(seq: int, stream: str, tr: Transfer, start_s: float) -> SegmentRecord:
    conn = tr.connection
    last = tr.byte_range[1] if tr.byte_range else None
    return SegmentRecord(
        seq=seq, stream=stream, kind="range", rendition_id=None, bandwidth_bps=None, url=tr.url, status=tr.status,
        trequest_s=start_s, tresponse_s=None if tr.headers_s is None else start_s + tr.headers_s,
        tfinish_s=start_s + (tr.last_byte_s if tr.last_byte_s is not None else (tr.headers_s or 0.0)),
        bytes=tr.bytes_total, media_start_s=None, media_duration_s=None, complete=tr.complete, error=tr.error,
        byte_range=(tr.byte_range[0], last) if tr.byte_range else None,
        new_connection=conn.new if conn else None, tcp_connect_s=conn.tcp_connect_s if conn else None,
        tls_handshake_s=conn.tls_handshake_s if conn else None, content_encoding=tr.content_encoding,
        http_version=tr.http_version, tls_version=conn.tls_version if conn else None, impersonate=tr.impersonate,
        http_stream_id=tr.http_stream_id, quic_fallback=tr.quic_fallback)
