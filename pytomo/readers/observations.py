"""Per-video observations of a run database, read once per database version: what the operator's view counts."""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pytomo.figures import graphs, legacy_value
from pytomo.readers.pages import Layout, _col
from pytomo.zones import Clock

ICMP_FIRST = ("icmp-raw", "icmp-dgram", "system-ping")  # RTT of a video: ICMP echo, else TCP connect (as PingAvg)
_LEGACY = {g.ds: g for _f, g in graphs()}  # the 2015 columns' figures, as the RRD files read them


def _legacy_figure(ds: str, row: dict[str, Any]) -> float | None:
    return legacy_value(_LEGACY[ds], row)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass(frozen=True, slots=True)
class Obs:
    """One video as the operator's view counts it: its first download's figures and its RTT to that server.

    ``played``: the download received bytes. ``started``: playback began in the window (2015: played, as the 2015
    model has no start time). ``rtt_ms`` is the median of the video's answered probes to its cache server (ICMP
    echo, else TCP connect; 2015: PingAvg, the only central value it kept), ``rtt_min_ms``/``rtt_max_ms`` their
    extremes; ``probes_sent``/``probes_lost`` count those probes (0/0: loss not measured, as in 2015). ``live``:
    the download followed a live stream, ``live_latency_s`` its latency to the live edge when the window closed
    (None: not live, not measured, or a database from before schema 8).
    """

    t_s: float
    service: str
    server: str  # the cache server's address; "" when the video had no download
    host: str | None
    ok: bool
    played: bool
    started: bool
    stall_count: int | None
    start_s: float | None
    ratio: float | None
    throughput_bps: float | None
    rtt_ms: float | None
    rtt_min_ms: float | None
    rtt_max_ms: float | None
    probes_sent: int
    probes_lost: int
    live: bool = False  # the first download followed a live stream (downloads.live = 1)
    live_latency_s: float | None = None  # its latency to the live edge when the window closed (live_latency_end_s)

    @property
    def stalled(self) -> bool:
        """Played, and stalled at least once after playback started."""
        return self.played and (self.stall_count or 0) > 0

    @property
    def smooth(self) -> bool:
        """Played, started and never stalled."""
        return self.played and self.started and self.stall_count == 0


def _expr(conn: sqlite3.Connection, table: str, alias: str, name: str) -> str:
    """``alias.column`` of the figure ``name`` in this schema version, or NULL when the database lacks it."""
    col = _col(conn, table, name)
    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    return f"{alias}.{col}" if col in have else "NULL"


def _probe_rtts(conn: sqlite3.Connection, after_id: int) -> dict[tuple[int, str], tuple[list[float], int, int]]:
    """Per (video, address) of the videos after ``after_id``: the answered RTTs of its preferred method, probes sent
    and lost."""
    by_method: dict[tuple[int, str], dict[str, list[float | None]]] = {}
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: a run can hold millions of samples
    for vid, address, method, rtt in cur.execute(
            "SELECT video_row_id, address, method, rtt_ms FROM rtt_samples WHERE video_row_id > ?", (after_id,)):
        by_method.setdefault((vid, address), {}).setdefault(method, []).append(rtt)
    out = {}
    for key, methods in by_method.items():
        icmp = next((methods[m] for m in ICMP_FIRST if m in methods and any(v is not None for v in methods[m])), None)
        chosen = icmp if icmp is not None else methods.get("tcp-connect") or next(iter(methods.values()))
        answered = [float(v) for v in chosen if v is not None]
        out[key] = (answered, len(chosen), len(chosen) - len(answered))
    return out


def _ours(conn: sqlite3.Connection, clock: Clock, after_id: int) -> Iterator[tuple[int, Obs | None]]:
    e = {n: _expr(conn, "downloads", "d", n) for n in (
        "time_to_start_s", "stall_count", "throughput_to_encoding_ratio", "avg_throughput_bps", "encoding_rate_bps",
        "live", "live_latency_end_s")}
    rtts = _probe_rtts(conn, after_id)
    sql = f"""
        SELECT v.id, v.started_at, v.service, v.status, d.address, d.host, d.bytes, {e["time_to_start_s"]} AS start_s,
               {e["stall_count"]} AS stalls, {e["throughput_to_encoding_ratio"]} AS ratio,
               {e["avg_throughput_bps"]} AS thp, {e["encoding_rate_bps"]} AS enc, {e["live"]} AS live,
               {e["live_latency_end_s"]} AS live_latency
        FROM videos v LEFT JOIN downloads d
          ON d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)
        WHERE v.id > ? ORDER BY v.id"""
    cur = conn.cursor()
    cur.row_factory = None
    for r in cur.execute(sql, (after_id,)):
        t = clock.epoch(r[1])
        if t is None:
            yield r[0], None
            continue
        answered, sent, lost = rtts.get((r[0], r[4]), ([], 0, 0))
        played = bool(r[6] and r[6] > 0)
        yield r[0], Obs(t, str(r[2] or "Unknown"), str(r[4] or ""), r[5], r[3] == "ok", played,
                  played and r[7] is not None, r[8], r[7], r[9] if r[9] is not None else _ratio(r[10], r[11]),
                  r[10], statistics.median(answered) if answered else None, min(answered, default=None),
                  max(answered, default=None), sent, lost, r[12] == 1, r[13])


def _legacy(conn: sqlite3.Connection, table: str, clock: Clock) -> Iterator[Obs]:
    for r in conn.execute(f'SELECT * FROM "{table}" ORDER BY ID, rowid'):
        row = dict(r)
        t = clock.epoch(row.get("ID"))
        if t is None:
            continue
        played = (_legacy_figure("download_s", row) or 0) > 0
        stalls = _legacy_figure("stall_count", row)
        thp_kbps = _legacy_figure("avg_thp_kbps", row)
        yield Obs(t, str(row.get("Service") or "Unknown"), str(row.get("IP") or ""), row.get("CacheUrl"), played,
                  played, played, int(stalls) if stalls is not None else None, None,
                  _legacy_figure("reception_ratio", row), thp_kbps * 1000 if thp_kbps is not None else None,
                  _legacy_figure("ping_avg_ms", row), _legacy_figure("ping_min_ms", row),
                  _legacy_figure("ping_max_ms", row), 0, 0)


def load(conn: sqlite3.Connection, layout: Layout, clock: Clock, *, after: Loaded | None = None) -> Loaded:
    """Every video of the database in time order (videos whose time cannot be read are left out).

    ``after``: what an earlier call read of the same run; only the videos stored since are read (a video is written
    whole in one transaction and never changed, so what was read stays true).
    """
    conn.row_factory = sqlite3.Row
    if layout.kind != "ours":
        rows = list(_legacy(conn, layout.table, clock)) if layout.table is not None else []
        return Loaded(0, sorted(rows, key=lambda o: o.t_s))
    last = after.last_id if after else 0
    new = []
    for vid, o in _ours(conn, clock, last):
        last = max(last, vid)
        if o is not None:
            new.append(o)
    rows = (after.obs if after else []) + new
    return Loaded(last, sorted(rows, key=lambda o: o.t_s) if new else rows)


@dataclass(frozen=True)
class Loaded:
    """The videos read from a run, and the highest video id read (0 for a 2015 table, always read whole)."""

    last_id: int
    obs: list[Obs]


def scope_of(o: Obs) -> tuple[str, str]:
    """The verdict rows an observation counts in: its service and its cache server."""
    return o.service, o.server


def as_dict(o: Obs) -> dict[str, Any]:
    """An observation as JSON-ready fields."""
    return {name: getattr(o, name) for name in Obs.__slots__}
