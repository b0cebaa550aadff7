"""/api/v1/runs lists a database that cannot be read as such, and still answers 200 in JSON."""

from __future__ import annotations

import json

from bench.web_make_db import make_database
from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog


def test_an_unreadable_database_does_not_turn_the_list_into_a_404(tmp_path):
    good = make_database(tmp_path / "runs", 5)
    (good.parent / "junk.lab.2026-01-01T00-00-00Z.pytomo_database.db").write_bytes(b"not a database at all" * 50)
    app = make_app(Site(Catalog(good.parent), cache_dir=tmp_path / "cache"))
    answer = app.request("/api/v1/runs")
    assert answer.status.startswith("200") and answer.headers["Content-Type"].startswith("application/json")
    runs = {r["name"]: r for r in json.loads(answer.data)["runs"]}
    assert runs["junk.lab.2026-01-01T00-00-00Z.pytomo_database.db"]["problem"] == "cannot be read"
    assert "problem" not in runs[good.name] and runs[good.name]["layout"] == "ours"
    archive = app.request("/archive")
    assert archive.status.startswith("200") and "cannot be read" in archive.data.decode()
