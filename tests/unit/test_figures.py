"""The figure table: the docs follow it, and one new declaration reaches DDL, rows, RRD, docs and metadata."""

from __future__ import annotations

import re
import sqlite3
from types import SimpleNamespace

import pytest

from pytomo import figures
from pytomo.figures import FIGURES, Figure, Graph
from pytomo.readers.points import values_from_figures
from pytomo.rrd.store import HEARTBEAT_S, create_args
from tests.conftest import ROOT


def test_committed_schema_docs_equal_the_generated_text():
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert figures.docs_with_figures(text) == text, "run: python -m pytomo.figures --docs"


def test_names_are_unique_valid_and_carry_units():
    keys = [f.key for f in FIGURES]
    assert len(set(keys)) == len(keys)
    ds = [g.ds for _f, g in figures.graphs()]
    assert len(set(ds)) == len(ds) and all(re.fullmatch(r"[a-z0-9_]{1,19}", n) for n in ds)
    for old in ("duration_s", "status_code", "ttfb_s", "peak_1s_throughput_bps", "initial_buffer_s",
                "initial_playback_buffer_s"):
        assert old not in {f.name for f in FIGURES}
    assert all(f.unit for f in FIGURES if f.sql_type.startswith("REAL") and "ratio" not in f.name
               and f.name not in ("frame_rate",))


@pytest.fixture
def one_more(monkeypatch):
    """A new stored and graphed figure, computed from an existing record attribute."""
    new = Figure(figures.D, "headers_wait_ms", "REAL", "request sent -> response headers, in ms",
                 lambda m, d: d.transfer.headers_s * 1000 if d.transfer.headers_s is not None else None,
                 graphs=(Graph("headers_wait_ms", "Headers wait", "ms", "From the request to the headers.",
                               pages=(("qos", 99),), rank=99, log_axis=True),))
    monkeypatch.setattr(figures, "FIGURES", (*FIGURES, new))
    return new


def _measurement():
    transfer = SimpleNamespace(headers_s=0.25)
    d = SimpleNamespace(transfer=transfer)
    return SimpleNamespace(), d


def test_a_new_figure_follows_everywhere_from_one_declaration(one_more):
    conn = sqlite3.connect(":memory:")
    conn.executescript(figures.ddl("downloads"))
    assert "headers_wait_ms" in {r[1] for r in conn.execute("PRAGMA table_info(downloads)")}
    m, d = _measurement()
    assert one_more.value(m, d) == 250.0
    assert figures.renamed("downloads").get("headers_wait_ms") is None
    row = {f.key: None for f in figures.FIGURES} | {"downloads.headers_wait_ms": 250.0}
    assert values_from_figures(row)["headers_wait_ms"] == 250.0
    assert f"DS:headers_wait_ms:GAUGE:{HEARTBEAT_S}:U:U" in create_args(1000)
    assert figures.graph_pages()["qos"][1][-1] == "headers_wait_ms"
    assert "headers_wait_ms" in figures.graph_pages()["all"][1]
    assert "| `headers_wait_ms` | REAL | ms | request sent -> response headers, in ms | `headers_wait_ms`" in (
        figures.docs_text())
    meta = figures.datasette_metadata("run")["databases"]["run"]["tables"]["downloads"]
    assert meta["columns"]["headers_wait_ms"] == one_more.description and meta["units"]["headers_wait_ms"] == "ms"


def test_the_new_figure_reaches_the_insert_row_and_the_graph(one_more, monkeypatch):
    import importlib

    from pytomo.rrd import metrics
    from pytomo.web import graphs

    names = [f.name for f in figures.figures("downloads")]
    assert names[-1] == "headers_wait_ms"
    try:
        importlib.reload(metrics)  # as at the start of a process: the catalogue is built from the figure table
        assert metrics.GROUPS["qos"][1][-1] == "headers_wait_ms"
        monkeypatch.setattr(graphs, "BY_NAME", metrics.BY_NAME)
        monkeypatch.setattr(graphs, "time_range", lambda rrd, span: (0, 100))
        args = graphs.graph_args(ROOT / "x.rrd", "headers_wait_ms", "day", "png")
        assert "--logarithmic" in args and "Headers wait" in args
    finally:
        monkeypatch.undo()
        importlib.reload(metrics)


def test_a_video_that_never_started_has_null_stalls_and_a_reason():
    p = SimpleNamespace(started=False, stall_count=0, stall_total_s=0.0)
    d = SimpleNamespace(playout=p, playout_problem=None)
    by_name = {f.name: f for f in figures.figures("downloads")}
    assert by_name["stall_count"].value(None, d) is None and by_name["stall_total_s"].value(None, d) is None
    assert by_name["playout_problem"].value(None, d) == "not_started"
    started = SimpleNamespace(playout=SimpleNamespace(started=True, stall_count=0, stall_total_s=0.0),
                              playout_problem=None)
    assert by_name["stall_count"].value(None, started) == 0
    assert by_name["playout_problem"].value(None, started) is None


def test_a_figure_reads_a_download_exactly_in_downloads():
    by_key = figures.by_key()
    with pytest.raises(TypeError):
        by_key["videos.video_id"].value(SimpleNamespace(video_id="v"), SimpleNamespace())
    with pytest.raises(TypeError):
        by_key["downloads.url"].value(SimpleNamespace())


# Each a source of pytomo/figures.py made wrong, and what mypy says of it.
MISTAKES = {
    "lambda m, d: d.transfer.url)": ("lambda m, d: d.transfer.no_such_attr)", '"Transfer" has no attribute'),
    "lambda m, _: m.video_id)": ("lambda m, _: m.no_such_attr)", '"VideoMeasurement" has no attribute'),
    "lambda m, d: d.playout.end_s if d.playout else None)": ("lambda m, d: d.playout.end_s)",
                                                              'Item "None" of "PlayoutResult | None"'),
    "lambda m, _: m.title)": ("lambda m, d: d.transfer.url)", '"None" has no attribute "transfer"'),
}


def test_mypy_reports_a_misspelt_or_unguarded_attribute_in_a_source(tmp_path, monkeypatch):
    """The sources are checked as declared, in FIGURES: a copy of the module with four wrong sources has exactly
    those four errors (a misspelt attribute, an Optional record read without a test, a video figure reading ``d``)."""
    from mypy import api

    text = (ROOT / "pytomo" / "figures.py").read_text(encoding="utf-8")
    expected = {}
    for right, (wrong, message) in MISTAKES.items():
        assert text.count(right) == 1, right
        expected[text[:text.index(right)].count("\n") + 1] = message
        text = text.replace(right, wrong)
    probe = tmp_path / "figures_probe.py"
    probe.write_text(text, encoding="utf-8")
    monkeypatch.chdir(ROOT)  # mypy finds pytomo from here
    out, err, status = api.run([str(probe), "--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", str(tmp_path / "cache"), "--show-error-codes"])
    errors = [line for line in out.splitlines() if ": error: " in line]
    assert status == 1, out + err
    lines = {int(line.split(":")[1]) for line in errors}
    assert lines == set(expected), out
    for line, message in expected.items():
        assert any(f":{line}: error: " in e and message in e for e in errors), (message, out)
