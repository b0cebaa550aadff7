"""The collector's operations on loopback, each checked against what third-party software reads back: the AS and
country of every address filled at ingest from the collector's own IP database (a real .mmdb written by
mmdb-writer, read back by maxminddb and DuckDB), never over the volunteer's own; a copy of a run under a new UUID
refused as a duplicate; ``pytomo withdraw`` removing a run everywhere, again after a crash midway; ``pytomo tokens
revoke`` refused by the running collector; a log line per upload without the token or the uploader's address."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_of, run_crawler, uuid_of
from tests.integration.test_collector import add_token, left_behind, request

duckdb = pytest.importorskip("duckdb")
maxminddb = pytest.importorskip("maxminddb")
mmdb_writer = pytest.importorskip("mmdb_writer")
netaddr = pytest.importorskip("netaddr")
pq = pytest.importorskip("pyarrow.parquet")

COLLECTOR_AS, COLLECTOR_COUNTRY = 64500, "FR"  # the collector's database: 127.0.0.0/8
VOLUNTEER_AS, VOLUNTEER_COUNTRY = 64501, "DE"  # a volunteer's own --ip-db: 127.0.0.0/8
ADDRESS_TABLES = ("downloads", "hops", "dns_answers", "rtt_probes", "rtt_samples")


def write_mmdb(path: Path, asn: int, country: str, kind: str = "GeoLite2-ASN") -> Path:
    """A MaxMind DB mapping 127.0.0.0/8 (the lab) to ``asn`` in ``country``."""
    w = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=kind,
                               description="pytomo collector operations test")
    w.insert_network(netaddr.IPSet(["127.0.0.0/8"]), {
        "autonomous_system_number": mmdb_writer.MmdbU32(asn), "autonomous_system_organization": f"Test AS {asn}",
        "country": {"iso_code": country}})
    w.to_db_file(str(path))
    return path


def lab_run(out: Path, *extra: str) -> Path:
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "3", "-D", "1", "-n", "1", "-S", "0",
                        "--database-dir", str(out), *extra])
    return database_of(proc)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two lab runs: one without an IP database, one with the volunteer's own (AS 64501, DE)."""
    work = tmp_path_factory.mktemp("runs")
    plain = lab_run(work / "plain")
    own = lab_run(work / "own", "--ip-db", str(write_mmdb(work / "volunteer.mmdb", VOLUNTEER_AS, VOLUNTEER_COUNTRY)))
    return plain, own


class Collector:
    """A collector subprocess on loopback with the collector's IP database; its log in a file."""

    def __init__(self, tmp: Path) -> None:
        self.tokens_file = tmp / "tokens"
        self.tokens = {name: add_token(self.tokens_file, name, role) for name, role in
                       (("alice", "volunteer"), ("bob", "volunteer"), ("rita", "researcher"))}
        self.folder = tmp / "collect"
        self.mmdb = write_mmdb(tmp / "collector.mmdb", COLLECTOR_AS, COLLECTOR_COUNTRY)
        self.log = tmp / "collector.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "start_server.py"), "--collect", str(self.folder), "--tokens",
                 str(self.tokens_file), "--ip-db", str(self.mmdb), "0"], cwd=ROOT, stdout=subprocess.PIPE,
                stderr=err, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert line.startswith("collecting on http://127.0.0.1:"), (line, self.log.read_text())
        self.base = line.split()[-1].removesuffix("api/v1/runs")

    def upload(self, db: Path, who: str = "alice") -> tuple[int, dict]:
        status, body = request(self.base + "api/v1/runs", self.tokens.get(who, who),
                               data=gzip.compress(db.read_bytes()), headers={"Content-Encoding": "gzip"})
        return status, json.loads(body) if body.startswith(b"{") else {}

    def listing(self) -> list[dict]:
        status, body = request(self.base + "api/v1/runs", self.tokens["rita"])
        assert status == 200, body
        return json.loads(body)["runs"]

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if " upload uploader=" in line]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture()
def collector(tmp_path):
    running = Collector(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def copy_of(db: Path, dst: Path, sql: str = "") -> Path:
    """A copy of a run database with a new run UUID, changed by ``sql``."""
    shutil.copy(db, dst)
    conn = sqlite3.connect(dst)
    conn.execute("UPDATE run SET run_uuid = ?", (str(uuid.uuid4()),))
    if sql:
        conn.executescript(sql)
    conn.commit()
    conn.close()
    return dst


def parquet(con, folder: Path, table: str, sql: str, *params) -> list[tuple]:
    """``sql`` over one table of the collector's dataset (``t``), all its files and partitions."""
    files = [str(p) for p in sorted((folder / "dataset" / table).rglob("*.parquet"))]
    assert " FROM t" in sql
    return con.execute(sql.replace(" FROM t", " FROM read_parquet(?, hive_partitioning=true, union_by_name=true)"),
                       [files, *params]).fetchall()


def sqlite_addresses(db: Path, table: str) -> list[str | None]:
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return [r[0] for r in conn.execute(f"SELECT address FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def test_addresses_get_the_collectors_as_and_country_never_over_the_volunteers(collector, runs):
    plain, own = runs
    assert collector.upload(plain)[0] == 201
    assert collector.upload(own, "bob")[0] == 201
    reader = maxminddb.open_database(str(collector.mmdb))
    meta = reader.metadata()
    assert reader.get("127.77.0.1")["autonomous_system_number"] == COLLECTOR_AS
    built = datetime.fromtimestamp(meta.build_epoch, UTC)
    described = f"collector.mmdb ({meta.database_type}, built {built.date().isoformat()})"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for db, asn, country, source in ((plain, COLLECTOR_AS, COLLECTOR_COUNTRY, "collector"),
                                     (own, VOLUNTEER_AS, VOLUNTEER_COUNTRY, "volunteer")):
        run_uuid = uuid_of(db)
        rows = parquet(con, collector.folder, "downloads", "SELECT address, as_number, as_name, country, as_source "
                       "FROM t WHERE run_uuid = ?", run_uuid)
        assert rows and {r[1:] for r in rows} == {(asn, f"Test AS {asn}", country, source)}, rows
        for table in ADDRESS_TABLES[1:]:
            expected = sqlite_addresses(db, table)
            got = parquet(con, collector.folder, table, "SELECT address, as_number, country, as_source FROM t "
                          "WHERE run_uuid = ?", run_uuid)
            assert sorted(r[0] or "" for r in got) == sorted(a or "" for a in expected), table
            for address, as_number, where, whose in got:  # no AS in these tables of the file: the collector's
                known = address is not None and reader.get(address) is not None
                assert (as_number, where, whose) == ((COLLECTOR_AS, COLLECTOR_COUNTRY, "collector") if known
                                                     else (None, None, None)), (table, address)
        facts = parquet(con, collector.folder, "run", "SELECT collector_ip_db, collector_ip_db_built, "
                        "vantage_as_number, vantage_country FROM t WHERE run_uuid = ?", run_uuid)
        assert facts == [(described, built, COLLECTOR_AS, COLLECTOR_COUNTRY)]
    for table, column, words in (("downloads", "as_source", "whose IP database"), ("hops", "as_number", "AS number"),
                                 ("run", "collector_ip_db", "the collector's IP databases"),
                                 ("downloads", "address", "the address it was fetched from")):
        schema = pq.read_schema(next((collector.folder / "dataset" / table).rglob("*.parquet")))
        assert words in schema.field(column).metadata[b"description"].decode(), (table, column)
    listed = {r["run_uuid"]: r for r in collector.listing()}
    assert {r["ip_db"] for r in listed.values()} == {described}
    assert {r["ip_db_built"] for r in listed.values()} == {built.strftime("%Y-%m-%dT%H:%M:%S.000000Z")}
    # the uploader's address (127.0.0.1) is looked up, never kept: not in the index, nor in the run rows
    assert b"127.0.0.1" not in (collector.folder / "index.db").read_bytes()
    for path in (collector.folder / "dataset" / "run").rglob("*.parquet"):
        assert b"127.0.0.1" not in path.read_bytes()


def test_a_copy_under_a_new_uuid_is_refused_as_a_duplicate(collector, runs, tmp_path):
    plain, _ = runs
    held = uuid_of(plain)
    assert collector.upload(plain)[0] == 201
    before = left_behind(collector.folder)
    tenfold = copy_of(plain, tmp_path / "tenfold.db", "UPDATE downloads SET avg_throughput_bps = "
                      "avg_throughput_bps * 10;")
    status, answer = collector.upload(tenfold, "bob")
    assert status == 409 and held in answer["message"] and "duplicate" in answer["message"], answer
    assert left_behind(collector.folder) == before
    assert not list((collector.folder / "tmp").iterdir())
    # the same videos an hour later are another run; so are they from another vantage point (its label)
    later = copy_of(plain, tmp_path / "later.db", "UPDATE videos SET started_at = "
                    "strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '+1 hour');")
    assert collector.upload(later)[0] == 201
    elsewhere = copy_of(plain, tmp_path / "elsewhere.db", "UPDATE run SET host_label = 'another-vantage';")
    assert collector.upload(elsewhere)[0] == 201
    assert len(collector.listing()) == 3
    lines = collector.lines()
    refused = [line for line in lines if "outcome=duplicate" in line]
    assert len(refused) == 1 and f"run={uuid_of(tenfold)}" in refused[0] and held in refused[0], lines


def test_withdraw_removes_a_run_everywhere_even_after_a_crash_midway(collector, runs, tmp_path, monkeypatch):
    from pytomo.cli import main
    from pytomo.collector.store import Collector as Store

    plain, own = runs
    assert collector.upload(plain)[0] == 201 and collector.upload(own, "bob")[0] == 201
    gone, kept = uuid_of(plain), uuid_of(own)
    folder = collector.folder
    files_before, _, _ = left_behind(folder)
    dataset = sorted(p for p in (folder / "dataset").rglob(f"{gone}.parquet"))
    tables = {p.relative_to(folder / "dataset").parts[0] for p in dataset}
    assert {"run", "videos", "downloads", "throughput_samples", "pytomo_crawl"} <= tables and len(dataset) >= 13

    # a crash after two dataset files: the run is no longer listed, and running the command again finishes it
    real_unlink = Path.unlink
    removed: list[Path] = []

    def crashing(self, missing_ok=False):
        if self.suffix == ".parquet" and len(removed) == 2:
            raise KeyboardInterrupt
        removed.append(self)
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crashing)
    with pytest.raises(KeyboardInterrupt):
        Store(folder, owner=False).withdraw(gone)
    monkeypatch.undo()
    assert removed[0].parts[-4] == "run"  # the run row first: readers stop seeing the run at once
    assert [r["run_uuid"] for r in collector.listing()] == [kept]
    assert request(f"{collector.base}api/v1/runs/{gone}.db", collector.tokens["rita"])[0] == 404
    assert main(["withdraw", gone, "--collect-dir", str(folder)]) == 0

    files, indexed, in_dataset = left_behind(folder)
    assert indexed == {kept} and in_dataset == {kept}
    assert len(files) == len(files_before) - 1 and not list((folder / "dataset").rglob(f"*{gone}*"))
    con = duckdb.connect()
    assert parquet(con, folder, "videos", "SELECT DISTINCT run_uuid FROM t") == [(kept,)]
    # nothing left: one line, status 1; a bad UUID is a usage error
    done = subprocess.run([sys.executable, "-m", "pytomo", "withdraw", gone, "--collect-dir", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and gone in done.stderr
    assert main(["withdraw", "not-a-uuid", "--collect-dir", str(folder)]) == 2
    assert main(["withdraw", kept, "--collect-dir", str(tmp_path / "nowhere")]) == 2
    # withdrawn, the run may be uploaded again
    assert collector.upload(plain)[0] == 201


def test_a_withdrawal_left_midway_is_finished_when_the_collector_starts(collector, runs):
    from pytomo.collector.store import Collector as Store

    plain, _ = runs
    assert collector.upload(plain)[0] == 201
    collector.stop()
    run_uuid = uuid_of(plain)
    conn = sqlite3.connect(collector.folder / "index.db")
    conn.execute("UPDATE runs SET state = 'withdrawing' WHERE run_uuid = ?", (run_uuid,))
    conn.commit()
    conn.close()
    store = Store(collector.folder)
    store.close()
    assert left_behind(collector.folder) == (set(), set(), set())


def test_a_revoked_token_is_refused_by_the_running_collector(collector, runs):
    plain, own = runs
    assert collector.upload(plain, "alice")[0] == 201
    done = subprocess.run([sys.executable, "-m", "pytomo", "tokens", "revoke", "alice", "--tokens",
                           str(collector.tokens_file)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "revoked" in done.stdout, done.stderr
    assert collector.upload(own, "alice")[0] == 401
    assert request(collector.base + "api/v1/runs", collector.tokens["rita"])[0] == 200  # the others still work
    assert collector.upload(own, "bob")[0] == 201
    refused = [line for line in collector.lines() if "status=401" in line]
    assert len(refused) == 1 and "uploader=- " in refused[0] and "outcome=refused" in refused[0]


def test_one_log_line_per_upload_without_token_or_address(collector, runs):
    plain, _ = runs
    size = plain.stat().st_size
    assert collector.upload(plain)[0] == 201
    assert collector.upload(plain, "bob")[0] == 200
    assert collector.upload(plain, "ptk_wrong")[0] == 401
    lines = collector.lines()
    assert len(lines) == 3, lines
    stored, again, wrong = lines
    run_uuid = uuid_of(plain)
    assert f"uploader=alice run={run_uuid} outcome=stored status=201 " in stored
    assert f"db_bytes={size} " in stored and " took_s=" in stored and 'reason="stored"' in stored
    body = int(stored.split(" body_bytes=")[1].split()[0])
    assert 0 < body < size  # gzip
    assert f"uploader=bob run={run_uuid} outcome=already_held status=200 " in again
    assert "uploader=- run=- outcome=refused status=401 " in wrong
    text = collector.log.read_text()
    assert "127.0.0.1" not in text
    assert not any(token in text for token in collector.tokens.values()) and "ptk_wrong" not in text


def test_concurrent_copies_store_one_run(collector, runs, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    plain, _ = runs
    copies = [copy_of(plain, tmp_path / f"copy-{i}.db") for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda db: collector.upload(db)[0], copies))
    assert statuses.count(201) == 1 and set(statuses) <= {201, 409, 503}, statuses
    assert len(collector.listing()) == 1
    files, indexed, in_dataset = left_behind(collector.folder)
    assert len(files) == 1 and indexed == in_dataset and len(indexed) == 1


def test_an_older_index_gets_its_fingerprints(runs, tmp_path):
    """A collector folder of the version before: the index has no fingerprint column; at start it is added and
    filled from the stored files, so that a copy of a run stored then is refused."""
    import io

    from pytomo.collector.store import Collector as Store
    from pytomo.collector.store import Origin

    plain, _ = runs
    store = Store(tmp_path / "collect")
    body = plain.read_bytes()
    assert store.receive(io.BytesIO(body), declared=len(body), encoding="", uploader="alice", origin=Origin()).status \
        == 201
    store.close()
    conn = sqlite3.connect(tmp_path / "collect" / "index.db")
    conn.execute("DROP INDEX runs_fingerprint")
    for column in ("fingerprint", "ip_db", "ip_db_built"):
        conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    conn.commit()
    conn.close()
    store = Store(tmp_path / "collect")
    copy = copy_of(plain, tmp_path / "copy.db").read_bytes()
    answer = store.receive(io.BytesIO(copy), declared=len(copy), encoding="", uploader="bob", origin=Origin())
    store.close()
    assert answer.status == 409 and answer.outcome == "duplicate" and uuid_of(plain) in answer.message
