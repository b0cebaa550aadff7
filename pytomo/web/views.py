"""The page handlers: check every parameter, fetch the data, choose a template; no SQL and no rrdtool here."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import web

from pytomo.errors import StorageError
from pytomo.rrd.metrics import BY_NAME, GROUPS
from pytomo.rrd.store import file_label
from pytomo.storage.readonly import open_readonly
from pytomo.web import data, overview, svg
from pytomo.web.catalog import ID_PATTERN, RunEntry
from pytomo.web.graphs import FORMATS, SPANS_S, OutdatedRrd
from pytomo.zones import Clock

SRC_PATTERN = re.compile(r"(service|server)-[A-Za-z0-9_.-]{1,80}")
PAGE_PATTERN = re.compile(r"[0-9]{1,7}")  # ASCII digits only: int() also reads "²" (500) and 5,000 digits (slow)
MAX_PAGE = 1_000_000
MAX_FIELDS = 20
SHOWN_CHARS = 40
REFRESH_S = 30
MENU = (("/", "Overview"), ("/graphs/main", "Main parameters"), ("/graphs/qoe", "QoE"), ("/graphs/qos", "QoS"),
        ("/graphs/characteristics", "Video characteristics"), ("/graphs/all", "All parameters"),
        ("/videos", "Played videos"), ("/servers", "Cache servers"), ("/history", "History across runs"),
        ("/archive", "Archive"))


# ---- formatting helpers, also given to the templates ----

def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or a dash."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"
    return str(value)


def kbps(bps: Any) -> float | None:
    """bit/s as kbit/s, None staying None."""
    return None if bps is None else bps / 1000


def pct(value: Any) -> str:
    """A share 0..1 as a percentage, or a dash."""
    return "–" if value is None else f"{100 * value:.1f} %"


def at(text: Any, clock: Clock | None) -> str:
    """A stored time shown in the database's clock, with its zone (``2013-05-01 18:24:00 CEST``)."""
    clock = clock or Clock()
    return clock.show(clock.epoch(text))


def safe_href(url: Any) -> str | None:
    """The URL when it is http(s), so that a platform cannot put ``javascript:`` into a link."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


# ---- errors ----

def error_page(code: int, title: str, message: str) -> web.HTTPError:
    """An HTTPError carrying our error page (never a traceback)."""
    status = {400: "400 Bad Request", 404: "404 Not Found", 500: "500 Internal Server Error"}[code]
    if str(web.ctx.get("path", "")).startswith("/api/"):  # the JSON API answers its errors in JSON
        body = json.dumps({"error": {"status": code, "title": title, "message": message}}, ensure_ascii=True)
        return web.HTTPError(status, {"Content-Type": "application/json; charset=utf-8"},
                             body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    try:
        body = str(web.ctx.site.render.error(Page(title=f"{code} {title}", message=message)))
    except Exception:  # the error page itself must not fail
        body = f"<!doctype html><title>{code}</title><p>{code} {title}</p>"
    return web.HTTPError(status, {"Content-Type": "text/html; charset=utf-8"}, body)


def bad_request(message: str) -> web.HTTPError:
    """400 with a sentence saying which parameter is wrong."""
    return error_page(400, "Bad request", message)


def shown(value: str) -> str:
    """A client's value as a message may quote it: control characters as escapes, cut after a few characters
    (the template escapes the rest)."""
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value[:SHOWN_CHARS])
    return f"\"{text}\"" + (f"… ({len(value):,} characters)" if len(value) > SHOWN_CHARS else "")


def bad_parameter(name: str, value: str, why: str) -> web.HTTPError:
    """400 naming the parameter, quoting its value and saying what it must be."""
    return bad_request(f"Parameter {name}={shown(value)}: {why}")


def not_found(message: str = "There is no such page.") -> web.HTTPError:
    """404 with a sentence."""
    return error_page(404, "Not found", message)


# ---- parameters ----

class Page(dict):
    """Template data with attribute access (``$page.title``)."""

    __getattr__ = dict.get


def query(*allowed: str) -> dict[str, str]:
    """The query string, last value of each name; 400 for a name this page does not take."""
    raw = web.ctx.env.get("QUERY_STRING", "")
    try:
        parsed = parse_qs(raw, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise bad_request(f"The query string is malformed or has more than {MAX_FIELDS} fields.") from None
    for name in parsed:
        if name not in allowed:
            takes = ", ".join(allowed) if allowed else "no parameter"
            raise bad_request(f"Unknown parameter {shown(name)}: this page takes {takes}.")
    return {k: v[-1] for k, v in parsed.items()}


def chosen_entry(q: dict[str, str]) -> RunEntry | None:
    """The database named by ``db`` (an id from the archive), or the default one; 400/404 otherwise."""
    catalog = web.ctx.site.catalog
    ident = q.get("db")
    if ident is None:
        return catalog.default()
    if not ID_PATTERN.fullmatch(ident):
        raise bad_parameter("db", ident, "it must be the id of a database from the archive page (16 hex digits).")
    entry = catalog.get(ident)
    if entry is None:
        raise not_found(f"There is no database with the id {shown(ident)}; see the archive page.")
    return entry


def chosen_span(q: dict[str, str]) -> str:
    """``span``: hour, day, week, month or all (default all)."""
    span = q.get("span", "all")
    if span not in SPANS_S:
        raise bad_parameter("span", span, "it must be one of hour, day, week, month, all.")
    return span


def chosen_page(q: dict[str, str]) -> int:
    """``page``: a page number from 1."""
    text = q.get("page", "1")
    if not PAGE_PATTERN.fullmatch(text) or not 1 <= int(text) <= MAX_PAGE:
        raise bad_parameter("page", text, f"it must be a whole number from 1 to {MAX_PAGE:,} in digits 0-9.")
    return int(text)


def sources(entry: RunEntry) -> list[str]:
    """The RRD files of a run (service files first), as source names."""
    folder = entry.rrd_dir
    try:
        changed_ns = folder.stat().st_mtime_ns  # a file added or removed changes the folder's mtime
    except OSError:
        return []

    def scan() -> list[str]:
        names = [p.stem for p in folder.glob("*.rrd") if SRC_PATTERN.fullmatch(p.stem)]
        return sorted(names, key=lambda n: (not n.startswith("service-"), n))

    return list(web.ctx.site.remember(("sources", str(folder), changed_ns), scan))


def chosen_source(entry: RunEntry, q: dict[str, str]) -> str | None:
    """``src``: one of the run's RRD files (default: the first service file)."""
    available = sources(entry)
    src = q.get("src")
    if src is None:
        return available[0] if available else None
    if not SRC_PATTERN.fullmatch(src):
        raise bad_parameter("src", src, "it must name one of the run's graph sources (service-… or server-…).")
    if src not in available:
        raise not_found(f"This run has no graph source {shown(src)}.")
    return src


def link(path: str, **params: Any) -> str:
    """A local URL with its query string."""
    kept = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + urlencode(kept) if kept else "")


# ---- database access ----

class Db:
    """A read-only connection for the length of a request."""

    def __init__(self, entry: RunEntry) -> None:
        self.entry = entry
        try:
            self.conn = open_readonly(entry.path)
            self.layout = data.layout_of(self.conn)
        except (StorageError, sqlite3.Error):
            raise not_found("This database cannot be read.") from None

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def memo(self, name: object, compute: Callable[[], Any]) -> Any:
        """A figure cached until the database changes."""
        e = self.entry
        return web.ctx.site.remember((name, str(e.path), e.mtime_s, e.size_bytes), compute)


def base_page(entry: RunEntry | None, active: str, title: str, **extra: Any) -> Page:
    """What every page shows: the menu (each link keeping the database), the run and the refresh."""
    db = entry.id if entry else None
    menu = [Page(href=link(href, db=db), label=label, active=href == active) for href, label in MENU]
    page = Page(title=title, menu=menu, entry=entry, db=db, refresh_s=REFRESH_S if entry and entry.live else None)
    page.update(extra)
    return page


def _html(body: Any) -> str:
    web.header("Content-Type", "text/html; charset=utf-8")
    web.header("Cache-Control", "no-cache")
    return str(body)


def _summary_page(entry: RunEntry, active: str, title: str, span: str = "all",
                  src: str | None = None) -> tuple[Page, Db]:
    """The page's frame and the summary of ``src``'s videos over ``span`` (one definition per figure, as the charts
    and the verdict), with the database left open for the handler."""
    db = Db(entry)
    info = db.memo("run", lambda: data.run_info(db.conn, db.layout))
    clock = data.clock_for(info, db.layout, web.ctx.site.tz)
    v = overview.view(db, clock, span, src)
    return base_page(entry, active, title, run=Page(info), view=v, summary=v.summary(), counts=Page(v.spread),
                     summary_of=src or "all videos", layout=db.layout.kind, clock=clock), db


# ---- handlers ----

class GroupPage:
    """A page of graphs: main parameters, QoE, QoS, video characteristics or all parameters."""

    def GET(self, group: str = "main") -> str:
        q = query("db", "span", "src")
        span = chosen_span(q)
        entry = chosen_entry(q)
        label, names = GROUPS[group]
        active = f"/graphs/{group}"
        if entry is None:
            return _html(web.ctx.site.render.empty(base_page(None, active, label)))
        src = chosen_source(entry, q)
        page, db = _summary_page(entry, active, label, span, src)
        db.conn.close()
        page.update(
            span=span, src=src,
            spans=[Page(name=s, href=link(active, db=entry.id, span=s, src=src), active=s == span) for s in SPANS_S],
            sources=[Page(name=s, href=link(active, db=entry.id, span=span, src=s), active=s == src)
                     for s in sources(entry)],
            graphs=[Page(metric=BY_NAME[n], src=link(f"/graph/{n}.png", db=entry.id, span=span, src=src))
                    for n in names] if src else [],
            rebuild_hint=f"./start_server.py --rebuild-rrd -f {entry.path}")
        return _html(web.ctx.site.render.graphs(page))


VIDEO_COLUMNS = (("started", "Started"), ("title", "Title"), ("status", "Status"), ("server", "Cache server"),
                 ("throughput", "Throughput kbit/s"), ("start", "Start s"), ("stalls", "Stalls"),
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


def sort_headers(db: str, sort: str, order: str) -> list[Page]:
    """The column headers of the videos list: each a link sorting by it (the active one flips its order)."""
    out = []
    for key, label in VIDEO_COLUMNS:
        active = key == sort
        then = ("asc" if order == "desc" else "desc") if active else natural_order(key)
        out.append(Page(key=key, label=label, active=active, mark=("▼" if order == "desc" else "▲") if active else "",
                        href=link("/videos", db=db, sort=key, order=then)))
    return out


class Videos:
    """The played videos, a page at a time, sorted by any column (newest first by default), missing values last."""

    def GET(self) -> str:
        q = query("db", "page", "sort", "order")
        number = chosen_page(q)
        sort, order = chosen_sort(q)
        entry = chosen_entry(q)
        if entry is None:
            return _html(web.ctx.site.render.empty(base_page(None, "/videos", "Played videos")))
        page, db = _summary_page(entry, "/videos", "Played videos")
        with db:
            ordered = db.memo(f"order-{sort}", lambda: data.video_order(db.conn, db.layout, sort))
            pages = max(1, math.ceil(len(ordered) / data.PER_PAGE))
            if number > pages:
                raise not_found("There is no such page of videos.")
            rows = data.videos_by_id(db.conn, db.layout, ordered.page(number, order == "desc"))

        def at_page(n: int) -> str:
            return link("/videos", db=entry.id, sort=sort, order=order, page=n)

        page.update(videos=[Page(r, href=link(f"/video/{r['id']}", db=entry.id)) for r in rows], total=len(ordered),
                    number=number, pages=pages, sort=sort, order=order, headers=sort_headers(entry.id, sort, order),
                    sorted_by=dict(VIDEO_COLUMNS)[sort].lower(),
                    previous=at_page(number - 1) if number > 1 else None,
                    next=at_page(number + 1) if number < pages else None)
        return _html(web.ctx.site.render.videos(page))


def segmented_parts(conn: sqlite3.Connection, download: dict[str, Any] | None) -> dict[str, Any]:
    """The segments, renditions and switches of a video's main download when it is an HLS or DASH session."""
    if not download or download.get("delivery") not in ("hls", "dash"):
        return {"segmented": None}
    rows, total = data.segments(conn, download["id"])
    return {"segmented": Page(delivery=download["delivery"], total=total, shown=len(rows),
                              segments=[Page(r) for r in rows],
                              renditions=[Page(r) for r in data.renditions(conn, download["id"])],
                              switches=[Page(r) for r in data.rendition_switches(conn, download["id"])])}


def video_parts(conn: sqlite3.Connection, found: dict[str, Any]) -> dict[str, Any]:
    """What the page of one video of our layout shows, beside the template's own tables."""
    main = found["downloads"][0] if found["downloads"] else None
    tcp: dict[str, Any] = data.tcp_info_summary(conn, main["id"]) if main else {"samples": 0, "rows": []}
    return {"main_download": Page(main) if main else None,
            "tcp": Page(tcp, rows=[Page(r) for r in tcp["rows"]]), **segmented_parts(conn, main)}


class Video:
    """One video: its hops, DNS answers, RTT, downloads, segments (HLS/DASH), TCP_INFO, and its series as graphs."""

    def GET(self, ident: str) -> str:
        q = query("db")
        entry = chosen_entry(q)
        if entry is None:
            raise not_found("There is no database.")
        page, db = _summary_page(entry, "/videos", "Video")
        with db:
            found = data.video(db.conn, db.layout, int(ident))
            if found is None:
                raise not_found("This run has no such video.")
            if "legacy" in found:
                page.update(legacy=sorted(found["legacy"].items()), title="Video (2015 row)")
                return _html(web.ctx.site.render.video(page))
            page.update(video_parts(db.conn, found))
        v = found["video"]
        page.update(title=f"Video {v.get('video_id') or v['id']}", video=Page(v),
                    hops=[Page(h) for h in found["hops"]], dns=[Page(a) for a in found["dns"]],
                    rtt=[Page(r) for r in found["rtt"]], downloads=[Page(d) for d in found["downloads"]],
                    charts=[Page(kind=k, label=label, src=link(f"/video/{ident}/{k}.svg", db=entry.id))
                            for k, label in (("throughput", "Throughput"), ("playout", "Playout"),
                                             ("rtt", "RTT samples"))])
        return _html(web.ctx.site.render.video(page))


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
                series = data.throughput(db.conn, did) if did else []
                body = svg.chart("Throughput (100 ms bins)", "seconds since the request", "kbit/s",
                                 [("throughput", series)])
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


class Graph:
    """A graph of one data source, drawn by rrdtool (cached until its RRD file changes)."""

    def GET(self, metric: str, fmt_name: str) -> bytes:
        if metric not in BY_NAME:
            raise not_found("There is no such graph.")
        q = query("db", "span", "src")
        span = chosen_span(q)
        entry = chosen_entry(q)
        if entry is None:
            raise not_found("There is no database.")
        src = chosen_source(entry, q)
        if src is None:
            raise not_found("This run has no RRD files.")
        rrd = entry.rrd_dir / f"{src}.rrd"
        try:
            image, etag = web.ctx.site.graphs.get(rrd, metric, span, fmt_name, tz=web.ctx.site.tz)
        except OutdatedRrd as exc:  # files of the old layout: an image saying how to rebuild them
            image, etag = web.ctx.site.graphs.notice(rrd, metric, fmt_name, str(exc))
        web.header("Content-Type", FORMATS[fmt_name][1])
        web.header("Cache-Control", "no-cache")
        web.header("ETag", f'"{etag}"')
        if web.ctx.env.get("HTTP_IF_NONE_MATCH") == f'"{etag}"':
            raise web.notmodified()
        return image


class Servers:
    """The cache servers of a run, slowest first, each with a link to its graphs."""

    def GET(self) -> str:
        q = query("db")
        entry = chosen_entry(q)
        if entry is None:
            return _html(web.ctx.site.render.empty(base_page(None, "/servers", "Cache servers")))
        page, db = _summary_page(entry, "/servers", "Cache servers")
        with db:
            rows = db.memo("servers", lambda: data.servers(db.conn, db.layout))
        available = set(sources(entry))
        out = []
        for r in rows:
            src = f"server-{file_label(str(r['address']))}"
            out.append(Page(r, href=link("/", db=entry.id, src=src) if src in available else None))
        page.update(servers=out)
        return _html(web.ctx.site.render.servers(page))


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


def archive_row(e: RunEntry, chosen: RunEntry | None) -> Page:
    """One database of the archive: its run's facts (read once per version of the file), or why there are none."""
    facts = web.ctx.site.catalog.facts(e)
    row = Page(id=e.id, name=e.name, href=link("/", db=e.id), chosen=chosen is not None and chosen.id == e.id,
               size=size_text(e.size_bytes + e.wal_bytes), live=e.live, state=e.state,
               changed=datetime.fromtimestamp(e.mtime_s, UTC).strftime("%Y-%m-%d %H:%M UTC"),
               problem=facts.get("problem"))
    if facts.get("problem"):
        return row
    ours = facts.get("layout") == "ours"
    clock = data.clock_for(facts, data.Layout("ours") if ours else data.Layout("2015"), web.ctx.site.tz)
    row.update(service=facts.get("service"), vantage=vantage_text(facts), played=facts.get("played"),
               first=at(facts.get("first_at"), clock), last=at(facts.get("last_at"), clock),
               state=e.state if ours else "2015 layout")
    return row


class Archive:
    """Every run database found, newest first, with its run's service, vantage point, span, videos and status."""

    def GET(self) -> str:
        q = query("db")
        entry = chosen_entry(q)
        runs = [archive_row(e, entry) for e in web.ctx.site.catalog.entries()]
        page = base_page(entry, "/archive", "Archive", runs=runs,
                         folder=str(web.ctx.site.catalog.directory))
        return _html(web.ctx.site.render.archive(page))


class Static:
    """A file of the package's own static folder, looked up by name in a table read at start."""

    def GET(self, name: str) -> bytes:
        found = web.ctx.site.static.get(name)
        if found is None:
            raise not_found()
        web.header("Content-Type", found[1])
        web.header("Cache-Control", "max-age=3600")
        return found[0]


class Favicon(Static):
    """The icon browsers ask for."""

    def GET(self) -> bytes:  # type: ignore[override]
        return super().GET("favicon.svg")
