"""Read-only queries behind the pages: run, summary figures, videos, one video; both database layouts."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from pytomo.errors import UsageError
from pytomo.figures import renamed
from pytomo.rrd.points import TABLE_NAME, crawl_tables
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


def summary(conn: sqlite3.Connection, layout: Layout) -> dict[str, Any]:
    """The figures shown beside the graphs, counting videos (not rows)."""
    if layout.kind == "ours":
        out = _one(conn, "SELECT count(*) AS videos, sum(status = 'ok') AS ok, sum(status = 'error') AS failed,"
                         " min(started_at) AS first_at, max(coalesce(ended_at, started_at)) AS last_at FROM videos")
        out.update(_one(conn, f"""
            SELECT count(*) AS played, avg(d.{_col(conn, "downloads", "transfer_s")}) AS download_s,
                   avg(d.stall_count) AS stalls,
                   avg(d.stall_count > 0) AS stalled_share, avg(d.stall_total_s) AS stall_s,
                   avg(d.avg_throughput_bps) / 1000.0 AS throughput_kbps, avg(d.time_to_start_s) AS start_s,
                   count(DISTINCT d.address) AS servers
            FROM downloads d WHERE d.bytes > 0
              AND d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = d.video_row_id)"""))
        out.update(_one(conn, """
            SELECT avg(s.rtt_ms) AS rtt_ms FROM rtt_samples s
            JOIN downloads d ON d.video_row_id = s.video_row_id AND d.address = s.address
            WHERE s.method != 'tcp-connect'"""))
        return out
    if layout.table is None:
        return {}
    t = layout.table
    out = _one(conn, f'SELECT count(DISTINCT Url || ID) AS played, min(ID) AS first_at, max(ID) AS last_at,'
                     f' avg(DownloadTime) AS download_s, avg(DownloadInterruptions) AS stalls,'
                     f' avg(DownloadInterruptions > 0) AS stalled_share, avg(BufferingDuration) AS stall_s,'
                     f' avg(8.0 * DownloadBytes / DownloadTime / 1000.0) AS throughput_kbps,'
                     f' avg(PingAvg) AS rtt_ms, count(DISTINCT IP) AS servers'
                     f' FROM "{t}" WHERE DownloadTime > 0')
    out["videos"] = out.get("played")
    return out


def videos_page(conn: sqlite3.Connection, layout: Layout, page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the played videos, newest first, and the number of videos."""
    offset = (page - 1) * PER_PAGE
    if layout.kind == "ours":
        total = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
        rows = conn.execute("""
            SELECT v.id, v.started_at, v.title, v.page_url, v.video_id, v.status, v.error_stage, v.error_kind,
                   d.host, d.address, d.avg_throughput_bps / 1000.0 AS throughput_kbps, d.stall_count,
                   d.stall_total_s, d.time_to_start_s
            FROM videos v
            LEFT JOIN downloads d ON d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)
            ORDER BY v.id DESC LIMIT ? OFFSET ?""", (PER_PAGE, offset)).fetchall()
        return [dict(r) for r in rows], total
    if layout.table is None:
        return [], 0
    t = layout.table
    total = conn.execute(f'SELECT count(*) FROM "{t}" WHERE DownloadTime > 0').fetchone()[0]
    rows = conn.execute(f'SELECT rowid AS id, ID AS started_at, NULL AS title, Url AS page_url, NULL AS video_id,'
                        f' \'ok\' AS status, NULL AS error_stage, NULL AS error_kind, CacheUrl AS host,'
                        f' IP AS address, 8.0 * DownloadBytes / DownloadTime / 1000.0 AS throughput_kbps,'
                        f' DownloadInterruptions AS stall_count, BufferingDuration AS stall_total_s,'
                        f' NULL AS time_to_start_s FROM "{t}" WHERE DownloadTime > 0'
                        f' ORDER BY ID DESC, rowid DESC LIMIT ? OFFSET ?', (PER_PAGE, offset)).fetchall()
    return [dict(r) for r in rows], total


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


def rtt_samples(conn: sqlite3.Connection, video_id: int) -> list[dict[str, Any]]:
    """Every RTT sample of a video, in sending order."""
    return [dict(r) for r in conn.execute(
        "SELECT address, method, seq, rtt_ms FROM rtt_samples WHERE video_row_id = ? ORDER BY id", (video_id,))]


def main_download_id(conn: sqlite3.Connection, video_id: int) -> int | None:
    """The first download of a video."""
    row = conn.execute("SELECT min(id) FROM downloads WHERE video_row_id = ?", (video_id,)).fetchone()
    return row[0] if row else None


def throughput(conn: sqlite3.Connection, download_id: int) -> list[tuple[float, float]]:
    """``(t_start_s, kbit/s)`` of every bin of a download."""
    bin_s = conn.execute("SELECT bin_s FROM downloads WHERE id = ?", (download_id,)).fetchone()
    if not bin_s or not bin_s[0]:
        return []
    return [(r[0], r[1] * 8 / bin_s[0] / 1000) for r in conn.execute(
        "SELECT t_start_s, bytes FROM throughput_samples WHERE download_id = ? ORDER BY bin_index", (download_id,))]


def playout(conn: sqlite3.Connection, download_id: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The buffer level ``(t_s, buffer_s)`` and the stalls ``(start_s, duration_s)`` of a download."""
    level = [(r[0], r[1]) for r in conn.execute(
        "SELECT t_s, buffer_s FROM playout_timeline WHERE download_id = ? ORDER BY t_s, rowid", (download_id,))]
    stalls = [(r[0], r[1]) for r in conn.execute(
        "SELECT start_s, duration_s FROM stalls WHERE download_id = ? ORDER BY seq", (download_id,))]
    return level, stalls


def servers(conn: sqlite3.Connection, layout: Layout) -> list[dict[str, Any]]:
    """Per cache server: videos, mean throughput, share with stalls, mean RTT; slowest first."""
    if layout.kind == "ours":
        sql = f"""
            SELECT address, min(host) AS host, count(*) AS videos, avg(thp) / 1000.0 AS throughput_kbps,
                   avg(stalled) AS stalled_share, avg(start_s) AS start_s, avg(ttfb_s) AS ttfb_s, avg(rtt) AS rtt_ms
            FROM (SELECT d.address, d.host, d.avg_throughput_bps AS thp, d.stall_count > 0 AS stalled,
                         d.time_to_start_s AS start_s, d.{_col(conn, "downloads", "first_byte_s")} AS ttfb_s,
                         (SELECT avg(s.rtt_ms) FROM rtt_samples s WHERE s.video_row_id = d.video_row_id
                            AND s.address = d.address AND s.method != 'tcp-connect') AS rtt
                  FROM downloads d WHERE d.bytes > 0)
            GROUP BY address ORDER BY throughput_kbps"""
        return [dict(r) for r in conn.execute(sql)]
    if layout.table is None:
        return []
    return [dict(r) for r in conn.execute(
        f'SELECT IP AS address, min(CacheUrl) AS host, count(*) AS videos,'
        f' avg(8.0 * DownloadBytes / DownloadTime / 1000.0) AS throughput_kbps,'
        f' avg(DownloadInterruptions > 0) AS stalled_share, NULL AS start_s, avg(TimeTogetFirstByte) AS ttfb_s,'
        f' avg(PingAvg) AS rtt_ms FROM "{layout.table}" WHERE DownloadTime > 0 GROUP BY IP ORDER BY throughput_kbps')]
