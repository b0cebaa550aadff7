"""One point per measured download, from the 2015 columns (a run database of either layout) or a live measurement."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytomo.rrd.metrics import METRICS

if TYPE_CHECKING:
    from pytomo.engine.analysis import DownloadAnalysis
    from pytomo.engine.pipeline import VideoMeasurement

# The 2015 table (pytomo_crawl_<YYYY_MM_DD_HH_MM_SS>) or our view of the same columns.
TABLE_NAME = re.compile(r"^pytomo_crawl(_\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2})?$")


@dataclass(frozen=True)
class Point:
    """The figures of one measured download (a "crawled" row: DownloadTime > 0) at its start time."""

    t_s: float  # start of the download, seconds since the epoch (UTC)
    service: str
    server: str  # the cache server's address
    host: str | None  # the cache server's ``scheme://host[:port]``
    values: dict[str, float | None]


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, (bytes, str)) and not str(value).strip():
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def values_from_columns(row: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """Every data source from one row of 2015 columns; ``extra`` gives the figures new in this version."""
    values: dict[str, float | None] = {m.name: _num(row.get(m.column)) if m.column else None for m in METRICS}
    nbytes, secs, enc = _num(row.get("DownloadBytes")), _num(row.get("DownloadTime")), _num(row.get("EncodingRate"))
    stalls = values["stall_count"]
    thp = nbytes * 8 / secs / 1000 if nbytes is not None and secs else None
    values["avg_thp_kbps"] = thp
    values["reception_ratio"] = thp / enc if thp is not None and enc else None
    values["stalled_videos"] = None if stalls is None else float(stalls > 0)
    extra = extra or {}
    start, meas = _num(extra.get("time_to_start_s")), _num(extra.get("avg_throughput_bps"))
    values["start_s"] = start
    values["meas_thp_kbps"] = None if meas is None else meas / 1000
    return values


def parse_id(text: Any, *, utc: bool = True) -> float | None:
    """Seconds since the epoch of an ``ID`` (``YYYY-MM-DD HH:MM:SS[.ffffff]``), read as UTC or as local time."""
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text.strip().replace("T", " ").rstrip("Z"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        return dt.timestamp()
    return dt.replace(tzinfo=UTC).timestamp() if utc else dt.timestamp()


def crawl_tables(conn: sqlite3.Connection) -> tuple[str, list[str]]:
    """``("ours", ["pytomo_crawl"])`` for our layout, ``("2015", [tables...])`` for the 2015 one."""
    names = {r[0]: r[1] for r in conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table','view')")}
    if "videos" in names and "downloads" in names and "pytomo_crawl" in names:
        return "ours", ["pytomo_crawl"]
    return "2015", sorted(n for n in names if TABLE_NAME.match(n))


def _extras(conn: sqlite3.Connection) -> dict[tuple[str, str, str], sqlite3.Row]:
    rows = conn.execute(
        "SELECT replace(substr(d.started_at, 1, 26), 'T', ' ') AS ID, v.page_url AS Url, d.address AS IP,"
        " d.time_to_start_s, d.avg_throughput_bps FROM downloads d JOIN videos v ON v.id = d.video_row_id"
        " ORDER BY d.id")
    out: dict[tuple[str, str, str], sqlite3.Row] = {}
    for r in rows:
        out.setdefault((r["ID"], r["Url"], r["IP"]), r)
    return out


@dataclass
class ReadReport:
    """What reading a database gave: its layout, the points, and the rows that had no usable time."""

    layout: str
    points: list[Point]
    bad_times: int = 0


def read_points(conn: sqlite3.Connection, *, utc_2015: bool = False) -> ReadReport:
    """Every crawled row of a run database, in time order.

    Our layout is read through its ``pytomo_crawl`` view (IDs in UTC) plus the normalised tables for the new
    figures; the 2015 layout through its flat table, whose IDs are local time unless ``utc_2015``.
    """
    conn.row_factory = sqlite3.Row
    layout, tables = crawl_tables(conn)
    extras = _extras(conn) if layout == "ours" else {}
    report = ReadReport(layout, [])
    for table in tables:
        if not TABLE_NAME.match(table):  # never put an unchecked name into SQL
            continue
        for r in conn.execute(f'SELECT * FROM "{table}" WHERE DownloadTime > 0'):
            row = dict(r)
            t = parse_id(row.get("ID"), utc=layout == "ours" or utc_2015)
            if t is None:
                report.bad_times += 1
                continue
            extra = extras.get((row.get("ID"), row.get("Url"), row.get("IP")))
            report.points.append(Point(t, str(row.get("Service") or "Unknown"), str(row.get("IP") or "unknown"),
                                       row.get("CacheUrl"), values_from_columns(row, dict(extra) if extra else None)))
    report.points.sort(key=lambda p: p.t_s)
    return report


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _rtt_columns(m: VideoMeasurement, address: str) -> dict[str, float | None]:
    def summary(rtts: list[float]) -> tuple[float | None, float | None, float | None]:
        return (min(rtts), sum(rtts) / len(rtts), max(rtts)) if rtts else (None, None, None)

    icmp = [s.rtt_ms for r in m.rtt if r.address == address and r.method != "tcp-connect" for s in r.samples
            if s.rtt_ms is not None]
    tcp = [s.rtt_ms for r in m.rtt if r.address == address and r.method == "tcp-connect" for s in r.samples
           if s.rtt_ms is not None]
    chosen = summary(icmp) if icmp else summary(tcp)
    return dict(zip(("PingMin", "PingAvg", "PingMax"), chosen))


def _kbps(bps: float | None) -> float | None:
    return None if bps is None else bps / 1000.0


def _download_columns(m: VideoMeasurement, d: DownloadAnalysis) -> dict[str, Any] | None:
    """The 2015 columns the ``pytomo_crawl`` view gives for this download, or None when it gives no row."""
    t, p = d.transfer, d.playout
    if not m.hops:
        return None
    last = m.hops[-1]
    answers = [a for a in m.dns if a.host == last.host and a.address == t.address]
    if not answers:
        return None
    latencies = [a.latency_ms for a in answers if a.latency_ms is not None]
    row: dict[str, Any] = {
        "Service": m.service_label, "Url": m.page_url, "CacheUrl": _origin(last.url), "IP": t.address,
        "CacheServerDelay": m.cache_server_delay_s, "ResolveTime": min(latencies) / 1000.0 if latencies else None,
        "DownloadTime": t.duration_s, "VideoDuration": d.media_duration_s, "VideoLength": t.content_length_bytes,
        "EncodingRate": _kbps(d.encoding_rate_bps), "DownloadBytes": t.bytes_total,
        "DownloadInterruptions": p.stall_count if p else None, "InitialData": p.initial_data_bytes if p else None,
        "InitialRate": _kbps(d.initial_rate_bps), "InitialPlaybackBuffer": p.initial_buffer_s if p else None,
        "BufferingDuration": p.stall_total_s if p else None, "PlaybackDuration": p.played_s if p else None,
        "BufferDurationAtEnd": p.buffer_at_end_s if p else None, "TimeTogetFirstByte": t.first_byte_s,
        "MaxInstantThp": _kbps(t.peak_1s_bps), "StatusCode": last.status,
    }
    row.update(_rtt_columns(m, t.address))
    return row


def points_from_measurement(m: VideoMeasurement) -> Iterator[Point]:
    """The points a stored video gives, equal to what :func:`read_points` reads back from its database."""
    seen: set[str] = set()
    for d in m.downloads:
        t = d.transfer
        if t.address in seen:
            continue
        seen.add(t.address)
        row = _download_columns(m, d)
        if row is None or not (row["DownloadTime"] or 0) > 0:
            continue
        extra = {"time_to_start_s": d.playout.time_to_start_s if d.playout else None,
                 "avg_throughput_bps": t.avg_throughput_bps}
        stamp = t.started_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        yield Point(parse_id(stamp) or 0.0, m.service_label or "Unknown", t.address, row["CacheUrl"],
                    values_from_columns(row, extra))
