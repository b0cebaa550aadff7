"""The pages of one run's rows: the videos (sortable), one video, its charts, the cache servers, the archive."""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import web

from pytomo.errors import StorageError
from pytomo.readers import pages as data
from pytomo.readers.observations import Obs, file_label
from pytomo.readers.verdict import LEVELS, Row, selected, window, within
from pytomo.web import overview, svg
from pytomo.web.catalog import RunEntry
from pytomo.web.operator_pages import LEVEL_WORDS
from pytomo.web.overview import View
from pytomo.web.views import (
    SRC_PATTERN,
    Db,
    Page,
    ago,
    bad_parameter,
    base_page,
    chosen_entry,
    chosen_page,
    chosen_span,
    html_answer,
    link,
    not_found,
    query,
    sources,
    summary_page,
)
from pytomo.zones import Clock

VIDEO_COLUMNS = (("started", "Started"), ("title", "Title"), ("status", "Status"), ("server", "Cache server"),
                 ("throughput", "Throughput"), ("start", "Start s"), ("stalls", "Stalls"),
                 ("stall_s", "Stall s"))
DEFAULT_SORT = "started"
ORDERS = ("asc", "desc")


def natural_order(sort: str) -> str:
    """The order a column is first sorted in: newest first for the start time, ascending for the rest."""
    return "desc" if sort == "started" else "asc"


def chosen_sort(q: dict[str, str]) -> tuple[str, str]:
    """``sort`` (one of the videos list's columns, default started) and ``order`` (asc or desc)."""
    sort = q.get("sort", DEFAULT_SORT)
    if sort not in data.SORT_KEYS:
        raise bad_parameter("sort", sort, f"it must be one of {', '.join(data.SORT_KEYS)}.")
    order = q.get("order", natural_order(sort))
    if order not in ORDERS:
        raise bad_parameter("order", order, "it must be asc or desc.")
    return sort, order


def video_columns(layout: data.Layout) -> dict[str, str]:
    """The videos list's columns by sort key, the throughput named as the layout has it."""
    return {k: data.THROUGHPUT_LABEL[layout.kind] if k == "throughput" else label for k, label in VIDEO_COLUMNS}


def sort_headers(db: str, sort: str, order: str, layout: data.Layout,
                 kept: dict[str, str] | None = None) -> list[Page]:
    """The column headers of the videos list: each a link sorting by it (the active one flips its order)."""
    out = []
    for key, label in video_columns(layout).items():
        active = key == sort
        then = ("asc" if order == "desc" else "desc") if active else natural_order(key)
        out.append(Page(key=key, label=label, active=active, mark=("▼" if order == "desc" else "▲") if active else "",
                        href=link("/videos", db=db, sort=key, order=then, **(kept or {}))))
    return out


OUTCOMES = {  # the videos list's ``outcome``: which videos of the span and source it lists
    "all": "every video", "failed": "videos that failed", "stalled": "videos that stalled",
    "not_started": "videos whose playback did not start", "smooth": "videos played without a stall",
}
FILTERS = ("src", "span", "outcome")


@dataclass(frozen=True)
class Filter:
    """The videos of a verdict's line: one source (service-…, server-…, or all), a span and an outcome."""

    src: str | None
    span: str
    outcome: str

    @property
    def params(self) -> dict[str, str]:
        """The query parameters that name it."""
        out = {"span": self.span, "outcome": self.outcome}
        return {"src": self.src, **out} if self.src else out

    def keeps(self, o: Obs) -> bool:
        """True when the video has the outcome."""
        return {"all": True, "failed": not o.ok, "stalled": o.stalled, "not_started": o.not_started,
                "smooth": o.smooth}[self.outcome]


def chosen_filter(q: dict[str, str]) -> Filter | None:
    """``src``, ``span`` and ``outcome`` of the videos list (None: no filter, every video of the run)."""
    if not any(k in q for k in FILTERS):
        return None
    src = q.get("src")
    if src is not None and not SRC_PATTERN.fullmatch(src):
        raise bad_parameter("src", src, "it must name a service (service-…) or a cache server (server-…).")
    outcome = q.get("outcome", "all")
    if outcome not in OUTCOMES:
        raise bad_parameter("outcome", outcome, f"it must be one of {', '.join(OUTCOMES)}.")
    return Filter(src, chosen_span(q) if "span" in q else "all", outcome)


def filtered_ids(db: Db, f: Filter) -> set[int]:
    """The videos of the filter, read from the observations the verdict counts (so a line's link lists its
    videos)."""
    every = overview.observations(db, overview.clock_of(db))
    win = window(every, f.span)
    chosen = within(selected(every, f.src), win.start_s, win.end_s) if win else []
    return {o.ident for o in chosen if f.keeps(o)}


def videos_page(db: Db, sort: str, order: str, number: int,
                only: Filter | None = None) -> tuple[list[dict[str, Any]], int, int]:
    """One page of the videos in the list's order, the number of videos and of pages; 404 past the last page (the
    order of the ids is computed once per database version)."""
    ordered = db.memo(f"order-{sort}", lambda: data.video_order(db.conn, db.layout, sort))
    if only is not None:
        ordered = ordered.only(filtered_ids(db, only))
    pages = max(1, math.ceil(len(ordered) / data.PER_PAGE))
    if number > pages:
        raise not_found("There is no such page of videos.")
    return data.videos_by_id(db.conn, db.layout, ordered.page(number, order == "desc")), len(ordered), pages


class Videos:
    """The played videos, a page at a time, sorted by any column (newest first by default), missing values last."""

    def GET(self) -> str:
        q = query("db", "page", "sort", "order", *FILTERS)
        number = chosen_page(q)
        sort, order = chosen_sort(q)
        only = chosen_filter(q)
        entry = chosen_entry(q)
        if entry is None:
            return html_answer(web.ctx.site.render.empty(base_page(None, "/videos", "Videos")))
        page, db = summary_page(entry, "/videos", "Videos", only.span if only else "all", only.src if only else None)
        kept = only.params if only else {}
        with db:
            rows, total, pages = videos_page(db, sort, order, number, only)

        def at_page(n: int) -> str:
            return link("/videos", db=entry.id, sort=sort, order=order, page=n, **kept)

        page.update(videos=[Page(r, href=link(f"/video/{r['id']}", db=entry.id)) for r in rows], total=total,
                    throughput_key=data.THROUGHPUT_FIGURE[db.layout.kind],
                    number=number, pages=pages, sort=sort, order=order,
                    headers=sort_headers(entry.id, sort, order, db.layout, kept),
                    filtered=None if only is None else Page(
                        what=OUTCOMES[only.outcome], src=only.src or "every service and cache server",
                        span=only.span, every=link("/videos", db=entry.id)),
                    sorted_by=video_columns(db.layout)[sort].lower(),
                    previous=at_page(number - 1) if number > 1 else None,
                    next=at_page(number + 1) if number < pages else None)
        return html_answer(web.ctx.site.render.videos(page))


def segmented_parts(conn: sqlite3.Connection, download: dict[str, Any] | None) -> dict[str, Any]:
    """The segments, renditions and switches of a video's main download when it is an HLS or DASH session."""
    if not download or download.get("delivery") not in ("hls", "dash"):
        return {"segmented": None}
    rows, total = data.segments(conn, download["id"])
    return {"segmented": Page(delivery=download["delivery"], live=download.get("live") == 1, total=total,
                              shown=len(rows), segments=[Page(r) for r in rows],
                              renditions=[Page(r) for r in data.renditions(conn, download["id"])],
                              switches=[Page(r) for r in data.rendition_switches(conn, download["id"])])}


def live_parts(conn: sqlite3.Connection, download: dict[str, Any] | None) -> dict[str, Any]:
    """The latency samples of a video's main download when it followed a live stream, as a table and a chart."""
    if not download or download.get("live") != 1:
        return {"live": None}
    samples, total = data.live_latency(conn, download["id"])
    chart = svg.chart("Latency to the live edge", "seconds since the session started", "s behind the edge",
                      [("latency", [(s["t_s"], s["latency_s"]) for s in samples])]) if samples else None
    return {"live": Page(samples=[Page(s) for s in samples], total=total, chart=chart)}


def stall_parts(conn: sqlite3.Connection, download: dict[str, Any] | None) -> dict[str, Any]:
    """The stalls of the playout of a video's main download (the ``stalls`` table), and whether playback started
    (``stall_count`` NULL: it never did, so there is no stall to list)."""
    if not download:
        return {"stalls": None}
    return {"stalls": Page(rows=[Page(r) for r in data.stalls(conn, download["id"])],
                           started=download.get("stall_count") is not None,
                           problem=download.get("playout_problem"))}


def video_parts(conn: sqlite3.Connection, found: dict[str, Any]) -> dict[str, Any]:
    """What the page of one video of our layout shows, beside the template's own tables."""
    main = found["downloads"][0] if found["downloads"] else None
    tcp: dict[str, Any] = (data.tcp_info_summary(conn, main["id"]) if main else
                           {"samples": 0, "rows": [], "apart": []})
    return {"main_download": Page(main) if main else None,
            "tcp": Page(tcp, rows=[Page(r) for r in tcp["rows"]], apart=[Page(r) for r in tcp["apart"]]),
            **stall_parts(conn, main), **segmented_parts(conn, main), **live_parts(conn, main)}


def legacy_page(row: dict[str, Any], clock: Clock) -> Page:
    """A 2015 row as its page shows it (:func:`pytomo.readers.pages.legacy_row`)."""
    shown = data.legacy_row(row, clock)
    return Page(shown, columns=[Page(c) for c in shown["columns"]], derived=[Page(d) for d in shown["derived"]])


class Video:
    """One video: its hops, DNS answers, RTT, downloads, segments (HLS/DASH), TCP_INFO, and its series as graphs."""

    def GET(self, ident: str) -> str:
        q = query("db")
        entry = chosen_entry(q)
        if entry is None:
            raise not_found("There is no database.")
        page, db = summary_page(entry, "/videos", "Video")
        with db:
            found = data.video(db.conn, db.layout, int(ident))
            if found is None:
                raise not_found("This run has no such video.")
            if "legacy" in found:
                page.update(legacy=legacy_page(found["legacy"], page["clock"]), title="Video (2015 row)")
                return html_answer(web.ctx.site.render.video(page))
            page.update(video_parts(db.conn, found))
        v = found["video"]
        page.update(title=f"Video {v.get('video_id') or v['id']}", video=Page(v),
                    hops=[Page(h) for h in found["hops"]], dns=[Page(a) for a in found["dns"]],
                    rtt=[Page(r) for r in found["rtt"]], downloads=[Page(d) for d in found["downloads"]],
                    charts=[Page(kind=k, label=label, src=link(f"/video/{ident}/{k}.svg", db=entry.id))
                            for k, label in (("throughput", "Throughput"), ("playout", "Playout"),
                                             ("rtt", "RTT samples"))])
        return html_answer(web.ctx.site.render.video(page))


class VideoGraph:
    """The SVG charts of one video: throughput bins, buffer level with stalls, RTT samples."""

    def GET(self, ident: str, kind: str) -> str:
        q = query("db")
        entry = chosen_entry(q)
        if entry is None:
            raise not_found("There is no database.")
        with Db(entry) as db:
            if db.layout.kind != "ours" or not data.has_video(db.conn, int(ident)):
                raise not_found("This run has no such video.")
            vid = int(ident)
            did = data.main_download_id(db.conn, vid)
            if kind == "throughput":
                bin_s, rate = data.bin_and_rate(db.conn, did) if did else (None, None)
                body = svg.throughput(data.throughput(db.conn, did) if did else [], rate, bin_s)
            elif kind == "playout":
                level, stalls = data.playout(db.conn, did) if did else ([], [])
                body = svg.chart("Buffer level (grey: stalls)", "seconds since the request", "media seconds",
                                 [("buffer", level)], bands=stalls)
            else:
                samples = data.rtt_samples(db.conn, vid)
                groups: dict[str, list[tuple[float, float]]] = {}
                for s in samples:
                    groups.setdefault(f"{s['address']} {s['method']}", []).append((s["seq"] + 1, s["rtt_ms"]))
                body = svg.chart("RTT samples", "probe", "ms", list(groups.items()), dots=True,
                                 x_max=max([x for pts in groups.values() for x, _y in pts], default=1) + 1)
        web.header("Content-Type", "image/svg+xml")
        web.header("Cache-Control", "no-cache")
        return body


class Servers:
    """The cache servers of a run, slowest first, each with a link to its graphs."""

    def GET(self) -> str:
        q = query("db")
        entry = chosen_entry(q)
        if entry is None:
            return html_answer(web.ctx.site.render.empty(base_page(None, "/servers", "Cache servers")))
        page, db = summary_page(entry, "/servers", "Cache servers")
        with db:
            rows = db.memo("servers", lambda: data.servers(db.conn, db.layout))
        available = set(sources(entry))
        out = []
        for r in rows:
            src = f"server-{file_label(str(r['address']))}"
            out.append(Page(r, href=link("/", db=entry.id, src=src) if src in available else None))
        page.update(servers=out, throughput_label=f"{data.THROUGHPUT_LABEL[db.layout.kind]}, mean",
                    throughput_key=data.THROUGHPUT_FIGURE[db.layout.kind])
        return html_answer(web.ctx.site.render.servers(page))


def size_text(size_bytes: int) -> str:
    """A file size a reader can compare: ``512 B``, ``40 kB`` under 1 MB, ``3.4 MB``, ``1,234 MB``."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    if size_bytes < 999_500:
        return f"{size_bytes / 1e3:.0f} kB"
    return f"{size_bytes / 1e6:,.1f} MB" if size_bytes < 99_950_000 else f"{size_bytes / 1e6:,.0f} MB"


def vantage_text(facts: dict[str, Any]) -> str:
    """Where a run measured from: its label, network (AS number and name) and country, as far as known."""
    asn = facts.get("vantage_as_number")
    parts = [facts.get("host_label"), f"AS{asn}" if asn is not None else None, facts.get("vantage_as_name"),
             facts.get("vantage_country")]
    return " · ".join(str(p) for p in parts if p not in (None, "")) or "–"


def worst(rows: list[Row]) -> tuple[str, int]:
    """The worst level of a verdict's lines and how many lines have it (``none``: no line has a value)."""
    level = max((r.level for r in rows), key=LEVELS.index, default="none")
    return level, sum(r.level == level for r in rows)


def run_view(e: RunEntry) -> tuple[Clock, View] | str:
    """The overview's view of a run over its whole span (span ``all``, cached per version of the file as the
    overview's own), or why it cannot be computed (one bad file does not make the archive a 404)."""
    db = Db.readable(e)
    if db is None:
        return "This database cannot be read."
    try:
        with db:
            clock = overview.clock_of(db)
            return clock, overview.view(db, clock, "all", None)
    except (StorageError, sqlite3.Error) as exc:
        return f"Its videos cannot be read ({exc.__class__.__name__})."


def archive_row(e: RunEntry, chosen: RunEntry | None, now_s: float) -> Page:
    """One database of the archive: its run's facts (read once per version of the file), its span, videos played and
    verdict as the overview counts them over the whole run (span all), or why there are none."""
    facts = web.ctx.site.catalog.facts(e)
    row = Page(id=e.id, name=e.name, href=link("/", db=e.id), chosen=chosen is not None and chosen.id == e.id,
               size=size_text(e.size_bytes + e.wal_bytes), live=e.live, state=e.state,
               changed=datetime.fromtimestamp(e.mtime_s, UTC).strftime("%Y-%m-%d %H:%M UTC"),
               problem=facts.get("problem"))
    if facts.get("problem"):
        return row
    ours = facts.get("layout") == "ours"
    row.update(service=facts.get("service"), vantage=vantage_text(facts), state=e.state if ours else "2015 layout")
    found = run_view(e)
    if isinstance(found, str):
        row.update(problem=found)
        return row
    clock, v = found
    level, lines = worst(v.rows)
    row.update(played=v.spread["played"], level=level, word=LEVEL_WORDS[level], lines=lines, of_lines=len(v.rows),
               verdict_href=link("/", db=e.id, span="all"))
    if v.window is not None:
        row.update(first=clock.show(v.window.start_s), last=clock.show(v.window.end_s),
                   age=ago(v.window.end_s, clock, now_s))
    return row


class Archive:
    """Every run database found, newest first, with its run's service, vantage point, span, videos and status."""

    def GET(self) -> str:
        q = query("db")
        entry = chosen_entry(q)
        now_s = time.time()
        runs = [archive_row(e, entry, now_s) for e in web.ctx.site.catalog.entries()]
        page = base_page(entry, "/archive", "Archive", runs=runs, folder=str(web.ctx.site.catalog.directory),
                         now=Clock("UTC").show(now_s, seconds=False),
                         times="Times: each run's first and newest video in that run's own clock, its zone named"
                               " beside each time (a 2015 database: --tz, or local, zone unknown); how long ago"
                               " from this server's clock; last change in UTC.")
        return html_answer(web.ctx.site.render.archive(page))
