"""Live streams in the operator's view: the verdict's latency to the live edge, the video page's live figures and
samples, and databases without live columns (schema 7, the 2015 layout) shown without them."""

from __future__ import annotations

import html
import re
import statistics
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pytomo.web.catalog import run_id
from tests.live_run import HOSTILE_PROBLEM, SERVER_FAR, SERVER_NEAR, as_schema_7, write_live_run
from tests.web.conftest import Server, read_db
from tests.web.legacy import make_2015_database
from tests.web.test_operator_view import summary_of

LABEL = "latency to the live edge (live streams)"


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    """One folder: the live run, its schema-7 copy and its 2015 copy, and the server on it."""
    work = tmp_path_factory.mktemp("live-verdict")
    runs = work / "runs"
    db = write_live_run(runs)
    old = as_schema_7(db, runs)
    legacy = make_2015_database(db, runs)
    srv = Server(["-d", str(runs), "-f", str(db)], work / "cache")
    yield {"db": db, "old": old, "legacy": legacy, "srv": srv}
    srv.stop()


def get(site: dict, path: str, db: Path, **params: str) -> requests.Response:
    r = requests.get(site["srv"].url + path, params={"db": run_id(db), **params}, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return r


def truth(db: Path) -> dict[str, list[float | None]]:
    """The latency when the window closed of each video's first download that is live, by the test's own query,
    per service and per server."""
    conn = read_db(db)
    rows = conn.execute("""
        SELECT v.service, d.address, d.live_latency_end_s FROM videos v JOIN downloads d
          ON d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)
        WHERE d.live = 1""").fetchall()
    conn.close()
    out: dict[str, list[float | None]] = {}
    for service, address, latency in rows:
        out.setdefault(service, []).append(latency)
        out.setdefault(address, []).append(latency)
    return out


# a verdict cell: its level, then its value after the level's hidden word
CELL = r'<td class="num level-(\w+)"><span class="vh">[^<]*</span>([^<]*)</td>'


def verdict_table(page: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """The verdict's column labels and, per row name, each cell's (level, text)."""
    table = re.search(r'<table class="data verdict">(.*?)</table>', page, re.S)
    assert table, "the overview has its verdict table"
    labels = [html.unescape(t) for t in re.findall(r'<th scope="col" title="[^"]*">([^<]*)</th>', table.group(1))]
    rows = {}
    row = r'<tr class="(?:service|server) level-\w+"><th scope="row">.*?<a [^>]*>([^<]*)</a></th>(.*?)</tr>'
    for name, cells in re.findall(row, table.group(1), re.S):
        rows[html.unescape(name)] = re.findall(CELL, cells)
    return labels, rows


def test_the_verdict_shows_the_median_latency_to_the_live_edge(live_site):
    db = live_site["db"]
    latencies = truth(db)
    service = [v for v in latencies["Generic"] if v is not None]
    assert len(latencies["Generic"]) == 3 and len(service) == 2
    median = statistics.median(service)
    assert median == 41.75  # 8.5 on the near server, 75 on the far one: a warning, between 30 and 60 s
    page = get(live_site, "", db, span="all").text
    labels, rows = verdict_table(page)
    column = labels.index(LABEL)
    assert rows["Generic"][column] == ("warn", f"{median:.2f} s")
    near = next(n for n in rows if SERVER_NEAR in n)
    far = next(n for n in rows if SERVER_FAR in n)
    assert rows[near][column] == ("good", f"{statistics.median(v for v in latencies[SERVER_NEAR] if v):.2f} s")
    assert rows[far][column] == ("bad", f"{latencies[SERVER_FAR][0]:.2f} s") == ("bad", "75.00 s")
    assert summary_of(page)[LABEL[:1].upper() + LABEL[1:]] == "41.75 s (2 of 3 live videos)"
    alerts = html.unescape(re.sub(r"<[^>]+>", "", re.search(r'<ul class="alerts">(.*?)</ul>', page, re.S).group(1)))
    far_alert = next(line for line in alerts.splitlines() if SERVER_FAR in line)
    assert f"{LABEL} 75.00 s" in far_alert
    assert f"{LABEL}: ≤ 30.00 s / ≤ 60.00 s / above" in html.unescape(page)


def test_the_api_and_metrics_give_the_same_latency(live_site):
    db = live_site["db"]
    doc = get(live_site, "api/v1/verdict", db, span="all").json()
    figure = doc["figures"]["live_latency_median_s"]
    assert figure["unit"] == "s" and figure["threshold"]["good"] == 30.0 and figure["threshold"]["bad"] == 60.0
    assert "RFC 8216" in figure["threshold"]["source"]
    assert doc["summary"]["figures"]["live_latency_median_s"] == 41.75
    assert doc["summary"]["counts"]["live"] == 3 and doc["summary"]["counts"]["live_latency_known"] == 2
    rows = {(r["kind"], r["ident"]): r for r in doc["rows"]}
    assert rows[("server", SERVER_FAR)]["figures"]["live_latency_median_s"] == 75.0
    assert rows[("server", SERVER_FAR)]["levels"]["live_latency_median_s"] == "bad"
    assert rows[("server", SERVER_NEAR)]["counts"]["live"] == 2
    metrics = requests.get(live_site["srv"].url + "metrics", params={"db": run_id(db)}, timeout=30).text
    family = {f.name: f for f in text_string_to_metric_families(metrics)}["pytomo_live_latency_median_seconds"]
    got = {(s.labels["scope"], s.labels["name"]): s.value for s in family.samples}
    assert got == {("service", "Generic"): 41.75, ("server", SERVER_NEAR): 8.5, ("server", SERVER_FAR): 75.0}


def _video_id(db: Path, title: str) -> int:
    conn = read_db(db)
    try:
        return conn.execute("SELECT id FROM videos WHERE title = ?", (title,)).fetchone()[0]
    finally:
        conn.close()


def test_the_video_page_shows_the_live_figures_and_the_samples(live_site):
    db = live_site["db"]
    page = get(live_site, f"video/{_video_id(db, 'live-near')}", db).text
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    text = " ".join(text.split())
    conn = read_db(db)
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (_video_id(db, "live-near"),)).fetchone()
    samples = conn.execute("SELECT seq, t_s, latency_s, playhead_s FROM live_latency WHERE download_id = ?"
                           " ORDER BY seq", (d["id"],)).fetchall()
    conn.close()
    assert (f"Latency to the live edge {d['live_latency_start_s']:.2f} s when playback started, "
            f"{d['live_latency_end_s']:.2f} s when the window closed") in text
    assert "7.50 s when playback started, 8.50 s when the window closed" in text
    assert "followed at the live edge, target duration 2.0 s" in text
    assert f"Playlist reloads {d['live_reloads']}, of which {d['live_unchanged_reloads']} unchanged" in text
    assert "Segments skipped / missing 1 skipped" in text and "/ 2 missing" in text
    table = re.search(r'<table class="data live-latency">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    shown = [tuple(float(c) for c in re.findall(r'<td class="num">([^<]*)</td>', tr))
             for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    assert shown == [tuple(float(v) for v in s) for s in samples] and len(shown) == 3
    chart = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert "Latency to the live edge" in chart and len(re.search(r'points="([^"]*)"', chart).group(1).split()) == 3
    reloads = re.findall(r'<td>reload</td>.*?</tr>', page, re.S)
    assert len(reloads) == 2
    assert re.search(r'<td class="num">41</td><td>yes</td><td class="num">2</td>', reloads[0])
    assert re.search(r'<td class="num">41</td><td>no</td><td class="num">0</td>', reloads[1])


def test_a_live_video_without_latency_says_why_escaped(live_site):
    db = live_site["db"]
    page = get(live_site, f"video/{_video_id(db, 'live-undated')}", db).text
    assert "<script>alert" not in page
    assert html.escape(HOSTILE_PROBLEM, quote=False) in page.replace("&#39;", "'")
    text = html.unescape(page)
    assert f"Latency to the live edge</th><td>– ({HOSTILE_PROBLEM})" in text
    assert f"No latency sample was recorded for this live download ({HOSTILE_PROBLEM})." in text
    vod = get(live_site, f"video/{_video_id(db, 'vod-hls')}", db).text.split("<aside")[0]  # not the run's summary
    assert "Latency to the live edge" not in vod and "Media sequence" not in vod and "<h2>Segments</h2>" in vod


def test_databases_without_live_columns_show_no_live_figure(live_site):
    db, old, legacy = live_site["db"], live_site["old"], live_site["legacy"]
    for without in (old, legacy):
        page = get(live_site, "", without, span="all").text
        labels, rows = verdict_table(page)
        assert LABEL not in labels and rows and LABEL not in html.unescape(page)
        assert summary_of(page)["Videos played"] == "5"
        doc = get(live_site, "api/v1/verdict", without, span="all").json()
        assert doc["summary"]["figures"]["live_latency_median_s"] is None and doc["summary"]["counts"]["live"] == 0
    # the schema-7 copy of the same run: the verdict's other figures are the same, the video page has no live part
    new_labels, new_rows = verdict_table(get(live_site, "", db, span="all").text)
    old_labels, old_rows = verdict_table(get(live_site, "", old, span="all").text)
    assert old_rows["Generic"] == new_rows["Generic"][:len(old_labels)] and new_labels[:len(old_labels)] == old_labels
    video = get(live_site, f"video/{_video_id(old, 'live-near')}", old).text.split("<aside")[0]
    assert "<h2>Segments</h2>" in video and "Latency to the live edge" not in video and "Media sequence" not in video
    assert "<td>reload</td>" in video


def test_the_history_counts_the_live_videos_of_every_run(live_site):
    page = requests.get(live_site["srv"].url + "history", params={"span": "all"}, timeout=30).text
    table = re.search(r'<table class="data verdict history">(.*?)</table>', page, re.S).group(1)
    labels = [html.unescape(t) for t in re.findall(r'<th scope="col" title="[^"]*">([^<]*)</th>', table)]
    service = re.search(r'<tr class="service level-\w+"><th scope="row"><span class="kind">service</span> Generic'
                        r'</th>(.*?)<td class="days">', table, re.S).group(1)
    cells = re.findall(CELL, service)
    assert cells[labels.index(LABEL)] == ("warn", "41.75 s")  # the schema-7 copy adds videos, no live one
