"""Per-video observations of a run database, read once per database version: what the operator's view counts."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pytomo.figures import Figure, aggregates, by_key, read_2015
from pytomo.readers.pages import Layout, _col
from pytomo.zones import Clock

ICMP_FIRST = ("icmp-raw", "icmp-dgram", "system-ping")  # a video's probes: ICMP echo, else TCP connect (as PingMin)
BYTES, START, STALLS, LIVE = ("downloads.bytes", "downloads.time_to_start_s", "downloads.stall_count",
                              "downloads.live")
RTT, RTT_MAX = "downloads.ping_min_ms", "downloads.ping_max_ms"  # the one RTT of a video, and its largest sample
WINDOW = "downloads.window_s"  # NULL: no window recorded, so no playout of ours (a run imported from 2015 or 2013)
OWN = (BYTES, START, STALLS, LIVE, RTT_MAX, WINDOW)  # what an observation needs besides the aggregates' figures


def wanted() -> list[Figure]:
    """The figures an observation carries: every aggregate's, and those that say played, started, stalled, live."""
    figs = by_key()
    keys = dict.fromkeys([*(f.key for f, _a in aggregates()), *OWN])
    return [figs[k] for k in keys]


@dataclass(frozen=True, slots=True)
class Obs:
    """One video as the operator's view counts it: its first download's figures, by figure key (``table.column``),
    read back through their declarations (NULL: not recorded in this database's schema, or not measured).

    ``ok``: the video's status is ok (2015: it played). ``error``: why not, ``stage/kind`` (``redirects/http_status``;
    2015: ``download/no_download``, a row with neither a download nor a redirection). ``server``: the address the
    media came from, else the one its last hop failed at. ``started``: playback began in the window (2015: played,
    as the 2015 model has no start time; None for a download without a window, ``window_s`` NULL: a run imported
    from 2015 or 2013 data, which recorded no playout of ours: neither smooth nor "did not start", left out of the
    smooth share). ``probes_sent``/``probes_lost`` count the probes behind its RTT (0/0: loss not measured, as in
    2015). ``ident``: its row (``videos.id``; a 2015 table's rowid), as the videos list names it.
    """

    t_s: float
    service: str
    server: str  # the cache server's address; "" when the video reached none
    host: str | None
    ok: bool
    started: bool | None
    values: dict[str, float | None]
    probes_sent: int = 0
    probes_lost: int = 0
    error: str | None = None
    ident: int = 0

    def value(self, key: str) -> float | None:
        """The figure ``key`` of this video."""
        return self.values.get(key)

    @property
    def played(self) -> bool:
        """The download received bytes."""
        return (self.values.get(BYTES) or 0) > 0

    @property
    def stall_count(self) -> float | None:
        return self.values.get(STALLS)

    @property
    def start_s(self) -> float | None:
        return self.values.get(START)

    @property
    def rtt_ms(self) -> float | None:
        """The video's RTT: the smallest answered probe to its cache server (``downloads.ping_min_ms``)."""
        return self.values.get(RTT)

    @property
    def rtt_max_ms(self) -> float | None:
        return self.values.get(RTT_MAX)

    @property
    def live(self) -> bool:
        """The first download followed a live stream (``downloads.live`` = 1)."""
        return self.values.get(LIVE) == 1

    @property
    def stalled(self) -> bool:
        """Played, and stalled at least once after playback started."""
        return self.played and (self.stall_count or 0) > 0

    @property
    def smooth(self) -> bool:
        """Played, started and never stalled."""
        return self.played and self.started is True and self.stall_count == 0

    @property
    def not_started(self) -> bool:
        """Played, and its playback is known not to have started in the window."""
        return self.played and self.started is False


def _expr(conn: sqlite3.Connection, f: Figure) -> str:
    """``alias.column`` of a figure in this schema version (its old name in versions 2 and 3), or NULL."""
    col = _col(conn, f.table, f.name)
    have = {r[1] for r in conn.execute(f"PRAGMA table_info({f.table})")}
    return f"{'v' if f.table == 'videos' else 'd'}.{col}" if col in have else "NULL"


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
    figs = wanted()
    exprs = [_expr(conn, f) for f in figs]
    rtts = _probe_rtts(conn, after_id)
    sql = f"""
        SELECT v.id, v.started_at, v.service, v.status,
               coalesce(d.address, (SELECT h.address FROM hops h WHERE h.video_row_id = v.id AND h.address IS NOT NULL
                                    ORDER BY h.hop_index DESC LIMIT 1)),
               coalesce(d.host, (SELECT h.host FROM hops h WHERE h.video_row_id = v.id AND h.address IS NOT NULL
                                 ORDER BY h.hop_index DESC LIMIT 1)),
               v.error_stage, v.error_kind, {", ".join(exprs)}
        FROM videos v LEFT JOIN downloads d
          ON d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)
        WHERE v.id > ? ORDER BY v.id"""
    rtt_missing = exprs[[f.key for f in figs].index(RTT)] == "NULL"  # schema 2 and 3 kept the samples alone
    has_window = exprs[[f.key for f in figs].index(WINDOW)] != "NULL"  # a NULL window_s means: not recorded
    cur = conn.cursor()
    cur.row_factory = None
    for r in cur.execute(sql, (after_id,)):
        t = clock.epoch(r[1])
        if t is None:
            yield r[0], None
            continue
        values = {f.key: v for f, v in zip(figs, r[8:], strict=True)}
        answered, sent, lost = rtts.get((r[0], r[4]), ([], 0, 0))
        if rtt_missing:  # the figure's own definition over the stored samples
            values[RTT], values[RTT_MAX] = min(answered, default=None), max(answered, default=None)
        played = (values.get(BYTES) or 0) > 0
        ok = r[3] == "ok"
        error = None if ok else f"{r[6] or 'unknown'}/{r[7] or r[3] or 'unknown'}"
        started = (None if played and has_window and values.get(WINDOW) is None
                   else played and values.get(START) is not None)
        yield r[0], Obs(t, str(r[2] or "Unknown"), str(r[4] or ""), r[5], ok, started, values, sent, lost, error,
                        r[0])


def _legacy(conn: sqlite3.Connection, table: str, clock: Clock) -> Iterator[Obs]:
    figs = wanted()
    for r in conn.execute(f'SELECT rowid AS _rowid, * FROM "{table}" ORDER BY ID, rowid'):
        row = dict(r)
        t = clock.epoch(row.get("ID"))
        if t is None:
            continue
        values = {f.key: read_2015(f, row) for f in figs}
        played = (values.get(BYTES) or 0) > 0
        if not played and row.get("RedirectUrl"):
            continue  # a hop: the cache redirected the video, measured on the next row
        yield Obs(t, str(row.get("Service") or "Unknown"), str(row.get("IP") or ""), row.get("CacheUrl"), played,
                  played, values, error=None if played else "download/no_download", ident=int(row["_rowid"]))


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


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_label(key: str) -> str:
    """A service label or an address made safe as a file name part and a graph source (``:`` of IPv6 becomes
    ``-``): ``service-<label>``, ``server-<label>`` name both the RRD files and the verdict's rows."""
    return _SAFE.sub("-", key).strip("-.") or "unknown"


def scope_of(o: Obs) -> tuple[str, str]:
    """The verdict rows an observation counts in: its service and its cache server."""
    return o.service, o.server


def as_dict(o: Obs) -> dict[str, Any]:
    """An observation as JSON-ready fields."""
    return {name: getattr(o, name) for name in Obs.__slots__}
