"""A run imported from a 2013 dump recorded no playout of ours: its verdict says so (no smooth share, nobody "did not
start"), where it used to show 0 % smooth; its played count and throughput still come through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog
from tests.conftest import ROOT
from tests.web.legacy import REAL_2013


def _get(app: Any, path: str) -> str:
    answer = app.request(path)
    assert answer.status.startswith("200"), (path, answer.status, answer.data[:300])
    return answer.data.decode()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imported")
    dump = sorted(REAL_2013.glob("aggregation_*IVRY*.txt"))[0]
    done = subprocess.run([sys.executable, "-m", "pytomo", "import", str(dump), "--tz", "Europe/Paris", "--out",
                           str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder


def test_an_imported_run_has_no_smooth_share_and_no_unstarted_plays(imported, tmp_path):
    app = make_app(Site(Catalog(imported), cache_dir=tmp_path / "cache", tz="Europe/Paris"))
    doc = json.loads(_get(app, "/api/v1/verdict?span=all"))
    service = next(r for r in doc["rows"] if r["kind"] == "service")
    assert service["counts"]["played"] > 0 and service["counts"]["not_started"] == 0
    assert service["counts"]["smooth"] == 0 and service["counts"]["stalled"] == 0
    assert service["counts"]["playout_unknown"] == service["counts"]["played"]
    assert service["figures"]["smooth_share"] is None and service["levels"]["smooth_share"] == "none"
    assert "playout not recorded" in service["sentence"] and "without a stall in 0" not in service["sentence"]
    assert service["figures"]["avg_throughput_2015_median_bps"] > 0
    overview = _get(app, "/")
    assert "playout not recorded" in overview or "time to start not recorded" in overview
    assert "did not start in" not in overview


def test_the_analyses_of_an_imported_run_say_not_recorded_as_the_verdict_does(imported, tmp_path):
    """DuckDB's analyses leave the imported plays out of the shares (empty cells), as the verdict does."""
    db = next(imported.glob("*.pytomo_database.db"))
    for args in (["export", str(db), "--to", str(tmp_path / "ds")],
                 ["analyse", str(tmp_path / "ds"), "--out", str(tmp_path / "out")]):
        done = subprocess.run([sys.executable, "-m", "pytomo", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    duckdb = pytest.importorskip("duckdb")
    row = duckdb.connect().execute(f"SELECT played, smooth_share, avg_throughput_2015_median_bps FROM "
                     f"read_csv('{tmp_path / 'out' / 'aggregates.csv'}')").fetchone()
    assert row[0] == 28 and row[1] is None and row[2] > 0
    row = duckdb.connect().execute(f"SELECT videos, started, started_share FROM "
                     f"read_csv('{tmp_path / 'out' / 'time_to_start.csv'}')").fetchone()
    assert row == (28, 0, None)
