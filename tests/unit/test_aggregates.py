"""An aggregate declared on a figure reaches the verdict, /metrics, the overview and the analyses from one line."""

from __future__ import annotations

import dataclasses
import sqlite3
import statistics

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.web_make_db import make_database
from pytomo import figures
from pytomo.dataset import analyses
from pytomo.dataset.parquet import write_run
from pytomo.figures import Aggregate, Threshold
from pytomo.readers.tables import tables_of
from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog

TTFB = Aggregate("ttfb_median_s", "median", "median time to first byte", "s",
                 "median over played videos of their request -> first body byte time (first_byte_s)", 9,
                 Threshold(0.1, 0.3, False, "a fixture's limits"), "time_to_first_byte_median_seconds")


@pytest.fixture
def with_ttfb(monkeypatch):
    """``downloads.first_byte_s`` gains one aggregate, and nothing else changes."""
    changed = tuple(dataclasses.replace(f, aggregates=(*f.aggregates, TTFB)) if f.key == "downloads.first_byte_s"
                    else f for f in figures.FIGURES)
    monkeypatch.setattr(figures, "FIGURES", changed)
    return TTFB


def _median_by_sql(db) -> float:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        values = [r[0] for r in conn.execute(
            "SELECT d.first_byte_s FROM videos v JOIN downloads d ON d.id = (SELECT min(x.id) FROM downloads x"
            " WHERE x.video_row_id = v.id) WHERE d.bytes > 0 AND d.first_byte_s IS NOT NULL")]
    finally:
        conn.close()
    return statistics.median(values)


def test_a_declared_aggregate_reaches_the_verdict_and_metrics(with_ttfb, tmp_path):
    db = make_database(tmp_path / "db", 40)
    app = make_app(Site(Catalog(db.parent), cache_dir=tmp_path / "cache"))
    doc = app.request("/api/v1/verdict?span=all").data
    import json

    verdict = json.loads(doc)
    assert verdict["figures"]["ttfb_median_s"]["label"] == "median time to first byte"
    assert verdict["summary"]["figures"]["ttfb_median_s"] == pytest.approx(_median_by_sql(db))
    assert all("ttfb_median_s" in row["levels"] for row in verdict["rows"])
    metrics = app.request("/metrics").data.decode()
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    family = families["pytomo_time_to_first_byte_median_seconds"]
    by_row = {(r["kind"], r["ident"]): r["figures"]["ttfb_median_s"] for r in verdict["rows"]}
    assert family.samples and all(
        s.value == pytest.approx(by_row[(s.labels["scope"], s.labels["name"])]) for s in family.samples)
    page = app.request("/?span=all").data.decode()
    assert "median time to first byte" in page
    services = {r["ident"]: r["figures"]["ttfb_median_s"] for r in verdict["rows"] if r["kind"] == "service"}
    write_run(tables_of(db), tmp_path / "dataset")
    tables, notes = analyses.run_duckdb(tmp_path / "dataset")
    table = tables["aggregates"].set_index("service")
    assert table.loc["Bench", "ttfb_median_s"] == pytest.approx(services["Bench"])  # one download per video here
    assert table.loc["Bench", "rtt_median_ms"] == pytest.approx(verdict["summary"]["figures"]["rtt_median_ms"])
    assert any("loss_share" in n for n in notes)  # said, not guessed: the frame has no probes


def test_every_aggregate_names_a_known_statistic_and_a_unique_key():
    pairs = figures.aggregates()
    assert len({a.key for _f, a in pairs}) == len(pairs) and len({a.metric for _f, a in pairs}) == len(pairs)
    assert all(a.statistic in figures.STATISTICS and a.metric for _f, a in pairs)
    rtt = [f.key for f, a in pairs if a.key == "rtt_median_ms"]
    assert rtt == ["downloads.ping_min_ms"]  # the one RTT of a video


def test_a_new_figure_with_an_aggregate_is_one_declaration(monkeypatch):
    """A figure declared with an aggregate has its column, its place in the verdict and /metrics, its column in the
    analyses and its line in the generated docs, from that declaration alone."""
    from pytomo.readers.observations import wanted
    from pytomo.readers.verdict import compute, declared

    wait = Aggregate("headers_wait_median_ms", "median", "median wait for the headers", "ms",
                     "median over played videos of request sent -> response headers", 10,
                     metric="headers_wait_median_seconds", metric_scale=0.001)
    new = figures.Figure(figures.D, "headers_wait_ms", "REAL", "request sent -> response headers, in ms",
                         lambda m, d: d.transfer.headers_s * 1000 if d.transfer.headers_s is not None else None,
                         aggregates=(wait,))
    monkeypatch.setattr(figures, "FIGURES", (*figures.FIGURES, new))
    assert "headers_wait_ms REAL" in figures.ddl("downloads")
    assert declared()[-1] is wait and new in wanted()
    assert "agg_headers_wait_median_ms" in analyses.frame_select(analyses.Layout(set(), set()), "d")
    assert "headers_wait_median_ms" in {g.name for g in analyses.aggregates_analysis().aggs}
    assert "| `headers_wait_median_ms` | `downloads.headers_wait_ms` | median |" in figures.docs_text()
    from types import SimpleNamespace

    obs = [SimpleNamespace(played=True, live=False, value=lambda key, v=v: v) for v in (10.0, 30.0, 20.0)]
    assert compute("downloads.headers_wait_ms", wait, obs) == 20.0
