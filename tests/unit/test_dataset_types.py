"""The dataset's types (issue 22): UTC times as timestamps, local times with their offsets, units and descriptions
in the Parquet schema, one meaning per column name in pytomo_crawl, an unknown hour stated, counts as integers, plot
units, Datasette metadata whatever a file is called. DuckDB, pyarrow, sqlite3 and Datasette are the truth."""

from __future__ import annotations

import asyncio
import csv
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytomo.dataset import analyses
from pytomo.dataset.parquet import write_run
from pytomo.figures import figures
from pytomo.readers.tables import LOCAL_TIMES, UTC_TIMES, tables_of
from pytomo.readers.upload_check import digest, reference
from pytomo.storage.schema import PLAYBACK_DURATION, VIEW
from tests.unit.test_dataset import make_db

RUN_UUID = "11111111-2222-4333-8444-555555555555"


def typed_db(path: Path) -> Path:
    """make_db's run with local times of three offsets (one a text without offset, one missing) and a playout."""
    make_db(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE run SET started_at_local = '2026-01-06T00:59:00.000000+01:00', "
                 "ended_at = '2026-01-06T01:00:00.250000Z', ended_at_local = '2026-01-05T20:00:00.250000-05:00'")
    conn.execute("UPDATE videos SET started_at_local = replace(replace(started_at, 'Z', '+05:30'), 'T23', 'T05') "
                 "WHERE id = 1")
    conn.execute("UPDATE videos SET started_at_local = '2026-01-06T01:00:10' WHERE id = 2")  # no offset: NULL
    conn.execute("UPDATE downloads SET started_at_local = '2026-01-06T05:29:30.000000+05:30' WHERE id = 1")
    conn.commit()
    conn.close()
    return path


def sqlite_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_utc_times_are_timestamps_equal_to_the_sqlite_instants(tmp_path: Path) -> None:
    db = typed_db(tmp_path / "t.db")
    root = tmp_path / "ds"
    write_run(tables_of(db), root)
    con = analyses.connect()
    src = sqlite3.connect(db)
    checked = 0
    for table, names in UTC_TIMES.items():
        glob = f"{root}/{table}/**/*.parquet"
        for name in names:
            kinds = {k for (k,) in con.execute(f'SELECT typeof("{name}") FROM read_parquet(\'{glob}\')').fetchall()}
            declared = dict(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()[i][:2]
                            for i in range(len(pq.read_schema(next((root / table).rglob("*.parquet"))))))
            assert kinds <= {"TIMESTAMP WITH TIME ZONE"} and declared[name] == "TIMESTAMP WITH TIME ZONE", table
            got = sorted(con.execute(f'SELECT id, "{name}" FROM read_parquet(\'{glob}\')').fetchall())
            want = sorted((i, sqlite_instant(t) if t else None)
                          for i, t in src.execute(f'SELECT id, "{name}" FROM {table}').fetchall())
            assert got == want, (table, name)
            checked += len(want)
    assert checked >= 9


def test_a_local_time_is_its_wall_clock_with_its_offset_beside_it(tmp_path: Path) -> None:
    db = typed_db(tmp_path / "t.db")
    tables = tables_of(db)
    for table, names in LOCAL_TIMES.items():
        for name in names:
            offset = name.removesuffix("_local") + "_utc_offset_s"
            assert tables[table].schema.field(name).type == pa.timestamp("us"), (table, name)
            assert tables[table].schema.field(offset).type == pa.int32(), (table, offset)
            columns = tables[table].column_names
            assert columns.index(offset) == columns.index(name) + 1
    run = tables["run"].to_pylist()[0]
    assert run["started_at_local"] == datetime(2026, 1, 6, 0, 59) and run["started_at_utc_offset_s"] == 3600
    assert run["ended_at_utc_offset_s"] == -5 * 3600
    assert run["ended_at_local"] - timedelta(seconds=run["ended_at_utc_offset_s"]) == \
        run["ended_at"].replace(tzinfo=None)
    videos = sorted(tables["videos"].to_pylist(), key=lambda r: r["id"])
    assert videos[0]["started_at_utc_offset_s"] == 5 * 3600 + 1800
    assert videos[1]["started_at_local"] is None and videos[1]["started_at_utc_offset_s"] is None  # never one alone
    # the view: ID in UTC, LocalID its wall clock, utc_offset_s = LocalID - ID
    view = sorted(tables["pytomo_crawl"].to_pylist(), key=lambda r: r["ID"])
    assert view[0]["ID"] == sqlite_instant("2026-01-05T23:59:30.000000Z")
    assert view[0]["LocalID"] == datetime(2026, 1, 6, 5, 29, 30) and view[0]["utc_offset_s"] == 19800
    # a LocalID is a wall clock in the view (2015 wrote no offset): its offset is LocalID - ID
    assert view[1]["LocalID"] == datetime(2026, 1, 6, 1, 0, 10) and view[1]["utc_offset_s"] == 3600


def test_duckdb_groups_by_local_hour_and_utc_day_without_a_cast(tmp_path: Path) -> None:
    db = typed_db(tmp_path / "t.db")
    root = tmp_path / "ds"
    write_run(tables_of(db), root)
    con = analyses.connect()
    rows = con.execute(f"""SELECT hour(started_at_local) AS h, date_trunc('day', started_at) AS day,
                                  count(*) FROM read_parquet('{root}/videos/**/*.parquet') GROUP BY ALL ORDER BY ALL
                        """).fetchall()
    assert [(h, d.date().isoformat(), n) for h, d, n in rows] == [(5, "2026-01-05", 1), (None, "2026-01-06", 1)]


def test_units_and_descriptions_are_field_metadata(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_run(tables_of(typed_db(tmp_path / "t.db")), root)
    schema = pq.read_schema(next((root / "downloads").rglob("*.parquet")))
    for f in figures("downloads"):
        meta = schema.field(f.name).metadata or {}
        assert meta[b"description"].decode() == f.description, f.name
        unit = {"_bps": "bit/s", "_bytes": "bytes", "_ms": "ms", "_s": "s"}
        want = next((u for s, u in unit.items() if f.name.endswith(s) or f.name == s[1:]), None)
        assert (meta.get(b"unit") or b"").decode() == (want or ""), f.name
    view = pq.read_schema(next((root / "pytomo_crawl").rglob("*.parquet")))
    assert view.field("EncodingRate").metadata[b"unit"] == b"kbit/s"
    assert view.field("PlaybackDuration").metadata[b"unit"] == b"s"
    assert b"media seconds" in view.field("PlaybackDuration").metadata[b"description"]
    hops = pq.read_schema(next((root / "hops").rglob("*.parquet")))
    assert hops.field("address").metadata[b"description"] == b"the address the request went to"
    assert hops.field("elapsed_s").metadata[b"unit"] == b"s"


def _stalled_at_the_end(db: Path) -> None:
    """Download 1 stalls at 4 s with 3.1 media seconds received and ends the window stalled; download 2 never starts."""
    conn = sqlite3.connect(db)
    conn.execute("UPDATE downloads SET media_received_s = 3.5, played_s = 3.0, playout_state_at_end = 'buffering' "
                 "WHERE id = 1")
    conn.executemany("INSERT INTO playout_timeline VALUES (1, ?, ?, ?, ?)", [
        (0.5, "playing", 0.0, 2.0), (3.0, "playing", 2.5, 1.0), (4.0, "buffering", 3.0, 0.1),
        (5.0, "buffering", 3.0, 0.5)])
    conn.execute("UPDATE downloads SET time_to_start_s = NULL, media_received_s = 1.0 WHERE id = 2")
    conn.commit()
    conn.close()


def test_playback_duration_keeps_its_2015_meaning_and_played_s_has_its_own_name(tmp_path: Path) -> None:
    db = make_db(tmp_path / "p.db")
    _stalled_at_the_end(db)
    conn = sqlite3.connect(db)
    view = conn.execute("SELECT PlaybackDuration, played_s FROM pytomo_crawl ORDER BY ID").fetchall()
    conn.close()
    assert view[0][0] == pytest.approx(3.1) and view[0][1] == 3.0  # media at the last stall's start; wall seconds
    assert view[1] == (None, None)  # playback never started
    exported = tables_of(db)["pytomo_crawl"].sort_by("ID").select(["PlaybackDuration", "played_s"]).to_pylist()
    assert [tuple(r.values()) for r in exported] == view
    conn = sqlite3.connect(db)
    conn.execute("UPDATE downloads SET playout_state_at_end = 'playing' WHERE id = 1")  # the window closed playing
    conn.commit()
    conn.close()
    assert tables_of(db)["pytomo_crawl"].sort_by("ID").column("PlaybackDuration")[0].as_py() == 3.5
    assert "PlaybackDuration" in VIEW and PLAYBACK_DURATION in VIEW


def test_the_view_before_issue_22_is_still_accepted() -> None:
    """The view of databases written before: PlaybackDuration from d.played_s, no played_s column."""
    before = VIEW.replace(PLAYBACK_DURATION, "d.played_s").replace(",\n    d.played_s AS played_s", "")
    assert before != VIEW and digest(before) in reference()[2] and digest(VIEW) in reference()[2]


def _hourly_dataset(root: Path) -> None:
    folder = root / "downloads" / "service=Lab" / "utc_date=2026-01-02"
    folder.mkdir(parents=True)
    local = pa.array([datetime(2026, 1, 2, 9, 5), None, datetime(2026, 1, 2, 9, 40)], pa.timestamp("us"))
    pq.write_table(pa.table({"run_uuid": ["a", "b", "a"], "started_at_local": local,
                             "started_at_utc_offset_s": pa.array([3600, None, 3600], pa.int32()),
                             "avg_throughput_bps": [1e6, 2e6, 3e6], "time_to_start_s": [0.5, 0.7, None],
                             "stall_count": [1, 0, None], "bytes": [10, 20, 0]}), folder / "a.parquet")
    run = root / "run" / "service=Lab" / "utc_date=2026-01-02"
    run.mkdir(parents=True)
    pq.write_table(pa.table({"run_uuid": ["a", "b"]}), run / "r.parquet")


def test_a_video_without_a_local_time_has_an_unknown_hour_and_counts_are_integers(tmp_path: Path) -> None:
    _hourly_dataset(tmp_path / "ds")
    tables, notes = analyses.run_duckdb(tmp_path / "ds")
    hourly = tables["hourly"]
    assert list(hourly["hour"]) == ["09", "unknown"] and list(hourly["videos"]) == [2, 1]
    assert any("'unknown'" in n for n in notes)
    out = tmp_path / "report"
    analyses.write_outputs(tables, notes, out)
    with open(out / "hourly.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["hour"], r["runs"], r["videos"], r["started"], r["stalled"]) for r in rows] == [
        ("09", "1", "2", "1", "1"), ("unknown", "1", "1", "1", "0")]
    with open(out / "stall_ratio.csv", newline="") as f:
        assert all(re.fullmatch(r"\d+", r["videos"]) for r in csv.DictReader(f))
    # DuckDB reads the counts back as integers
    kinds = duckdb.connect().execute(f"SELECT typeof(videos), typeof(stalled) FROM read_csv('{out}/hourly.csv')"
                                     ).fetchone()
    assert kinds == ("BIGINT", "BIGINT")


def test_a_throughput_plot_says_the_unit_of_its_title_on_its_axis() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    cdf = pd.DataFrame({"cache_group": ["AS1"], "downloads": [3], **{f"p{round(q * 100):02d}": [2e6 * (1 + q)]
                                                                     for q in analyses.CDF_QUANTILES}})
    rtt = pd.DataFrame({"rtt_bin": ["000-010 ms"], "thr_p25": [1e6], "thr_p50": [2e6], "thr_p75": [3e6]})
    hourly = pd.DataFrame({"hour": ["09", "unknown"], "median_throughput_bps": [2e6, 1e6], "videos": [2, 1]})
    for name, table, axis in (("throughput_cdf", cdf, "x"), ("rtt_throughput", rtt, "y"), ("hourly", hourly, "y")):
        fig, ax = plt.subplots()
        analyses._draw(name, table, ax)
        fig.canvas.draw()
        title_unit = re.search(r"bit/s", ax.get_title())
        label = ax.get_xlabel() if axis == "x" else ax.get_ylabel()
        ticks = [t.get_text() for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())]
        plt.close(fig)
        assert title_unit and "(bit/s)" in label and "Mbit/s" not in label, (name, label)
        assert any(t.endswith("Mbit/s") for t in ticks), (name, ticks)


def test_datasette_describes_every_table_whatever_the_file_is_called(tmp_path: Path) -> None:
    datasette_app = pytest.importorskip("datasette.app")
    db = typed_db(tmp_path / f"{RUN_UUID}.db")
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE hops (address TEXT)")
    conn.commit()
    conn.close()

    async def pages() -> dict[str, str]:
        ds = datasette_app.Datasette([str(db), str(other)])
        await ds.invoke_startup()
        got = {}
        for path in (f"/{RUN_UUID}/hops", f"/{RUN_UUID}/downloads", f"/{RUN_UUID}/pytomo_crawl", "/other/hops"):
            response = await ds.client.get(path)
            assert response.status_code == 200, path
            got[path] = response.text
        got["meta"] = ds.table_metadata(RUN_UUID, "throughput_samples")
        return got

    got = asyncio.run(pages())
    assert "the address the request went to" in got[f"/{RUN_UUID}/hops"]
    assert "the address the request went to" not in got["/other/hops"]  # not a run database: nothing of ours
    assert "measured throughput" in got[f"/{RUN_UUID}/downloads"]
    assert "media seconds received" in got[f"/{RUN_UUID}/pytomo_crawl"]
    assert got["meta"]["units"]["t_start_s"] == "s" and got["meta"]["units"]["bytes"] == "byte"


def test_a_time_that_is_not_one_is_null_not_a_guess(tmp_path: Path) -> None:
    """Text or numbers that SQLite's dynamic typing let into a time column: NULL, the other rows typed all the same."""
    db = typed_db(tmp_path / "h.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE hops SET started_at = 'yesterday' WHERE id = 1")
    conn.execute("UPDATE hops SET started_at = 1767657600 WHERE id = 2")
    conn.execute("UPDATE downloads SET started_at_local = '2026-13-45T00:00:00+01:00' WHERE id = 1")
    conn.commit()
    conn.close()
    tables = tables_of(db)
    assert tables["hops"].column("started_at").to_pylist() == [None, None]
    assert tables["hops"].schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    downloads = sorted(tables["downloads"].to_pylist(), key=lambda r: r["id"])
    assert downloads[0]["started_at_local"] is None and downloads[0]["started_at_utc_offset_s"] is None
    assert downloads[1]["started_at"] == sqlite_instant("2026-01-06T00:00:10.000000Z")


def test_every_time_column_of_the_schema_is_typed() -> None:
    """Every column named as a time (at, *_at, *_at_local) of an exported table is a UTC or a local time."""
    from pytomo.readers.tables import TABLES
    from pytomo.storage.schema import TABLES as DDL

    conn = sqlite3.connect(":memory:")
    conn.executescript(DDL)
    named = {(t, c) for t in TABLES for (c,) in conn.execute(f"SELECT name FROM pragma_table_info('{t}')")
             if c == "at" or c.endswith(("_at", "_at_local"))}
    declared = {(t, c) for t, cs in UTC_TIMES.items() for c in cs} | {
        (t, c) for t, cs in LOCAL_TIMES.items() for c in cs}
    assert named == declared
