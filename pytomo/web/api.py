"""Machine-readable answers: ``/api/v1/...`` JSON (verdict, runs, videos, one video) and ``/metrics`` for Prometheus."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import web
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from pytomo.figures import aggregates
from pytomo.readers import pages as data
from pytomo.readers.verdict import LEVELS
from pytomo.web import overview
from pytomo.web.catalog import RunEntry
from pytomo.web.run_pages import FILTERS, chosen_filter, chosen_sort, videos_page
from pytomo.web.views import Db, chosen_entry, chosen_page, chosen_span, not_found, query

API_VERSION = 1
METRICS_SPAN = "hour"
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null, bytes are not sent, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bytes, memoryview)):
        return None
    return value


def encode(doc: Any) -> str:
    """Strict JSON with ``<``, ``>`` and ``&`` escaped, so that no browser can read it as HTML."""
    text = json.dumps(_clean(doc), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escaped in _JSON_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def answer(doc: Any) -> str:
    """A JSON answer."""
    web.header("Content-Type", "application/json; charset=utf-8")
    web.header("Cache-Control", "no-cache")
    return encode(doc)


def _entry(q: dict[str, str]) -> RunEntry:
    entry = chosen_entry(q)
    if entry is None:
        raise not_found("There is no database.")
    return entry


def _run(entry: RunEntry, db: Db) -> dict[str, Any]:
    info = db.memo("run", lambda: data.run_info(db.conn, db.layout))
    return {"id": entry.id, "name": entry.name, "size_bytes": entry.size_bytes, "layout": db.layout.kind,
            "being_written": entry.live, **info}


def verdict_doc(entry: RunEntry, db: Db, span: str) -> dict[str, Any]:
    """The verdict of a run over a span, with the figures' definitions and thresholds."""
    clock = overview.clock_of(db)
    v = overview.view(db, clock, span, None)
    win = v.window
    return {
        "api_version": API_VERSION, "run": _run(entry, db),
        "span": {"name": span, "zone": clock.label, "zone_known": clock.known,
                 "start": clock.show(win.start_s) if win else None, "end": clock.show(win.end_s) if win else None,
                 "start_s": win.start_s if win and clock.known else None,
                 "end_s": win.end_s if win and clock.known else None},
        "figures": {f.key: {"label": f.label, "unit": f.unit, "definition": f.definition, "figure": figure.key,
                            "statistic": f.statistic, "metric": f"pytomo_{f.metric}",
                            "threshold": None if f.threshold is None else {
                                "good": f.threshold.good, "bad": f.threshold.bad,
                                "higher_is_better": f.threshold.higher_is_better, "source": f.threshold.source}}
                    for figure, f in aggregates()},
        "summary": {"figures": v.figures, "counts": v.spread},
        "rows": [{"kind": r.kind, "key": r.key, "name": r.name, "ident": r.ident, "host": r.host,
                  "level": r.level, "sentence": r.sentence,
                  "figures": r.values, "levels": r.levels, "counts": r.counts, "failures": r.failures,
                  "videos": f"/videos?{urlencode({'db': entry.id, 'src': r.key, 'span': span, 'outcome': 'all'})}"}
                 for r in v.rows],
    }


class Verdict:
    """``/api/v1/verdict?db=&span=``: the overview's verdict as JSON."""

    def GET(self) -> str:
        q = query("db", "span")
        span = chosen_span(q) if "span" in q else "day"
        entry = _entry(q)
        with Db(entry) as db:
            return answer(verdict_doc(entry, db, span))


class Runs:
    """``/api/v1/runs``: every run database of the listing, newest first."""

    def GET(self) -> str:
        query()
        runs = []
        for entry in web.ctx.site.catalog.entries():
            db = Db.readable(entry)
            if db is None:  # a database that cannot be read is listed as such, and the answer stays 200
                runs.append({"id": entry.id, "name": entry.name, "size_bytes": entry.size_bytes,
                             "problem": "cannot be read"})
                continue
            with db:
                runs.append(_run(entry, db))
        return answer({"api_version": API_VERSION, "runs": runs})


class Videos:
    """``/api/v1/videos?db=&page=&sort=&order=[&src=&span=&outcome=]``: one page of the run's videos, in the videos
    list's order (of one verdict line's videos with the filters, as the videos list)."""

    def GET(self) -> str:
        q = query("db", "page", "sort", "order", *FILTERS)
        number = chosen_page(q)
        sort, order = chosen_sort(q)
        only = chosen_filter(q)
        entry = _entry(q)
        with Db(entry) as db:
            rows, total, pages = videos_page(db, sort, order, number, only)
        return answer({"api_version": API_VERSION, "run": entry.id, "total": total, "page": number,
                       "pages": pages, "per_page": data.PER_PAGE, "sort": sort, "order": order, "videos": rows})


class Video:
    """``/api/v1/video/<id>?db=``: everything stored for one video."""

    def GET(self, ident: str) -> str:
        q = query("db")
        entry = _entry(q)
        with Db(entry) as db:
            found = data.video(db.conn, db.layout, int(ident))
        if found is None:
            raise not_found("This run has no such video.")
        return answer({"api_version": API_VERSION, "run": entry.id, "id": int(ident), **found})


class _Families:
    """A one-shot collector handing prepared metric families to the registry."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        """The families."""
        yield from self.families


def metric_families(entry: RunEntry, db: Db, span: str = METRICS_SPAN) -> list[Metric]:
    """The latest figures of each service and cache server of a run (over ``span`` ending at its newest video)."""
    clock = overview.clock_of(db)
    v = overview.view(db, clock, span, None)
    labels = ["run", "scope", "name", "host"]
    families: list[Metric] = []
    for figure, f in aggregates():
        fam = GaugeMetricFamily(f"pytomo_{f.metric}", f"{f.label}: {f.definition}; {f.statistic} of {figure.key} "
                                f"(over the last {span} of the run)", labels=labels)
        for r in v.rows:
            value = r.values[f.key]
            if value is not None:
                fam.add_metric([entry.id, r.kind, r.ident, r.host or ""], value * f.metric_scale)
        families.append(fam)
    failed = GaugeMetricFamily("pytomo_videos_failed", "videos whose measurement ended in an error, by the stage "
                               "and kind of the error", labels=[*labels, "stage", "kind"])
    share = GaugeMetricFamily("pytomo_failed_ratio", "videos that failed over videos", labels=labels)
    for r in v.rows:
        share.add_metric([entry.id, r.kind, r.ident, r.host or ""], r.counts["errors"] / max(r.counts["videos"], 1))
        for error, n in r.failures.items():
            stage, _, kind = error.partition("/")
            failed.add_metric([entry.id, r.kind, r.ident, r.host or "", stage, kind], float(n))
    families += [share, failed]
    level = GaugeMetricFamily("pytomo_verdict_level", "worst level of the row's figures: 0 no data, 1 good, "
                              "2 warning, 3 bad", labels=labels)
    for r in v.rows:
        level.add_metric([entry.id, r.kind, r.ident, r.host or ""], float(LEVELS.index(r.level)))
    families.append(level)
    run = GaugeMetricFamily("pytomo_run_info", "the run shown (value 1)", labels=["run", "name", "being_written"])
    run.add_metric([entry.id, entry.name, "1" if entry.live else "0"], 1.0)
    families.append(run)
    if v.window is not None and clock.known:
        newest = GaugeMetricFamily("pytomo_newest_video_timestamp_seconds", "start of the run's newest video",
                                   labels=["run"])
        newest.add_metric([entry.id], v.window.end_s)
        families.append(newest)
    return families


class Metrics:
    """``/metrics[?db=]``: the latest figures per service and cache server in Prometheus' text format."""

    def GET(self) -> bytes:
        q = query("db")
        entry = chosen_entry(q)
        registry = CollectorRegistry(auto_describe=False)
        families: list[Metric] = []
        if entry is not None:
            with Db(entry) as db:
                families = metric_families(entry, db)
        registry.register(_Families(families))
        web.header("Content-Type", CONTENT_TYPE_LATEST)
        web.header("Cache-Control", "no-cache")
        return generate_latest(registry)
