"""The collector on loopback: two lab crawls with -c and their own tokens, a repeated upload, the listing with the
uploader's AS and country from a test .mmdb, the Parquet dataset checked table by table through DuckDB; and hostile
uploads (wrong token, not SQLite, a trigger, a foreign view, an endless body) refused, leaving nothing behind."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_of, run_crawler

duckdb = pytest.importorskip("duckdb")
mmdb_writer = pytest.importorskip("mmdb_writer")
netaddr = pytest.importorskip("netaddr")

TEST_AS, TEST_COUNTRY = 64500, "FR"
TABLES = ("run", "videos", "hops", "dns_answers", "rtt_probes", "rtt_samples", "downloads", "segment_requests",
          "throughput_samples", "stalls", "playout_timeline", "tcp_info_samples")


def write_mmdb(path: Path) -> Path:
    """A test IP database: 127.0.0.0/8 in AS 64500, in France."""
    w = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN",
                               description="pytomo collector test")
    w.insert_network(netaddr.IPSet(["127.0.0.0/8"]), {
        "autonomous_system_number": mmdb_writer.MmdbU32(TEST_AS), "autonomous_system_organization": "Pytomo Test AS",
        "country": {"iso_code": TEST_COUNTRY}})
    w.to_db_file(str(path))
    return path


def add_token(tokens: Path, name: str, role: str = "volunteer") -> str:
    done = subprocess.run([sys.executable, "-m", "pytomo", "tokens", "add", name, "--tokens", str(tokens), "--role",
                           role], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture()
def collector(tmp_path):
    """A collector subprocess on loopback: (base URL, its folder, tokens by name)."""
    tokens_file = tmp_path / "tokens"
    tokens = {name: add_token(tokens_file, name, role) for name, role in
              (("alice", "volunteer"), ("bob", "volunteer"), ("rita", "researcher"))}
    folder = tmp_path / "collect"
    mmdb = write_mmdb(tmp_path / "test.mmdb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "--collect", str(folder), "--tokens",
                             str(tokens_file), "--ip-db", str(mmdb), "--max-upload-mib", "4", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("collecting on http://127.0.0.1:"), (line, proc.stderr.read() if proc.stderr else "")
        base = line.split()[-1].removesuffix("api/v1/runs")
        yield base, folder, tokens
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def request(url: str, token: str, *, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def listing(base: str, token: str) -> list[dict]:
    status, body = request(base + "api/v1/runs", token)
    assert status == 200, body
    return json.loads(body)["runs"]


def left_behind(folder: Path) -> tuple[set[str], set[str], set[str]]:
    """(files stored, run UUIDs indexed, run UUIDs with any dataset file)."""
    files = {p.name for p in (folder / "files").iterdir()}
    conn = sqlite3.connect(folder / "index.db")
    try:
        indexed = {r[0] for r in conn.execute("SELECT run_uuid FROM runs")}
    finally:
        conn.close()
    in_dataset = {p.name.removesuffix(".parquet") for p in (folder / "dataset").rglob("*.parquet")}
    return files, indexed, in_dataset


def crawl(base: str, token: str, out: Path) -> Path:
    env = {**os.environ, "PYTOMO_COLLECTOR_TOKEN": token}
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "3", "-D", "1", "-n", "1", "-S", "0", "-c",
                        "--collector", base, "--database-dir", str(out)], env=env)
    assert proc.returncode == 0, proc.stderr
    assert "uploaded to" in proc.stderr, proc.stderr
    return database_of(proc)


def sqlite_rows(db: Path, table: str) -> tuple[int, list]:
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        ids = sorted(r[0] for r in conn.execute(f"SELECT id FROM {table}")) if "id" in cols else []
    finally:
        conn.close()
    return count, ids


def dataset_rows(con, dataset: Path, table: str, run_uuid: str) -> tuple[int, list]:
    files = sorted((dataset / table).rglob("*.parquet"))
    assert files, table
    rel = con.execute("SELECT * FROM read_parquet(?, hive_partitioning=true, union_by_name=true) WHERE run_uuid = ?",
                      [[str(f) for f in files], run_uuid])
    cols = [d[0] for d in rel.description]
    rows = rel.fetchall()
    ids = sorted(r[cols.index("id")] for r in rows) if "id" in cols else []
    return len(rows), ids


def hostile_uploads(base: str, folder: Path, good: Path, tmp: Path, token: str) -> None:
    before = left_behind(folder)
    url = base + "api/v1/runs"
    body = gzip.compress(good.read_bytes())
    assert request(url, "ptk_wrong", data=body, headers={"Content-Encoding": "gzip"})[0] == 401
    assert request(url, "", data=body)[0] == 401
    assert request(url, token, data=b"PK\x03\x04 not a database at all" * 100)[0] == 422
    # a trigger, a foreign view, Pytomo's view redefined to write through a trigger
    for n, sql in enumerate(("CREATE TRIGGER evil AFTER INSERT ON videos BEGIN DELETE FROM run; END",
                             "CREATE VIEW extra AS SELECT * FROM run",
                             "DROP VIEW pytomo_crawl; CREATE VIEW pytomo_crawl AS SELECT * FROM run; "
                             "CREATE TRIGGER w INSTEAD OF INSERT ON pytomo_crawl BEGIN DELETE FROM videos; END")):
        bad = tmp / f"hostile-{n}.db"
        shutil.copy(good, bad)
        conn = sqlite3.connect(bad)
        conn.executescript(sql)
        conn.close()
        status, answer = request(url, token, data=gzip.compress(bad.read_bytes()), headers={"Content-Encoding": "gzip"})
        assert status == 422, (sql, answer)
    assert post_endless(url, token, chunked=False) == 413  # a 2 GB Content-Length, trickled: refused at once
    assert post_endless(url, token, chunked=True) == 413  # chunked past the limit (4 MiB here)
    assert left_behind(folder) == before
    assert not list((folder / "tmp").iterdir())


def post_endless(url: str, token: str, *, chunked: bool) -> int:
    """Declare 2 GB (or send chunks without end) slowly; the status the collector answers with."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    try:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {2 * 1024 ** 3}"
        sock.sendall(f"POST /api/v1/runs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/vnd.sqlite3\r\n{framing}\r\n\r\n".encode())
        block = b"\0" * (1024 * 1024)
        sock.settimeout(0.05)
        for _ in range(64):  # at most 64 MiB, well short of 2 GB
            try:
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block[:65536])
            except OSError:
                break
            try:
                first = sock.recv(4096)
            except TimeoutError:
                time.sleep(0.01)
                continue
            return int(first.split()[1])
        sock.settimeout(30)
        return int(sock.recv(4096).split()[1])
    finally:
        sock.close()


def test_two_volunteers_a_repeat_and_hostile_uploads(collector, tmp_path):
    base, folder, tokens = collector
    first = crawl(base, tokens["alice"], tmp_path / "alice")
    second = crawl(base, tokens["bob"], tmp_path / "bob")
    # a repeat: the same run again, with pytomo upload
    again = subprocess.run([sys.executable, "-m", "pytomo", "upload", "--collector", base, str(first)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTOMO_COLLECTOR_TOKEN": tokens["alice"]})
    assert again.returncode == 0 and "already have it" in again.stdout, again.stderr
    status = subprocess.run([sys.executable, "-m", "pytomo", "upload", "--status", "--database-dir",
                             str(first.parent)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and status.stdout.startswith("uploaded"), status.stdout
    # a refused token: one line, exit status 1
    refused = subprocess.run([sys.executable, "-m", "pytomo", "upload", "--collector", base, str(first)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTOMO_COLLECTOR_TOKEN": "ptk_nobody"})
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr

    runs = listing(base, tokens["rita"])
    assert request(base + "api/v1/runs", tokens["alice"])[0] == 403  # a volunteer may not list
    assert len(runs) == 2 and {r["uploader"] for r in runs} == {"alice", "bob"}
    assert all(r["uploader_asn"] == TEST_AS and r["uploader_country"] == TEST_COUNTRY for r in runs)
    assert len({r["sha256"] for r in runs}) == 2 and len(list((folder / "files").iterdir())) == 2
    by_uuid = {r["run_uuid"]: r for r in runs}
    con = duckdb.connect()
    for db in (first, second):
        conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
        run_uuid = conn.execute("SELECT run_uuid FROM run").fetchone()[0]
        conn.close()
        assert run_uuid in by_uuid
        status_code, stored = request(f"{base}api/v1/runs/{run_uuid}.db", tokens["rita"])
        assert status_code == 200 and stored == db.read_bytes()
        for table in TABLES:
            assert dataset_rows(con, folder / "dataset", table, run_uuid) == sqlite_rows(db, table), table
        run_row = con.execute("SELECT vantage_as_number, vantage_country FROM read_parquet(?, hive_partitioning=true)"
                              " WHERE run_uuid = ?", [str(folder / "dataset" / "run" / "**" / "*.parquet"),
                                                      run_uuid]).fetchall()
        assert run_row == [(TEST_AS, TEST_COUNTRY)]
    total = con.execute("SELECT count(DISTINCT run_uuid) FROM read_parquet(?, hive_partitioning=true)",
                        [str(folder / "dataset" / "videos" / "**" / "*.parquet")]).fetchone()[0]
    assert total == 2
    history_of_every_run(base, folder, tokens, con)

    hostile_uploads(base, folder, first, tmp_path, tokens["bob"])


def history_of_every_run(base: str, folder: Path, tokens: dict, con) -> None:
    """/api/v1/history: the stored runs together, as the web pages count them; played videos checked against the
    Parquet dataset read by DuckDB (each video's first download that received bytes)."""
    status, body = request(base + "api/v1/history?span=all", tokens["rita"])
    assert status == 200, body
    doc = json.loads(body)
    glob = str(folder / "dataset" / "downloads" / "**" / "*.parquet")
    played = con.execute(
        "SELECT count(*) FROM (SELECT run_uuid, video_row_id, arg_min(bytes, id) AS first_bytes"
        " FROM read_parquet(?, hive_partitioning=true) GROUP BY run_uuid, video_row_id) WHERE first_bytes > 0",
        [glob]).fetchone()[0]
    assert doc["runs"] == 2 and doc["left_out"] == []
    assert doc["summary"]["counts"]["played"] == played > 0
    assert sum(r["counts"]["played"] for r in doc["rows"] if r["kind"] == "service") == played
    assert doc["days"] and all(d["rows"] for d in doc["days"])
    assert request(base + "api/v1/history", tokens["alice"])[0] == 403  # researchers only
    assert request(base + "api/v1/history?span=year", tokens["rita"])[0] == 400
