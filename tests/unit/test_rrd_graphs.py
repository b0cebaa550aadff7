"""Graphs of sparse videos: archives keep them at every resolution, gaps stay gaps, the counts files count every
video, a span whose videos have no value says so, the axis names its zone, files of an old layout ask to be
rebuilt."""

from __future__ import annotations

import json
import os
import time

import pytest
import rrdtool

from pytomo.readers.points import Point
from pytomo.rrd.metrics import METRICS
from pytomo.rrd.store import (
    ARCHIVES,
    COARSEST_S,
    MEASURED_DS,
    STEP_S,
    OutdatedRrd,
    RrdStore,
    counts_file,
    service_file,
)
from pytomo.web import graphs

T0 = 1_790_000_000 - 1_790_000_000 % 21600 + 7  # just after a 6 h boundary
GAPS_S = (30, 45, 90, 180, 240, 300, 420)  # videos every 30 s to every few minutes


def _point(t: float, **values: float) -> Point:
    return Point(t, "Svc", "10.0.0.1", "http://cache", {**{m.name: None for m in METRICS}, **values})


@pytest.fixture
def sparse(tmp_path):
    """A closed run of videos 30 s to 7 minutes apart over two days, with their seconds and values."""
    store = RrdStore(tmp_path / "r.rrd")
    t, k, written = float(T0), 0, []
    while t < T0 + 2 * 86400:
        value = float(k % 7)
        store.add(_point(t, stalled_videos=float(k % 3 == 0), ping_avg_ms=value))
        written.append((int(t) + 1, value))
        t += GAPS_S[k % len(GAPS_S)]
        k += 1
    store.close()
    return service_file(tmp_path / "r.rrd", "Svc"), written


def _fetch(path, cf: str, res: int, start: int, end: int, ds: str = "ping_avg_ms"):
    (s, _e, step), names, rows = rrdtool.fetch(str(path), cf, "-r", str(res), "-s", str(start), "-e", str(end))
    return s, step, [r[names.index(ds)] for r in rows]


@pytest.mark.parametrize("res", [steps * STEP_S for steps, _rows in ARCHIVES if steps > 1])
def test_sparse_videos_show_at_every_resolution_as_their_own_mean_min_and_max(sparse, res):
    path, written = sparse
    rows = dict(ARCHIVES)[res // STEP_S]
    start = max(T0 - res, (written[-1][0] // COARSEST_S + 1) * COARSEST_S - (rows - 1) * res)  # what it holds
    for cf, pick in (("AVERAGE", lambda v: sum(v) / len(v)), ("MIN", min), ("MAX", max)):
        s, step, got = _fetch(path, cf, res, start, written[-1][0])
        assert step == res
        want = [[v for t, v in written if s + k * step < t <= s + (k + 1) * step] for k in range(len(got))]
        assert got == [pick(v) if v else None for v in want], (cf, res)
        assert any(v is not None for v in got)


def test_between_sparse_videos_nothing_is_held(sparse):
    path, written = sparse
    s, step, got = _fetch(path, "AVERAGE", 60, written[-40][0] - 60, written[-1][0])
    minutes = {(t - s - 1) // step for t, _v in written}
    assert all((v is None) == (k not in minutes) for k, v in enumerate(got))
    assert got.count(None) > 5


def test_a_span_whose_videos_have_no_value_says_so_and_why(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    store.add(_point(T0, ping_avg_ms=12.0, throughput_2015_bps=800.0))
    store.add(_point(T0 + 2 * 86400, throughput_2015_bps=900.0))  # no RTT in the last day
    store.close()
    path = service_file(tmp_path / "r.rrd", "Svc")
    f = graphs.frame(path, "day")
    _s, _step, got = _fetch(path, "AVERAGE", f.step_s, f.start_s, f.end_s)
    assert all(v is None for v in got) and graphs.span_is_empty(path, "ping_avg_ms", f)
    v = graphs.span_videos(path, "ping_avg_ms", f)
    assert (v.measured, v.known, v.mean, v.step_s) == (1, 0, None, f.step_s)
    legend = [v for k, v in graphs.draw(path, "ping_avg_ms", "day", "png").items() if k.startswith("legend[")]
    assert legend == ["none of the 1 video in this span has a value: no probe to the cache server answered",
                      "time axis: UTC"]  # a video, without an RTT: not "no video"
    legend = [v for k, v in graphs.draw(path, "ping_avg_ms", "week", "png").items() if k.startswith("legend[")]
    assert "per video: mean 12.0 ms, min 12.0 ms, max 12.0 ms" in legend and graphs.EMPTY_TEXT not in legend
    assert "1 of 2 videos; 1 left out: no probe to the cache server answered" in legend
    legend = [v for k, v in graphs.draw(path, "throughput_2015_bps", "day", "png").items() if k.startswith("legend[")]
    assert "per video: mean 900 bit/s, min 900 bit/s, max 900 bit/s" in legend and not any("nan" in v for v in legend)
    empty = graphs.legend_lines(graphs.BY_NAME["ping_avg_ms"], graphs.Videos(), graphs.range_info(path.parent))
    assert empty == [graphs.EMPTY_TEXT]


def test_counts_hold_every_video_of_every_interval_whatever_its_pace(sparse):
    """The counts file says how many videos each interval holds, at every resolution, even the first interval of the
    file (it starts at a 6 h boundary, all its seconds counted)."""
    path, written = sparse
    first = T0 // COARSEST_S * COARSEST_S  # where the counts file starts
    for steps, rows in ARCHIVES[1:]:
        res = steps * STEP_S
        start = max(first, (written[-1][0] // COARSEST_S + 1) * COARSEST_S - (rows - 1) * res)  # what it holds
        (s, _e, step), names, data = rrdtool.fetch(str(counts_file(path)), "AVERAGE", "-r", str(res),
                                                   "-s", str(start), "-e", str(written[-1][0]))
        got = [r[names.index(MEASURED_DS)] for r in data]
        assert step == res and None not in got
        assert [round(n * step) for n in got] == [sum(s + k * step < t <= s + (k + 1) * step for t, _v in written)
                                                  for k in range(len(got))]
        assert round(sum(got) * step) == sum(s < t <= s + len(got) * step for t, _v in written) > 0


def test_each_drawn_interval_is_a_finest_archive_interval_at_least_a_pixel_wide_covering_the_span():
    steps_rows = {steps * STEP_S: rows for steps, rows in ARCHIVES}
    assert graphs.resolution_s(0, 300 * 86400) == max(steps_rows)  # none is fine enough: the coarsest
    for span_s in (60, 3600, 86400, 7 * 86400, 31 * 86400):
        res = graphs.resolution_s(0, span_s)
        assert res * graphs.WIDTH_PX >= graphs.MIN_BIN_PX * span_s and res * steps_rows[res] >= span_s
        assert all(r >= res or r * graphs.WIDTH_PX < graphs.MIN_BIN_PX * span_s or r * steps_rows[r] < span_s
                   for r in steps_rows)


def test_the_axis_is_drawn_in_the_files_zone_and_the_process_zone_is_restored(tmp_path, monkeypatch):
    store = RrdStore(tmp_path / "r.rrd", zone="Asia/Kolkata")
    store.add(_point(T0, ping_avg_ms=1.0))
    store.close()
    path = service_file(tmp_path / "r.rrd", "Svc")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    seen = []
    real = rrdtool.graphv
    monkeypatch.setattr(rrdtool, "graphv", lambda *a: seen.append(time.strftime("%z")) or real(*a))
    drawn = graphs.draw(path, "ping_avg_ms", "all", "svg")
    assert seen == ["+0530"] and os.environ["TZ"] == "UTC" and time.strftime("%z") == "+0000"
    assert "time axis: Asia/Kolkata" in drawn.values()


def test_files_of_the_old_layout_get_a_notice_not_a_graph(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    store.add(_point(T0, ping_avg_ms=1.0))
    path = service_file(tmp_path / "r.rrd", "Svc")
    (tmp_path / "r.rrd" / "range.json").write_text(json.dumps({"first_s": T0}))  # as the first layout wrote it
    cache = graphs.GraphCache(tmp_path / "cache")
    with pytest.raises(OutdatedRrd) as err:
        cache.get(path, "ping_avg_ms", "all", "png")
    assert "./start_server.py --rebuild-rrd -f DB" in str(err.value)
    image, etag = cache.notice(path, "ping_avg_ms", "png", str(err.value))
    assert image.startswith(b"\x89PNG") and etag
    legend = rrdtool.graphv("-", *graphs.notice_args(path, "ping_avg_ms", "png", str(err.value)))
    assert "--rebuild-rrd" in " ".join(v for k, v in legend.items() if k.startswith("legend["))


def test_a_share_without_stalls_is_drawn_on_a_0_to_100_percent_axis(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    for i in range(5):
        store.add(_point(T0 + 60 * i, stalled_videos=0.0))
    store.close()
    path = service_file(tmp_path / "r.rrd", "Svc")
    info = graphs.draw(path, "stalled_videos", "hour", "png")
    assert (info["value_min"], info["value_max"]) == (0.0, 100.0)  # not rrdtool's 0-1.1 autoscale of zeros
