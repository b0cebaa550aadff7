"""What every page handler shares: checked parameters, error pages, the read-only database, the frame and summary."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import web

from pytomo.errors import StorageError
from pytomo.readers import pages as data
from pytomo.readers.open import open_readonly
from pytomo.readers.verdict import summary_lines
from pytomo.units import in_unit
from pytomo.web import overview
from pytomo.web.catalog import ID_PATTERN, RunEntry
from pytomo.web.graphs import SPANS_S
from pytomo.zones import Clock

SRC_PATTERN = re.compile(r"(service|server)-[A-Za-z0-9_.-]{1,80}")
PAGE_PATTERN = re.compile(r"[0-9]{1,7}")  # ASCII digits only: int() also reads "²" (500) and 5,000 digits (slow)
MAX_PAGE = 1_000_000
MAX_FIELDS = 20
SHOWN_CHARS = 40
REFRESH_S = 30
MENU = (("/", "Overview"), ("/graphs/main", "Main parameters"), ("/graphs/qoe", "QoE"), ("/graphs/qos", "QoS"),
        ("/graphs/characteristics", "Video characteristics"), ("/graphs/all", "All parameters"),
        ("/videos", "Videos"), ("/servers", "Cache servers"), ("/history", "History across runs"),
        ("/archive", "Archive"))


# ---- formatting helpers, also given to the templates ----

def _number(value: Any) -> float | None:
    """A stored value as a number: None for none, NaN, text or anything else that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, digits: int = 2, unit: str | None = None) -> str:
    """A number with ``digits`` decimals, or a dash. With ``unit`` (the unit its figure declares: ``bit/s``,
    ``bytes``, ``ms``, ``s``) as every page, RRD graph and the verdict show a value in it:
    :func:`pytomo.units.in_unit`, throughputs in bit/s with an SI prefix and three significant digits ("1.06 Mbit/s",
    never kbit/s over Mbit/s)."""
    if unit is not None:
        return in_unit(_number(value), unit)
    if value is None or isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"
    return str(value)


def pct(value: Any) -> str:
    """A share 0..1 as a percentage, or a dash."""
    return "–" if value is None else f"{100 * value:.1f} %"


def at(text: Any, clock: Clock | None) -> str:
    """A stored time shown in the database's clock, with its zone (``2013-05-01 18:24:00 CEST``)."""
    clock = clock or Clock()
    return clock.show(clock.epoch(text))


AGE_UNITS = ((365.25 * 86400, "year"), (30.44 * 86400, "month"), (7 * 86400, "week"), (86400, "day"),
             (3600, "hour"), (60, "minute"), (1, "second"))
UNKNOWN_ZONE_S = 2 * 86400  # a time of an unknown zone is off by up to 14 h either way: said in days from 2 days


def ago(t_s: float | None, clock: Clock | None, now_s: float | None = None) -> str:
    """How long before now (``now_s``, default the server's clock) a time of this clock was: "3 days ago", in the
    largest unit it holds twice or more ("36 hours ago", "90 seconds ago"). A time of an unknown zone (2015 without
    --tz) is "about" so many days or more, or "within the last 2 days"; a time after now says so."""
    if t_s is None:
        return "–"
    clock = clock or Clock()
    age = (time.time() if now_s is None else now_s) - t_s
    if not clock.known:
        if abs(age) < UNKNOWN_ZONE_S:
            return "within the last 2 days (zone unknown)"
        return f"about {ago(t_s, Clock(), t_s + age)}" if age > 0 else "in the future (zone unknown)"
    if age < 0:
        return f"{ago(t_s + age, clock, t_s).removesuffix(' ago')} in the future" if age <= -2 else "just now"
    for length, word in AGE_UNITS:
        if age >= 2 * length:
            return f"{math.floor(age / length)} {word}s ago"
    return "just now"


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

POOLED_PER_THREAD = 8  # finished databases kept open by each worker thread, least recently used closed first
_POOL = threading.local()


def _pooled(entry: RunEntry) -> tuple[sqlite3.Connection, data.Layout]:
    """This thread's open connection to a finished database, opened again when the file changed."""
    pool: OrderedDict[str, tuple[tuple[float, int], sqlite3.Connection, data.Layout]] | None = getattr(
        _POOL, "dbs", None)
    if pool is None:
        pool = _POOL.dbs = OrderedDict()
    key, version = str(entry.path), (entry.mtime_s, entry.size_bytes)
    found = pool.pop(key, None)
    if found is not None and found[0] == version:
        pool[key] = found
        return found[1], found[2]
    if found is not None:
        found[1].close()
    conn = open_readonly(entry.path)
    pool[key] = (version, conn, data.layout_of(conn))
    while len(pool) > POOLED_PER_THREAD:
        _key, (_version, old, _layout) = pool.popitem(last=False)
        old.close()
    return conn, pool[key][2]


class Db:
    """A read-only connection for the length of a request: kept open by the worker thread for a finished database
    (opened as immutable: nothing can change under it), opened and closed per request for one being written (so
    that no snapshot of its WAL outlives the request)."""

    def __init__(self, entry: RunEntry, *, quiet: bool = False) -> None:
        self.entry = entry
        self.pooled = not Path(f"{entry.path}-wal").exists()
        try:
            if self.pooled:
                self.conn, self.layout = _pooled(entry)
            else:
                self.conn = open_readonly(entry.path)
                self.layout = data.layout_of(self.conn)
        except (StorageError, sqlite3.Error) as exc:
            if quiet:
                raise StorageError(f"{entry.name} cannot be read") from exc
            raise not_found("This database cannot be read.") from None

    @classmethod
    def readable(cls, entry: RunEntry) -> Db | None:
        """The database, or None when it cannot be read; unlike ``Db(entry)`` it leaves the answer's status and
        headers alone (a web.HTTPError sets them when it is made), for pages that list every database."""
        try:
            return cls(entry, quiet=True)
        except StorageError:
            return None

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Done with the connection for this request."""
        if not self.pooled:
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


def html_answer(body: Any) -> str:
    web.header("Content-Type", "text/html; charset=utf-8")
    web.header("Cache-Control", "no-cache")
    return str(body)


def summary_page(entry: RunEntry, active: str, title: str, span: str = "all",
                  src: str | None = None) -> tuple[Page, Db]:
    """The page's frame and the summary of ``src``'s videos over ``span`` (one definition per figure, as the charts
    and the verdict), with the database left open for the handler."""
    db = Db(entry)
    info = db.memo("run", lambda: data.run_info(db.conn, db.layout))
    clock = data.clock_for(info, db.layout, web.ctx.site.tz)
    v = overview.view(db, clock, span, src)
    return base_page(entry, active, title, run=Page(info), view=v, summary=summary_lines(v.figures, v.spread),
                     counts=Page(v.spread), summary_of=src or "all videos", layout=db.layout.kind, clock=clock), db


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
