"""The charts (issue 21, second pass): each interval's numbers on hover and focus, the verdict's thresholds as lines,
a loss legend in words, plays told apart without colour, charts inline in the pages, and a video's charts."""

from __future__ import annotations

import html
import itertools
import math
import random
import re
import time
from html.parser import HTMLParser

import pytest
import requests

from pytomo.figures import RATIO, RTT, START
from pytomo.readers.verdict import Bin, shown, spread_of
from pytomo.rrd.metrics import in_unit
from pytomo.web import svg, timecharts
from pytomo.zones import Clock
from tests.web.conftest import read_db

T0 = 1_700_000_000.0
PARIS = Clock("Europe/Paris")


def _bins(rtt_ms: float = 100.0, start_s: float = 3.0, ratio: float = 1.2, n: int = 12) -> list[Bin]:
    """Hourly intervals whose figures wander around the given values, with every loss step and some stalls."""
    rnd = random.Random(7)
    out = []
    for i in range(n):
        s = spread_of([])
        played = 2 + i % 5
        stalled, not_started = i % 3, i % 2
        loss = (0.0, 0.02, 0.07, 0.15, 0.4)[i % 5]
        m, r, q = start_s * rnd.uniform(0.3, 2.0), ratio * rnd.uniform(0.6, 2.0), rtt_ms * rnd.uniform(0.3, 1.7)
        s.update(videos=played + 1, played=played, stalled=stalled, not_started=not_started,
                 smooth=played - stalled - not_started, errors=1,
                 start_p10_s=m / 2, start_median_s=m, start_p90_s=m * 1.6,
                 ratio_p10=r * 0.6, ratio_median=r, ratio_p90=r * 2,
                 rtt_min_ms=q * 0.8, rtt_median_ms=q, rtt_max_ms=q * 1.5, probes_sent=40,
                 probes_lost=round(40 * loss), loss_share=round(40 * loss) / 40)
        out.append(Bin(T0 + 3600 * i, T0 + 3600 * (i + 1), s))
    return out


def _draw(name: str, bins: list[Bin], clock: Clock = PARIS) -> str:
    return timecharts.CHARTS[name][1](bins, clock)


def _y_ticks(doc: str, x: int = timecharts.LEFT - 4) -> list[tuple[float, float]]:
    """The y axis' labels: ``(value, pixel y)`` (each label is written 4 px below its grid line)."""
    return [(float(v), float(y) - 4)
            for y, v in re.findall(rf'<text x="{x}" y="([0-9.]+)" text-anchor="end">([^<]+)<', doc)]


def _value_at(doc: str, y: float, log: bool, x: int = timecharts.LEFT - 4) -> float:
    """The value the y axis gives at pixel ``y``, read from two of its labels."""
    (v0, y0), (v1, y1) = _y_ticks(doc, x)[0], _y_ticks(doc, x)[-1]
    if log:
        return 10 ** (math.log10(v0) + (y - y0) / (y1 - y0) * (math.log10(v1) - math.log10(v0)))
    return v0 + (y - y0) / (y1 - y0) * (v1 - v0)


def _thresholds(doc: str) -> dict[float, tuple[str, float, str]]:
    """Each threshold line: value -> (level, pixel y, its label)."""
    found = re.findall(r'<g class="threshold" data-value="([^"]+)" data-level="(\w+)"><line [^>]*y1="([0-9.]+)"'
                       r'[^>]*/><text [^>]*>([^<]+)</text></g>', doc)
    return {float(v): (level, float(y), html.unescape(words)) for v, level, y, words in found}


@pytest.mark.parametrize(("name", "agg", "unit", "log", "bins"), [
    ("start", START, " s", False, _bins(start_s=3.0)),
    ("rtt", RTT, " ms", False, _bins(rtt_ms=100.0)),
    ("ratio", RATIO, "", True, _bins(ratio=1.2)),
])
def test_threshold_lines_stand_at_the_declared_values_and_say_what_they_mean(name, agg, unit, log, bins):
    doc = _draw(name, bins)
    lines = _thresholds(doc)
    t = agg.threshold
    assert set(lines) == {t.good, t.bad}, "one line per declared limit, none other"
    side = "below" if t.higher_is_better else "above"
    for value, (level, y, words) in lines.items():
        assert _value_at(doc, y, log) == pytest.approx(value, rel=0.02), "on the axis at its value"
        assert level == ("warn" if value == t.good else "bad")
        assert words == f"{'warning' if level == 'warn' else 'bad'} {side} {value:g}{unit}"


def test_thresholds_far_above_the_values_are_named_not_drawn():
    doc = _draw("rtt", _bins(rtt_ms=0.05))  # a loopback's RTT: the 50 and 150 ms lines would flatten it
    assert _thresholds(doc) == {}
    note = re.search(r'<text class="threshold-off"[^>]*data-values="([^"]+)">([^<]+)<', doc)
    assert note and {float(v) for v in note.group(1).split()} == {RTT.threshold.good, RTT.threshold.bad}
    assert f"warning above {RTT.threshold.good:g} ms" in note.group(2)
    assert max(v for v, _y in _y_ticks(doc)) < 1


def _groups(doc: str) -> list[tuple[dict[str, str], str]]:
    """Each interval's group: its data-* attributes and its title."""
    return [(dict(re.findall(r'data-([a-z0-9-]+)="([^"]*)"', attrs)), html.unescape(title))
            for attrs, title in re.findall(r'<g class="bin"([^>]*)><title>([^<]*)</title>', doc)]


def test_every_interval_takes_the_focus_and_holds_its_numbers():
    bins = _bins()
    clock = PARIS
    for name in timecharts.CHARTS:
        doc = _draw(name, bins, clock)
        groups = _groups(doc)
        assert len(groups) == len(bins) == doc.count('tabindex="0"')
        assert doc.count('attributeName="visibility" to="visible"') == len(bins)  # the box shown on focus/hover
        for (data, title), b in zip(groups, bins, strict=True):
            s = b.spread
            assert title.startswith(clock.show(b.start_s) + " to ")
            assert float(data["start"]) == pytest.approx(b.start_s)
            if name == "plays":
                assert f"{s['played']} videos played of {s['videos']}" in title
                assert f"stalled {s['stalled']}, did not start {s['not_started']}" in title
            elif name == "start":
                assert f"median {shown(s['start_median_s'], 's')}" in title
                assert f"{shown(s['start_p10_s'], 's')} to {shown(s['start_p90_s'], 's')}" in title
            elif name == "ratio":
                assert f"median {shown(s['ratio_median'], 'ratio')}" in title
            else:
                assert f"median {shown(s['rtt_median_ms'], 'ms')}" in title
                assert f"{s['probes_lost']} of {s['probes_sent']} probes" in title


def test_stalled_is_hatched_and_every_colour_has_its_words():
    doc = _draw("plays", _bins())
    hatch = re.search(r'<pattern id="([a-z_]+)"', doc).group(1)
    legend = doc.split('<g class="legend">')[1].split("\n</g>\n")[0]
    words = re.findall(r"<text [^>]*>([^<]+)</text>", legend)
    assert words == ["without a stall: solid blue", "stalled: hatched orange", "did not start: light grey"]
    assert f'fill="url(#{hatch})"' in legend
    bars = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="([^"]+)"', doc)
    assert f"url(#{hatch})" in bars and timecharts.STALLED not in bars  # stalled bars are all hatched
    rtt = _draw("rtt", _bins())
    legend = rtt.split('<g class="legend">')[1].split("\n</g>\n")[0]
    assert re.findall(r"<text [^>]*>([^<]+)</text>", legend)[2:] == [
        "probe loss, bar on top:", "green: under 5 %", "blue: 5 to 10 %", "purple: 10 to 25 %", "red: 25 % or more"]
    bars = re.findall(r'<rect class="loss" [^>]*height="([^"]+)" fill="([^"]+)" data-loss="([^"]+)"', rtt)
    assert len(bars) == 12
    for height, fill, loss in bars:  # Smokeping's steps: green 0, blue from 5 %, purple from 10 %, red from 25 %
        step = sum(float(loss) >= limit for limit in (0.05, 0.10, 0.25))
        _limit, colour, words, tall = timecharts.LOSS_STEPS[step]
        assert fill == colour and words.startswith(("green", "blue", "purple", "red")[step])
        assert float(height) == tall and f'fill="{colour}"/></g>' in legend
    assert sorted({float(h) for h, _f, _l in bars}) == [2, 4, 6, 8], "more loss, a taller bar"


# Machado, Oliveira and Fernandes (2009), severity 1, on linear RGB
CVD = {"deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                        (-0.011820, 0.042940, 0.968881)),
       "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                      (-0.003882, -0.048116, 1.051998))}


def _lab(colour: str, matrix=((1, 0, 0), (0, 1, 0), (0, 0, 1))) -> tuple[float, float, float]:
    def linear(c: int) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    rgb = [linear(int(colour[i:i + 2], 16)) for i in (1, 3, 5)]
    r, g, b = (min(max(sum(m * v for m, v in zip(row, rgb, strict=True)), 0.0), 1.0) for row in matrix)
    x, y, z = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, \
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _closest(colours: list[str], matrix) -> float:
    return min(math.dist(_lab(a, matrix), _lab(b, matrix)) for a, b in itertools.combinations(colours, 2))


def test_palettes_stay_apart_under_deuteranopia_and_protanopia():
    plays = [timecharts.SMOOTH, timecharts.STALLED, timecharts.NOT_STARTED]
    loss = [colour for _l, colour, _w, _h in timecharts.LOSS_STEPS]
    for matrix in CVD.values():
        assert _closest(plays, matrix) >= 40  # CIE76 distance: far apart, hatching aside
        assert _closest(loss, matrix) >= 25
    assert _closest(["#2E8B57", "#C0392B"], CVD["deuteranopia"]) < 30  # the old green and red: one olive


def test_a_video_without_samples_says_no_data_on_a_sane_axis():
    doc = svg.throughput([], None, None)
    assert ">no data<" in doc
    x_labels = re.findall(r'text-anchor="middle">([0-9.e-]+)</text>', doc)
    assert x_labels[0] == "0" and x_labels[-1] == "1" and not any("e" in t for t in x_labels)
    one = svg.throughput([(0.0, 13840.0)], None, 0.1)  # one bin of 173 bytes: drawn, from 0 to 0.1 s
    assert ">no data<" not in one and "<polyline" in one and ">0.1</text>" in one


def test_the_throughput_chart_has_the_encoding_rate_in_bits_per_second():
    series = [(0.1 * i, 3.0e6) for i in range(20)]
    doc = svg.throughput(series, 994_363.0, 0.1)
    assert ">Mbit/s<" in doc and "kbit/s<" not in doc.split("encoding rate")[0]
    ref = re.search(r'<g class="reference" data-value="([^"]+)"><line [^>]*y1="([0-9.]+)"[^>]*/><text [^>]*>'
                    r'([^<]+)</text></g>', doc)
    assert ref and float(ref.group(1)) == pytest.approx(0.994363)
    assert ref.group(3) == f"encoding rate {in_unit(994_363.0, 'bit/s')}" == "encoding rate 994 kbit/s"
    assert _value_at(doc, float(ref.group(2)), False, svg.LEFT - 4) == pytest.approx(0.994363, rel=0.02)


ALLOWED = {"svg", "title", "desc", "defs", "pattern", "rect", "line", "text", "g", "set", "polyline", "circle"}


class _Inline(HTMLParser):
    """The elements inside each inline ``<svg>`` of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.charts, self.elements, self.images = 0, 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        if tag == "svg":
            self.charts += self.depth == 0
            self.depth += 1
        if self.depth:
            self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.depth -= 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.depth -= 1


def _inline(page: str) -> _Inline:
    p = _Inline()
    p.feed(page)
    return p


def test_the_overview_and_the_history_draw_their_charts_inline_and_safe(server, lab_db):
    srv, _before, _cache = server
    for path, chart in (("", "overview"), ("history", "history")):
        page = requests.get(srv.url + path, params={"span": "all"}, timeout=30).text
        found = _inline(page)
        assert found.charts == 4 and not any("/overview/" in i or "/history/" in i for i in found.images)
        assert {tag for tag, _a in found.elements} <= ALLOWED, "nothing but drawing: no script, link or object"
        assert not any(k.startswith("on") or "href" in k or k == "style" for _t, a in found.elements for k in a)
        for name in timecharts.CHARTS:
            alone = requests.get(srv.url + f"{chart}/{name}.svg", params={"span": "all"}, timeout=30)
            assert alone.status_code == 200 and alone.headers["Content-Type"] == "image/svg+xml"
            assert alone.text in page, "the page draws the same document as its URL serves"
            assert f'href="/{chart}/{name}.svg?' in page


def test_the_server_charts_carry_thresholds_titles_and_legends(server, lab_db):
    srv, _before, _cache = server
    docs = {name: requests.get(srv.url + f"overview/{name}.svg", params={"span": "all"}, timeout=30).text
            for name in timecharts.CHARTS}
    for name, agg in (("start", START), ("rtt", RTT), ("ratio", RATIO)):  # each limit drawn, or named above
        off = re.search(r'data-values="([^"]+)"', docs[name])
        drawn = set(_thresholds(docs[name])) | ({float(v) for v in off.group(1).split()} if off else set())
        assert drawn == {agg.threshold.good, agg.threshold.bad}, name
    assert set(_thresholds(docs["ratio"])) == {RATIO.threshold.good, RATIO.threshold.bad}  # a log axis holds both
    groups = _groups(docs["plays"])
    assert groups and sum(int(d["played"]) for d, _t in groups) > 0
    for data, title in groups:
        if int(data["videos"]):
            assert f"played of {data['videos']}" in title
    for data, title in _groups(docs["rtt"]):
        if data["probes-sent"] not in ("", "0"):
            assert f"{data['probes-lost']} of {data['probes-sent']} probes" in title
    assert "stalled: hatched orange" in docs["plays"] and "green: under 5 %" in docs["rtt"]


def _error_video_without_download(db) -> int:
    conn = read_db(db)
    try:
        return conn.execute("SELECT v.id FROM videos v WHERE v.status = 'error' AND NOT EXISTS "
                            "(SELECT 1 FROM downloads d WHERE d.video_row_id = v.id) ORDER BY v.id").fetchone()[0]
    finally:
        conn.close()


def test_an_error_video_throughput_chart_says_no_data(server, lab_db):
    srv, _before, _cache = server
    vid = _error_video_without_download(lab_db)
    doc = requests.get(srv.url + f"video/{vid}/throughput.svg", timeout=30).text
    assert ">no data<" in doc and "e-09" not in doc and "e-10" not in doc
    x_labels = re.findall(r'y="\d+" text-anchor="middle">([0-9.e-]+)</text>', doc)
    assert x_labels and x_labels[-1] == "1"


def test_a_played_video_throughput_chart_has_its_encoding_rate(server, lab_db):
    srv, _before, _cache = server
    conn = read_db(lab_db)
    try:
        vid, rate = conn.execute("SELECT video_row_id, encoding_rate_bps FROM downloads WHERE bytes > 0 AND "
                                 "encoding_rate_bps > 0 ORDER BY id").fetchone()
    finally:
        conn.close()
    doc = requests.get(srv.url + f"video/{vid}/throughput.svg", timeout=30).text
    assert f">encoding rate {in_unit(rate, 'bit/s')}<" in doc and 'class="reference"' in doc
    assert re.search(r">[kMG]?bit/s</text>", doc), "the axis in bit/s with the SI prefix of its largest value"


@pytest.mark.skipif(__import__("tests.web.chromium", fromlist=["x"]).chromium_binary() is None,
                    reason="Debian's chromium package is not installed (./quickstart.sh installs it)")
def test_tab_reaches_an_interval_and_shows_its_numbers_without_a_script(server):
    from tests.web.chromium import Chromium

    srv, _before, _cache = server
    browser = Chromium()
    try:
        browser.call("Emulation.setFocusEmulationEnabled", enabled=True)  # headless: focus events as in a window
        load = browser.load(srv.url + "?span=all")
        assert load.errors == [] and load.scripts == 0
        ident = ""
        for _ in range(600):
            browser.call("Input.dispatchKeyEvent", type="keyDown", key="Tab", code="Tab", windowsVirtualKeyCode=9)
            browser.call("Input.dispatchKeyEvent", type="keyUp", key="Tab", code="Tab", windowsVirtualKeyCode=9)
            ident = browser.evaluate("document.activeElement.id") or ""
            if ident.startswith("chart_"):
                break
        assert ident == "chart_plays_0", "the first interval of the first chart takes the focus"
        box = "getComputedStyle(document.activeElement.querySelector('g')).visibility"
        deadline = time.monotonic() + 5
        while browser.evaluate(box) != "visible" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert browser.evaluate(box) == "visible"
        shown_text = browser.evaluate("document.activeElement.querySelector('g').textContent")
        assert "played of" in shown_text
        assert browser.evaluate("document.querySelector('#chart_plays_1 g').getAttribute('visibility')") == "hidden"
    finally:
        browser.close()
