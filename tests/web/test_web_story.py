"""Pages that finish the story (issue 13): liveness from the writer lock, the archive's facts, the sortable videos
list, segments, renditions and switches of HLS/DASH sessions, and TCP_INFO on the video page; checked against the
databases' rows and against real flocks held by child processes."""

from __future__ import annotations

import html
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from pytomo.storage.writer_lock import writer_lock_path
from pytomo.units import in_unit
from pytomo.web.catalog import RESCAN_S, run_id
from pytomo.zones import Clock
from tests.web.conftest import Server, read_db
from tests.web.legacy import make_2015_database

HOLDER = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
""")
SORTS = ("started", "title", "status", "server", "throughput", "start", "stalls", "stall_s")
TRUTH_SQL = {  # what each sort key means, written again from the schema
    "started": "v.started_at", "title": "coalesce(v.title, v.video_id, v.page_url)", "status": "v.status",
    "server": "d.host || ' ' || d.address", "throughput": "d.avg_throughput_bps", "start": "d.time_to_start_s",
    "stalls": "d.stall_count", "stall_s": "d.stall_total_s",
}


def _holder(lock_file: Path) -> subprocess.Popen:
    """A child process holding an exclusive flock on ``lock_file`` until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _write(path: Path, *statements: tuple[str, tuple]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for sql, args in statements:
        conn.execute(sql, args)
    conn.close()


def _copy(src: Path, folder: Path, name: str) -> Path:
    dst = folder / f"{name}.pytomo_database.db"
    shutil.copyfile(src, dst)
    return dst


def _segmented_download(db: Path, delivery: str) -> tuple[int, int]:
    """``(video id, download id)`` of the first download of this delivery with media segments."""
    conn = read_db(db)
    row = conn.execute("SELECT d.video_row_id, d.id FROM downloads d WHERE d.delivery = ? AND EXISTS (SELECT 1"
                       " FROM segment_requests s WHERE s.download_id = d.id AND s.kind = 'media') ORDER BY d.id",
                       (delivery,)).fetchone()
    conn.close()
    return row[0], row[1]


def _make_switches_and_a_long_session(db: Path) -> None:
    """In a copy: media segments of the first HLS session alternate between two renditions, and the first DASH
    session gets 250 more requests."""
    _vid, did = _segmented_download(db, "hls")
    conn = sqlite3.connect(db, isolation_level=None)
    seqs = [r[0] for r in conn.execute("SELECT seq FROM segment_requests WHERE download_id = ? AND kind = 'media'"
                                       " AND stream = 'video' ORDER BY seq", (did,))]
    for i, seq in enumerate(seqs):
        if i % 3 == 1:
            conn.execute("UPDATE segment_requests SET rendition_id = 'low<b>', bandwidth_bps = 400000"
                         " WHERE download_id = ? AND seq = ?", (did, seq))
    _vid2, did2 = _segmented_download(db, "dash")
    top = conn.execute("SELECT max(seq) FROM segment_requests WHERE download_id = ?", (did2,)).fetchone()[0]
    conn.executemany(
        "INSERT INTO segment_requests (download_id, seq, stream, kind, rendition_id, bandwidth_bps, url, http_status,"
        " trequest_s, bytes, complete) VALUES (?, ?, 'video', 'media', 'r9', 9000000, 'http://x.test/s', 200, ?, 1, 1)",
        [(did2, top + 1 + i, 100.0 + i) for i in range(250)])
    conn.close()


@pytest.fixture(scope="module")
def story(lab_db, tmp_path_factory):
    """A folder with: the lab run (changed: vantage, switches, a long session), the same run marked running,
    a 2015 database, a file that is not a database; and the server on it."""
    folder = tmp_path_factory.mktemp("web-story")
    lab = _copy(lab_db, folder, "lab")
    _write(lab, ("UPDATE run SET host_label = ?, vantage_as_number = 3215, vantage_as_name = ?, vantage_country = 'FR'",
                 ("<i>home</i>", "Orange & Co")))
    _make_switches_and_a_long_session(lab)
    running = _copy(lab_db, folder, "running")
    _write(running, ("UPDATE run SET status = 'running', ended_at = NULL", ()))
    legacy = make_2015_database(lab_db, folder)
    (folder / "broken.pytomo_database.db").write_bytes(b"this is not SQLite" * 100)
    srv = Server(["-d", str(folder)], tmp_path_factory.mktemp("web-story-cache"))
    yield {"url": srv.url, "folder": folder, "lab": lab, "running": running, "legacy": legacy}
    srv.stop()


def _get(story, path: str, **params) -> requests.Response:
    return requests.get(story["url"] + path.lstrip("/"), params=params, timeout=30)


def _archive_row(story, db: Path) -> str:
    text = _get(story, "archive").text
    row = re.search(rf'<tr[^>]*><td><a href="/\?db={run_id(db)}">.*?</tr>', text, re.S)
    assert row, text
    return row.group(0)


def _is_live(story, db: Path) -> tuple[str, bool]:
    """The archive's status of a database and whether its pages refresh themselves."""
    row = _archive_row(story, db)
    state = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    page = _get(story, "/", db=run_id(db)).text
    return " ".join(state), 'http-equiv="refresh"' in page


def _wait_rescan() -> None:
    time.sleep(RESCAN_S + 0.3)


# ---- 1. being written: the run's status and the writer's lock ----

def test_running_with_a_live_writer_then_interrupted_when_the_writer_dies(story):
    running = story["running"]
    proc = _holder(writer_lock_path(running))
    try:
        _wait_rescan()
        state, refresh = _is_live(story, running)
        assert ">running<" in _archive_row(story, running) and refresh, state
        assert 'class="live"' in _archive_row(story, running)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    _wait_rescan()
    state, refresh = _is_live(story, running)
    assert "interrupted (no writer)" in state and not refresh
    writer_lock_path(running).unlink()  # what the dead writer left: a file nobody locks


def test_a_finished_run_is_never_live_even_with_a_wal_file_or_a_lock(story):
    lab = story["lab"]
    wal = Path(f"{lab}-wal")
    proc = _holder(writer_lock_path(lab))  # a stray lock does not make a finished run live
    try:
        wal.write_bytes(b"")  # what another reader (Datasette, a notebook) leaves beside it
        _wait_rescan()
        state, refresh = _is_live(story, lab)
        assert "finished" in state and not refresh
    finally:
        proc.kill()
        proc.wait(timeout=10)
        wal.unlink(missing_ok=True)
        writer_lock_path(lab).unlink(missing_ok=True)


def test_the_server_never_creates_a_lock_file(story):
    _get(story, "archive")
    assert not list(story["folder"].glob("*.writer"))


# ---- 2. the archive ----

def test_archive_rows_say_what_each_run_is(story):
    lab = story["lab"]
    conn = read_db(lab)
    run = dict(conn.execute("SELECT * FROM run").fetchone())
    # as the overview counts the run over its whole span: from the first video's start to the newest's, videos whose
    # first download received bytes
    first, last = conn.execute("SELECT min(started_at), max(started_at) FROM videos").fetchone()
    played = conn.execute("SELECT count(*) FROM videos v JOIN downloads d ON d.id = (SELECT min(x.id) FROM downloads x"
                          " WHERE x.video_row_id = v.id) WHERE d.bytes > 0").fetchone()[0]
    conn.close()
    row = _archive_row(story, lab)
    clock = Clock(run["timezone"])
    for expected in (run["service"], html.escape(run["host_label"]), "AS3215", html.escape("Orange & Co"), "FR",
                     clock.show(clock.epoch(first)), clock.show(clock.epoch(last)), f">{played}<", "finished"):
        assert expected in row, (expected, row)
    assert "<i>" not in row
    size = lab.stat().st_size
    assert size < 1_000_000 and f">{size / 1000:.0f} kB<" in row  # never "0.0 MB"


def test_archive_rows_of_a_2015_database_and_of_a_broken_file(story):
    row = _archive_row(story, story["legacy"])
    conn = read_db(story["legacy"])
    table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    # the overview's videos: rows with bytes, and failed rows (no bytes, no redirection: a redirected row is a hop)
    first, played = conn.execute(f'SELECT min(ID), sum(DownloadBytes > 0) FROM "{table}"'
                                 f" WHERE DownloadBytes > 0 OR RedirectUrl IS NULL").fetchone()
    conn.close()
    assert "2015 layout" in row and f">{played}<" in row
    assert Clock(None).show(Clock(None).epoch(first)) in row  # local, zone unknown
    broken = _archive_row(story, story["folder"] / "broken.pytomo_database.db")
    assert "cannot be read" in broken
    assert _get(story, "archive").status_code == 200


# ---- 3. the sortable videos list ----

def _truth_order(db: Path, key: str, order: str) -> list[int]:
    conn = read_db(db)
    rows = conn.execute(f"SELECT v.id, {TRUTH_SQL[key]} FROM videos v LEFT JOIN downloads d ON d.id ="
                        f" (SELECT min(x.id) FROM downloads x WHERE x.video_row_id = v.id)").fetchall()
    conn.close()
    valued = sorted((r for r in rows if r[1] is not None), key=lambda r: (r[1], r[0]))
    missing = sorted((r for r in rows if r[1] is None), key=lambda r: r[0])
    if order == "desc":
        valued.reverse()
        missing.reverse()
    return [r[0] for r in valued + missing]


def _listed_ids(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/video/(\d+)\?db=', text)]


def test_every_sort_and_order_lists_the_videos_as_the_database_orders_them(story):
    lab = story["lab"]
    for key in SORTS:
        for order in ("asc", "desc"):
            r = _get(story, "videos", db=run_id(lab), sort=key, order=order)
            assert r.status_code == 200
            assert _listed_ids(r.text) == _truth_order(lab, key, order)[:50], (key, order)
    default = _get(story, "videos", db=run_id(lab)).text
    assert _listed_ids(default) == _truth_order(lab, "started", "desc")[:50]


def test_pages_of_a_sorted_list_and_the_links_that_sort(story, tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    folder = tmp_path_factory.mktemp("web-story-many")
    db = _copy(story["lab"], folder, "many")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for _ in range(4):  # 27 videos become 135: three pages; the copies have no download (NULL values)
        conn.execute("INSERT INTO videos (run_id, round, page_url, service, title, started_at, status)"
                     " SELECT run_id, round + 1, page_url, service, title, started_at, status FROM videos")
    conn.execute("COMMIT")
    conn.close()
    shutil.copyfile(db, story["folder"] / db.name)
    try:
        _wait_rescan()
        ident = run_id(story["folder"] / db.name)
        truth = _truth_order(db, "throughput", "desc")
        for number in (1, 2, 3):
            r = _get(story, "videos", db=ident, sort="throughput", order="desc", page=number)
            assert _listed_ids(r.text) == truth[(number - 1) * 50:number * 50], number
        text = _get(story, "videos", db=ident, sort="throughput", order="desc", page=2).text
        heads = re.findall(r'<th[^>]*><a href="([^"]+)">([^<]+)</a>', text)
        assert len(heads) == 8
        for href, _label in heads:
            href = html.unescape(href)
            assert f"db={ident}" in href and "page=" not in href and "sort=" in href
        assert f"/videos?db={ident}&sort=throughput&order=asc" in [html.unescape(h) for h, _ in heads]
        assert html.escape(f"/videos?db={ident}&sort=throughput&order=desc&page=3") in text  # the pager keeps it
    finally:
        (story["folder"] / db.name).unlink()


def test_bad_sort_and_order_are_400_naming_the_parameter(story):
    ident = run_id(story["lab"])
    for params, name in (({"sort": "rowid"}, "sort"), ({"sort": "<b>x</b>"}, "sort"), ({"order": "up"}, "order"),
                         ({"sort": "throughput", "order": "DESC"}, "order"), ({"sort": ""}, "sort")):
        r = _get(story, "videos", db=ident, **params)
        assert r.status_code == 400, params
        assert f"Parameter {name}=" in r.text and "<b>x" not in r.text


def test_sorting_a_2015_database(story):
    legacy = story["legacy"]
    conn = read_db(legacy)
    table = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    rows = conn.execute(f'SELECT rowid, DownloadInterruptions FROM "{table}"'  # videos: played, or failed (no
                        ' WHERE DownloadTime > 0 OR RedirectUrl IS NULL').fetchall()  # redirection to another cache)
    conn.close()
    truth = [r[0] for r in sorted(rows, key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0, r[0]))]
    r = _get(story, "videos", db=run_id(legacy), sort="stalls", order="asc")
    assert r.status_code == 200 and _listed_ids(r.text) == truth[:50]


# ---- 4. and 5. the video page: segments, renditions, switches, TCP_INFO ----

def _section(text: str, heading: str) -> str:
    start = text.index(f"<h2>{heading}</h2>")
    end = text.find("<h2>", start + 4)
    return text[start:end if end > 0 else len(text)]


def test_hls_page_shows_its_renditions_and_the_switches_of_its_segment_order(story):
    lab = story["lab"]
    vid, did = _segmented_download(lab, "hls")
    conn = read_db(lab)
    media = conn.execute("SELECT seq, stream, rendition_id FROM segment_requests WHERE download_id = ?"
                         " AND kind = 'media' AND rendition_id IS NOT NULL ORDER BY seq", (did,)).fetchall()
    groups = conn.execute("SELECT stream, rendition_id, count(*) FROM segment_requests WHERE download_id = ?"
                          " AND kind = 'media' AND rendition_id IS NOT NULL GROUP BY 1, 2", (did,)).fetchall()
    total = conn.execute("SELECT count(*) FROM segment_requests WHERE download_id = ?", (did,)).fetchone()[0]
    conn.close()
    switches, last = [], {}
    for seq, stream, rendition in media:
        if stream in last and last[stream] != rendition:
            switches.append((seq, stream, last[stream], rendition))
        last[stream] = rendition
    assert switches  # the copy was made to switch
    text = _get(story, f"video/{vid}", db=run_id(lab)).text
    assert "low<b>" not in text and html.escape("low<b>") in text
    seg = _section(text, "Segments")
    assert f"{total} requests" in seg and len(re.findall(r"<tr><td class=\"num\">\d+</td>", seg)) == total
    rend = _section(text, "Renditions")
    for stream, rendition, count in groups:
        assert re.search(rf"<td>{stream}</td><td>{re.escape(html.escape(rendition))}</td>.*?"
                         rf'<td class="num">{count}</td>', rend, re.S), (stream, rendition)
    shown = re.findall(r'<tr><td class="num">(\d+)</td><td>(\w+)</td><td>([^<]*)</td>', _section(text,
                                                                                                "Rendition switches"))
    assert [(int(s), st, html.unescape(f)) for s, st, f in shown] == [(s, st, f) for s, st, f, _t in switches]


def test_a_long_session_shows_its_first_200_requests_and_says_how_many(story):
    lab = story["lab"]
    vid, did = _segmented_download(lab, "dash")
    conn = read_db(lab)
    total = conn.execute("SELECT count(*) FROM segment_requests WHERE download_id = ?", (did,)).fetchone()[0]
    first = [r[0] for r in conn.execute("SELECT seq FROM segment_requests WHERE download_id = ? ORDER BY seq"
                                        " LIMIT 200", (did,))]
    conn.close()
    assert total > 200
    seg = _section(_get(story, f"video/{vid}", db=run_id(lab)).text, "Segments")
    assert f"{total} requests, the first 200 shown" in seg
    assert [int(s) for s in re.findall(r'<tr><td class="num">(\d+)</td>', seg)] == first


def test_progressive_videos_have_no_segments_section(story):
    lab = story["lab"]
    conn = read_db(lab)
    vid = conn.execute("SELECT video_row_id FROM downloads WHERE delivery = 'progressive' AND bytes > 0").fetchone()[0]
    conn.close()
    text = _get(story, f"video/{vid}", db=run_id(lab)).text
    assert "<h2>Segments</h2>" not in text and "<h2>Renditions</h2>" not in text and "<h2>TCP_INFO</h2>" in text


def _tcp_row(text: str, field: str) -> list[str]:
    row = re.search(rf"<tr><td>[^<]*\({field}\)</td>(.*?)</tr>", _section(text, "TCP_INFO"), re.S)
    assert row, field
    return re.findall(r'<td class="num">([^<]*)</td>', row.group(1))


def test_tcp_info_in_kernel_units_converted(story):
    lab = story["lab"]
    conn = read_db(lab)
    did, vid = conn.execute("SELECT d.id, d.video_row_id FROM downloads d WHERE d.id = (SELECT min(x.id) FROM"
                            " downloads x WHERE x.video_row_id = d.video_row_id) AND (SELECT count(*) FROM"
                            " tcp_info_samples t WHERE t.download_id = d.id) > 3 ORDER BY d.id").fetchone()
    rows = conn.execute("SELECT tcpi_rtt, tcpi_rttvar, tcpi_min_rtt, tcpi_total_retrans, tcpi_delivery_rate"
                        " FROM tcp_info_samples WHERE download_id = ? ORDER BY t_s, rowid", (did,)).fetchall()
    conn.close()
    text = _get(story, f"video/{vid}", db=run_id(lab)).text
    assert f"{len(rows)} snapshots" in text
    for i, field in enumerate(("tcpi_rtt", "tcpi_rttvar", "tcpi_min_rtt")):
        ms = [r[i] / 1000 for r in rows if r[i] is not None]  # the kernel counts µs
        expected = [ms[0], ms[-1], min(ms), statistics.median(ms), max(ms)]
        assert _tcp_row(text, field) == [f"{v:,.3f}" for v in expected], field
    retrans = [r[3] for r in rows]
    assert _tcp_row(text, "tcpi_total_retrans")[1] == f"{retrans[-1]:,}"
    bits = [r[4] * 8 for r in rows]  # bytes/s, shown in bit/s as every rate
    assert _tcp_row(text, "tcpi_delivery_rate")[3] == in_unit(statistics.median(bits), "bit/s")


def test_a_video_without_tcp_info_says_so(story, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-story-notcp")
    db = _copy(story["lab"], folder, "notcp")
    _write(db, ("DELETE FROM tcp_info_samples", ()))
    shutil.copyfile(db, story["folder"] / db.name)
    try:
        _wait_rescan()
        conn = read_db(db)
        vid = conn.execute("SELECT min(video_row_id) FROM downloads").fetchone()[0]
        conn.close()
        text = _get(story, f"video/{vid}", db=run_id(story["folder"] / db.name)).text
        assert "No TCP_INFO snapshot was recorded" in _section(text, "TCP_INFO")
    finally:
        (story["folder"] / db.name).unlink()


# ---- 6. times with their zone ----

def test_times_on_the_videos_list_and_video_page_carry_the_run_zone(story):
    lab = story["lab"]
    conn = read_db(lab)
    zone = conn.execute("SELECT timezone FROM run").fetchone()[0]
    vid, started = conn.execute("SELECT id, started_at FROM videos ORDER BY id LIMIT 1").fetchone()
    d_started = conn.execute("SELECT started_at FROM downloads WHERE video_row_id = ? ORDER BY id", (vid,)).fetchone()
    conn.close()
    clock = Clock(zone)
    shown = clock.show(clock.epoch(started))
    assert re.search(r"[A-Z]{3,}|[+-]\d\d", shown.split()[-1])  # a zone, not a bare time
    listing = _get(story, "videos", db=run_id(lab), sort="started", order="asc").text
    assert f"<td>{shown}</td>" in listing
    page = _get(story, f"video/{vid}", db=run_id(lab)).text
    assert f"<dt>Started</dt><dd>{shown}</dd>" in page
    if d_started:
        assert clock.show(clock.epoch(d_started[0])) in page
