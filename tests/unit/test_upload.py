"""Upload client and collector parts without a server: URL rules, backoff, outbox, tokens, body limits, checks."""

from __future__ import annotations

import gzip
import io
import sqlite3
import uuid

import pytest

from pytomo.collector.store import BadUpload, TooLarge, spool
from pytomo.collector.tokens import TokenStore, add_token
from pytomo.errors import UsageError
from pytomo.readers.facts import RunFacts, fallback_uuid
from pytomo.readers.upload_check import Rejected, check_upload
from pytomo.storage.schema import SCHEMA_VERSION, TABLES, VIEW
from pytomo.upload.client import Answer, TokenRefused, Uploader, UploadFailed, runs_endpoint
from pytomo.upload.outbox import Outbox


@pytest.mark.parametrize("url", ["https://collector.example/", "http://127.0.0.1:8080", "http://[::1]:1/",
                                 "http://localhost:5556/api/v1/runs"])
def test_https_or_loopback_http(url):
    assert runs_endpoint(url).endswith("/api/v1/runs")


@pytest.mark.parametrize("url", ["http://collector.example/", "http://10.0.0.1/", "ftp://127.0.0.1/", "file:///x",
                                 "https://c.example/?a=1"])
def test_anything_else_is_a_usage_error(url):
    with pytest.raises(UsageError):
        runs_endpoint(url)


def test_no_token_is_a_usage_error():
    with pytest.raises(UsageError, match="PYTOMO_COLLECTOR_TOKEN"):
        Uploader("https://c.example/", "")


FACTS = RunFacts(str(uuid.uuid4()), "0" * 64, 10, "finished")


def _uploader(answers, **kw):
    sleeps: list[float] = []
    up = Uploader("https://c.example/", "t", sleep=sleeps.append, **kw)
    seq = iter(answers)

    def post(body, facts):
        a = next(seq)
        if isinstance(a, Exception):
            raise a
        return a

    up.post = post  # type: ignore[method-assign]
    return up, sleeps


def test_retries_with_exponential_backoff_then_success():
    up, sleeps = _uploader([OSError("refused"), Answer(503, "busy"), Answer(201, "stored")])
    assert up.send(FACTS, b"x").status == 201 and sleeps == [0.5, 1.0]


def test_attempts_are_bounded():
    up, sleeps = _uploader([OSError("refused")] * 10, attempts=4)
    with pytest.raises(UploadFailed, match="4 attempts"):
        up.send(FACTS, b"x")
    assert sleeps == [0.5, 1.0, 2.0]


def test_refused_token_and_refused_file_are_not_retried():
    up, sleeps = _uploader([Answer(401, "no")])
    with pytest.raises(TokenRefused):
        up.send(FACTS, b"x")
    up, sleeps = _uploader([Answer(422, "not a run")])
    with pytest.raises(UploadFailed, match="422"):
        up.send(FACTS, b"x")
    assert sleeps == []


def test_outbox_records_state_and_why(tmp_path):
    box = Outbox(tmp_path)
    box.record("a.db", state="pending", why="sending")
    box.record("a.db", state="failed", why="the collector answered 422")
    box.record("b.db", state="uploaded")
    entries = {e.file: e for e in Outbox(tmp_path).entries()}
    assert entries["a.db"].state == "failed" and "422" in entries["a.db"].why and entries["b.db"].state == "uploaded"


def test_a_refused_token_says_nothing_about_the_run(tmp_path):
    """A retry with a wrong token leaves a run the collector holds as uploaded, and a new one pending, not failed."""
    db = _run_db(tmp_path / "r.pytomo_database.db")
    up, _ = _uploader([Answer(201, "stored"), Answer(401, "unknown token")])
    up.upload(db)
    with pytest.raises(TokenRefused):
        up.upload(db)
    entry = Outbox(tmp_path).get(db.name)
    assert entry is not None and (entry.state, entry.why, entry.attempts) == ("uploaded", "stored", 2)
    other = _run_db(tmp_path / "s.pytomo_database.db")
    up, _ = _uploader([Answer(403, "revoked")])
    with pytest.raises(TokenRefused):
        up.upload(other)
    entry = Outbox(tmp_path).get(other.name)
    assert entry is not None and entry.state == "pending" and "refused the token" in entry.why


def test_tokens_are_stored_hashed_and_checked(tmp_path):
    path = tmp_path / "tokens"
    vol = add_token(path, "alice")
    res = add_token(path, "rita", "researcher")
    text = path.read_text()
    assert vol not in text and res not in text and oct(path.stat().st_mode & 0o777) == "0o600"
    store = TokenStore(path)
    assert store.check(vol).role == "volunteer" and store.check(res).role == "researcher"
    assert store.check(vol + "x") is None and store.check("") is None
    with pytest.raises(UsageError):
        add_token(path, "../evil")


def test_body_limits():
    with pytest.raises(TooLarge):
        spool(io.BytesIO(b""), io.BytesIO(), "", 2 * 1024 ** 3, 1024)  # declared: refused before reading
    with pytest.raises(TooLarge):
        spool(io.BytesIO(b"x" * 5000), io.BytesIO(), "", None, 1024)
    bomb = gzip.compress(b"\0" * 100_000)
    with pytest.raises(TooLarge):
        spool(io.BytesIO(bomb), io.BytesIO(), "gzip", len(bomb), 4096)  # small body, large database
    with pytest.raises(BadUpload):
        spool(io.BytesIO(b"not gzip"), io.BytesIO(), "gzip", 8, 4096)
    out = io.BytesIO()
    spool(io.BytesIO(gzip.compress(b"hello")), out, "gzip", None, 4096)
    assert out.getvalue() == b"hello"


def _run_db(path, extra: str = ""):
    conn = sqlite3.connect(path)
    conn.executescript(TABLES + VIEW)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    cols = {r[1]: r for r in conn.execute("PRAGMA table_info(run)")}
    values = {"run_uuid": str(uuid.uuid4()), "schema_version": SCHEMA_VERSION, "software_version": "t",
              "started_at": "2026-01-01T00:00:00Z", "utc_offset_s": 0, "service": "Lab", "settings_json": "{}",
              "status": "finished", "host_label": "h"}
    values = {k: v for k, v in values.items() if k in cols}
    conn.execute(f"INSERT INTO run ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                 list(values.values()))
    conn.commit()
    if extra:
        conn.executescript(extra)
    conn.close()
    return path


def test_a_run_database_passes(tmp_path):
    checked = check_upload(_run_db(tmp_path / "ok.db"))
    assert checked.run_uuid and checked.facts["status"] == "finished"


@pytest.mark.parametrize("extra", [
    "CREATE TRIGGER t AFTER INSERT ON videos BEGIN DELETE FROM run; END",
    "CREATE VIEW v AS SELECT 1",
    "DROP VIEW pytomo_crawl; CREATE VIEW pytomo_crawl AS SELECT * FROM run",
    "CREATE TABLE extra (x)",
    "DROP INDEX videos_run; CREATE INDEX videos_run ON videos(abs(run_id))",
    "DROP TABLE stalls",
    "UPDATE run SET status = 'running'",
    "UPDATE run SET run_uuid = '../../etc'",
    "PRAGMA user_version = 99",
])
def test_anything_else_is_refused(tmp_path, extra):
    with pytest.raises(Rejected):
        check_upload(_run_db(tmp_path / "bad.db", extra))


def test_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "x.db"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(Rejected, match="not an SQLite"):
        check_upload(path)


def test_fallback_uuid_is_stable():
    assert fallback_uuid("ab" * 32) == fallback_uuid("ab" * 32) != fallback_uuid("cd" * 32)
