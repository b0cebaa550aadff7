"""The pages of RRD graphs (the 2015 groups) and the graphs themselves, drawn by rrdtool."""

from __future__ import annotations

import web

from pytomo.rrd.metrics import BY_NAME, GROUPS
from pytomo.web.graphs import FORMATS, SPANS_S, OutdatedRrd
from pytomo.web.views import (
    Page,
    base_page,
    chosen_entry,
    chosen_source,
    chosen_span,
    html_answer,
    link,
    not_found,
    query,
    sources,
    summary_page,
)


class GroupPage:
    """A page of graphs: main parameters, QoE, QoS, video characteristics or all parameters."""

    def GET(self, group: str = "main") -> str:
        q = query("db", "span", "src")
        span = chosen_span(q)
        entry = chosen_entry(q)
        label, names = GROUPS[group]
        active = f"/graphs/{group}"
        if entry is None:
            return html_answer(web.ctx.site.render.empty(base_page(None, active, label)))
        src = chosen_source(entry, q)
        page, db = summary_page(entry, active, label, span, src)
        db.release()
        page.update(
            span=span, src=src,
            spans=[Page(name=s, href=link(active, db=entry.id, span=s, src=src), active=s == span) for s in SPANS_S],
            sources=[Page(name=s, href=link(active, db=entry.id, span=span, src=s), active=s == src)
                     for s in sources(entry)],
            graphs=[Page(metric=BY_NAME[n], src=link(f"/graph/{n}.png", db=entry.id, span=span, src=src))
                    for n in names] if src else [],
            rebuild_hint=f"./start_server.py --rebuild-rrd -f {entry.path}")
        return html_answer(web.ctx.site.render.graphs(page))


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
