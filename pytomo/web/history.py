"""History across runs: every run database of the folder as one series, per service and cache server, day by day."""

from __future__ import annotations

import web

from pytomo.errors import StorageError
from pytomo.readers.across import UTC, Combined, combine, daily
from pytomo.readers.observations import Obs
from pytomo.readers.verdict import Row, Window, declared, failure_text, shown
from pytomo.web import overview, timecharts
from pytomo.web.catalog import RunEntry
from pytomo.web.graphs import SPANS_S
from pytomo.web.operator_pages import LEVEL_WORDS
from pytomo.web.views import Db, Page, base_page, chosen_entry, chosen_span, html_answer, link, query
from pytomo.zones import Clock

DEFAULT_SPAN = "month"


def _videos(entry: RunEntry) -> tuple[Clock, list[Obs]]:
    """A run's clock and videos as its own pages read them (the same cache: read once, then only new videos)."""
    try:
        with Db(entry) as db:
            clock = overview.clock_of(db)
            return clock, overview.observations(db, clock) if clock.known else []
    except web.HTTPError:  # Db's 404 for a file that cannot be read
        raise StorageError(f"cannot read {entry.path}") from None


def combined() -> tuple[tuple, Combined]:
    """Every run's videos and their cache key, cached until a database is added, removed or changed."""
    entries = {e.path: e for e in web.ctx.site.catalog.entries()}
    key = ("history", web.ctx.site.tz, tuple((e.id, e.mtime_s, e.size_bytes) for e in entries.values()))
    return key, web.ctx.site.remember(key, lambda: combine(list(entries), lambda p: _videos(entries[p])))


def history_view(span: str) -> tuple[tuple, Combined, overview.View]:
    """The combined videos' view over ``span``."""
    key, c = combined()
    return key, c, web.ctx.site.remember((key, "view", span), lambda: overview.build(c.obs, UTC, span, None))


def grid(obs: list, v: overview.View, win: Window) -> dict[str, list[tuple[str, Row | None]]]:
    """Per verdict row, each UTC day's label and row (None: no video that day)."""
    cells = daily(obs, win)
    labels = [UTC.show(a)[:10] for a, _found in cells]
    return {r.key: [(label, found.get(r.key)) for label, (_a, found) in zip(labels, cells, strict=True)]
            for r in v.rows}


class History:
    """``/history?span=``: the runs of the folder together, per service and cache server, with a day grid."""

    def GET(self) -> str:
        q = query("span", "db")
        span = chosen_span(q) if "span" in q else DEFAULT_SPAN
        entry = chosen_entry(q)  # only to keep the chosen run in the menu's links
        key, c, v = history_view(span)
        page = base_page(entry, "/history", "History across runs", clock=UTC, spans=[
            Page(name=s, href=link("/history", span=s, db=q.get("db")), active=s == span) for s in SPANS_S],
            view=v, runs=c.runs, left_out=c.left_out, columns=declared(), shown=shown, failure_text=failure_text,
            words=LEVEL_WORDS,
            run=Page(service="every run"),
            summary=v.summary(), counts=Page(v.spread), summary_of=f"the videos of {c.runs} run(s)")
        if v.window is not None:
            win = v.window
            page.update(grid=web.ctx.site.remember((key, "grid", span), lambda: grid(c.obs, v, win)),
                        charts=[Page(label=label, src=link(f"/history/{name}.svg", span=span))
                                for name, (label, _draw) in timecharts.CHARTS.items()])
        return html_answer(web.ctx.site.render.history(page))


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
