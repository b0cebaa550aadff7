"""The operator's view on a lab run with a stalling server: verdict first, summary = charts, JSON and /metrics."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pytomo.units import in_unit
from tests.conftest import database_of, run_crawler
from tests.web.conftest import HOSTILE_TITLE, Server, read_db
from tests.web.legacy import REAL_2013, real_2013_database

SCENARIO = """
[scenario]
name = "operator"
description = "Two cache servers: one smooth, one that pauses after 2 s of media"
dns_ttl_s = 300

[video_defaults]
duration_s = 30.0
bitrate_bps = 1_000_000
hops = 1
popular = ["all_time"]

[[servers]]
name = "cache-smooth"
ip = "127.77.1.1"
rate_bps = 20_000_000

[[servers]]
name = "cache-stalling"
ip = "127.77.1.5"
rate_bps = 8_000_000
stalls = [[280_000, 2.5]]
"""
VIDEOS = [("smooth-1", "cache-smooth"), ("stall-1", "cache-stalling"), ("smooth-2", "cache-smooth"),
          ("stall-2", "cache-stalling"), ("smooth-3", "cache-smooth"), ("stall-3", "cache-stalling")]
SPANS = ("hour", "day", "week", "month", "all")


def _scenario() -> str:
    text = SCENARIO
    for vid, server in VIDEOS:
        container = "webm" if server == "cache-stalling" else "mp4"  # as the default scenario's lab-stalling
        text += (f'\n[[videos]]\nid = "op-{vid}"\ntitle = "Video {vid}"\nserver = "{server}"\n'
                 f'container = "{container}"\n')
    return text


@pytest.fixture(scope="module")
def stall_run(tmp_path_factory):
    """A finished lab crawl of six videos, three of them on a server that pauses, and the server on its folder."""
    work = tmp_path_factory.mktemp("operator")
    scenario = work / "operator.toml"
    scenario.write_text(_scenario())
    out = work / "databases"
    out.mkdir()
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-P", "50", "-D", "5",
                        "-n", "1", "-S", "0", "--database-dir", str(out)])
    db = database_of(proc)
    srv = Server(["-d", str(out)], work / "cache")
    yield db, srv
    srv.stop()


def truth(db: Path) -> list[dict]:
    """Each video's first download and its ICMP probes to that server, read by the test's own queries: the
    independent side of every comparison."""
    from datetime import datetime

    conn = read_db(db)
    rows = conn.execute("""
        SELECT v.id, v.started_at, v.status, d.address, d.bytes, d.time_to_start_s, d.stall_count,
               d.throughput_to_encoding_ratio AS ratio, d.avg_throughput_bps AS thp
        FROM videos v LEFT JOIN downloads d ON d.video_row_id = v.id
        WHERE d.id IS NULL OR d.id = (SELECT min(id) FROM downloads WHERE video_row_id = v.id)""").fetchall()
    out = []
    for r in rows:
        probes = [p[0] for p in conn.execute("SELECT rtt_ms FROM rtt_samples WHERE video_row_id = ? AND address = ?"
                                             " AND method LIKE 'icmp%'", (r["id"], r["address"]))]
        answered = [p for p in probes if p is not None]
        t = datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).timestamp()
        out.append({**dict(r), "t": t, "sent": len(probes), "lost": len(probes) - len(answered),
                    "rtt": statistics.median(answered) if answered else None})
    conn.close()
    return out


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class _Summary(HTMLParser):
    """The summary box's ``dt``/``dd`` pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: dict[str, str] = {}
        self._in, self._tag, self._dt = False, "", ""

    def handle_starttag(self, tag, attrs):
        if tag == "aside":
            self._in = True
        self._tag = tag

    def handle_endtag(self, tag):
        if tag == "aside":
            self._in = False
        self._tag = ""

    def handle_data(self, data):
        if not self._in or not data.strip():
            return
        if self._tag == "dt":
            self._dt = data.strip()
        elif self._tag == "dd" and self._dt:
            self.pairs[self._dt] = data.strip()
            self._dt = ""


def summary_of(page: str) -> dict[str, str]:
    """The summary's figures as the page shows them."""
    p = _Summary()
    p.feed(page)
    return p.pairs


def chart_bins(svg: str) -> list[dict[str, str]]:
    """The data behind each interval of a chart."""
    return [dict(re.findall(r'data-([a-z0-9-]+)="([^"]*)"', g)) for g in re.findall(r'<g class="bin"[^>]*>', svg)]


def test_the_first_lines_name_the_stalling_server_as_bad(stall_run):
    db, srv = stall_run
    page = requests.get(srv.url, timeout=30).text
    alerts = re.search(r'<ul class="alerts">(.*?)</ul>', page, re.S)
    assert alerts, "the page opens with the servers out of their thresholds"
    items = re.findall(r'<li class="level-(\w+)">(.*?)</li>', alerts.group(1), re.S)
    stalled = [t for t in truth(db) if t["address"] == "127.77.1.5" and t["bytes"]]
    stalls = sum(1 for t in stalled if (t["stall_count"] or 0) > 0)
    assert stalls >= 2, "the lab's pausing server made videos stall"
    named = [(level, html.unescape(re.sub("<[^>]+>", "", text))) for level, text in items if "cache-stalling" in text]
    assert named and named[0][0] in ("warn", "bad")
    assert f"stalled in {stalls} of {len(stalled)} plays" in " ".join(named[0][1].split())
    assert not any("cache-smooth" in text for _level, text in items)


@pytest.mark.parametrize("span", SPANS)
def test_summary_and_charts_agree_with_each_other_and_with_the_database(stall_run, span):
    db, srv = stall_run
    page = requests.get(srv.url, params={"span": span}, timeout=30).text
    summary = summary_of(page)
    plays = chart_bins(requests.get(srv.url + "overview/plays.svg", params={"span": span}, timeout=30).text)
    starts = chart_bins(requests.get(srv.url + "overview/start.svg", params={"span": span}, timeout=30).text)
    assert plays and len(plays) == len(starts)
    start, end = float(plays[0]["start"]), float(plays[-1]["end"])
    rows = [t for t in truth(db) if start - 1e-3 <= t["t"] <= end + 1e-3]
    played = [t for t in rows if t["bytes"]]
    stalled = [t for t in played if (t["stall_count"] or 0) > 0]
    smooth = [t for t in played if t["time_to_start_s"] is not None and t["stall_count"] == 0]
    # the charts add up to the span, and so does the summary
    assert sum(int(b["played"]) for b in plays) == len(played) == int(summary["Videos played"])
    assert sum(int(b["stalled"]) for b in plays) == len(stalled)
    assert summary["Stalled plays"] == f"{len(stalled)} of {len(played)}"
    assert summary["Played without a stall"] == f"{100 * len(smooth) / len(played):.1f} %"
    median = _median(t["time_to_start_s"] for t in played)
    assert summary["Median time to start"] == f"{median:.2f} s"
    ratio, thp = _median(t["ratio"] for t in played), _median(t["thp"] for t in played)
    assert summary["Median throughput ÷ encoding rate"] == f"{ratio:.2f}"
    assert summary["Median throughput"] == in_unit(thp, "bit/s")  # "1.06 Gbit/s", as on every page and graph
    rtt = _median(t["rtt"] for t in rows)
    assert summary["Median RTT"] in (f"{rtt:.0f} ms", f"{rtt:.2g} ms")
    sent, lost = sum(t["sent"] for t in rows), sum(t["lost"] for t in rows)
    assert sent > 0 and summary["Probe loss"] == f"{100 * lost / sent:.1f} %"
    # every interval of every chart holds what the database's videos of that interval give
    charts = {name: chart_bins(requests.get(srv.url + f"overview/{name}.svg", params={"span": span}, timeout=30).text)
              for name in ("ratio", "rtt")}
    for i, b in enumerate(starts):
        a, z = float(b["start"]), float(b["end"])
        last = i == len(starts) - 1
        inside = [t for t in rows if a - 1e-3 <= t["t"] and (t["t"] <= z + 1e-3 if last else t["t"] < z)]
        were_played = [t for t in inside if t["bytes"]]
        for got, want in ((b["start-median-s"], _median(t["time_to_start_s"] for t in were_played)),
                          (charts["ratio"][i]["ratio-median"], _median(t["ratio"] for t in were_played)),
                          (charts["rtt"][i]["rtt-median-ms"], _median(t["rtt"] for t in inside))):
            assert (got == "") if want is None else float(got) == pytest.approx(want)
        assert int(plays[i]["played"]) == len(were_played)
        assert int(charts["rtt"][i]["probes-lost"]) == sum(t["lost"] for t in inside)
    # and the API says the same
    api = requests.get(srv.url + "api/v1/verdict", params={"span": span}, timeout=30).json()
    assert api["summary"]["counts"]["played"] == len(played)
    assert api["summary"]["figures"]["start_median_s"] == pytest.approx(median)
    assert api["summary"]["figures"]["rtt_median_ms"] == pytest.approx(rtt)


def test_charts_have_units_zones_and_say_when_a_span_is_empty(stall_run):
    _db, srv = stall_run
    for name in ("plays", "start", "ratio", "rtt"):
        r = requests.get(srv.url + f"overview/{name}.svg", timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("image/svg+xml")
        assert re.search(r">time \((UTC|Etc/UTC|[A-Za-z_]+/[A-Za-z_]+)\)<", r.text), name
        assert "nan" not in r.text.lower().replace("nanosec", "")
    ratio = requests.get(srv.url + "overview/ratio.svg", timeout=30).text
    assert "log axis" in ratio


def test_empty_span_says_no_video(tmp_path):
    from pytomo.readers.verdict import Bin, spread_of
    from pytomo.web import timecharts
    from pytomo.zones import Clock

    empty = [Bin(0.0, 60.0, spread_of([]))]
    for _label, draw in timecharts.CHARTS.values():
        svg = draw(empty, Clock())
        assert timecharts.EMPTY in svg and "nan" not in svg.lower()


def test_verdict_json_and_metrics_agree(stall_run):
    _db, srv = stall_run
    r = requests.get(srv.url + "api/v1/verdict", params={"span": "hour"}, timeout=30)
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    rows = {(row["kind"], row["ident"]): row for row in doc["rows"]}
    assert rows[("server", "127.77.1.5")]["level"] in ("warn", "bad")
    assert rows[("server", "127.77.1.1")]["levels"]["smooth_share"] == "good"
    m = requests.get(srv.url + "metrics", timeout=30)
    assert m.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(m.text)}
    from pytomo.readers.verdict import declared

    for fig in declared():
        fam = families[f"pytomo_{fig.metric}"]
        for s in fam.samples:
            row = rows[(s.labels["scope"], s.labels["name"])]
            assert s.value == pytest.approx(row["figures"][fig.key] * fig.metric_scale)
    levels = {(s.labels["scope"], s.labels["name"]): s.value for s in families["pytomo_verdict_level"].samples}
    assert levels[("server", "127.77.1.5")] >= 2


def test_api_errors_are_json_and_values_are_escaped(server):
    srv, _before, _cache = server
    bad = requests.get(srv.url + "api/v1/verdict", params={"span": "<b>"}, timeout=30)
    assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("application/json")
    assert "<" not in bad.text and bad.json()["error"]["message"].startswith("Parameter span=")
    assert requests.get(srv.url + "api/v1/video/999999", timeout=30).status_code == 404
    videos = requests.get(srv.url + "api/v1/videos", timeout=30).json()["videos"]
    hostile = next(v for v in videos if v["title"] == HOSTILE_TITLE)
    r = requests.get(srv.url + f"api/v1/video/{hostile['id']}", timeout=30)
    assert "<script" not in r.text and json.loads(r.text)["video"]["title"] == HOSTILE_TITLE
    runs = requests.get(srv.url + "api/v1/runs", timeout=30).json()["runs"]
    assert runs and all(set(run) >= {"id", "name", "size_bytes"} for run in runs)
    metrics = requests.get(srv.url + "metrics", timeout=30).text
    assert list(text_string_to_metric_families(metrics))


@pytest.mark.skipif(not REAL_2013.is_dir(), reason="the 2013 crawls are not in ../shared/pytomo2013")
def test_real_2013_crawls_local_times_zone_unknown_or_given(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    dbs = [real_2013_database(d, folder) for d in sorted(REAL_2013.glob("aggregation_*.txt"))]
    conn = sqlite3.connect(f"file:{dbs[0]}?mode=ro&immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    first_id = conn.execute(f"SELECT min(ID) FROM {data_layout(conn).table}"  # a redirected row is a hop, no video
                            " WHERE DownloadTime > 0 OR RedirectUrl IS NULL").fetchone()[0]
    played = conn.execute(f"SELECT count(*) FROM {data_layout(conn).table} WHERE DownloadTime > 0").fetchone()[0]
    conn.close()
    for args, shown in (([], f"{first_id[:19]} (local, zone unknown)"), (["--tz", "Europe/Paris"], "CET")):
        srv = Server(["-d", str(folder), "-f", str(dbs[0]), *args], tmp_path / "cache")
        try:
            page = requests.get(srv.url, params={"span": "all"}, timeout=30).text
            api = requests.get(srv.url + "api/v1/verdict", params={"span": "all"}, timeout=30).json()
            history = requests.get(srv.url + "history", params={"span": "all"}, timeout=30).text
        finally:
            srv.stop()
        assert shown in html.unescape(page)
        assert summary_of(page)["Videos played"] == str(played)
        assert api["summary"]["counts"]["played"] == played and api["span"]["zone_known"] == bool(args)
        assert " UTC" not in page.split("<aside")[1].split("</aside>")[0] or args  # never called UTC
        if args:
            assert "2 run database(s)" in history
        else:  # floating times cannot be mixed with instants: left out, and said so
            assert "0 run database(s)" in history and "--tz" in history


def data_layout(conn: sqlite3.Connection):
    """The 2015 table of a database."""
    from pytomo.readers.pages import layout_of

    return layout_of(conn)


BADGE_JS = """JSON.stringify(Array.from(document.querySelectorAll('ul.alerts li')).map(li => {
    const badge = li.querySelector('.badge'); const box = li.getBoundingClientRect();
    return {text: li.innerText, badge: getComputedStyle(badge).backgroundColor,
            border: getComputedStyle(li).borderLeftColor, top: box.top, bottom: box.bottom,
            screen: window.innerHeight};
}))"""


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


@pytest.mark.skipif(__import__("tests.web.chromium", fromlist=["x"]).chromium_binary() is None,
                    reason="Debian's chromium package is not installed (./quickstart.sh installs it)")
def test_a_person_sees_the_stalling_server_in_a_warning_colour_on_the_first_screen(stall_run):
    from tests.conftest import ROOT
    from tests.web.chromium import Chromium

    _db, srv = stall_run
    browser = Chromium()
    try:
        load = browser.load(srv.url)
        assert load.errors == [] and load.scripts == 0
        assert all(i["complete"] and i["width"] > 0 for i in load.images)
        assert browser.evaluate("document.querySelectorAll('figure.graph > svg').length") == 4  # charts inline
        items = json.loads(browser.evaluate(BADGE_JS))
        browser.screenshot(ROOT / "test-artifacts" / "web-overview-stalling.png")
    finally:
        browser.close()
    named = [i for i in items if "cache-stalling" in i["text"]]
    assert named, items
    first = named[0]
    assert first["bottom"] <= first["screen"], "the warning is on the first screen, without scrolling"
    for colour in (first["badge"], first["border"]):
        r, g, b = _rgb(colour)
        assert r > 180 and r > g + 40 and r > b + 40, colour  # red or amber, not green, grey or blue
    assert not any("cache-smooth" in i["text"] for i in items)


def test_history_takes_every_run_of_the_folder_together(stall_run, tmp_path):
    import shutil

    db, _srv = stall_run
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in ("a", "b"):  # two copies of the run: the history counts both
        shutil.copy(db, folder / f"{name}.{db.name}")
    srv = Server(["-d", str(folder)], tmp_path / "cache")
    try:
        page = requests.get(srv.url + "history", params={"span": "all"}, timeout=30).text
        svg = requests.get(srv.url + "history/plays.svg", params={"span": "all"}, timeout=30).text
        bad = requests.get(srv.url + "history", params={"span": "year"}, timeout=30)
    finally:
        srv.stop()
    played = sum(1 for t in truth(db) if t["bytes"])
    assert "2 run database(s)" in page
    assert summary_of(page)["Videos played"] == str(2 * played)
    assert sum(int(b["played"]) for b in chart_bins(svg)) == 2 * played
    assert re.search(r'<span class="day level-(warn|bad)" title="[0-9-]+: Videos on cache-stalling', page)
    assert bad.status_code == 400
