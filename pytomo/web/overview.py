"""The operator's view of one run: its videos read once per database version, the verdict, the summary and charts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import web

from pytomo.readers import observations as observe
from pytomo.readers import pages as data
from pytomo.readers.observations import Obs
from pytomo.readers.verdict import (
    Bin,
    Row,
    Window,
    bins,
    declared,
    figures_of,
    selected,
    shown,
    spread_of,
    verdict,
    window,
    within,
)
from pytomo.web import timecharts
from pytomo.zones import Clock


@dataclass(frozen=True)
class View:
    """What one page shows of a run over a span: its clock, the window, the verdict and the chosen videos' figures."""

    clock: Clock
    window: Window | None
    rows: list[Row]
    figures: dict[str, float | None]
    spread: dict[str, Any]
    bins: list[Bin]

    def summary(self) -> list[tuple[str, str]]:
        """The summary's lines: each declared figure with its value as shown."""
        return [(f.label, shown(self.figures[f.key], f.unit)) for f in declared()]

    @cached_property
    def drawn(self) -> dict[str, str]:
        """Each chart of the span as an SVG document, drawn once per view (the view is cached per database
        version): served alone and drawn inline in the pages."""
        return {name: draw(self.bins, self.clock) for name, (_label, draw) in timecharts.CHARTS.items()}

    def inline(self, label: str) -> str:
        """The chart labelled ``label`` (as the pages' list of charts names it), to be written into the page as it
        is: every text in it is escaped (:mod:`pytomo.web.timecharts`)."""
        return self.drawn[timecharts.by_label(label)]


class ObservationCache:
    """The videos read from each run database, kept across its versions: a run being written is read again only
    from its last video on (its older videos never change), a replaced file from the start."""

    def __init__(self, runs: int = 64) -> None:
        self.lock = threading.Lock()
        self.runs = runs  # databases kept (least recently used dropped first)
        self.loaded: OrderedDict[tuple[str, str], tuple[tuple, observe.Loaded]] = OrderedDict()

    def get(self, db: Any, clock: Clock) -> list[Obs]:
        """Every video of the database, in time order."""
        key = (str(db.entry.path), clock.label)
        info = db.memo("run", lambda: data.run_info(db.conn, db.layout))
        ident = (db.layout, info.get("started_at"), info.get("service"))
        with self.lock:
            kept = self.loaded.get(key)
        before = kept[1] if kept and kept[0] == ident and self._same_videos(db, kept[1]) else None
        fresh = observe.load(db.conn, db.layout, clock, after=before)
        with self.lock:
            self.loaded[key] = (ident, fresh)
            self.loaded.move_to_end(key)
            while len(self.loaded) > self.runs:
                self.loaded.popitem(last=False)
        return fresh.obs

    @staticmethod
    def _same_videos(db: Any, loaded: observe.Loaded) -> bool:
        """The file still holds the video read last (it was not replaced by a shorter one)."""
        if not loaded.last_id:
            return db.layout.kind == "ours"
        return data.has_video(db.conn, loaded.last_id)


def observations(db: Any, clock: Clock) -> list[Obs]:
    """Every video of the database, read once per database version and clock (and only the new ones of a run being
    written)."""
    return db.memo(("observations", clock.label), lambda: web.ctx.site.observations.get(db, clock))


def view(db: Any, clock: Clock, span: str, src: str | None) -> View:
    """The view of ``span`` (ending at the newest video) for the videos of ``src`` (all when None), cached."""

    return db.memo(("view", clock.label, span, src), lambda: build(observations(db, clock), clock, span, src))


def build(every: list[Obs], clock: Clock, span: str, src: str | None) -> View:
    """The view of ``span`` of these time-ordered videos (ending at the newest) for those of ``src``."""
    win = window(every, span)
    if win is None:
        return View(clock, None, [], figures_of([]), spread_of([]), [])
    chosen = selected(every, src)
    in_span = within(chosen, win.start_s, win.end_s)
    return View(clock, win, verdict(every, win), figures_of(in_span), spread_of(in_span), bins(chosen, win))


def clock_of(db: Any) -> Clock:
    """The clock of a database (the run's zone, --tz for 2015 tables, else UTC)."""
    info = db.memo("run", lambda: data.run_info(db.conn, db.layout))
    return data.clock_for(info, db.layout, web.ctx.site.tz)


def chart(v: View, name: str) -> str:
    """One of the span's charts as an SVG document."""
    return v.drawn[name]
