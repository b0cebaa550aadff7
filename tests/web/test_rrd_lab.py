"""RRD files of a lab crawl: kept by the crawler, equal to a rebuild, and the same from the 2015 layout."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import rrdtool

from pytomo.readers.points import run_zone
from pytomo.rrd.metrics import METRICS
from pytomo.rrd.rebuild import rebuild
from pytomo.rrd.store import (
    ARCHIVES,
    HEARTBEAT_S,
    LAYOUT,
    MEASURED_DS,
    STEP_S,
    counts_file,
    range_info,
    rrd_dir_for,
)
from pytomo.web import graphs
from tests.conftest import ROOT
from tests.web.conftest import Server, read_db
from tests.web.legacy import make_2015_database

RESOLUTIONS_S = [steps * STEP_S for steps, _rows in ARCHIVES if steps > 1]  # the 1 s archive ends with the run


def _fetch(path: Path, start: int, end: int, res: int = 60, cf: str = "AVERAGE") -> dict[str, list[float | None]]:
    (_s, _e, step), names, rows = rrdtool.fetch(str(path), cf, "-r", str(res), "-s", str(start), "-e", str(end))
    assert step == res
    return {n: [row[i] for row in rows] for i, n in enumerate(names)}


def _fetch_all(path: Path, start: int, end: int) -> list[tuple[str, int, dict[str, list[float | None]]]]:
    """Every archive (consolidation, resolution) over the run, and every archive of its counts file."""
    return [(cf, res, _fetch(path, start - res, end, res, cf)) for res in RESOLUTIONS_S
            for cf in ("AVERAGE", "MIN", "MAX")] + [
        ("counts", res, _fetch(counts_file(path), start - res, end, res)) for res in RESOLUTIONS_S]


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _same(a: list[float | None], b: list[float | None]) -> bool:
    return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))


def _window(folder: Path) -> tuple[int, int]:
    """From the first to the last point of the run (the files are closed: their last update is later)."""
    info = range_info(folder)
    assert info.first_s is not None and info.last_s
    return int(info.first_s), max(info.last_s.values())


@pytest.fixture(scope="module")
def rebuilt(lab_db, tmp_path_factory):
    """Our database rebuilt into another folder, and a 2015-layout copy rebuilt by the command (IDs read as UTC:
    ``--utc`` is ``--tz UTC``)."""
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
    assert all(info[f"ds[{m.name}].minimal_heartbeat"] == HEARTBEAT_S for m in METRICS)
    conn = read_db(lab_db)
    zone = run_zone(conn)
    conn.close()
    rng = range_info(folder)
    assert rng.layout == LAYOUT and rng.zone == zone and set(rng.last_s) == names  # the crawler closed them


def test_each_minute_holds_the_share_of_its_videos_with_stalls(lab_db):
    folder = rrd_dir_for(lab_db)
    conn = read_db(lab_db)
    rows = conn.execute("SELECT ID, DownloadInterruptions FROM pytomo_crawl WHERE DownloadTime > 0").fetchall()
    conn.close()
    points: list[tuple[int, int | None]] = []  # (second written at, stalls): one per second, the next free one
    for when, stalls in sorted((datetime.fromisoformat(r[0]).replace(tzinfo=UTC).timestamp(), r[1]) for r in rows):
        t = math.ceil(when)
        points.append((max(t, points[-1][0] + 1) if points else t, stalls))
    start, end = _window(folder)
    (s, _e, step), names, data = rrdtool.fetch(str(folder / "service-Lab.rrd"), "AVERAGE", "-r", "60",
                                               "-s", str(start - 60), "-e", str(end))
    assert step == 60 and points
    for k, row in enumerate(data):
        known = [float(n > 0) for t, n in points if s + k * step < t <= s + (k + 1) * step and n is not None]
        assert _close(row[names.index("stalled_videos")], sum(known) / len(known) if known else None), k


def test_live_files_equal_a_rebuild_from_the_database(lab_db, rebuilt):
    ours, _legacy = rebuilt
    live = rrd_dir_for(lab_db)
    start, end = _window(live)
    assert sorted(p.name for p in live.glob("*.rrd")) == ours.files
    assert range_info(live) == range_info(ours.folder)
    known = 0
    for name in ours.files:
        for (cf, res, a), (_cf, _res, b) in zip(_fetch_all(live / name, start, end),
                                                _fetch_all(ours.folder / name, start, end)):
            for m in METRICS:
                assert _same(a[m.name], b[m.name]), (name, m.name, cf, res)
                known += sum(v is not None for v in a[m.name])
            if cf == "counts":
                assert _same(a[MEASURED_DS], b[MEASURED_DS]), (name, res)
    assert known > 100
    series = _fetch(live / "service-Lab.rrd", start - 60, end)
    assert any(v for v in series["start_s"] if v) and any(v for v in series["throughput_2015_bps"] if v)


def test_a_2015_layout_database_gives_the_same_graphs(rebuilt):
    ours, legacy_db = rebuilt
    legacy = rrd_dir_for(legacy_db)
    assert sorted(p.name for p in legacy.glob("*.rrd")) == ours.files
    start, end = _window(ours.folder)
    assert range_info(legacy).zone == "UTC"
    for name in ours.files:
        for (cf, res, a), (_cf, _res, b) in zip(_fetch_all(ours.folder / name, start, end),
                                                _fetch_all(legacy / name, start, end)):
            for m in METRICS:
                if m.shared:
                    assert _same(a[m.name], b[m.name]), (name, m.name, cf, res)
                else:
                    assert all(not v for v in b[m.name]), (name, m.name)  # unknown, or no video counted
            if cf == "counts":
                assert _same(a[MEASURED_DS], b[MEASURED_DS]), (name, res)
    not_recorded = set(range_info(legacy).not_recorded)
    assert {m.name for m in METRICS if not m.shared} <= not_recorded and range_info(legacy).source == "2015"
    for m in METRICS:  # what the 2015 layout does not have says so; the rest is drawn as from our database
        said = _legend(graphs.draw(legacy / "service-Lab.rrd", m.name, "all", "png"))
        assert (graphs.NOT_RECORDED_TEXT in said) == (m.name in not_recorded) and graphs.EMPTY_TEXT not in said


def _legend(drawn: dict) -> list[str]:
    return [v.strip() for k, v in drawn.items() if k.startswith("legend[")]


def test_the_graphs_count_videos_and_say_which_they_leave_out(lab_db):
    """Issue 21: the share of videos with stalls is per video, and the peak throughput graph says how many
    downloads too short for a peak it leaves out (so its mean is not read as the mean of every video)."""
    conn = read_db(lab_db)
    rows = conn.execute("SELECT MaxInstantThp, DownloadInterruptions FROM pytomo_crawl WHERE DownloadTime > 0"
                        ).fetchall()
    conn.close()
    rrd = rrd_dir_for(lab_db) / "service-Lab.rrd"
    peaks = [r[0] for r in rows if r[0] is not None]
    legend = _legend(graphs.draw(rrd, "peak_1s_bps", "all", "png"))
    left = len(rows) - len(peaks)
    assert left, "the lab run has downloads shorter than a second"
    assert (f"{len(peaks)} of {len(rows)} videos; {left} left out: "
            f"{graphs.BY_NAME['peak_1s_bps'].graph.left_out}") in legend
    if peaks:
        assert f"per video: mean {graphs.BY_NAME['peak_1s_bps'].shown(1000 * sum(peaks) / len(peaks))}," in " ".join(
            legend)
    started = [float(r[1] > 0) for r in rows if r[1] is not None]
    share = graphs.BY_NAME["stalled_videos"].shown(100 * sum(started) / len(started))
    assert f"Videos with stalls: {sum(started):.0f} of {len(started)} videos ({share})" in _legend(
        graphs.draw(rrd, "stalled_videos", "all", "png"))


def test_the_server_shows_a_2015_database(rebuilt, tmp_path):
    _ours, legacy_db = rebuilt
    folder = tmp_path / "db"
    shutil.copytree(legacy_db.parent, folder)
    srv = Server(["-d", str(folder)], tmp_path / "cache")
    try:
        main = requests.get(srv.url + "graphs/main", timeout=20).text
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
