"""Graphs that tell the truth, on the real 2013 crawls: per-interval values equal the database's rows, gaps stay gaps,
an empty span says so, every graph names the zone of its time axis, and 2015 local times are read in the zone given."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import rrdtool

from pytomo.rrd.store import ARCHIVES, STEP_S, rrd_dir_for
from pytomo.web import graphs
from tests.conftest import ROOT
from tests.web.legacy import REAL_2013 as REAL
from tests.web.legacy import real_2013_database as _database

PARIS = ZoneInfo("Europe/Paris")
RESOLUTIONS_S = [steps * STEP_S for steps, _rows in ARCHIVES if steps > 1]  # the 1 s archive ends with the run

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="the 2013 crawls are not in ../shared/pytomo2013")


def _rebuild(folder: Path, *zone: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "start_server.py"), "--rebuild-rrd", "-d", str(folder), *zone],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("2015 layout") == 2


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, list[Path]]:
    """The two 2013 crawls, rebuilt with ``--tz Europe/Paris`` and without a zone."""
    out: dict[str, list[Path]] = {}
    for name, zone in (("paris", ("--tz", "Europe/Paris")), ("floating", ())):
        folder = tmp_path_factory.mktemp(name)
        out[name] = [_database(dump, folder) for dump in sorted(REAL.glob("aggregation_*.txt"))]
        _rebuild(folder, *zone)
    return out


def _rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{table}" WHERE DownloadTime > 0 ORDER BY ID')]
    conn.close()
    return rows


def _seconds(rows: list[dict], zone: tzinfo) -> list[int]:
    """The second each row is written at (the end of its second; one per second, the next free one)."""
    out: list[int] = []
    for r in rows:
        t = math.ceil(datetime.fromisoformat(r["ID"]).replace(tzinfo=zone).timestamp())
        out.append(max(t, out[-1] + 1) if out else t)
    return out


def _stalled(r: dict) -> float | None:
    n = r["DownloadInterruptions"]
    return None if n is None else float(n > 0)


def _thp_bps(r: dict) -> float | None:
    return r["DownloadBytes"] * 8 / r["DownloadTime"] if r["DownloadBytes"] is not None else None


def _truth(rows: list[dict], seconds: list[int], value: Callable[[dict], float | None], start: int, step: int,
           count: int) -> list[float | None]:
    """Per interval ``(start + k step, start + (k + 1) step]``: the mean of the videos in it, None without one."""
    bins: list[list[float]] = [[] for _ in range(count)]
    for r, t in zip(rows, seconds):
        k = (t - start - 1) // step
        v = value(r)
        if 0 <= k < count and v is not None:
            bins[k].append(v)
    return [sum(b) / len(b) if b else None for b in bins]


def _close(a: list[float | None], b: list[float | None]) -> bool:
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9))
        for x, y in zip(a, b))


def _service(db: Path) -> Path:
    return rrd_dir_for(db) / "service-YouTube.rrd"


@pytest.mark.parametrize("ds, value", [("stalled_videos", _stalled), ("throughput_2015_bps", _thp_bps)])
def test_every_archive_interval_is_the_mean_of_its_own_videos(real, ds, value):
    stalled = [_stalled(r) for db in real["paris"] for r in _rows(db)]
    assert 0 < stalled.count(1.0) < stalled.count(1.0) + stalled.count(0.0)  # stalls in some videos, not all
    for db in real["paris"]:
        rows = _rows(db)
        seconds = _seconds(rows, PARIS)
        for res in RESOLUTIONS_S:
            (start, _end, step), names, data = rrdtool.fetch(
                str(_service(db)), "AVERAGE", "-r", str(res), "-s", str(seconds[0] - res), "-e", str(seconds[-1]))
            assert step == res
            got = [row[names.index(ds)] for row in data]
            assert _close(got, _truth(rows, seconds, value, start, step, len(data))), (db.name, res)
            if res == 60:
                assert got.count(None) > len(got) / 3  # the gaps between sparse videos stay gaps
            assert any(v is not None for v in got)


def test_min_and_max_are_the_extreme_videos_of_each_interval(real):
    db = real["paris"][0]
    rows, res = _rows(db), 300
    seconds = _seconds(rows, PARIS)
    for cf, pick in (("MIN", min), ("MAX", max)):
        (start, _end, step), names, data = rrdtool.fetch(
            str(_service(db)), cf, "-r", str(res), "-s", str(seconds[0] - res), "-e", str(seconds[-1]))
        want = [pick(v) if v else None for v in (
            [_thp_bps(r) for r, t in zip(rows, seconds) if start + k * step < t <= start + (k + 1) * step]
            for k in range(len(data)))]
        assert _close([row[names.index("throughput_2015_bps")] for row in data], want)


def _xport(rrd: Path, ds: str, f: graphs.Frame) -> tuple[int, int, list[float | None]]:
    out = rrdtool.xport("--start", str(f.start_s), "--end", str(f.end_s), "--step", str(f.step_s),
                        f"DEF:x={rrd}:{ds}:AVERAGE", "XPORT:x")
    return out["meta"]["start"], out["meta"]["step"], [row[0] for row in out["data"]]


@pytest.mark.parametrize("span", ["hour", "day", "week", "month", "all"])
def test_the_graph_draws_the_true_share_of_stalled_videos(real, span):
    db = real["paris"][1]
    rrd, rows = _service(db), _rows(db)
    seconds = _seconds(rows, PARIS)
    f = graphs.frame(rrd, span)
    start, step, got = _xport(rrd, "stalled_videos", f)
    want = _truth(rows, seconds, _stalled, start, step, len(got))
    assert step == f.step_s and _close(got, want)
    drawn = graphs.draw(rrd, "stalled_videos", span, "png")
    legend = [v for k, v in drawn.items() if k.startswith("legend[")]
    shown = [(r, t) for r, t in zip(rows, seconds) if start < t <= start + len(got) * step]  # the drawn intervals
    started = [_stalled(r) for r, _t in shown if _stalled(r) is not None]
    share = graphs.BY_NAME["stalled_videos"].shown(100 * sum(started) / len(started))
    assert f"Videos with stalls: {sum(started):.0f} of {len(started)} videos ({share})" in legend  # per video
    left = len(shown) - len(started)
    assert (f"{len(started)} of {len(shown)} videos; {left} left out: no value recorded" if left
            else f"{len(shown)} videos, none left out") in legend
    assert "time axis: Europe/Paris" in legend and not any("nan" in v.lower() for v in legend)


def test_a_figure_the_2013_crawls_did_not_record_says_not_recorded_not_no_video(real):
    db = real["paris"][0]
    rrd = _service(db)
    f = graphs.frame(rrd, "all")
    (_s, _e, _step), names, data = rrdtool.fetch(str(rrd), "AVERAGE", "-r", str(f.step_s), "-s", str(f.start_s),
                                                 "-e", str(f.end_s))
    # new in this version (start_s), not a column of the 2013 tables (dns_s), never filled then (initial_buffer_s)
    for name in ("start_s", "dns_s", "initial_buffer_s"):
        assert all(row[names.index(name)] is None for row in data)
        legend = [v for k, v in graphs.draw(rrd, name, "all", "svg").items() if k.startswith("legend[")]
        assert graphs.NOT_RECORDED_TEXT in legend and graphs.EMPTY_TEXT not in legend
        assert not any("nan" in v.lower() or v.startswith("per video") for v in legend)
    full = [v for k, v in graphs.draw(rrd, "ping_avg_ms", "all", "svg").items() if k.startswith("legend[")]
    assert graphs.NOT_RECORDED_TEXT not in full and graphs.EMPTY_TEXT not in full
    assert any(v.startswith("per video: mean ") and v.endswith(" ms") for v in full)


def test_throughput_and_ratio_graphs_have_a_log_axis(real):
    rrd = _service(real["paris"][0])
    for name, m in graphs.BY_NAME.items():
        args = graphs.graph_args(rrd, name, "all", "png")
        assert ("--logarithmic" in args) == (m.unit in ("bit/s", "ratio")), name
    assert "--logarithmic" in graphs.graph_args(rrd, "throughput_2015_bps", "day", "png")
    assert graphs.draw(rrd, "throughput_2015_bps", "all", "png")["image"].startswith(b"\x89PNG")


def test_2015_local_times_are_read_in_the_zone_given_or_kept_floating(real):
    for paris, floating in zip(real["paris"], real["floating"]):
        first_id = _rows(paris)[0]["ID"]  # a known local wall time of the volunteer (Ivry and Marseille: Paris)
        instant = math.ceil(datetime.fromisoformat(first_id).replace(tzinfo=PARIS).timestamp())
        wall = math.ceil(datetime.fromisoformat(first_id).replace(tzinfo=UTC).timestamp())
        p_range = json.loads((rrd_dir_for(paris) / "range.json").read_text())
        f_range = json.loads((rrd_dir_for(floating) / "range.json").read_text())
        assert (p_range["first_s"], p_range["zone"]) == (instant, "Europe/Paris")
        assert (f_range["first_s"], f_range["zone"]) == (wall, None) and wall - instant == 3600  # CET: UTC+1
        minute = (instant // 60 + 1) * 60
        a = rrdtool.fetch(str(_service(paris)), "AVERAGE", "-r", "60", "-s", str(minute - 60), "-e", str(minute))
        b = rrdtool.fetch(str(_service(floating)), "AVERAGE", "-r", "60", "-s", str(minute + 3540),
                          "-e", str(minute + 3600))
        rows = _rows(paris)
        pings = [r["PingAvg"] for r, t in zip(rows, _seconds(rows, PARIS)) if minute - 60 < t <= minute]
        assert a[2][0] == b[2][0] and a[2][0][a[1].index("ping_avg_ms")] == sum(pings) / len(pings)
        assert graphs.frame(_service(paris), "all").label == "Europe/Paris"
        assert graphs.frame(_service(floating), "all").label == "local, zone unknown"
        assert graphs.frame(_service(floating), "all", tz="Europe/Paris").label == "Europe/Paris"
        legend = [v for k, v in graphs.draw(_service(floating), "ping_avg_ms", "all", "png").items()
                  if k.startswith("legend[")]
        assert "time axis: local, zone unknown" in legend and not any("UTC" in v for v in legend)


def test_the_rebuild_refuses_local_and_unknown_zones(real, tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(real["paris"][0], folder)
    for zone, said in ((["--local"], "--tz ZONE"), (["--tz", "Nowhere/Atlantis"], "'Nowhere/Atlantis'")):
        proc = subprocess.run([sys.executable, "-m", "pytomo.rrd", "-d", str(folder), *zone], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and said in proc.stderr
    assert not list(folder.glob("*.rrd"))
