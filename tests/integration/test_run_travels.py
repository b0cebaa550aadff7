"""A lab run travels: one self-contained file, named by a UUID, with its zone, commit, cache servers' AS and
country from test .mmdb files, and settings that keep no path, credential or host name."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from datetime import datetime

import pytest

from pytomo.readers.facts import run_row
from pytomo.readers.open import open_readonly
from pytomo.version import __version__
from tests.conftest import database_of, run_crawler
from tests.unit.test_vantage import LAB_AS, write_test_databases


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("travels")
    asn, country = write_test_databases(out)
    env = {**os.environ, "TZ": "Europe/Paris"}
    proc = run_crawler(["-s", "lab", "-b", "-P", "3", "-D", "1", "-n", "1", "-S", "0", "--database-dir", str(out),
                        "--ip-db", str(asn), "--ip-db", str(country),
                        "--lab-truth", str(out / "truth.jsonl")], env=env)
    db = database_of(proc)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # no immutable=1: the file must be whole by itself
    conn.row_factory = sqlite3.Row
    yield db, conn
    conn.close()


def test_one_self_contained_file(crawl):
    db, conn = crawl
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM videos").fetchone()[0] >= 1
    assert not os.path.exists(f"{db}-wal") and not os.path.exists(f"{db}-shm")


def test_run_row_travels(crawl):
    db, conn = crawl
    run = conn.execute("SELECT * FROM run").fetchone()
    assert uuid.UUID(run["run_uuid"]).version == 4
    assert run["timezone"] == "Europe/Paris" and run["timezone_source"] == "TZ" and run["timezone_problem"] is None
    started = datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))
    local = datetime.fromisoformat(run["started_at_local"])
    assert local == started and run["utc_offset_s"] in (3600, 7200)
    assert local.utcoffset().total_seconds() == run["utc_offset_s"]
    assert run["ended_at_local"] and run["status"] == "finished"
    assert run["software_version"] == __version__ and run["software_commit"]  # the tests run in a checkout
    assert run["host_label"] is None and run["vantage_as_number"] is None and run["vantage_problem"]
    settings = json.loads(run["settings_json"])
    assert settings["ip_db"] == ["test-asn.mmdb", "test-country.mmdb"]
    assert settings["database_dir"] == "<set>" and settings["lab_truth"] == "truth.jsonl"
    host = socket.gethostname()
    for row in conn.execute("SELECT * FROM run"):
        assert all(host not in str(v) for v in tuple(row))
    facts = run_row(open_readonly(db))
    assert (facts["run_uuid"], facts["service"], facts["started_at"], facts["timezone"]) == (
        run["run_uuid"], "Lab", run["started_at"], "Europe/Paris")


def test_cache_servers_have_as_and_country(crawl):
    _db, conn = crawl
    rows = conn.execute("SELECT address, as_number, as_name, country, ip_db_problem, started_at, started_at_local"
                        " FROM downloads").fetchall()
    assert rows
    for r in rows:
        assert r["address"].startswith("127.77.")
        assert (r["as_number"], r["as_name"], r["country"], r["ip_db_problem"]) == (*LAB_AS, "FR", None)
        assert datetime.fromisoformat(r["started_at_local"]) == datetime.fromisoformat(
            r["started_at"].replace("Z", "+00:00"))
    view = conn.execute("SELECT ID, LocalID, ASNumber FROM pytomo_crawl WHERE DownloadBytes > 0").fetchall()
    assert view and all(v["ASNumber"] == LAB_AS[0] for v in view)
    assert all(v["LocalID"] != v["ID"] and len(v["LocalID"]) == 26 for v in view)
