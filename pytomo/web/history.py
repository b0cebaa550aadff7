"""History across runs: every run database of the folder as one series, per service and cache server, day by day."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import web

from pytomo.web import overview, timecharts
from pytomo.web.graphs import SPANS_S
from pytomo.web.observe import Obs
from pytomo.web.verdict import FIGURES, Row, shown, verdict, window, within
from pytomo.web.views import Db, Page, _html, base_page, chosen_entry, chosen_span, link, query
from pytomo.zones import Clock

DEFAULT_SPAN = "month"
DAY_S = 86400
UTC = Clock("UTC")


@dataclass(frozen=True)
class Combined:
    """The videos of every readable run in UTC, the runs used, and those left out with the reason."""

    obs: list[Obs]
    runs: int
    left_out: list[tuple[str, str]]


def _combine(entries: list[Any]) -> Combined:
    every: list[Obs] = []
    left_out, runs = [], 0
    for e in entries:
        try:
            with Db(e) as db:
                clock = overview.clock_of(db)
                if not clock.known:
                    left_out.append((e.name, "2015 local times of an unknown zone: start the server with --tz"))
                    continue
                every += overview.observations(db, clock)
                runs += 1
        except web.HTTPError:
            left_out.append((e.name, "cannot be read"))
    every.sort(key=lambda o: o.t_s)
    return Combined(every, runs, left_out)


def combined() -> tuple[tuple, Combined]:
    """Every run's videos and their cache key, cached until a database is added, removed or changed."""
    entries = web.ctx.site.catalog.entries()
    key = ("history", web.ctx.site.tz, tuple((e.id, e.mtime_s, e.size_bytes) for e in entries))
    return key, web.ctx.site.remember(key, lambda: _combine(entries))


def history_view(span: str) -> tuple[tuple, Combined, overview.View]:
    """The combined videos' view over ``span``."""
    key, c = combined()
    return key, c, web.ctx.site.remember((key, "view", span), lambda: overview.build(c.obs, UTC, span, None))


def days(obs: list[Obs], start_s: float, end_s: float) -> list[tuple[float, float]]:
    """The UTC days from the one holding ``start_s`` to the one holding ``end_s``."""
    first = math.floor(start_s / DAY_S) * DAY_S
    return [(float(d), float(d + DAY_S)) for d in range(int(first), int(end_s) + 1, DAY_S)]


def grid(obs: list[Obs], rows: list[Row], spans: list[tuple[float, float]]) -> dict[str, list[Row | None]]:
    """Each row's verdict day by day (None: no video that day)."""
    out: dict[str, list[Row | None]] = {r.key: [] for r in rows}
    for a, b in spans:
        day = list(within(obs, a, b, closed=False))
        win = window(day, "all")
        found = {r.key: r for r in verdict(day, win)} if win else {}
        for r in rows:
            out[r.key].append(found.get(r.key))
    return out


class History:
    """``/history?span=``: the runs of the folder together, per service and cache server, with a day grid."""

    def GET(self) -> str:
        q = query("span", "db")
        span = chosen_span(q) if "span" in q else DEFAULT_SPAN
        entry = chosen_entry(q)  # only to keep the chosen run in the menu's links
        key, c, v = history_view(span)
        page = base_page(entry, "/history", "History across runs", clock=UTC, spans=[
            Page(name=s, href=link("/history", span=s, db=q.get("db")), active=s == span) for s in SPANS_S],
            view=v, runs=c.runs, left_out=c.left_out, columns=FIGURES, shown=shown, run=Page(service="every run"),
            summary=v.summary(), counts=Page(v.spread), summary_of=f"the videos of {c.runs} run(s)")
        if v.window is not None:
            spans = days(c.obs, v.window.start_s, v.window.end_s)
            cells = web.ctx.site.remember((key, "grid", span), lambda: grid(c.obs, v.rows, spans))
            labels = [UTC.show(a, seconds=False)[:10] for a, _b in spans]
            page.update(grid={k: list(zip(labels, row, strict=True)) for k, row in cells.items()},
                        charts=[Page(label=label, src=link(f"/history/{name}.svg", span=span))
                                for name, (label, _draw) in timecharts.CHARTS.items()])
        return _html(web.ctx.site.render.history(page))


class HistoryChart:
    """One chart of the history, as SVG."""

    def GET(self, name: str) -> str:
        q = query("span")
        span = chosen_span(q) if "span" in q else DEFAULT_SPAN
        key, _c, v = history_view(span)
        body = web.ctx.site.remember((key, "chart", span, name), lambda: overview.chart(v, name))
        web.header("Content-Type", "image/svg+xml")
        web.header("Cache-Control", "no-cache")
        return body
