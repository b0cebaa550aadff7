"""One point per measured download, from the 2015 columns (a run database of either layout) or a live measurement."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from pytomo.errors import UsageError
from pytomo.figures import FIGURES, figures, graph_value, graphs, legacy_value, renamed, shared
from pytomo.zones import Clock, zone

if TYPE_CHECKING:
    from pytomo.results import VideoMeasurement

# The 2015 table (pytomo_crawl_<YYYY_MM_DD_HH_MM_SS>) or our view of the same columns.
TABLE_NAME = re.compile(r"^pytomo_crawl(_\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2})?$")


@dataclass(frozen=True)
class Point:
    """The figures of one measured download (a "crawled" row: DownloadTime > 0) at its start time."""

    t_s: float  # start of the download, seconds since the epoch (floating: a 2015 local time of an unknown zone)
    service: str
    server: str  # the cache server's address
    host: str | None  # the cache server's ``scheme://host[:port]``
    values: dict[str, float | None]


def _lookup(values: Mapping[str, Any]) -> Callable[[str], Any]:
    """``get("downloads.bytes")``, also found under the bare column name."""
    return lambda key: values.get(key, values.get(key.partition(".")[2]))


def values_from_figures(values: Mapping[str, Any]) -> dict[str, float | None]:
    """Every data source from the figures of one download and its video (by ``table.column``)."""
    get = _lookup(values)
    return {g.ds: graph_value(f, g, get) for f, g in graphs()}


def values_from_columns(row: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """Every data source from one row of 2015 columns; ``extra`` gives the figures new in this version."""
    get = _lookup(extra or {})
    return {g.ds: legacy_value(f, g, row) if shared(f, g) else graph_value(f, g, get) for f, g in graphs()}


def parse_id(text: Any, tz: str | None = "UTC") -> float | None:
    """Seconds since the epoch of an ``ID`` (``YYYY-MM-DD HH:MM:SS[.ffffff]``), a wall time of the zone ``tz``;
    ``tz`` None: a local time of an unknown zone, read as if it were UTC ("floating" seconds)."""
    return Clock(tz).epoch(text)


def run_zone(conn: sqlite3.Connection) -> str:
    """The zone a run of our layout is shown in: its ``run.timezone`` when that is a known IANA name, else UTC."""
    try:
        row = conn.execute("SELECT timezone FROM run ORDER BY id LIMIT 1").fetchone()
    except sqlite3.Error:  # schema versions before 5 have no run.timezone
        return "UTC"
    name = row[0] if row else None
    if not isinstance(name, str) or not name:
        return "UTC"
    try:
        zone(name)
    except UsageError:
        return "UTC"
    return name


def crawl_tables(conn: sqlite3.Connection) -> tuple[str, list[str]]:
    """``("ours", ["pytomo_crawl"])`` for our layout, ``("2015", [tables...])`` for the 2015 one."""
    names = {r[0]: r[1] for r in conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table','view')")}
    if "videos" in names and "downloads" in names and "pytomo_crawl" in names:
        return "ours", ["pytomo_crawl"]
    return "2015", sorted(n for n in names if TABLE_NAME.match(n))


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


_SourceKey = tuple[str | None, str | None, str | None]  # (ID, Url, IP) of a download


def _extras(conn: sqlite3.Connection) -> dict[_SourceKey, dict[str, Any]]:
    """The figures new in this version from the tables of our schema versions 2 and 3, by (ID, Url, IP)."""
    have = {"downloads": _columns(conn, "downloads"), "videos": _columns(conn, "videos")}
    old = {table: {new: was for was, new in renamed(table).items()} for table in have}
    alias = {"downloads": "d", "videos": "v"}
    wanted = {f for f, g in graphs() if not shared(f, g)}
    cols = [f'{alias[f.table]}.{name} AS "{f.key}"' for f in wanted
            for name in [f.name if f.name in have[f.table] else old[f.table].get(f.name)] if name in have[f.table]]
    rows = conn.execute(
        "SELECT replace(substr(d.started_at, 1, 26), 'T', ' ') AS ID, v.page_url AS Url, d.address AS IP"
        + "".join(f", {c}" for c in cols) + " FROM downloads d JOIN videos v ON v.id = d.video_row_id ORDER BY d.id")
    out: dict[_SourceKey, dict[str, Any]] = {}
    for r in rows:
        out.setdefault((r["ID"], r["Url"], r["IP"]), dict(r))
    return out


# The downloads that give a point, as the ``pytomo_crawl`` view gives them a row: the first download of each
# address of a video, that address answered for the last hop's host, and a download time.
_POINTS_SQL = """
SELECT d.started_at AS _t, v.service AS _service, d.address AS _address,
       (SELECT h.origin FROM hops h WHERE h.video_row_id = d.video_row_id ORDER BY h.hop_index DESC LIMIT 1) AS _host
       {columns}
FROM downloads d JOIN videos v ON v.id = d.video_row_id
WHERE d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = d.video_row_id AND x.address = d.address)
  AND d.transfer_s > 0
  AND EXISTS (SELECT 1 FROM dns_answers a JOIN hops h ON h.video_row_id = a.video_row_id AND h.host = a.host
              WHERE a.video_row_id = d.video_row_id AND a.address = d.address
                AND h.hop_index = (SELECT max(hop_index) FROM hops WHERE video_row_id = d.video_row_id))
ORDER BY d.id
"""


def _figure_points(conn: sqlite3.Connection, report: ReadReport) -> None:
    """The points of a database of this schema, read from the figures' columns."""
    alias = {"downloads": "d", "videos": "v"}
    have = {"downloads": _columns(conn, "downloads"), "videos": _columns(conn, "videos")}
    columns = "".join(f', {alias[f.table]}.{f.name} AS "{f.key}"' for f in FIGURES if f.name in have[f.table])
    for r in conn.execute(_POINTS_SQL.replace("{columns}", columns)):
        row = dict(r)
        t = parse_id(row["_t"])
        if t is None:
            report.bad_times += 1
            continue
        report.points.append(Point(t, str(row["_service"] or "Unknown"), str(row["_address"] or "unknown"),
                                   row["_host"], values_from_figures(row)))


@dataclass
class ReadReport:
    """What reading a database gave: its layout, the points, and the rows that had no usable time."""

    layout: str
    points: list[Point]
    bad_times: int = 0
    zone: str | None = "UTC"  # the zone the times are shown in; None: local times of an unknown zone


def read_points(conn: sqlite3.Connection, *, tz: str | None = None) -> ReadReport:
    """Every crawled row of a run database, in time order.

    Our layout is read through its ``pytomo_crawl`` view (IDs in UTC) plus the normalised tables for the new
    figures; the 2015 layout through its flat table, whose IDs are wall times of the zone ``tz`` (an IANA name),
    or of an unknown zone when ``tz`` is None (then read as if UTC: "floating" seconds).
    """
    conn.row_factory = sqlite3.Row
    layout, tables = crawl_tables(conn)
    report = ReadReport(layout, [], zone=run_zone(conn) if layout == "ours" else tz)
    if layout == "ours" and "transfer_s" in _columns(conn, "downloads"):
        _figure_points(conn, report)
        report.points.sort(key=lambda p: p.t_s)
        return report
    extras = _extras(conn) if layout == "ours" else {}
    for table in tables:
        if not TABLE_NAME.match(table):  # never put an unchecked name into SQL
            continue
        for r in conn.execute(f'SELECT * FROM "{table}" WHERE DownloadTime > 0'):
            row = dict(r)
            t = parse_id(row.get("ID"), "UTC" if layout == "ours" else tz)
            if t is None:
                report.bad_times += 1
                continue
            extra = extras.get((row.get("ID"), row.get("Url"), row.get("IP")))
            report.points.append(Point(t, str(row.get("Service") or "Unknown"), str(row.get("IP") or "unknown"),
                                       row.get("CacheUrl"), values_from_columns(row, extra)))
    report.points.sort(key=lambda p: p.t_s)
    return report


def points_from_measurement(m: VideoMeasurement) -> Iterator[Point]:
    """The points a stored video gives, equal to what :func:`read_points` reads back from its database."""
    if not m.hops:
        return
    last = m.hops[-1]
    answered = {a.address for a in m.dns if a.host == last.host and a.address is not None}
    video = {f.key: f.value(m) for f in figures("videos")}
    seen: set[str] = set()
    for d in m.downloads:
        t = d.transfer
        if t.address in seen:
            continue
        seen.add(t.address)
        if t.address not in answered or not (t.duration_s or 0) > 0:
            continue
        values = {**video, **{f.key: f.value(m, d) for f in figures("downloads")}}
        stamp = t.started_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        yield Point(parse_id(stamp) or 0.0, m.service_label or "Unknown", t.address, last.origin,
                    values_from_figures(values))
