"""The operator's view, second pass (issue 21): one unit per figure on every page (bit/s with an SI prefix, from
pytomo.units), the video page (stalls, TCP_INFO's delivery rate apart from the download, a 2015 row in the page's
clock with each column's unit) and the archive (span, age and verdict as the overview counts the run); checked
against SQL, docs/schema.md and the JSON API."""

from __future__ import annotations

import html
import json
import re
import shutil
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import web

from pytomo.figures import FIGURES
from pytomo.readers import pages as data
from pytomo.readers.verdict import LEVELS, shown
from pytomo.rrd import metrics
from pytomo.storage.schema import COLUMNS_2015, VIEW_UNITS
from pytomo.units import in_unit, scaled_unit, unit_of
from pytomo.web import views
from pytomo.web.app import Site, make_app
from pytomo.web.catalog import Catalog, RunEntry, run_id
from pytomo.web.run_pages import run_view
from pytomo.zones import Clock
from tests.conftest import ROOT, database_of, run_crawler
from tests.web.conftest import read_db
from tests.web.legacy import REAL_2013, make_2015_database, real_2013_database
from tests.web.test_operator_view import _scenario

TZ = "Europe/Paris"

# ---- without a server ----


def test_one_formatter_for_every_layer():
    assert metrics.in_unit is in_unit  # the RRD graphs use the same function as the readers and pages
    assert shown(1_060_807_000, "bit/s") == "1.06 Gbit/s"  # was "1060.81 Mbit/s"
    assert shown(950.0, "bit/s") == "950 bit/s" and shown(None, "bit/s") == "–"
    assert shown(0.143, "share") == "14.3 %" and shown(1.25, "ratio") == "1.25"
    assert views.fmt(43_690_667_000, unit="bit/s") == "43.7 Gbit/s" and views.fmt("x", unit="bit/s") == "–"
    assert views.fmt(1_344_578, unit="bytes") == "1.34 MB" and views.fmt(float("nan"), unit="bit/s") == "–"


def test_units_of_names_and_of_2015_columns():
    assert [unit_of(n) for n in ("avg_throughput_bps", "bytes", "initial_data_bytes", "ping_min_ms", "stall_total_s",
                                 "stall_count")] == ["bit/s", "bytes", "bytes", "ms", "s", None]
    assert scaled_unit("bit/s", 1000) == "kbit/s" and scaled_unit("ms", 1) == "ms" and scaled_unit("bytes", 1e6) == "MB"


def schema_units() -> dict[str, str]:
    """The unit column of docs/schema.md's table of the ``pytomo_crawl`` view, by 2015 column."""
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    table = text[text.index("## The `pytomo_crawl` view"):]
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("column", "---"):
            for name in cells[0].split(" / "):
                out[name] = cells[2]
    return out


def test_each_2015_column_has_the_unit_docs_schema_gives():
    documented = schema_units()
    declared = data.legacy_columns()
    assert set(documented) == set(COLUMNS_2015)
    for column in COLUMNS_2015:
        unit = declared[column][1] if column in declared else VIEW_UNITS.get(column)  # no figure reads it
        if column not in ("ID", "LocalID"):
            assert (unit or "") == documented[column], column
    # the figures that read a 2015 column are the ones that declare it, with its scale
    assert {c: f.key for c, (f, _u) in declared.items()} == {
        f.legacy: f.key for f in FIGURES if isinstance(f.legacy, str)}


def test_how_old_a_time_is():
    now = 2_000_000_000.0
    utc = Clock("UTC")
    assert views.ago(now - 3 * 86400 - 5, utc, now) == "3 days ago"
    assert views.ago(now - 36 * 3600, utc, now) == "36 hours ago"
    assert views.ago(now - 90, utc, now) == "90 seconds ago" and views.ago(now - 1, utc, now) == "just now"
    assert views.ago(now - 800 * 86400, utc, now) == "2 years ago"
    assert views.ago(now + 600, utc, now) == "10 minutes in the future"
    unknown = Clock(None)  # a 2015 time without --tz: off by up to 14 h
    assert views.ago(now - 10 * 86400, unknown, now) == "about 10 days ago"
    assert views.ago(now - 3600, unknown, now) == "within the last 2 days (zone unknown)"
    assert views.ago(None, utc, now) == "–"


def test_a_database_that_cannot_be_opened_leaves_the_archive_answer_as_it_was(tmp_path):
    site = Site(Catalog(tmp_path), cache_dir=tmp_path / "cache")
    web.ctx.site, web.ctx.path, web.ctx.status, web.ctx.headers = site, "/archive", "200 OK", [("X-Before", "1")]
    gone = RunEntry("0" * 16, tmp_path / "gone.pytomo_database.db", 0.0, 0)
    assert run_view(gone) == "This database cannot be read."
    assert web.ctx.status == "200 OK" and web.ctx.headers == [("X-Before", "1")]


# ---- pages of a folder: the lab crawl, a run that stalls, their 2015 copies and a real 2013 crawl ----


@pytest.fixture(scope="module")
def folder(lab_db, tmp_path_factory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("second-pass")
    out = work / "databases"
    out.mkdir()
    scenario = work / "stalls.toml"
    scenario.write_text(_scenario())
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-P", "50", "-D", "5",
                        "-n", "1", "-S", "0", "--database-dir", str(out)])
    stalls = database_of(proc)
    lab = out / lab_db.name
    shutil.copyfile(lab_db, lab)
    legacy = make_2015_database(lab_db, out / "old")
    shutil.move(legacy, out / legacy.name)
    found = {"stalls": stalls, "lab": lab, "legacy": out / legacy.name, "folder": out}
    dumps = sorted(REAL_2013.glob("aggregation_*.txt")) if REAL_2013.is_dir() else []
    if dumps:
        found["real"] = real_2013_database(dumps[0], out)
    found["app"] = make_app(Site(Catalog(out), cache_dir=work / "cache", tz=TZ))
    return found


def _get(folder: dict[str, Any], path: str) -> str:
    answer = folder["app"].request(path)
    assert answer.status.startswith("200"), (path, answer.status, answer.data[:300])
    return answer.data.decode()


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _section(page: str, heading: str) -> str:
    start = page.index(f"<h2>{heading}</h2>")
    end = page.find("<h2>", start + 4)
    return page[start:end if end > 0 else len(page)]


def _first_downloads(db: Path) -> dict[int, sqlite3.Row]:
    conn = read_db(db)
    rows = {r["video_row_id"]: r for r in conn.execute(
        "SELECT d.* FROM downloads d WHERE d.id = (SELECT min(x.id) FROM downloads x"
        " WHERE x.video_row_id = d.video_row_id)")}
    conn.close()
    return rows


def _without_titles(page: str, db: Path) -> str:
    """A page without the videos' titles (the lab's say "400 kbit/s video"): what the site itself writes."""
    conn = read_db(db)
    titles = sorted({r[0] for r in conn.execute("SELECT title FROM videos WHERE title IS NOT NULL")}, key=len,
                    reverse=True)
    conn.close()
    for t in titles:
        page = page.replace(html.escape(t), "").replace(html.escape(t).replace("&#x27;", "&#39;"), "")
    return page


def _one_unit(page: str, db: Path) -> None:
    """No heading names a unit of rate (each cell carries its own), and every rate is written as pytomo.units writes
    it: at most three significant digits before an SI prefix ("994 kbit/s", "1.06 Mbit/s"), never "1,060 kbit/s"."""
    page = _without_titles(page, db)
    for th in re.findall(r"<th[^>]*>(.*?)</th>", page, re.S):
        assert "bit/s" not in th or th.strip() == "bit/s", th
    for number, prefix in re.findall(r"([0-9][0-9,.]*) ([kMGT]?)bit/s", page):
        assert "," not in number and float(number) < 1000 and len(number.replace(".", "").lstrip("0")) <= 3, (
            number, prefix)


def test_headings_name_no_rate_unit_and_lists_give_bit_s_as_sql(folder):
    for key in ("lab", "stalls"):
        db = folder[key]
        ident = run_id(db)
        firsts = _first_downloads(db)
        listing = _get(folder, f"/videos?db={ident}&sort=started&order=asc")
        _one_unit(listing, db)
        assert ">Throughput</a>" in listing
        cells = re.findall(r'<a href="/video/(\d+)\?db=[0-9a-f]+">.*?</td>.*?</td>.*?</td>\s*<td class="num">([^<]*)'
                           r"</td>", listing, re.S)
        assert cells
        for vid, cell in cells:
            d = firsts.get(int(vid))
            assert cell == in_unit(d["avg_throughput_bps"] if d else None, "bit/s"), vid
        api = json.loads(_get(folder, f"/api/v1/videos?db={ident}&sort=started"))["videos"]
        assert not [k for v in api for k in v if k.endswith("_kbps")]
        for v in api:
            d = firsts.get(v["id"])
            assert v["avg_throughput_bps"] == (d["avg_throughput_bps"] if d else None)
        servers = _get(folder, f"/servers?db={ident}")
        _one_unit(servers, db)
        assert "Throughput, mean" in servers
        conn = read_db(db)
        means = conn.execute("SELECT address, avg(avg_throughput_bps) FROM downloads WHERE bytes > 0"
                             " GROUP BY address").fetchall()
        conn.close()
        for address, mean in means:
            row = re.search(rf"<tr><td>{re.escape(address)}</td>.*?</tr>", servers, re.S)
            assert row and f'<td class="num">{in_unit(mean, "bit/s")}</td>' in row.group(0), address
        for vid in firsts:
            _one_unit(_get(folder, f"/video/{vid}?db={ident}"), db)


def test_the_verdict_and_summary_write_throughputs_as_every_page(folder):
    ident = run_id(folder["stalls"])
    doc = json.loads(_get(folder, f"/api/v1/verdict?db={ident}&span=all"))
    page = _get(folder, f"/?db={ident}&span=all")
    thp = doc["summary"]["figures"]["throughput_median_bps"]
    assert thp and f"<dt>Median throughput</dt><dd>{in_unit(thp, 'bit/s')}</dd>" in page
    firsts = _first_downloads(folder["stalls"])
    values = [d["avg_throughput_bps"] for d in firsts.values() if d["bytes"] and d["avg_throughput_bps"] is not None]
    assert thp == pytest.approx(statistics.median(values))
    for r in doc["rows"]:
        assert in_unit(r["figures"]["throughput_median_bps"], "bit/s") in page, r["name"]
    assert "Mbit/s" in page and not re.search(r"\d\.\d\d Mbit/s.*\d{4}\.\d\d Mbit/s", page)


def test_the_video_page_lists_the_stalls_of_its_playout(folder):
    db = folder["stalls"]
    ident = run_id(db)
    conn = read_db(db)
    stalled = conn.execute("SELECT DISTINCT d.video_row_id FROM stalls s JOIN downloads d ON d.id = s.download_id"
                           " WHERE d.id = (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = d.video_row_id)"
                           ).fetchall()
    assert len(stalled) >= 2, "the lab's pausing server made videos stall"
    for (vid,) in stalled:
        rows = conn.execute("SELECT s.seq, s.start_s, s.duration_s, s.media_position_s, s.ongoing FROM stalls s"
                            " WHERE s.download_id = (SELECT min(id) FROM downloads WHERE video_row_id = ?)"
                            " ORDER BY s.seq", (vid,)).fetchall()
        table = _section(_get(folder, f"/video/{vid}?db={ident}"), "Stalls")
        got = re.findall(r'<tr><td class="num">(\d+)</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td>'
                         r'\s*<td class="num">([^<]*)</td><td>(\w+)</td></tr>', table)
        assert got == [(str(r[0]), f"{r[1]:,.3f}", f"{r[2]:,.3f}", f"{r[3]:,.3f}", "yes" if r[4] else "no")
                       for r in rows], vid
    smooth = conn.execute("SELECT d.video_row_id FROM downloads d WHERE d.stall_count = 0 AND d.id = (SELECT min(x.id)"
                          " FROM downloads x WHERE x.video_row_id = d.video_row_id)").fetchone()[0]
    conn.close()
    assert "No stall: playback of the first download never stalled" in _get(folder, f"/video/{smooth}?db={ident}")


def test_tcp_info_delivery_rate_is_apart_and_named_for_what_it_is(folder):
    db = folder["lab"]
    ident = run_id(db)
    conn = read_db(db)
    did, vid, thp = conn.execute(
        "SELECT d.id, d.video_row_id, d.avg_throughput_bps FROM downloads d WHERE d.id = (SELECT min(x.id) FROM"
        " downloads x WHERE x.video_row_id = d.video_row_id) AND (SELECT count(*) FROM tcp_info_samples t"
        " WHERE t.download_id = d.id AND t.tcpi_delivery_rate IS NOT NULL) > 3 ORDER BY d.id").fetchone()
    rates = [r[0] * 8 for r in conn.execute("SELECT tcpi_delivery_rate FROM tcp_info_samples WHERE download_id = ?"
                                            " AND tcpi_delivery_rate IS NOT NULL ORDER BY t_s, rowid", (did,))]
    conn.close()
    tcp = _section(_get(folder, f"/video/{vid}?db={ident}"), "TCP_INFO")
    download_part, _, apart = tcp.partition("<h3>")
    assert "tcpi_delivery_rate" not in download_part  # not among the download's figures
    assert apart.startswith("Not the download's rate")
    words = _text(apart)
    for phrase in ("kernel's estimate, on this receiving socket", "ACKs", "It says nothing of the download",
                   f"the download's own throughput is {in_unit(thp, 'bit/s')}"):
        assert phrase in words, phrase
    row = re.search(r"<tr><td>[^<]*\(tcpi_delivery_rate\)</td><td>bit/s</td>(.*?)</tr>", apart, re.S)
    assert row
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert cells == [in_unit(v, "bit/s") for v in (rates[0], rates[-1], min(rates), statistics.median(rates),
                                                    max(rates))]


def test_a_segmented_video_page_titles_its_bandwidths_without_a_unit(folder):
    db = folder["lab"]
    conn = read_db(db)
    found = conn.execute("SELECT d.video_row_id, d.id FROM downloads d WHERE d.delivery = 'hls' AND EXISTS"
                         " (SELECT 1 FROM segment_requests s WHERE s.download_id = d.id AND s.kind = 'media')"
                         " ORDER BY d.id").fetchone()
    bandwidths = [r[0] for r in conn.execute(
        "SELECT max(bandwidth_bps) FROM segment_requests WHERE download_id = ? AND kind = 'media' AND rendition_id"
        " IS NOT NULL GROUP BY stream, rendition_id ORDER BY stream, min(seq)", (found[1],))]
    conn.close()
    page = _get(folder, f"/video/{found[0]}?db={run_id(db)}")
    _one_unit(page, db)
    assert "<th>Declared bandwidth</th>" in page
    renditions = _section(page, "Renditions")
    for b in bandwidths:
        assert f'<td class="num">{in_unit(b, "bit/s")}</td>' in renditions


def _legacy_cells(page: str) -> dict[str, list[str]]:
    table = re.search(r'<table class="data legacy">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert table
    return {name: [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)]
            for name, cells in re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", table.group(1), re.S)}


@pytest.mark.parametrize("key", ["legacy", "real"])
def test_a_2015_row_shows_its_time_in_the_page_clock_and_each_column_with_its_unit(folder, key):
    if key not in folder:
        pytest.skip("the 2013 crawls are not beside the clone")
    db = folder[key]
    conn = read_db(db)
    table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    rowid, row = next((r["rowid"], dict(r)) for r in conn.execute(
        f'SELECT rowid, * FROM "{table}" WHERE DownloadBytes > 0 AND EncodingRate > 0 ORDER BY rowid'))
    conn.close()
    del row["rowid"]
    page = _get(folder, f"/video/{rowid}?db={run_id(db)}")
    clock = Clock(TZ)
    when = clock.show(clock.epoch(row["ID"]))
    assert re.search(r" (CET|CEST)$", when)
    assert f"<dt>Started</dt><dd>{when}</dd>" in page and "Times: Europe/Paris." in page
    cells = _legacy_cells(page)
    assert list(cells) == list(row)  # every column, in the table's order
    documented = schema_units()
    for name, (stored, unit, _figure, value) in cells.items():
        assert stored == ("–" if row[name] is None else str(row[name])), name
        if name == "ID":
            assert unit == "time" and value == when
        else:
            assert unit == documented[name], name
    assert cells["EncodingRate"][1:] == ["kbit/s", "downloads.encoding_rate_bps",
                                         in_unit(row["EncodingRate"] * 1000, "bit/s")]
    assert cells["PingMin"][1:] == ["ms", "downloads.ping_min_ms", in_unit(row["PingMin"], "ms")]
    assert cells["DownloadBytes"][1:3] == ["bytes", "downloads.bytes"]
    derived = re.search(r'<table class="data legacy-derived">(.*?)</table>', page, re.S).group(1)
    assert (f'<th>downloads.throughput_2015_bps</th><td class="num">'
            f'{in_unit(8 * row["DownloadBytes"] / row["DownloadTime"], "bit/s")}</td>') in derived


# ---- the archive ----


def _archive_row(page: str, db: Path) -> str:
    row = re.search(rf'<tr[^>]*><td><a href="/\?db={run_id(db)}">.*?</tr>', page, re.S)
    assert row, db
    return row.group(0)


def _window(page: str) -> tuple[str, str]:
    found = re.search(r'<p class="window">Verdict over the whole run: from (.*?)\s+to (.*?)\.</p>', page, re.S)
    assert found
    return found.group(1), found.group(2)


@pytest.mark.parametrize("key", ["lab", "stalls", "legacy", "real"])
def test_the_archive_counts_each_run_as_its_overview(folder, key):
    if key not in folder:
        pytest.skip("the 2013 crawls are not beside the clone")
    db = folder[key]
    ident = run_id(db)
    before = time.time()
    archive = _get(folder, "/archive")
    after = time.time()
    row = _archive_row(archive, db)
    # the first and newest video are the overview's span over the whole run
    first, last = _window(_get(folder, f"/?db={ident}&span=all"))
    doc = json.loads(_get(folder, f"/api/v1/verdict?db={ident}&span=all"))
    assert (doc["span"]["start"], doc["span"]["end"]) == (first, last)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[3] == first and cells[4].split("<br>")[0] == last
    # ... and the database's own first and newest video, in the run's clock
    conn = read_db(db)
    if key in ("lab", "stalls"):
        zone = conn.execute("SELECT timezone FROM run").fetchone()[0]
        clock = Clock(zone)
        a, z = conn.execute("SELECT min(started_at), max(started_at) FROM videos").fetchone()
        played = conn.execute("SELECT count(*) FROM videos v JOIN downloads d ON d.id = (SELECT min(x.id) FROM"
                              " downloads x WHERE x.video_row_id = v.id) WHERE d.bytes > 0").fetchone()[0]
    else:
        clock = Clock(TZ)
        table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        videos = "DownloadBytes > 0 OR RedirectUrl IS NULL" if "RedirectUrl" in have else "DownloadBytes > 0"
        a, z, played = conn.execute(f'SELECT min(ID), max(ID), sum(DownloadBytes > 0) FROM "{table}"'
                                    f" WHERE {videos}").fetchone()
    conn.close()
    assert (first, last) == (clock.show(clock.epoch(a)), clock.show(clock.epoch(z)))
    assert re.search(r" [A-Z]{3,4}$", last), "the zone named"
    assert cells[5] == str(played) == str(doc["summary"]["counts"]["played"])
    # how old the newest video is, from now
    end = clock.epoch(z)
    assert cells[4].split("<br>")[1] in {views.ago(end, clock, before), views.ago(end, clock, after)}
    # the verdict: the worst level of the overview's lines over the whole run, with its word
    levels = [r["level"] for r in doc["rows"]]
    worst = max(levels, key=LEVELS.index)
    words = {"good": "good", "warn": "warning", "bad": "bad", "none": "no data"}
    verdict = re.search(r'<td class="verdict level-(\w+)"><a href="([^"]+)">([^<]+)</a> \((\d+) of (\d+) lines\)',
                        row)
    assert verdict and verdict.groups() == (worst, f"/?db={ident}&amp;span=all", words[worst],
                                            str(levels.count(worst)), str(len(levels)))
    if key == "stalls":
        assert worst == "bad"  # the pausing server
    # the footer says what the times are, never "Times are UTC." above local times
    assert "Times are UTC" not in archive
    assert "each run's first and newest video in that run's own clock" in _text(archive)


def test_an_archive_row_says_when_a_run_cannot_be_read(folder, tmp_path):
    broken = folder["folder"] / "norrt.pytomo_database.db"
    shutil.copyfile(folder["stalls"], broken)
    conn = sqlite3.connect(broken)
    conn.execute("DROP TABLE rtt_samples")
    conn.commit()
    conn.close()
    garbage = folder["folder"] / "garbage.pytomo_database.db"
    garbage.write_bytes(b"not SQLite" * 100)
    app = make_app(Site(Catalog(folder["folder"]), cache_dir=tmp_path / "cache", tz=TZ))
    try:
        answer = app.request("/archive")
        assert answer.status.startswith("200")
        page = answer.data.decode()
        assert "Its videos cannot be read (OperationalError)." in _archive_row(page, broken)
        assert "cannot be read" in _archive_row(page, garbage)
        assert 'class="verdict level-bad"' in _archive_row(page, folder["stalls"])
    finally:
        broken.unlink()
        garbage.unlink()
