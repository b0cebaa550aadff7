"""The overview page (verdict first, then charts of the span) and its SVG charts."""

from __future__ import annotations

import web

from pytomo.figures import Aggregate, Threshold
from pytomo.readers.verdict import FAILED, Row, declared, failure_text, shown
from pytomo.web import overview, timecharts
from pytomo.web.graphs import SPANS_S
from pytomo.web.views import (
    SRC_PATTERN,
    Db,
    Page,
    bad_parameter,
    base_page,
    chosen_entry,
    chosen_span,
    html_answer,
    link,
    not_found,
    query,
    summary_page,
)

DEFAULT_SPAN = "day"
LEVEL_WORDS = {"good": "good", "warn": "warning", "bad": "bad", "none": "no data"}
CAPTIONS = {
    "plays": "Videos played in each interval, stacked: solid blue without a stall, hatched orange stalled, light grey "
             "did not start within the download window. Every video counts once, in the interval where it started.",
    "start": "Request to playback start: the median of the interval's videos (line) and their 10th to 90th "
             "percentiles (band). The dashed lines are the verdict's thresholds: warning above the first, bad above "
             "the second (those beyond the axis are named at its top).",
    "ratio": "Measured throughput over the media's encoding rate, per video: median and 10th to 90th percentiles on a "
             "log axis. The dashed lines are the verdict's thresholds: warning below the upper, bad below the lower "
             "(1: the media arrives slower than it plays).",
    "rtt": "Each video's RTT to its cache server (median of its probes): the median of the interval (line) between "
           "the smallest and the largest probe (band), and the verdict's thresholds (dashed). The bar on top is the "
           "interval's probe loss, darker and taller the more was lost ("
           + "; ".join(words for _limit, _colour, words, _height in timecharts.LOSS_STEPS) + ").",
}


def _limit_text(f: Aggregate, t: Threshold) -> str:
    def v(x: float) -> str:
        return shown(x, f.unit)

    if t.higher_is_better:
        return f"≥ {v(t.good)} / ≥ {v(t.bad)} / below"
    return f"≤ {v(t.good)} / ≤ {v(t.bad)} / above"


def alert_outcome(r: Row) -> str:
    """The videos an alert lists: those that failed when failures make its level, else those that stalled or did
    not start, else all of them."""
    if r.levels.get("failed_share") == r.level and r.counts["errors"]:
        return "failed"
    if r.counts["stalled"]:
        return "stalled"
    return "not_started" if r.counts["not_started"] else "all"


def _src(q: dict[str, str], keys: set[str]) -> str | None:
    src = q.get("src")
    if src is None:
        return None
    if not SRC_PATTERN.fullmatch(src):
        raise bad_parameter("src", src, "it must name a service (service-…) or a cache server (server-…) of the run.")
    if src not in keys:
        raise not_found(f"This run has no service or cache server {src!r} in this span.")
    return src


class Overview:
    """The main page: the verdict per service and cache server over the span, then the span's charts."""

    def GET(self) -> str:
        q = query("db", "span", "src")
        span = chosen_span(q) if "span" in q else DEFAULT_SPAN
        entry = chosen_entry(q)
        if entry is None:
            return html_answer(web.ctx.site.render.empty(base_page(None, "/", "Overview")))
        with Db(entry) as db:
            clock = overview.clock_of(db)
            whole = overview.view(db, clock, span, None)
            src = _src(q, {r.key for r in whole.rows})
        page, db = summary_page(entry, "/", "Overview", span, src)
        db.release()
        rows = [Page(kind=r.kind, key=r.key, name=r.name, figures=r.values, levels=r.levels, level=r.level,
                     sentence=r.sentence, href=link("/", db=entry.id, span=span, src=r.key), counts=r.counts,
                     failures=failure_text(r.failures),
                     videos=link("/videos", db=entry.id, src=r.key, span=span, outcome=alert_outcome(r)))
                for r in whole.rows]
        page.update(
            spans=[Page(name=s, href=link("/", db=entry.id, span=s, src=src), active=s == span) for s in SPANS_S],
            rows=rows, alerts=[r for r in rows if r['level'] in ("warn", "bad")], words=LEVEL_WORDS, shown=shown,
            columns=declared(),
            limits=[Page(label=f.label, text=_limit_text(f, f.threshold)) for f in declared() if f.threshold]
            + [Page(label="videos that failed", text=f"≤ {shown(FAILED.good, 'share')} / ≤ "
                    f"{shown(FAILED.bad, 'share')} / above")],
            sources=[Page(name="all videos", href=link("/", db=entry.id, span=span), active=src is None)]
            + [Page(name=r.name, href=link("/", db=entry.id, span=span, src=r.key), active=r.key == src)
               for r in whole.rows],
            charts=[Page(label=label, caption=CAPTIONS[name],
                         src=link(f"/overview/{name}.svg", db=entry.id, span=span, src=src))
                    for name, (label, _draw) in timecharts.CHARTS.items()])
        return html_answer(web.ctx.site.render.overview(page))


class OverviewChart:
    """One chart of the overview, as SVG: the same intervals and figures as the page's summary."""

    def GET(self, name: str) -> str:
        q = query("db", "span", "src")
        span = chosen_span(q) if "span" in q else DEFAULT_SPAN
        entry = chosen_entry(q)
        if entry is None:
            raise not_found("There is no database.")
        with Db(entry) as db:
            clock = overview.clock_of(db)
            src = _src(q, {r.key for r in overview.view(db, clock, span, None).rows})
            v = overview.view(db, clock, span, src)
            body = db.memo(("chart", clock.label, span, src, name), lambda: overview.chart(v, name))
        web.header("Content-Type", "image/svg+xml")
        web.header("Cache-Control", "no-cache")
        return body
