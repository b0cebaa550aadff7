"""Many run databases as one series of videos, and their verdict over a span and day by day (pages and collector)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytomo.errors import StorageError
from pytomo.readers import observations as observe
from pytomo.readers import pages as data
from pytomo.readers.observations import Obs
from pytomo.readers.verdict import Row, Window, declared, figures_of, spread_of, verdict, window, within
from pytomo.zones import Clock

DAY_S = 86400
UTC = Clock("UTC")


@dataclass(frozen=True)
class Combined:
    """The videos of every readable run in time order, the runs used, and those left out with the reason."""

    obs: list[Obs]
    runs: int
    left_out: list[tuple[str, str]]


def run_videos(conn: sqlite3.Connection, tz: str | None) -> tuple[Clock, list[Obs]]:
    """The clock and the videos of one open run database."""
    conn.row_factory = sqlite3.Row
    layout = data.layout_of(conn)
    clock = data.clock_for(data.run_info(conn, layout), layout, tz)
    return clock, observe.load(conn, layout, clock).obs if clock.known else []


def reader(open_db: Callable[[Path], sqlite3.Connection], tz: str | None) -> Callable[[Path], tuple[Clock, list[Obs]]]:
    """Reads a run's clock and videos through ``open_db``, closing the connection after."""

    def read(path: Path) -> tuple[Clock, list[Obs]]:
        conn = open_db(path)
        try:
            return run_videos(conn, tz)
        finally:
            conn.close()

    return read


def combine(paths: Iterable[Path], read: Callable[[Path], tuple[Clock, list[Obs]]]) -> Combined:
    """Every run's videos together; 2015 local times of an unknown zone and unreadable files are left out, named."""
    every: list[Obs] = []
    left_out, runs = [], 0
    for path in paths:
        try:
            clock, videos = read(path)
        except (StorageError, sqlite3.Error):
            left_out.append((path.name, "cannot be read"))
            continue
        if not clock.known:
            left_out.append((path.name, "2015 local times of an unknown zone: give their zone with --tz"))
            continue
        every += videos
        runs += 1
    every.sort(key=lambda o: o.t_s)
    return Combined(every, runs, left_out)


def days(start_s: float, end_s: float) -> list[tuple[float, float]]:
    """The UTC days from the one holding ``start_s`` to the one holding ``end_s``."""
    first = math.floor(start_s / DAY_S) * DAY_S
    return [(float(d), float(d + DAY_S)) for d in range(int(first), int(end_s) + 1, DAY_S)]


def daily(obs: list[Obs], win: Window) -> list[tuple[float, dict[str, Row]]]:
    """The verdict of each UTC day of the window, by row key."""
    out = []
    for a, b in days(win.start_s, win.end_s):
        day = list(within(obs, max(a, win.start_s), min(b, win.end_s), closed=b > win.end_s))
        day_win = window(day, "all")
        out.append((a, {r.key: r for r in verdict(day, day_win)} if day_win else {}))
    return out


def _row_doc(r: Row) -> dict[str, Any]:
    return {"kind": r.kind, "key": r.key, "name": r.name, "ident": r.ident, "host": r.host, "level": r.level,
            "sentence": r.sentence, "figures": r.values, "levels": r.levels, "counts": r.counts}


def history_doc(c: Combined, span: str) -> dict[str, Any]:
    """The history as JSON-ready data: span, summary, verdict rows, and each day's rows."""
    win = window(c.obs, span)
    doc: dict[str, Any] = {"runs": c.runs, "left_out": [{"name": n, "why": w} for n, w in c.left_out],
                           "span": {"name": span, "zone": "UTC"}, "figures": {f.key: f.label for f in declared()}}
    if win is None:
        return {**doc, "rows": [], "days": []}
    chosen = within(c.obs, win.start_s, win.end_s)
    doc["span"].update(start=UTC.show(win.start_s), end=UTC.show(win.end_s), start_s=win.start_s, end_s=win.end_s)
    doc["summary"] = {"figures": figures_of(chosen), "counts": spread_of(chosen)}
    doc["rows"] = [_row_doc(r) for r in verdict(c.obs, win)]
    doc["days"] = [{"day": UTC.show(a)[:10], "rows": [_row_doc(r) for r in rows.values()]}
                   for a, rows in daily(c.obs, win)]
    return doc
