"""RRD layout and updates: data-source names, archive coverage, same-second points, out-of-order points, 2015 IDs,
closing, the layout version."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time

import pytest
import rrdtool

from pytomo.readers.points import Point, parse_id, read_points, values_from_columns
from pytomo.rrd import recorder as recorder_mod
from pytomo.rrd.metrics import GROUPS, METRICS
from pytomo.rrd.rebuild import rebuild
from pytomo.rrd.recorder import MAX_FAILURES, RrdRecorder
from pytomo.rrd.store import (
    ARCHIVES,
    LAYOUT,
    MEASURED_DS,
    STEP_S,
    XFF,
    OutdatedRrd,
    RrdStore,
    check_layout,
    counts_create_args,
    counts_file,
    create_args,
    first_point_s,
    range_info,
    server_file,
)

T0 = 1_790_000_000.25


def _point(t: float, thp: float, server: str = "10.0.0.1") -> Point:
    values = {m.name: None for m in METRICS}
    values["throughput_2015_bps"] = thp
    return Point(t, "Svc", server, "http://cache", values)


def _series(path, start: int, end: int, ds: str = "throughput_2015_bps",
            res: int = 1) -> list[tuple[int, float | None]]:
    """``(end of the interval, value)`` of one data source."""
    (s, _e, step), names, rows = rrdtool.fetch(str(path), "AVERAGE", "-r", str(res), "-s", str(start), "-e", str(end))
    i = names.index(ds)
    return [(s + (k + 1) * step, row[i]) for k, row in enumerate(rows)]


def test_data_sources_are_valid_and_every_group_names_known_metrics():
    names = [m.name for m in METRICS]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_]{1,19}", n) for n in names)
    assert all(set(g) <= set(names) for _label, g in GROUPS.values())
    args = create_args(1000)
    assert sum(a.startswith("DS:") for a in args) == len(METRICS)
    assert sum(a.startswith("RRA:") for a in args) == 3 * len(ARCHIVES)
    counts = counts_create_args(1000)  # one count per graph and one of every video, averaged only
    assert [a.split(":")[1] for a in counts if a.startswith("DS:")] == [*names, MEASURED_DS]
    assert [a.split(":")[1] for a in counts if a.startswith("RRA:")] == ["AVERAGE"] * len(ARCHIVES)


def test_archives_cover_months_at_one_video_a_minute():
    coverage_s = {steps * STEP_S: steps * rows * STEP_S for steps, rows in ARCHIVES}
    assert max(coverage_s.values()) >= 365 * 86400
    assert any(res <= 60 and cov >= 86400 for res, cov in coverage_s.items())  # a day at one minute
    assert any(res <= 1800 and cov >= 31 * 86400 for res, cov in coverage_s.items())  # a month at 30 min


def test_one_video_keeps_an_interval_of_every_archive_known_and_none_leaves_it_unknown():
    for steps, _rows in ARCHIVES:  # rrdtool: a row is unknown when more than xff * steps of its seconds are
        assert steps - 1 <= XFF * steps < steps
    assert 0 <= XFF < 1  # what rrdtool accepts


def test_points_in_the_same_second_are_all_kept(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    assert store.add(_point(T0, 100.0)) and store.add(_point(T0, 200.0)) and store.add(_point(T0 + 0.5, 300.0))
    path = tmp_path / "r.rrd" / "service-Svc.rrd"
    t = int(T0) + 1
    got = dict(_series(path, t - 2, t + 3))
    assert [got[t], got[t + 1], got[t + 2]] == [100.0, 200.0, 300.0]
    assert store.points == 3 and first_point_s(tmp_path / "r.rrd") == t
    assert server_file(tmp_path / "r.rrd", "10.0.0.1").exists()


def test_a_point_far_before_the_last_is_skipped_and_counted(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    assert store.add(_point(T0, 1.0))
    assert not store.add(_point(T0 - 3600, 2.0))
    assert store.skipped == 1 and store.points == 1


def test_a_video_covers_its_own_second_only(tmp_path):
    store = RrdStore(tmp_path / "r.rrd")
    store.add(_point(T0, 10.0))
    store.add(_point(T0 + 60, 20.0))
    path = tmp_path / "r.rrd" / "service-Svc.rrd"
    t1 = int(T0) + 1  # the first point, written at the end of its second
    got = dict(_series(path, t1 - 3, t1 + 62))
    assert got[t1] == 10.0 and got[t1 + 60] == 20.0
    assert [got[t] for t in range(t1 + 1, t1 + 60)] == [None] * 59 and got[t1 + 61] is None and got[t1 - 1] is None


def test_closing_puts_the_last_videos_into_every_archive_and_records_them(tmp_path):
    store = RrdStore(tmp_path / "r.rrd", zone="Europe/Paris")
    store.add(_point(T0, 10.0))
    store.add(_point(T0 + 90, 30.0))
    path = tmp_path / "r.rrd" / "service-Svc.rrd"
    coarsest = ARCHIVES[-1][0] * STEP_S
    (_s, _e, step), names, rows = rrdtool.fetch(str(path), "AVERAGE", "-r", str(coarsest), "-s",
                                                str(int(T0) - coarsest), "-e", str(int(T0) + coarsest))
    assert step == coarsest and all(r[names.index("throughput_2015_bps")] is None for r in rows)  # not complete yet
    store.close()
    (_s, _e, step), names, rows = rrdtool.fetch(str(path), "AVERAGE", "-r", str(coarsest), "-s",
                                                str(int(T0) - coarsest), "-e", str(int(T0) + coarsest))
    column = names.index("throughput_2015_bps")
    assert [r[column] for r in rows if r[column] is not None] == [20.0]
    info = range_info(tmp_path / "r.rrd")
    assert info.layout == LAYOUT and info.zone == "Europe/Paris" and info.first_s == int(T0) + 1
    assert info.last_s["service-Svc.rrd"] == int(T0) + 91 and not info.outdated


def test_files_of_the_old_layout_are_recognised(tmp_path):
    old = tmp_path / "old.rrd"
    old.mkdir()
    (old / "range.json").write_text('{"first_s": 1790000000}')  # as the first layout wrote it
    with pytest.raises(OutdatedRrd, match="--rebuild-rrd"):
        check_layout(old)
    assert range_info(tmp_path / "missing").outdated
    assert first_point_s(old) == 1790000000


def test_ipv6_server_files_have_no_colon(tmp_path):
    assert ":" not in server_file(tmp_path, "2001:db8::1").name


def test_values_from_2015_columns_derive_the_2015_indicators():
    row = {"DownloadBytes": 1_000_000, "DownloadTime": 2.0, "EncodingRate": 1000.0, "DownloadInterruptions": 2,
           "PingAvg": 12.5, "StatusCode": 200}
    v = values_from_columns(row, {"time_to_start_s": 0.4, "avg_throughput_bps": 3_000_000})
    assert v["throughput_2015_bps"] == 4_000_000.0 and v["reception_ratio"] == 4.0 and v["stalled_videos"] == 1.0
    assert v["ping_avg_ms"] == 12.5 and v["start_s"] == 0.4 and v["avg_throughput_bps"] == 3_000_000.0
    none = values_from_columns({"DownloadBytes": 5, "DownloadTime": 0, "DownloadInterruptions": 0})
    assert none["throughput_2015_bps"] is None and none["stalled_videos"] == 0.0 and none["start_s"] is None


def test_ids_are_read_in_the_zone_given_never_in_this_machines(monkeypatch):
    assert parse_id("2026-01-05 00:00:00.500000") == 1767571200.5
    monkeypatch.setenv("TZ", "America/New_York")  # this machine's zone plays no part
    time.tzset()
    try:
        assert parse_id("2026-01-05 01:00:00", "Europe/Paris") == 1767571200.0
        assert parse_id("2026-07-05 02:00:00", "Europe/Paris") == 1783209600.0  # summer time
        assert parse_id("2026-01-05 01:00:00", None) == 1767574800.0  # zone unknown: floating, read as if UTC
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert parse_id("not a time") is None and parse_id(None) is None


def test_rebuild_of_a_2015_table(tmp_path):
    db = tmp_path / "h.youtube.2013-11-29.14_03_12.pytomo_database.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE pytomo_crawl_2013_11_29_14_03_12 (ID TIMESTAMP, Service text, Url text, CacheUrl text,"
                 " IP text, DownloadTime real, DownloadBytes int, EncodingRate real, DownloadInterruptions int,"
                 " PingAvg real, StatusCode int)")
    rows = [("2013-11-29 14:03:12.100000", "YouTube", "u1", "http://c1", "1.1.1.1", 2.0, 500_000, 800.0, 0, 20.0, 200),
            ("2013-11-29 14:03:12.200000", "YouTube", "u1", "http://r", "1.1.1.9", None, None, None, None, 5.0, 302),
            ("2013-11-29 14:04:12.000000", "YouTube", "u2", "http://c2", "2.2.2.2", 4.0, 500_000, 800.0, 3, 30.0, 200),
            ("garbage", "YouTube", "u3", "http://c2", "2.2.2.2", 4.0, 1, 1.0, 0, 1.0, 200)]
    conn.executemany("INSERT INTO pytomo_crawl_2013_11_29_14_03_12 VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    report = rebuild(db, tz="UTC")
    assert report.layout == "2015" and report.points == 2 and report.bad_times == 1
    assert report.files == ["server-1.1.1.1.rrd", "server-2.2.2.2.rrd", "service-YouTube.rrd"]
    minute = (int(parse_id(rows[2][0])) // 60 + 1) * 60  # closed: the second archive is gone, minutes remain
    got = dict(_series(report.folder / "service-YouTube.rrd", minute - 120, minute, "stalled_videos", 60))
    assert got[minute] == 1.0 and got[minute - 60] == 0.0
    assert dict(_series(report.folder / "service-YouTube.rrd", minute - 120, minute, res=60))[minute] == 1_000_000.0
    info = range_info(report.folder)  # what this database does not record, so that its graphs say so
    assert info.source == "2015" and counts_file(report.folder / "service-YouTube.rrd").exists()
    assert {"start_s", "avg_throughput_bps", "dns_s", "ttfb_s", "peak_1s_bps", "server_delay_s"} <= set(
        info.not_recorded)  # not in the 2015 layout, or not a column of this table
    assert not {"stalled_videos", "throughput_2015_bps", "reception_ratio", "ping_avg_ms", "status_code"} & set(
        info.not_recorded)
    again = rebuild(db, tz="UTC")  # replaces the files whole
    assert again.files == report.files and not list(tmp_path.glob("*.rebuild-*")) and not list(tmp_path.glob("*.old-*"))


def test_read_points_of_an_unknown_database_is_empty(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE other (a)")
    assert read_points(conn).points == []


def test_recorder_logs_failures_and_never_raises(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rec = RrdRecorder(blocker / "x.pytomo_database.db")  # its folder cannot be created
    monkeypatch.setattr(recorder_mod, "points_from_measurement", lambda m: iter([_point(T0, 1.0)]))

    class Video:
        page_url = "http://example.test/v"

    with caplog.at_level(logging.WARNING, logger="pytomo.rrd.recorder"):
        for _ in range(MAX_FAILURES + 2):
            rec.add(Video())
    assert not rec.enabled
    assert sum("cannot record" in r.getMessage() for r in caplog.records) == MAX_FAILURES
    assert any("Disabled RRD files" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX only")
def test_graph_cache_draws_once_until_the_file_changes(tmp_path, monkeypatch):
    from pytomo.web import graphs

    store = RrdStore(tmp_path / "r.rrd")
    store.add(_point(T0, 5.0))
    store.add(_point(T0 + 30, 7.0))
    path = tmp_path / "r.rrd" / "service-Svc.rrd"
    cache = graphs.GraphCache(tmp_path / "cache")
    image, key = cache.get(path, "throughput_2015_bps", "all", "png")
    assert image.startswith(b"\x89PNG") and len(list((tmp_path / "cache").iterdir())) == 1
    calls = []
    real = rrdtool.graphv
    monkeypatch.setattr(rrdtool, "graphv", lambda *a: calls.append(a) or real(*a))
    assert cache.get(path, "throughput_2015_bps", "all", "png") == (image, key) and calls == []
    store.add(_point(T0 + 60, 9.0))
    _image, key2 = cache.get(path, "throughput_2015_bps", "all", "png")
    assert key2 != key and len(calls) == 1
