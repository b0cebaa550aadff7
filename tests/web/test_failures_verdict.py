"""Failures reach the verdict: each failing cache server has its line with its failure kinds, and the line's link
lists exactly its failed videos; on a lab run with scripted faults (checked against SQL) and on the real 2013
crawls (rows with neither a download nor a redirection)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytomo.readers.observations import file_label
from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog
from tests.web.legacy import REAL_2013, real_2013_database


def _app(folder: Path, tmp_path: Path, tz: str | None = None) -> Any:
    return make_app(Site(Catalog(folder), cache_dir=tmp_path / "cache", tz=tz))


def _get(app: Any, path: str) -> str:
    answer = app.request(path)
    assert answer.status.startswith("200"), (path, answer.status, answer.data[:300])
    return answer.data.decode()


def _listed(app: Any, path: str) -> set[int]:
    """Every video the videos list links to, over all its pages."""
    ids: set[int] = set()
    number = 1
    while True:
        page = _get(app, f"{path}&page={number}")
        ids |= {int(i) for i in re.findall(r'href="/video/(\d+)\?', page)}
        if "next →" not in page:
            return ids
        number += 1


def _failed_by_sql(db: Path) -> dict[str, dict[int, str]]:
    """Per address (the download's, else the last hop's): the failed videos and their stage/kind."""
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    out: dict[str, dict[int, str]] = {}
    for vid, error, address in conn.execute(
            "SELECT v.id, v.error_stage || '/' || v.error_kind, coalesce("
            " (SELECT d.address FROM downloads d WHERE d.video_row_id = v.id ORDER BY d.id LIMIT 1),"
            " (SELECT h.address FROM hops h WHERE h.video_row_id = v.id AND h.address IS NOT NULL"
            "  ORDER BY h.hop_index DESC LIMIT 1)) FROM videos v WHERE v.status != 'ok'"):
        out.setdefault(address, {})[vid] = error
    conn.close()
    return out


def test_the_verdict_names_each_failing_server_and_lists_its_videos(lab_db, tmp_path):
    failed = _failed_by_sql(lab_db)
    assert len(failed) >= 7  # the scripted faults: 404, 403, 500, a loop, reset, short body, HTML, TLS
    app = _app(lab_db.parent, tmp_path)
    doc = json.loads(_get(app, "/api/v1/verdict?span=all"))
    rows = {r["ident"]: r for r in doc["rows"] if r["kind"] == "server"}
    overview = _get(app, "/?span=all")
    for address, videos in failed.items():
        row = rows[address]
        assert row["failures"] == dict(Counter(videos.values())), address
        assert row["level"] in ("warn", "bad") and row["levels"]["failed_share"] in ("warn", "bad")
        for kind in videos.values():
            assert kind in row["sentence"]
        src = f"server-{file_label(address)}"
        link = f"/videos?db={doc['run']['id']}&amp;src={src}&amp;span=all&amp;outcome=failed"
        assert link in overview  # the alert links to the list of its videos
        assert _listed(app, link.replace("&amp;", "&")) == set(videos), address
        api = json.loads(_get(app, f"/api/v1/videos?src={src}&span=all&outcome=failed"))
        assert {v["id"] for v in api["videos"]} == set(videos)
    service = next(r for r in doc["rows"] if r["kind"] == "service")
    assert sum(service["failures"].values()) == sum(len(v) for v in failed.values()) == service["counts"]["errors"]
    families = {f.name: f for f in text_string_to_metric_families(_get(app, "/metrics"))}
    by_server = Counter()
    for s in families["pytomo_videos_failed"].samples:
        if s.labels["scope"] == "server":
            by_server[s.labels["name"]] += s.value
    assert by_server == Counter({a: len(v) for a, v in failed.items()})
    ok = _get(app, "/videos?span=all&outcome=failed&src=server-nowhere")
    assert "0 videos" in ok
    bad = app.request("/videos?outcome=<b>")
    assert bad.status.startswith("400") and b"<b>" not in bad.data


@pytest.mark.skipif(not REAL_2013.is_dir(), reason="the 2013 crawls are not in ../shared/pytomo2013")
def test_failed_2013_rows_are_counted_and_shown(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    dump = sorted(REAL_2013.glob("aggregation_*IVRY*.txt"))[0]
    db = real_2013_database(dump, folder)
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    failed: dict[str, set[int]] = {}
    for rowid, ip in conn.execute(f'SELECT rowid, IP FROM "{table}" WHERE coalesce(DownloadTime, 0) <= 0'
                                  " AND RedirectUrl IS NULL"):
        failed.setdefault(ip, set()).add(rowid)
    redirected = conn.execute(f'SELECT count(*) FROM "{table}" WHERE RedirectUrl IS NOT NULL').fetchone()[0]
    conn.close()
    assert failed and redirected  # 4 failed rows and 3 redirections in the Ivry crawl
    app = _app(folder, tmp_path, tz="Europe/Paris")
    doc = json.loads(_get(app, "/api/v1/verdict?span=all"))
    rows = {r["ident"]: r for r in doc["rows"] if r["kind"] == "server"}
    for ip, rowids in failed.items():
        assert rows[ip]["failures"] == {"download/no_download": len(rowids)}
        assert rows[ip]["level"] in ("warn", "bad")  # no longer "100.0 %" in green
        listed = _listed(app, f"/videos?src=server-{file_label(ip)}&span=all&outcome=failed")
        assert listed == rowids
    service = next(r for r in doc["rows"] if r["kind"] == "service")
    assert service["counts"]["errors"] == sum(len(v) for v in failed.values())
    assert service["level"] != "good"
    every = _listed(app, "/videos?span=all")
    assert set().union(*failed.values()) <= every  # failed rows are on the videos list
