"""Every RRD graph's label, unit and axis is checked against the figure's declaration (issue 21).

For every graph of ``pytomo.rrd.metrics.METRICS``, drawn by rrdtool from small RRD files filled here (videos of
a lab-like run: RTTs of 0.05 ms, DNS times of 0.5 ms, throughputs from 800 kbit/s to 1 Gbit/s, ratios from 0.3 to
5000, transfers too short for a peak, videos that never started), and read back from rrdtool's own output (the
legend from ``graphv``, the title, axis labels and lines from the text and strokes of its PDF): the title and
vertical label are the declaration's, the vertical label is the figure's unit, the axis is logarithmic exactly for
throughputs and ratios, a ratio has its line at 1, the axis labels never repeat, the legend's figures are per video
(not per interval), says which videos it leaves out, and says "no video in this span" apart from "not recorded" (a
figure a 2015-layout database does not have).
"""

from __future__ import annotations

import math
import re
import sqlite3
from datetime import UTC, datetime

import pytest
import rrdtool

from pytomo.readers.points import Point
from pytomo.rrd.metrics import METRICS, Metric, in_unit
from pytomo.rrd.rebuild import rebuild
from pytomo.rrd.store import RrdStore, range_info, service_file
from pytomo.web import graphs, views
from tests.unit.rrd_pdf import Stroke, Text, read
from tests.web.legacy import COLUMNS_2013

T0 = 1_790_000_000 - 1_790_000_000 % 21600 + 7  # just after a 6 h boundary
# Ten videos in the first minute, then one every 97 s: an interval's mean is not the mean per video.
TIMES = [T0 + 3 * i for i in range(10)] + [T0 + 60 + 97 * i for i in range(1, 14)]
STALLED = {0, 1, 12}  # videos that stalled: two in the first minute's ten, one later
NOT_STARTED = {5, 20}  # videos whose playback never started: no stall figures
SHORT = {i for i in range(len(TIMES)) if i % 2}  # transfers shorter than a second: no peak
DISPLAY = {"bit / s": "bit/s", "byte": "bytes", "ms": "ms", "s": "s"}  # the figure's unit as an axis says it
LOG_UNITS = {"bit/s", "ratio"}  # throughputs and ratios: one fast server would flatten the rest
SI = {"u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _value(m: Metric, i: int) -> float | None:
    """What video ``i`` holds for ``m``: small and close values (the labels that repeated), wide throughputs."""
    g = m.graph
    if g.share:
        return None if i in NOT_STARTED else float(i in STALLED)
    if m.name in ("stall_count", "stall_s") and i in NOT_STARTED:
        return None
    if m.name == "peak_1s_bps" and i in SHORT:
        return None
    spread = (i * 7919 % 23) / 22  # 0 to 1, every video a different value
    if m.unit == "bit/s":
        return 8e5 * 10 ** (3.1 * spread)  # 800 kbit/s to 1 Gbit/s
    if m.unit == "ratio":
        return 0.3 * 10 ** (4.2 * spread)  # 0.3 to 5000: the ones below 1 matter
    if m.unit == "bytes":
        return 23_000 + 1_300_000 * spread
    if m.unit == "ms":
        return 0.04 + 0.04 * spread  # RTT on loopback
    if m.unit == "s":
        return 0.0004 + 0.0115 * spread  # DNS time, cache server delay
    if m.unit == "stalls":
        return float(i in STALLED) * 2
    return 200.0 + 6 * (i % 2)  # HTTP status


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """The service file of a closed run of our layout holding ``_value`` of every video."""
    folder = tmp_path_factory.mktemp("ours") / "r.rrd"
    store = RrdStore(folder)
    for i, t in enumerate(TIMES):
        assert store.add(Point(t, "Svc", "10.0.0.1", "http://cache", {m.name: _value(m, i) for m in METRICS}))
    store.close()
    return service_file(folder, "Svc")


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """The service file rebuilt from a database of the 2015 layout with the 24 columns of the real 2013 crawls."""
    db = tmp_path_factory.mktemp("legacy") / "h.youtube.pytomo_database.db"
    conn = sqlite3.connect(db)
    conn.execute(f"CREATE TABLE pytomo_crawl_2026_09_21_12_00_07 ({', '.join(f'{c} {t}' for c, t in COLUMNS_2013)})")
    for i, t in enumerate(TIMES):
        row = {c: 1.0 for c, _t in COLUMNS_2013} | {
            "ID": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "Service": "YouTube", "Url": f"http://v/{i}", "CacheUrl": "http://c", "IP": "10.0.0.1", "Resolver": "r",
            "VideoType": "mp4", "RedirectUrl": None, "DownloadTime": 2.0, "DownloadBytes": 500_000 + i,
            "DownloadInterruptions": None if i in NOT_STARTED else int(i in STALLED), "EncodingRate": 800.0}
        conn.execute(f"INSERT INTO pytomo_crawl_2026_09_21_12_00_07 VALUES ({', '.join('?' for _ in row)})",
                     list(row.values()))
    conn.commit()
    conn.close()
    return service_file(rebuild(db, tz="UTC").folder, "YouTube")


def _legend(drawn: dict) -> list[str]:
    return [v.strip() for k, v in sorted(drawn.items(), key=lambda kv: kv[0]) if k.startswith("legend[")]


def _number(label: str) -> float:
    """An axis label's value: ``0.02``, ``1.5 M``, ``100 m``, ``1e+06``."""
    found = re.fullmatch(r"(-?\d+(?:\.\d+)?(?:e[+-]\d+)?)\s*([umkMGT]?)", label.strip())
    assert found, f"not a number: {label!r}"
    return float(found.group(1)) * SI[found.group(2)]


def _fits(points: list[tuple[float, float]], log: bool, info: dict) -> bool:
    """True when the labels stand where an axis of that kind (rrdtool's limits, ``value_min`` to ``value_max``)
    puts their values: the same offset (label baseline to its line) for every label, within a pixel."""
    lo, hi = info["value_min"], info["value_max"]
    top, height = info["graph_top"], info["graph_height"]
    if log and (lo <= 0 or any(v <= 0 for v, _y in points)):
        return False
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    offsets = [y - (top + height - (scale(v) - scale(lo)) / (scale(hi) - scale(lo)) * height) for v, y in points]
    return max(offsets) - min(offsets) <= 1.5


def _parts(drawn: dict) -> tuple[str, str, list[tuple[str, float]], list[Stroke]]:
    """The title, the vertical label, the left axis labels with their heights, and the strokes of a PDF graph."""
    texts, strokes = read(drawn["image"])
    left, top, height = drawn["graph_left"], drawn["graph_top"], drawn["graph_height"]
    title = [t.text for t in texts if not t.turned and t.y < top]
    vertical = [t.text for t in texts if t.turned and t.x < left]
    labels = [(t.text, t.y) for t in texts if _on_axis(t, left, top, height)]
    assert len(title) == 1 and len(vertical) == 1, (title, vertical)
    return title[0], vertical[0], labels, strokes


def _on_axis(t: Text, left: float, top: float, height: float) -> bool:
    return not t.turned and t.x < left and top - 8 <= t.y <= top + height + 8


def _colour(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[k:k + 2], 16) / 255 for k in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.parametrize("m", METRICS, ids=[m.name for m in METRICS])
def test_the_declaration_says_how_the_figure_is_drawn(m):
    g = m.graph
    if m.figure.unit and g.derive is None and g.draw_scale == 1:
        assert m.unit == DISPLAY[m.figure.unit], "the axis is the figure's own unit"
    assert g.log_axis == (m.unit in LOG_UNITS), "throughputs and ratios on a log axis, nothing else"
    assert (g.reference is not None) == (m.unit == "ratio") and (g.reference is None or g.reference[0] == 1.0)
    assert g.share == (m.unit == "%") and (not g.share or g.draw_scale == 100)


@pytest.mark.parametrize("m", METRICS, ids=[m.name for m in METRICS])
def test_every_graph_is_drawn_with_its_declared_title_unit_and_axis(ours, m):
    drawn = graphs.draw(ours, m.name, "all", "pdf")
    title, vertical, labels, strokes = _parts(drawn)
    assert title == m.graph.title and vertical == m.graph.axis
    texts = [text for text, _y in labels]
    assert len(texts) >= 3 and len(set(texts)) == len(texts), f"axis labels repeat or too few: {texts}"
    points = [(_number(text), y) for text, y in labels]
    assert _fits(points, m.graph.log_axis, drawn), f"labels not on a {'log' if m.graph.log_axis else 'linear'} axis"
    assert not _fits(points, not m.graph.log_axis, drawn), "the labels fit the other kind of axis too"
    if not m.graph.log_axis:
        assert min(v for v, _y in points) == 0.0
    reference = [s for s in strokes if s.y0 == s.y1 and all(
        abs(a - b) < 0.01 for a, b in zip(s.colour, _colour(graphs.REFERENCE_COLOUR), strict=True))]
    if m.graph.reference is None:
        assert not reference
        return
    value, meaning = m.graph.reference
    lo, hi = math.log10(drawn["value_min"]), math.log10(drawn["value_max"])
    y = drawn["graph_top"] + drawn["graph_height"] * (1 - (math.log10(value) - lo) / (hi - lo))
    assert any(abs(s.y0 - y) <= 1 and abs(s.x1 - s.x0) >= 0.9 * drawn["graph_width"] for s in reference), (
        f"no line at {value} (y {y:.1f}): {reference}")
    assert f"{value:g}: {meaning}" in _legend(drawn)
    assert drawn["value_min"] <= 0.5 * value and drawn["value_max"] >= 2 * value


@pytest.mark.parametrize("m", METRICS, ids=[m.name for m in METRICS])
def test_the_legend_gives_figures_per_video_and_what_it_leaves_out(ours, m):
    legend = _legend(graphs.draw(ours, m.name, "all", "png"))
    values = [v for i in range(len(TIMES)) if (v := _value(m, i)) is not None]
    left = len(TIMES) - len(values)
    assert legend[-1] == "time axis: UTC" and not any("nan" in v.lower() for v in legend)
    if m.graph.share:
        share = 100 * sum(values) / len(values)
        assert f"{m.label}: {int(sum(values))} of {len(values)} videos ({in_unit(share, '%')})" in legend
        by_interval = [v for v in _interval_means(ours, m) if v is not None]
        assert not math.isclose(share, 100 * sum(by_interval) / len(by_interval), rel_tol=0.01)  # it would differ
    else:
        mean, low, high = (m.scale * x for x in (sum(values) / len(values), min(values), max(values)))
        assert f"per video: mean {m.shown(mean)}, min {m.shown(low)}, max {m.shown(high)}" in legend
    if left:
        assert f"{len(values)} of {len(TIMES)} videos; {left} left out: {m.graph.left_out or 'no value'}" in legend
        assert m.graph.left_out, "a graph that leaves videos out says why"
    else:
        assert f"{len(TIMES)} videos, none left out" in legend


def _interval_means(rrd, m: Metric) -> list[float | None]:
    f = graphs.frame(rrd, "all")
    _t, names, rows = rrdtool.fetch(str(rrd), "AVERAGE", "-r", str(f.step_s), "-s", str(f.start_s),
                                    "-e", str(f.end_s))
    return [row[names.index(m.name)] for row in rows]


@pytest.mark.parametrize("m", METRICS, ids=[m.name for m in METRICS])
def test_no_video_is_not_the_same_as_not_recorded(ours, legacy, m):
    columns = {c for c, _t in COLUMNS_2013}
    unrecorded = not m.shared or isinstance(m.figure.legacy, str) and m.figure.legacy not in columns
    assert (m.name in range_info(legacy.parent).not_recorded) == unrecorded
    said = _legend(graphs.draw(legacy, m.name, "all", "png"))
    if unrecorded:
        assert graphs.NOT_RECORDED_TEXT in said and graphs.EMPTY_TEXT not in said
        assert not any(v.startswith(("per video", m.label + ":")) for v in said)
    else:
        assert graphs.NOT_RECORDED_TEXT not in said and any(v.startswith(("per video", m.label + ":")) for v in said)
    assert graphs.NOT_RECORDED_TEXT not in _legend(graphs.draw(ours, m.name, "all", "png"))
    # a span without a video (the legend of graph_args given none): "no video", unless the figure is not recorded
    for rrd, text in ((ours, graphs.EMPTY_TEXT),
                      (legacy, graphs.NOT_RECORDED_TEXT if unrecorded else graphs.EMPTY_TEXT)):
        empty = _legend(rrdtool.graphv("-", *graphs.graph_args(rrd, m.name, "all", "png", videos=graphs.Videos())))
        other = ({graphs.EMPTY_TEXT, graphs.NOT_RECORDED_TEXT} - {text}).pop()
        assert text in empty and other not in empty


def test_throughputs_are_shown_in_bit_s_with_si_prefixes_everywhere():
    assert in_unit(1_060_807, "bit/s") == "1.06 Mbit/s" and in_unit(1_606_000_000, "bit/s") == "1.61 Gbit/s"
    assert in_unit(999_700, "bit/s") == "1.00 Mbit/s" and in_unit(950, "bit/s") == "950 bit/s"
    assert views.fmt(1_060_807, unit="bit/s") == "1.06 Mbit/s"
    assert views.fmt(1_060_807_000, unit="bit/s") == "1.06 Gbit/s"  # the videos list's 1,060,807 kbit/s of old
    assert views.fmt(None, unit="bit/s") == "–" and views.fmt(2500, unit="bit/s") == "2.50 kbit/s"
    assert in_unit(0.0512, "ms") == "0.0512 ms" and in_unit(14.2857, "%") == "14.3 %"
    assert in_unit(0.85, "ratio") == "0.850" and in_unit(1_344_578, "bytes") == "1.34 MB"
