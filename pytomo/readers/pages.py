"""Read-only queries behind the pages: run, summary figures, videos, one video; both database layouts."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from pytomo.errors import UsageError
from pytomo.figures import FIGURES, Figure, read_2015, renamed
from pytomo.readers.points import TABLE_NAME, crawl_tables
from pytomo.storage.schema import VIEW_UNITS
from pytomo.units import scaled_unit, unit_of
from pytomo.zones import Clock, zone

PER_PAGE = 50


@dataclass(frozen=True)
class Layout:
    """Which layout a database has, and for the 2015 one its table."""

    kind: str  # "ours" or "2015"
    table: str | None = None


def layout_of(conn: sqlite3.Connection) -> Layout:
    """Our normalised layout, or the 2015 flat table (None table: not a Pytomo database)."""
    kind, tables = crawl_tables(conn)
    if kind == "ours":
        return Layout("ours")
    checked = [t for t in tables if TABLE_NAME.match(t)]
    return Layout("2015", checked[-1] if checked else None)


def _col(conn: sqlite3.Connection, table: str, name: str) -> str:
    """The column holding the figure ``name`` in this database: its name now, or in schema versions 2 and 3."""
    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    if name in have:
        return name
    return next((old for old, new in renamed(table).items() if new == name and old in have), name)


def _current(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row of an older schema version with its renamed columns under their names now."""
    names = renamed(table)
    if not any(k in names for k in row):
        return row
    return {names.get(k, k): v for k, v in row.items()}


def _one(conn: sqlite3.Connection, sql: str, args: tuple = ()) -> dict[str, Any]:
    row = conn.execute(sql, args).fetchone()
    return dict(row) if row else {}


def run_info(conn: sqlite3.Connection, layout: Layout) -> dict[str, Any]:
    """Service, host, start, end and status of the run."""
    if layout.kind == "ours":
        have = {r[1] for r in conn.execute("PRAGMA table_info(run)")}
        zone = "timezone" if "timezone" in have else "NULL AS timezone"
        return _one(conn, "SELECT service, host_label, provider, started_at, ended_at, status, stop_reason,"
                          f" software_version, {zone} FROM run ORDER BY id LIMIT 1")
    if layout.table is None:
        return {}
    return _one(conn, f'SELECT min(Service) AS service, min(ID) AS started_at, max(ID) AS ended_at,'
                      f' NULL AS status FROM "{layout.table}"')


def clock_for(info: dict[str, Any], layout: Layout, tz: str | None) -> Clock:
    """How this database's times are shown: a 2015 table's local times in ``tz`` (--tz) or as "local, zone
    unknown"; ours in the run's own zone when it is stored and known, else UTC."""
    if layout.kind != "ours":
        return Clock(tz) if tz else Clock(None)
    name = info.get("timezone")
    if isinstance(name, str) and name:
        try:
            zone(name)
            return Clock(name)
        except UsageError:
            pass
    return Clock("UTC")


def video(conn: sqlite3.Connection, layout: Layout, video_id: int) -> dict[str, Any] | None:
    """Everything stored for one video (our layout), or its 2015 row; None when there is no such video."""
    if layout.kind != "ours":
        if layout.table is None:
            return None
        row = conn.execute(f'SELECT * FROM "{layout.table}" WHERE rowid = ?', (video_id,)).fetchone()
        return {"legacy": dict(row)} if row else None
    v = conn.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
    if v is None:
        return None

    def q(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sql, (video_id,))]

    return {
        "video": _current("videos", dict(v)),
        "hops": q("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index"),
        "dns": q("SELECT * FROM dns_answers WHERE video_row_id = ? ORDER BY id"),
        "rtt": q("SELECT p.address, p.method, p.probes_sent, p.error, count(s.rtt_ms) AS answered,"
                 " min(s.rtt_ms) AS min_ms, avg(s.rtt_ms) AS avg_ms, max(s.rtt_ms) AS max_ms"
                 " FROM rtt_probes p LEFT JOIN rtt_samples s ON s.video_row_id = p.video_row_id"
                 " AND s.address = p.address AND s.probe_id = p.id"
                 " WHERE p.video_row_id = ? GROUP BY p.id ORDER BY p.id"),
        "downloads": [_current("downloads", d)
                      for d in q("SELECT * FROM downloads WHERE video_row_id = ? ORDER BY id")],
    }


def has_video(conn: sqlite3.Connection, video_id: int) -> bool:
    """True when the run (of our layout) has this video."""
    return conn.execute("SELECT 1 FROM videos WHERE id = ?", (video_id,)).fetchone() is not None


def p1203_inputs(conn: sqlite3.Connection, video_id: str | None = None) -> list[tuple[str, int, str]]:
    """``(video id, download id, P.1203 input JSON)`` of every download that has one (of one video when given)."""
    return [tuple(r) for r in conn.execute(
        "SELECT v.video_id, d.id, d.p1203_input_json FROM downloads d JOIN videos v ON v.id = d.video_row_id"
        " WHERE d.p1203_input_json IS NOT NULL AND (? IS NULL OR v.video_id = ?) ORDER BY d.id",
        (video_id, video_id))]


def run_status(conn: sqlite3.Connection) -> str | None:
    """``run.status`` of a database of our layout."""
    row = conn.execute("SELECT status FROM run ORDER BY id LIMIT 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def rtt_samples(conn: sqlite3.Connection, video_id: int) -> list[dict[str, Any]]:
    """Every RTT sample of a video, in sending order."""
    return [dict(r) for r in conn.execute(
        "SELECT address, method, seq, rtt_ms FROM rtt_samples WHERE video_row_id = ? ORDER BY id", (video_id,))]


def main_download_id(conn: sqlite3.Connection, video_id: int) -> int | None:
    """The first download of a video."""
    row = conn.execute("SELECT min(id) FROM downloads WHERE video_row_id = ?", (video_id,)).fetchone()
    return row[0] if row else None


def throughput(conn: sqlite3.Connection, download_id: int) -> list[tuple[float, float]]:
    """``(t_start_s, bit/s)`` of every bin of a download."""
    bin_s = conn.execute("SELECT bin_s FROM downloads WHERE id = ?", (download_id,)).fetchone()
    if not bin_s or not bin_s[0]:
        return []
    return [(r[0], r[1] * 8 / bin_s[0]) for r in conn.execute(
        "SELECT t_start_s, bytes FROM throughput_samples WHERE download_id = ? ORDER BY bin_index", (download_id,))]


def bin_and_rate(conn: sqlite3.Connection, download_id: int) -> tuple[float | None, float | None]:
    """The width of a download's throughput bins (s) and its media's encoding rate (bit/s), None when unknown."""
    row = conn.execute("SELECT bin_s, encoding_rate_bps FROM downloads WHERE id = ?", (download_id,)).fetchone()
    return (row[0], row[1]) if row else (None, None)


def playout(conn: sqlite3.Connection, download_id: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The buffer level ``(t_s, buffer_s)`` and the stalls ``(start_s, duration_s)`` of a download."""
    level = [(r[0], r[1]) for r in conn.execute(
        "SELECT t_s, buffer_s FROM playout_timeline WHERE download_id = ? ORDER BY t_s, rowid", (download_id,))]
    return level, [(s["start_s"], s["duration_s"]) for s in stalls(conn, download_id)]


STALL_COLUMNS = ("seq", "start_s", "duration_s", "media_position_s", "ongoing")


def stalls(conn: sqlite3.Connection, download_id: int) -> list[dict[str, Any]]:
    """The stalls of a download's playout (the ``stalls`` table), in order: ``seq``, ``start_s`` (seconds since the
    request), ``duration_s``, ``media_position_s`` (where in the media the playhead stood) and ``ongoing`` (1: still
    stalled when the window closed)."""
    return [dict(r) for r in conn.execute(
        f"SELECT {_columns_or_null(conn, 'stalls', STALL_COLUMNS)} FROM stalls WHERE download_id = ? ORDER BY seq",
        (download_id,))]


THROUGHPUT_LABEL = {"ours": "Throughput", "2015": "AvgThroughput (2015 formula)"}
"""The throughput a layout has, as the videos and servers lists title it (each cell carries its unit, bit/s with an SI
prefix): ours measured (``avg_throughput_bps``); 2015 only its own formula (``throughput_2015_bps``: 8 DownloadBytes
/ DownloadTime)."""
THROUGHPUT_FIGURE = {"ours": "avg_throughput_bps", "2015": "throughput_2015_bps"}
"""The field, named as its figure and in bit/s, that holds a layout's throughput in the rows of :func:`servers` and
:func:`videos_by_id` (and so in ``/api/v1/videos``)."""


def servers(conn: sqlite3.Connection, layout: Layout) -> list[dict[str, Any]]:
    """Per cache server: videos, mean throughput in bit/s (``THROUGHPUT_FIGURE``), share with stalls, mean of the
    videos' RTT (``ping_min_ms``; 2015 PingMin); slowest first."""
    if layout.kind == "ours":
        sql = f"""
            SELECT address, min(host) AS host, count(*) AS videos, avg(thp) AS avg_throughput_bps,
                   avg(stalled) AS stalled_share, avg(start_s) AS start_s, avg(ttfb_s) AS ttfb_s, avg(rtt) AS rtt_ms
            FROM (SELECT d.address, d.host, d.avg_throughput_bps AS thp, d.stall_count > 0 AS stalled,
                         d.time_to_start_s AS start_s, d.{_col(conn, "downloads", "first_byte_s")} AS ttfb_s,
                         {_figure_or_null(conn, "downloads", "ping_min_ms", "d")} AS rtt
                  FROM downloads d WHERE d.bytes > 0)
            GROUP BY address ORDER BY avg_throughput_bps"""
        return [dict(r) for r in conn.execute(sql)]
    if layout.table is None:
        return []
    return [dict(r) for r in conn.execute(
        f'SELECT IP AS address, min(CacheUrl) AS host, count(*) AS videos,'
        f' avg(8.0 * DownloadBytes / DownloadTime) AS throughput_2015_bps,'
        f' avg(DownloadInterruptions > 0) AS stalled_share, NULL AS start_s, avg(TimeTogetFirstByte) AS ttfb_s,'
        f' avg(PingMin) AS rtt_ms FROM "{layout.table}" WHERE DownloadTime > 0 GROUP BY IP'
        f' ORDER BY throughput_2015_bps')]


def _figure_or_null(conn: sqlite3.Connection, table: str, name: str, alias: str) -> str:
    """``alias.column`` of a figure in this schema version, or NULL when it came later."""
    col = _col(conn, table, name)
    return f"{alias}.{col}" if col in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")} else "NULL"


VANTAGE_COLUMNS = ("vantage_as_number", "vantage_as_name", "vantage_country")


def archive_facts(conn: sqlite3.Connection, layout: Layout) -> dict[str, Any]:
    """What the archive lists of a run from its run row: service, vantage point, status, zone. (Its first and newest
    video, videos played and verdict are the overview's own, from the observations: pytomo/web/run_pages.py.)"""
    out = dict(run_info(conn, layout))
    if layout.kind == "ours":
        have = {r[1] for r in conn.execute("PRAGMA table_info(run)")}
        wanted = [c for c in VANTAGE_COLUMNS if c in have]
        if wanted:
            out.update(_one(conn, f"SELECT {', '.join(wanted)} FROM run ORDER BY id LIMIT 1"))
    return out


# ---- the videos list in any order ----

SORT_KEYS: dict[str, tuple[str, str]] = {  # name: (expression in our layout, in a 2015 table)
    "started": ("v.started_at", "ID"),
    "title": ("coalesce(v.title, v.video_id, v.page_url)", "Url"),
    "status": ("v.status", "CASE WHEN DownloadTime > 0 THEN 'ok' ELSE 'error' END"),
    "server": ("d.host || ' ' || d.address", "CacheUrl || ' ' || IP"),
    "throughput": ("d.avg_throughput_bps", "8.0 * DownloadBytes / DownloadTime"),
    "start": ("d.time_to_start_s", "NULL"),
    "stalls": ("d.stall_count", "DownloadInterruptions"),
    "stall_s": ("d.stall_total_s", "BufferingDuration"),
}
MAIN_DOWNLOAD_JOIN = "LEFT JOIN downloads d ON d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)"


def _videos_2015(conn: sqlite3.Connection, layout: Layout) -> str:
    """The rows of a 2015 table that are videos: those with a download, and those that failed (neither a download
    nor a redirection to another cache: a redirected row is a hop of the video measured on the next row)."""
    have = {r[1] for r in conn.execute(f'PRAGMA table_info("{layout.table}")')}
    return "DownloadTime > 0 OR RedirectUrl IS NULL" if "RedirectUrl" in have else "DownloadTime > 0"


@dataclass(frozen=True)
class VideoOrder:
    """The ids of a run's played videos by one key, ascending (ties by id), and those without a value."""

    valued: tuple[int, ...]
    missing: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.valued) + len(self.missing)

    def only(self, ids: set[int]) -> VideoOrder:
        """The same order of the videos in ``ids`` alone."""
        return VideoOrder(tuple(i for i in self.valued if i in ids), tuple(i for i in self.missing if i in ids))

    def page(self, number: int, descending: bool, per_page: int = PER_PAGE) -> list[int]:
        """The ids of one page (from 1): values ascending or descending, videos without a value last."""
        ids = (self.valued[::-1] + self.missing[::-1]) if descending else self.valued + self.missing
        start = (number - 1) * per_page
        return list(ids[start:start + per_page])


def video_order(conn: sqlite3.Connection, layout: Layout, key: str) -> VideoOrder:
    """Every video id ordered by ``key`` (one of SORT_KEYS), NULLs apart; meant to be cached per database version."""
    ours, old = SORT_KEYS[key]
    if layout.kind == "ours":
        join = MAIN_DOWNLOAD_JOIN if "d." in ours else ""
        sql = f"SELECT v.id, ({ours}) IS NULL AS missing FROM videos v {join} ORDER BY missing, {ours}, v.id"
    elif layout.table is not None:
        sql = (f'SELECT rowid, ({old}) IS NULL AS missing FROM "{layout.table}" WHERE {_videos_2015(conn, layout)}'
               f' ORDER BY missing, {old}, rowid')
    else:
        return VideoOrder((), ())
    valued: list[int] = []
    missing: list[int] = []
    for ident, none in conn.execute(sql):
        (missing if none else valued).append(ident)
    return VideoOrder(tuple(valued), tuple(missing))


def videos_by_id(conn: sqlite3.Connection, layout: Layout, ids: list[int]) -> list[dict[str, Any]]:
    """The rows of the videos list for these ids, in their order."""
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    if layout.kind == "ours":
        sql = f"""
            SELECT v.id, v.started_at, v.title, v.page_url, v.video_id, v.status, v.error_stage, v.error_kind,
                   d.host, d.address, d.avg_throughput_bps, d.stall_count,
                   d.stall_total_s, d.time_to_start_s
            FROM videos v {MAIN_DOWNLOAD_JOIN} WHERE v.id IN ({marks})"""
    elif layout.table is not None:
        sql = (f'SELECT rowid AS id, ID AS started_at, NULL AS title, Url AS page_url, NULL AS video_id,'
               f' {SORT_KEYS["status"][1]} AS status,'
               f' CASE WHEN DownloadTime > 0 THEN NULL ELSE \'download\' END AS error_stage,'
               f' CASE WHEN DownloadTime > 0 THEN NULL ELSE \'no_download\' END AS error_kind, CacheUrl AS host,'
               f' IP AS address, 8.0 * DownloadBytes / DownloadTime AS throughput_2015_bps,'
               f' DownloadInterruptions AS stall_count, BufferingDuration AS stall_total_s,'
               f' NULL AS time_to_start_s FROM "{layout.table}" WHERE rowid IN ({marks})')
    else:
        return []
    found = {r["id"]: dict(r) for r in conn.execute(sql, tuple(ids))}
    return [found[i] for i in ids if i in found]


# ---- segmented (HLS/DASH) sessions and TCP_INFO of one download ----

SEGMENTS_SHOWN = 200


LIVE_SEGMENT_COLUMNS = ("media_sequence", "playlist_changed", "new_segments")  # schema 8 on; NULL before


def _columns_or_null(conn: sqlite3.Connection, table: str, names: tuple[str, ...]) -> str:
    """``name`` for each column the table has, ``NULL AS name`` for one of a later schema version."""
    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    return ", ".join(n if n in have else f"NULL AS {n}" for n in names)


def segments(conn: sqlite3.Connection, download_id: int,
             limit: int = SEGMENTS_SHOWN) -> tuple[list[dict[str, Any]], int]:
    """The first ``limit`` requests of a segmented session, in order, and how many there are."""
    total = conn.execute("SELECT count(*) FROM segment_requests WHERE download_id = ?", (download_id,)).fetchone()[0]
    rows = conn.execute(
        "SELECT seq, stream, kind, rendition_id, bandwidth_bps, http_status, bytes, trequest_s, tresponse_s,"
        " tfinish_s, media_start_s, media_duration_s, new_connection, error,"
        f" {_columns_or_null(conn, 'segment_requests', LIVE_SEGMENT_COLUMNS)} FROM segment_requests"
        " WHERE download_id = ? ORDER BY seq LIMIT ?", (download_id, limit))
    return [dict(r) for r in rows], total


LIVE_SAMPLES_SHOWN = 1000


def live_latency(conn: sqlite3.Connection, download_id: int,
                 limit: int = LIVE_SAMPLES_SHOWN) -> tuple[list[dict[str, Any]], int]:
    """The first ``limit`` latency samples of a live download (``t_s``, ``latency_s``, ``playhead_s``) in order, and
    how many there are; none in a database from before the ``live_latency`` table (schema 8)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'live_latency'").fetchone() is None:
        return [], 0
    total = conn.execute("SELECT count(*) FROM live_latency WHERE download_id = ?", (download_id,)).fetchone()[0]
    rows = conn.execute("SELECT seq, t_s, latency_s, playhead_s FROM live_latency WHERE download_id = ?"
                        " ORDER BY seq LIMIT ?", (download_id, limit))
    return [dict(r) for r in rows], total


def renditions(conn: sqlite3.Connection, download_id: int) -> list[dict[str, Any]]:
    """Each rendition a session fetched media from: its stream, declared bandwidth and number of media segments."""
    return [dict(r) for r in conn.execute(
        "SELECT stream, rendition_id, max(bandwidth_bps) AS bandwidth_bps, count(*) AS segments,"
        " sum(bytes) AS bytes FROM segment_requests WHERE download_id = ? AND kind = 'media'"
        " AND rendition_id IS NOT NULL GROUP BY stream, rendition_id ORDER BY stream, min(seq)", (download_id,))]


def rendition_switches(conn: sqlite3.Connection, download_id: int) -> list[dict[str, Any]]:
    """Every change of rendition between consecutive media segments of one stream, in request order."""
    last: dict[str, dict[str, Any]] = {}
    out = []
    for r in conn.execute(
            "SELECT seq, stream, rendition_id, bandwidth_bps, media_start_s, trequest_s FROM segment_requests"
            " WHERE download_id = ? AND kind = 'media' AND rendition_id IS NOT NULL ORDER BY seq", (download_id,)):
        before = last.get(r["stream"])
        if before is not None and before["rendition_id"] != r["rendition_id"]:
            out.append({"seq": r["seq"], "stream": r["stream"], "from_rendition": before["rendition_id"],
                        "from_bps": before["bandwidth_bps"], "to_rendition": r["rendition_id"],
                        "to_bps": r["bandwidth_bps"], "media_start_s": r["media_start_s"],
                        "trequest_s": r["trequest_s"]})
        last[r["stream"]] = dict(r)
    return out


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _spread(values: list[Any], scale: float) -> dict[str, float | None]:
    """first, last, min, median and max of a series (None values left out), each times ``scale``."""
    kept = [float(v) * scale for v in values if v is not None]
    if not kept:
        return {"first": None, "last": None, "min": None, "median": None, "max": None}
    return {"first": kept[0], "last": kept[-1], "min": min(kept), "median": _median(kept), "max": max(kept)}


TCP_INFO_SHOWN = (  # column, label, unit shown, factor from the kernel's unit: the download's path as the receiving
    # socket saw it
    ("tcpi_rtt", "Smoothed RTT (tcpi_rtt)", "ms", 1e-3),  # µs
    ("tcpi_rttvar", "RTT variation (tcpi_rttvar)", "ms", 1e-3),  # µs
    ("tcpi_min_rtt", "Minimum RTT (tcpi_min_rtt)", "ms", 1e-3),  # µs
    ("tcpi_rcv_rtt", "Receiver RTT estimate (tcpi_rcv_rtt)", "ms", 1e-3),  # µs
    ("tcpi_total_retrans", "Retransmitted segments (tcpi_total_retrans)", "segments", 1.0),  # cumulative count
)
TCP_INFO_APART = (  # the same, of what is not the download: shown apart from its figures
    # bytes/s: the kernel's rate sample of what this socket sent (the request, ACKs), measured on the ACKs it got back
    ("tcpi_delivery_rate", "Delivery rate of what we sent (tcpi_delivery_rate)", "bit/s", 8.0),
)


def tcp_info_summary(conn: sqlite3.Connection, download_id: int) -> dict[str, Any]:
    """The TCP_INFO snapshots of a download summed up: how many, over what time, and per field first, last, min,
    median and max in the units shown (``rows`` empty: none recorded); ``rows`` of the download's path
    (``TCP_INFO_SHOWN``), ``apart`` of what is not the download (``TCP_INFO_APART``: the delivery rate)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(tcp_info_samples)")}
    fields = [f for f in (*TCP_INFO_SHOWN, *TCP_INFO_APART) if f[0] in have]
    if not fields:
        return {"samples": 0, "rows": [], "apart": []}
    samples = conn.execute(
        f"SELECT t_s, {', '.join(f[0] for f in fields)} FROM tcp_info_samples WHERE download_id = ?"
        f" ORDER BY t_s, rowid", (download_id,)).fetchall()
    if not samples:
        return {"samples": 0, "rows": [], "apart": []}
    rows = [{"name": name, "label": label, "unit": unit, **_spread([s[name] for s in samples], factor)}
            for name, label, unit, factor in fields]
    apart = {f[0] for f in TCP_INFO_APART}
    return {"samples": len(samples), "first_s": samples[0]["t_s"], "last_s": samples[-1]["t_s"],
            "rows": [r for r in rows if r["name"] not in apart], "apart": [r for r in rows if r["name"] in apart]}


# ---- a row of a 2015 table, each column with its unit ----

def legacy_columns() -> dict[str, tuple[Figure, str | None]]:
    """Each 2015 column a figure reads (``Figure.legacy``), with that figure and the column's unit: the figure's
    declared unit scaled by its ``legacy_scale`` (EncodingRate: kbit/s for ``encoding_rate_bps``)."""
    out: dict[str, tuple[Figure, str | None]] = {}
    for f in FIGURES:
        if isinstance(f.legacy, str):
            unit = unit_of(f.name)
            out[f.legacy] = (f, scaled_unit(unit, f.legacy_scale) if unit else None)
    return out


def legacy_row(row: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """A 2015 row as its page shows it: ``time`` (its ID in the page's clock), ``columns`` in the table's order, each
    with its stored value, its unit and the figure that reads it with the value in that figure's declared unit, and
    ``derived``: the figures 2015 did not store but its row gives (AvgThroughput, 8 DownloadBytes / DownloadTime)."""
    by_column = legacy_columns()
    columns = []
    for name, value in row.items():
        f, unit = by_column.get(name, (None, None))
        declared = unit_of(f.name) if f is not None else None
        unit = unit or VIEW_UNITS.get(name)  # a 2015 column no figure reads (PlaybackDuration: media seconds)
        columns.append({"name": name, "value": value, "unit": "time" if name in ("ID", "LocalID") else unit,
                        "figure": f.key if f is not None else None, "declared_unit": declared,
                        "declared": read_2015(f, row) if f is not None and declared else None})
    derived = [{"figure": f.key, "unit": unit_of(f.name), "value": read_2015(f, row), "description": f.description}
               for f in FIGURES if callable(f.legacy)]
    return {"time": clock.show(clock.epoch(row.get("ID"))), "zone": clock.label, "columns": columns,
            "derived": derived}
