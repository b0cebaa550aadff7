"""``pytomo import`` of the real 2013 dumps and of hostile sources: the rows read back with sqlite3 against the dump
text parsed here, the UTC times against Paris' known offsets, and every bad source refused in one line, nothing left."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pytomo.readers.upload_check import check_upload
from tests.conftest import ROOT
from tests.web.legacy import COLUMNS_2013, COLUMNS_2015, REAL_2013

DUMPS = sorted(REAL_2013.glob("aggregation_*.txt"))
NAMES_2013 = [c for c, _t in COLUMNS_2013]
NAMES_2015 = [c for c, _t in COLUMNS_2015]
RUN_NAMESPACE = uuid.UUID("6f1d7c1e-4a8b-5b0e-9c55-2f1d0e5a7b31")  # the upload's: a run UUID from a SHA-256

pytestmark = pytest.mark.skipif(len(DUMPS) != 2, reason="../shared/pytomo2013 holds the two real 2013 dumps")


def pytomo_import(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytomo", "import", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def dump_rows(dump: Path) -> list[dict[str, str | None]]:
    """The dump as its text says: each line's 24 fields by 2013 column name, '' as NULL."""
    return [dict(zip(NAMES_2013, [v if v != "" else None for v in line.split("|")], strict=True))
            for line in dump.read_text().splitlines() if line]


def read(db: Path, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def imported(out: Path) -> list[Path]:
    return sorted(out.glob("*.pytomo_database.db"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    out = tmp_path_factory.mktemp("imported")
    done = pytomo_import(*map(str, DUMPS), "--tz", "Europe/Paris", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    return {dump: Path(line.rsplit(" -> ", 1)[1]) for dump, line in zip(DUMPS, lines, strict=True)}


def test_rows_are_videos_hops_and_downloads(runs: dict[Path, Path]) -> None:
    for dump, db in runs.items():
        rows = dump_rows(dump)
        hop_rows = [r for r in rows if r["RedirectUrl"] and r["DownloadBytes"] is None]
        assert read(db, "SELECT count(*) FROM videos")[0][0] == len(rows) - len(hop_rows)  # a hop is not a video
        assert read(db, "SELECT count(*) FROM hops")[0][0] == len(rows)  # each row: its hop (one address each)
        assert read(db, "SELECT count(*) FROM downloads")[0][0] == sum(r["DownloadBytes"] is not None for r in rows)
        assert read(db, "SELECT count(*) FROM crawl_2015")[0][0] == len(rows)
        played = sum(int(r["DownloadBytes"] or 0) > 0 for r in rows)
        assert read(db, "SELECT count(*) FROM videos WHERE status = 'ok'")[0][0] == played
        # a redirected video: its hops in order, the next hop's origin the one its row named
        for r in hop_rows:
            chain = read(db, "SELECT h.origin FROM hops h JOIN videos v ON v.id = h.video_row_id "
                             "WHERE v.started_at = (SELECT started_at FROM videos WHERE id = (SELECT video_row_id "
                             "FROM crawl_2015 WHERE LocalID = ?)) ORDER BY h.hop_index", r["ID"])
            assert [c[0] for c in chain] == [r["CacheUrl"], r["RedirectUrl"]]


def test_values_survive_exactly(runs: dict[Path, Path]) -> None:
    numbers = {c for c, t in COLUMNS_2013 if t in ("real", "int")}
    for dump, db in runs.items():
        conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
        conn.row_factory = sqlite3.Row
        stored = [dict(r) for r in conn.execute("SELECT * FROM crawl_2015 ORDER BY rowid")]
        downloads = {r["started_at"]: dict(r) for r in conn.execute("SELECT * FROM downloads")}
        conn.close()
        for text, row in zip(dump_rows(dump), stored, strict=True):
            for col in NAMES_2013[1:]:
                want = text[col]
                assert row[col] == (float(want) if col in numbers and want is not None else want), (col, text)
            assert row["LocalID"] == text["ID"]
            utc = datetime.fromisoformat(text["ID"]) - timedelta(hours=1)  # Paris in January: UTC+1
            assert row["ID"] == utc.isoformat(" ", "microseconds")
            for col in ("CacheServerDelay", "ResolveTime", "ASNumber", "TimeTogetFirstByte", "StatusCode"):
                assert row[col] is None  # not in the 2013 layout
            if text["DownloadBytes"] is None:
                continue
            d = downloads[utc.isoformat("T", "microseconds") + "Z"]
            assert d["bytes"] == int(text["DownloadBytes"]) and d["transfer_s"] == float(text["DownloadTime"])
            assert d["ping_min_ms"] == float(text["PingMin"]) and d["ping_max_ms"] == float(text["PingMax"])
            assert d["throughput_2015_bps"] == int(text["DownloadBytes"]) * 8 / float(text["DownloadTime"])
            assert d["encoding_rate_bps"] == float(text["EncodingRate"]) * 1000
            assert d["media_duration_s"] == float(text["VideoDuration"])
            assert d["content_length_bytes"] == int(float(text["VideoLength"]))
            assert d["container"] == text["VideoType"].lower() and d["address"] == text["IP"]
            # what 2015 measured otherwise, or not at all, is NULL with the reason
            assert d["played_s"] is None and d["stall_count"] is None and d["peak_1s_bps"] is None
            assert d["window_s"] is None and d["avg_throughput_bps"] is None and d["first_byte_s"] is None
            assert "2015" in d["playout_problem"] and "2013" in d["ip_db_problem"]


def test_run_row_says_imported_from_what(runs: dict[Path, Path]) -> None:
    for dump, db in runs.items():
        (run_uuid, status, reason, tz, started, local, offset, service), = read(
            db, "SELECT run_uuid, status, stop_reason, timezone, started_at, started_at_local, utc_offset_s, service "
                "FROM run")
        sha = hashlib.sha256(dump.read_bytes()).hexdigest()
        assert run_uuid == str(uuid.uuid5(RUN_NAMESPACE, sha))
        assert status == "imported" and dump.name in reason and sha in reason and "Europe/Paris" in reason
        first = dump_rows(dump)[0]["ID"]
        assert tz == "Europe/Paris" and offset == 3600 and service == "YouTube"
        assert local == datetime.fromisoformat(first).isoformat("T", "microseconds") + "+01:00"
        assert started == (datetime.fromisoformat(first) - timedelta(hours=1)).isoformat("T", "microseconds") + "Z"
        assert read(db, "PRAGMA user_version")[0][0] == read(db, "SELECT schema_version FROM run")[0][0]
        checked = check_upload(db)  # the collector's check: a run database of ours
        assert checked.run_uuid == run_uuid and checked.facts["status"] == "imported"


def test_importing_twice_gives_the_same_run(runs: dict[Path, Path], tmp_path: Path) -> None:
    dump, db = next(iter(runs.items()))
    done = pytomo_import(str(dump), "--tz", "Europe/Paris", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (again,) = imported(tmp_path)
    assert again.name == db.name
    assert read(again, "SELECT run_uuid FROM run") == read(db, "SELECT run_uuid FROM run")
    assert read(again, "SELECT * FROM crawl_2015") == read(db, "SELECT * FROM crawl_2015")


def test_no_tz_is_a_usage_error_and_nothing_is_written(tmp_path: Path) -> None:
    for args in ([], ["--tz", "Mars/Olympus"]):
        done = pytomo_import(str(DUMPS[0]), *args, "--out", str(tmp_path / "out"))
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "--tz" in done.stderr or "Mars/Olympus" in done.stderr
        assert not (tmp_path / "out").exists()


def write_dump(path: Path, times: list[str]) -> Path:
    line = DUMPS[0].read_text().splitlines()[1].split("|")
    path.write_text("".join("|".join([t, *line[1:]]) + "\n" for t in times))
    return path


def test_daylight_saving_time(tmp_path: Path) -> None:
    # autumn 2013 in Paris: 02:30 CEST (00:30Z), then, clocks back at 03:00 CEST, 02:10 CET (01:10Z)
    autumn = write_dump(tmp_path / "autumn.txt", ["2013-10-27 01:50:00.000000", "2013-10-27 02:30:00.000000",
                                                  "2013-10-27 02:10:00.000000", "2013-10-27 03:05:00.000000"])
    done = pytomo_import(str(autumn), "--tz", "Europe/Paris", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (db,) = imported(tmp_path / "out")
    assert [r[0] for r in read(db, "SELECT ID FROM crawl_2015 ORDER BY rowid")] == [
        "2013-10-26 23:50:00.000000", "2013-10-27 00:30:00.000000", "2013-10-27 01:10:00.000000",
        "2013-10-27 02:05:00.000000"]
    # spring: 02:30 does not exist in Paris on 2013-03-31; a wrong --tz is caught, nothing written
    spring = write_dump(tmp_path / "spring.txt", ["2013-03-31 01:59:00.000000", "2013-03-31 02:30:00.000000"])
    done = pytomo_import(str(spring), "--tz", "Europe/Paris", "--out", str(tmp_path / "spring"))
    assert done.returncode == 2 and "does not exist in Europe/Paris" in done.stderr, done.stderr
    assert not imported(tmp_path / "spring") and not list((tmp_path / "spring").iterdir())


def hostile_sources(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken or hostile files and a word of the line that refuses each."""
    good = DUMPS[0].read_text().splitlines()
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes | str, word: str) -> None:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name] = (path, word)

    put("garbage.bin", bytes(range(256)) * 64, "fields")
    put("empty.txt", "", "no rows")
    put("fields.txt", "\n".join([*good[:5], "a|b|c", *good[5:]]) + "\n", "line 6")
    put("number.txt", "\n".join([*good[:3], good[3].replace("|24.0|", "|twenty|", 1)]) + "\n", "not a number")
    put("huge.txt", "\n".join([*good[:3], good[3].replace("|3537177|", "|" + "9" * 30 + "|", 1)]) + "\n",
        "64-bit")
    put("nan.txt", "\n".join([*good[:3], good[3].replace("|24.0|", "|nan|", 1)]) + "\n", "finite")
    put("time.txt", "\n".join([*good[:3], "yesterday" + good[3][26:]]) + "\n", "not a time")
    put("long.txt", good[0] + "|" * 0 + "x" * (70 * 1024) + "\n", "longer than")
    put("bad-end.txt", "\n".join([*good, good[-1].replace("|22.0|", "|x|", 1)]) + "\n", "not a number")
    put("million.txt", (good[2] + "\n") * 1_000_001, "more than 1000000 rows")
    put("not-utf8.txt", good[0].encode() + b"\xff\xfe\n", "UTF-8")
    put("truncated.db", b"SQLite format 3\x00" + b"\x00" * 200, "cannot")
    return out


def sqlite_file(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.close()
    return path


def test_hostile_sources_are_refused_in_one_line_leaving_nothing(tmp_path: Path) -> None:
    sources = hostile_sources(tmp_path)
    table = "pytomo_crawl_2013_01_24_18_23_56"
    cols = ", ".join(f"{c} {t}" for c, t in COLUMNS_2015)
    sources["columns.db"] = (sqlite_file(tmp_path / "columns.db", f"CREATE TABLE {table} (ID TIMESTAMP, x text);"
                                         f"INSERT INTO {table} VALUES ('2013-01-24 18:00:00', 'y')"), "columns")
    sources["trigger.db"] = (sqlite_file(tmp_path / "trigger.db", f"CREATE TABLE {table} ({cols}); CREATE TRIGGER t "
                                         f"AFTER INSERT ON {table} BEGIN SELECT 1; END"), "not a 2015")
    sources["two.db"] = (sqlite_file(tmp_path / "two.db", f"CREATE TABLE {table} ({cols}); CREATE TABLE "
                                     f"{table.replace('2013', '2014')} ({cols})"), "not a 2015")
    sources["empty.db"] = (sqlite_file(tmp_path / "empty.db", f"CREATE TABLE {table} ({cols})"), "no rows")
    sources["blob.db"] = (sqlite_file(tmp_path / "blob.db", f"CREATE TABLE {table} ({cols}); INSERT INTO {table} "
                                      f"(ID, Url, PingMin) VALUES ('2013-01-24 18:00:00', 'u', x'00ff')"), "bytes")
    out = tmp_path / "out"
    for name, (path, word) in sources.items():
        started = time.monotonic()
        done = pytomo_import(str(path), "--tz", "Europe/Paris", "--out", str(out), timeout=120)
        assert done.returncode == 2, (name, done.returncode, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and word in done.stderr, (name, done.stderr)
        assert not out.exists() or not list(out.iterdir()), (name, list(out.iterdir()))
        assert time.monotonic() - started < 60, name


def test_extreme_numbers_are_kept_and_what_overflows_is_null(tmp_path: Path) -> None:
    cells = DUMPS[0].read_text().splitlines()[1].split("|")
    cells[9], cells[13], cells[14] = "1e-300", "1e306", str(2**62)  # DownloadTime, EncodingRate, DownloadBytes
    (tmp_path / "extreme.txt").write_text("|".join(cells) + "\n")
    done = pytomo_import(str(tmp_path / "extreme.txt"), "--tz", "Europe/Paris", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (db,) = imported(tmp_path / "out")
    assert read(db, "SELECT DownloadTime, EncodingRate, DownloadBytes FROM crawl_2015") == [(1e-300, 1e306, 2**62)]
    assert read(db, "SELECT bytes, throughput_2015_bps, encoding_rate_bps FROM downloads") == [(2**62, None, None)]


def test_resolver_labels_become_dns_answers(tmp_path: Path) -> None:
    cells = DUMPS[0].read_text().splitlines()[1].split("|")
    rows = []
    for n, label in enumerate(["_default_10.0.0.1__google_public_dns_8.8.8.8", "orange_open_dns_208.67.220.220",
                               "default_1_" * 800]):
        cells[0] = f"2013-01-24 18:0{n}:00.000000"
        cells[2] = f"http://www.youtube.com/watch?v=video{n}"
        cells[5] = label
        rows.append("|".join(cells))
    (tmp_path / "resolvers.txt").write_text("\n".join(rows) + "\n")
    done = pytomo_import(str(tmp_path / "resolvers.txt"), "--tz", "UTC", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    (db,) = imported(tmp_path / "out")
    got = read(db, "SELECT v.page_url, a.resolver, a.resolver_address, a.address FROM dns_answers a "
                   "JOIN videos v ON v.id = a.video_row_id ORDER BY a.id")
    ip = cells[4]
    assert got == [("http://www.youtube.com/watch?v=video0", "system", "10.0.0.1", ip),
                   ("http://www.youtube.com/watch?v=video0", "google", "8.8.8.8", ip),
                   ("http://www.youtube.com/watch?v=video1", "opendns", "208.67.220.220", ip),
                   *[("http://www.youtube.com/watch?v=video2", "system", "1", ip)] * 3]  # 2015 asked three at most
