"""Every reader of a run database gives the same value for every figure it shares with another: the observations
behind the verdict, /api/v1, /metrics, the overview's charts, the RRD rebuild, the Parquet export and the analyses
with DuckDB and with Dask; on a lab run and on the same run in the 2015 layout."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytomo.dataset import analyses
from pytomo.dataset.parquet import write_run
from pytomo.figures import by_key, graphs, shared
from pytomo.readers import observations
from pytomo.readers import pages as data
from pytomo.readers.open import open_readonly
from pytomo.readers.points import parse_id, read_points
from pytomo.readers.tables import tables_of
from pytomo.readers.verdict import declared
from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog
from pytomo.zones import Clock
from tests.web.legacy import make_2015_database


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


def _pairs(items: Any) -> list[tuple[str, float | None]]:
    """(server, value) pairs in one order, values as floats."""
    out = [(s, None if v is None else float(v)) for s, v in items]
    return sorted(out, key=lambda sv: (sv[0], sv[1] is None, sv[1] or 0.0))


def _get(app: Any, path: str) -> Any:
    answer = app.request(path)
    assert answer.status.startswith("200"), (path, answer.status)
    return answer.data


def _verdict_and_metrics(app: Any) -> tuple[dict, dict[tuple[str, str, str], float]]:
    """The verdict over the whole run and every /metrics sample of a declared aggregate by (metric, scope, name)."""
    doc = json.loads(_get(app, "/api/v1/verdict?span=all"))
    metrics: dict[tuple[str, str, str], float] = {}
    names = {f"pytomo_{a.metric}" for a in declared()}
    for family in text_string_to_metric_families(_get(app, "/metrics").decode()):
        for s in family.samples:
            if s.name in names:
                metrics[(s.name, s.labels["scope"], s.labels["name"])] = s.value
    return doc, metrics


def _check_verdict_against_metrics(doc: dict, metrics: dict) -> int:
    """/metrics has every declared aggregate of every verdict row that has a value, and the same value."""
    checked = 0
    for a in declared():
        assert doc["figures"][a.key]["metric"] == f"pytomo_{a.metric}"
        for row in doc["rows"]:
            value = row["figures"][a.key]
            got = metrics.get((f"pytomo_{a.metric}", row["kind"], row["ident"]))
            assert _close(got, None if value is None else value * a.metric_scale), (a.key, row["ident"])
            checked += value is not None
    return checked


def _check_charts(app: Any, doc: dict) -> None:
    """The overview's charts carry per interval what the summary counts over the span."""
    svg = _get(app, "/overview/plays.svg?span=all").decode()
    played = sum(int(v) for v in re.findall(r'<g class="bin"[^>]* data-played="(\d+)"', svg))
    assert played == doc["summary"]["counts"]["played"] == doc["summary"]["figures"]["played"]


def _first_downloads(db: Path) -> dict[int, dict[str, Any]]:
    """The first download of every video, as the Parquet export gives it."""
    rows: dict[int, dict[str, Any]] = {}
    for d in sorted(tables_of(db)["downloads"].to_pylist(), key=lambda r: r["id"]):
        rows.setdefault(d["video_row_id"], d)
    return rows


def test_every_reader_of_a_lab_run_agrees(lab_db, tmp_path):
    conn = open_readonly(lab_db)
    obs = observations.load(conn, data.layout_of(conn), Clock("UTC")).obs
    firsts = _first_downloads(lab_db)
    figures = by_key()
    # observations (the verdict's reading) against the export, figure by figure: the same values per server
    for f in observations.wanted():
        from_obs = _pairs((o.server, o.value(f.key)) for o in obs if o.ident in firsts)
        from_export = _pairs((d["address"], d.get(f.name)) for d in firsts.values())
        assert len(from_obs) == len(from_export) and all(
            a[0] == b[0] and _close(a[1], b[1]) for a, b in zip(from_obs, from_export, strict=True)), f.key
    # the RRD rebuild's points against the export, for every graph of a single figure
    report = read_points(conn)
    by_start = {(d["address"], parse_id(d["started_at"].strftime("%Y-%m-%d %H:%M:%S.%f"))): d  # a UTC timestamp
                for d in tables_of(lab_db)["downloads"].to_pylist()}
    compared = 0
    for p in report.points:
        d = by_start[(p.server, p.t_s)]
        for f, g in graphs():
            if g.derive is None and f.table == "downloads":
                want = None if d.get(f.name) is None else float(d[f.name]) * g.scale
                assert _close(p.values[g.ds], want), (g.ds, p.server)
                compared += 1
    assert compared > 100
    # /api/v1: the videos list and each video's downloads
    app = make_app(Site(Catalog(lab_db.parent), cache_dir=tmp_path / "cache"))
    listed = json.loads(_get(app, "/api/v1/videos?sort=started"))["videos"]
    assert listed
    for v in listed:
        d = firsts.get(v["id"])
        if d is None:
            continue
        assert _close(v["avg_throughput_bps"], d["avg_throughput_bps"]), v["id"]  # bit/s, named as its figure
        assert _close(v["stall_count"], d["stall_count"]) and _close(v["time_to_start_s"], d["time_to_start_s"])
        one = json.loads(_get(app, f"/api/v1/video/{v['id']}"))["downloads"][0]
        for f in figures.values():
            if f.table == "downloads" and isinstance(d.get(f.name), (int, float)):
                assert _close(one[f.name], d[f.name]), (f.name, v["id"])
    # the verdict, /metrics, the charts and the analyses with both engines
    doc, metrics = _verdict_and_metrics(app)
    assert _check_verdict_against_metrics(doc, metrics) > 10
    _check_charts(app, doc)
    write_run(tables_of(lab_db), tmp_path / "dataset")
    with_duckdb, _notes = analyses.run_duckdb(tmp_path / "dataset")
    from distributed import LocalCluster

    with_dask, _ = analyses.run_dask(tmp_path / "dataset", cluster_factory=lambda: LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None))
    assert analyses.compare(with_duckdb, with_dask) == []
    table = with_duckdb["aggregates"].set_index("service")
    services = {r["ident"]: r["figures"] for r in doc["rows"] if r["kind"] == "service"}
    assert set(table.index) == set(services)
    for key in table.columns:
        if key in ("videos",):
            continue
        for service, figures_of_row in services.items():
            assert _close(table.loc[service, key], figures_of_row[key]), (key, service)


def test_every_reader_of_a_2015_database_agrees(lab_db, tmp_path):
    old = make_2015_database(lab_db, tmp_path / "old")
    conn = sqlite3.connect(f"file:{old}?mode=ro&immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    layout = data.layout_of(conn)
    obs = observations.load(conn, layout, Clock("UTC")).obs
    report = read_points(conn, tz="UTC")
    table = layout.table
    rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{table}" WHERE DownloadTime > 0')]
    # observations and RRD points read each 2015 column through the same declarations: the same values per row
    for f, g in graphs():
        if g.derive is None and shared(f, g):
            from_points = sorted(round(v, 6) for p in report.points if (v := p.values[g.ds]) is not None)
            from_obs = sorted(round(v * g.scale, 6) for o in obs if o.played
                              and (v := o.value(f.key)) is not None) if f.key in {w.key for w in
                                                                                   observations.wanted()} else None
            if from_obs is not None:
                assert from_points == from_obs, g.ds
    assert len(report.points) == len(rows)
    # the verdict against /metrics, the charts, and the videos list against the rows
    app = make_app(Site(Catalog(old.parent), cache_dir=tmp_path / "cache", tz="UTC"))
    doc, metrics = _verdict_and_metrics(app)
    assert _check_verdict_against_metrics(doc, metrics) > 3
    _check_charts(app, doc)
    summary = doc["summary"]["figures"]
    assert summary["throughput_median_bps"] is None and summary["ratio_median"] is None  # not recorded in 2015
    assert summary["avg_throughput_2015_median_bps"] is not None
    listed = json.loads(_get(app, "/api/v1/videos?sort=started"))["videos"]
    assert sorted(round(v["throughput_2015_bps"], 3) for v in listed if v["status"] == "ok") == sorted(
        round(8.0 * r["DownloadBytes"] / r["DownloadTime"], 3) for r in rows)
