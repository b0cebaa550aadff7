"""RRD files of a lab crawl: kept by the crawler, equal to a rebuild, and the same from the 2015 layout."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import rrdtool

from pytomo.rrd.metrics import METRICS
from pytomo.rrd.rebuild import rebuild
from pytomo.rrd.store import rrd_dir_for
from tests.conftest import ROOT
from tests.web.conftest import Server, read_db
from tests.web.legacy import make_2015_database


def _fetch(path: Path, start: int, end: int) -> dict[str, list[float | None]]:
    (_s, _e, _step), names, rows = rrdtool.fetch(str(path), "AVERAGE", "-r", "1", "-s", str(start), "-e", str(end))
    return {n: [row[i] for row in rows] for i, n in enumerate(names)}


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _same(a: list[float | None], b: list[float | None]) -> bool:
    return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))


def _window(folder: Path) -> tuple[int, int]:
    last = max(rrdtool.last(str(p)) for p in folder.glob("*.rrd"))
    return last - 600, last


@pytest.fixture(scope="module")
def rebuilt(lab_db, tmp_path_factory):
    """Our database rebuilt into another folder, and a 2015-layout copy rebuilt by the command (IDs read as UTC)."""
    out = tmp_path_factory.mktemp("rebuilt")
    ours = rebuild(lab_db, folder=out / "ours.rrd")
    legacy_db = make_2015_database(lab_db, out / "legacy")
    proc = subprocess.run([sys.executable, str(ROOT / "start_server.py"), "--rebuild-rrd", "-f", str(legacy_db),
                           "--utc"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2015 layout" in proc.stdout
    return ours, legacy_db


def test_crawler_keeps_service_and_server_files(lab_db):
    folder = rrd_dir_for(lab_db)
    conn = read_db(lab_db)
    servers = {r[0] for r in conn.execute("SELECT address FROM downloads WHERE transfer_s > 0")}
    conn.close()
    names = {p.name for p in folder.glob("*.rrd")}
    assert "service-Lab.rrd" in names
    assert {f"server-{s}.rrd" for s in servers} <= names
    info = rrdtool.info(str(folder / "service-Lab.rrd"))
    assert info["step"] == 1 and {f"ds[{m.name}].type" for m in METRICS} <= set(info)
    assert all(info[f"ds[{m.name}].type"] == "GAUGE" for m in METRICS)


def test_live_files_equal_a_rebuild_from_the_database(lab_db, rebuilt):
    ours, _legacy = rebuilt
    live = rrd_dir_for(lab_db)
    start, end = _window(live)
    assert sorted(p.name for p in live.glob("*.rrd")) == ours.files
    known = 0
    for name in ours.files:
        a, b = _fetch(live / name, start, end), _fetch(ours.folder / name, start, end)
        for m in METRICS:
            assert _same(a[m.name], b[m.name]), (name, m.name)
            known += sum(v is not None for v in a[m.name])
    assert known > 100
    series = _fetch(live / "service-Lab.rrd", start, end)
    assert any(v for v in series["start_s"] if v) and any(v for v in series["avg_thp_kbps"] if v)


def test_a_2015_layout_database_gives_the_same_graphs(rebuilt):
    ours, legacy_db = rebuilt
    legacy = rrd_dir_for(legacy_db)
    assert sorted(p.name for p in legacy.glob("*.rrd")) == ours.files
    start, end = _window(ours.folder)
    for name in ours.files:
        a, b = _fetch(ours.folder / name, start, end), _fetch(legacy / name, start, end)
        for m in METRICS:
            if m.shared:
                assert _same(a[m.name], b[m.name]), (name, m.name)
            else:
                assert all(v is None for v in b[m.name]), (name, m.name)


def test_the_server_shows_a_2015_database(rebuilt, tmp_path):
    _ours, legacy_db = rebuilt
    folder = tmp_path / "db"
    shutil.copytree(legacy_db.parent, folder)
    srv = Server(["-d", str(folder)], tmp_path / "cache")
    try:
        main = requests.get(srv.url, timeout=20).text
        assert "2015 layout" in main and legacy_db.name in main
        graphs = re.findall(r'<img src="(/graph/[^"]+)"', main)
        assert graphs
        png = requests.get(srv.url + graphs[0][1:].replace("&amp;", "&"), timeout=20)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        videos = requests.get(srv.url + "videos", timeout=20).text
        first = re.search(r'href="(/video/\d+\?db=[0-9a-f]+)"', videos).group(1)
        row = requests.get(srv.url + first[1:], timeout=20)
        assert row.status_code == 200 and "DownloadTime" in row.text
    finally:
        srv.stop()
