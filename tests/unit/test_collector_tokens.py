"""``pytomo tokens add | list | revoke``: a name given once, a list without hashes, a revoked token refused by a
TokenStore that was reading the file before (as a running collector's is); and a worker process that dies while
storing an upload leaves no claim behind."""

from __future__ import annotations

import io
import json
import sys
import threading

import pytest

from pytomo.cli import main
from pytomo.collector.store import Collector, Origin, Result, WorkerLost
from pytomo.collector.tokens import TokenStore, add_token, list_tokens, revoke_token
from pytomo.errors import UsageError


def test_a_name_is_given_once(tmp_path, capsys):
    path = tmp_path / "tokens"
    assert main(["tokens", "add", "alice", "--tokens", str(path)]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["tokens", "add", "alice", "--tokens", str(path), "--role", "researcher"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a token named alice is already in" in err[0] and "choose another name" in err[0]
    assert [e.name for e in list_tokens(path)] == ["alice"]
    assert TokenStore(path).check(first).role == "volunteer"
    revoke_token(path, "alice")
    with pytest.raises(UsageError, match="revoked on"):  # a revoked name is not given again either
        add_token(path, "alice")


def test_list_shows_names_roles_dates_and_revocations_never_hashes(tmp_path, capsys):
    path = tmp_path / "tokens"
    alice = add_token(path, "alice")
    add_token(path, "rita", "researcher")
    revoked, now = revoke_token(path, "alice")
    assert now and revoked.revoked_at
    assert main(["tokens", "list", "--tokens", str(path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0].split() == ["NAME", "ROLE", "ADDED", "REVOKED"]
    assert lines[1].split() == ["alice", "volunteer", stored[0]["added_at"], stored[0]["revoked_at"]]
    assert lines[2].split() == ["rita", "researcher", stored[1]["added_at"], "-"]
    assert "2 tokens, 1 revoked" in captured.err
    for entry in stored:
        assert entry["sha256"] not in captured.out and entry["salt"] not in captured.out
    assert alice not in captured.out and alice not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the rewritten file too


def test_revoke_is_seen_by_a_store_already_reading_the_file(tmp_path, capsys):
    path = tmp_path / "tokens"
    alice, bob = add_token(path, "alice"), add_token(path, "bob")
    store = TokenStore(path)
    assert store.check(alice) is not None
    assert main(["tokens", "revoke", "alice", "--tokens", str(path)]) == 0
    assert "token of alice (volunteer) revoked on " in capsys.readouterr().out
    assert store.check(alice) is None and store.check(bob).name == "bob"
    assert main(["tokens", "revoke", "alice", "--tokens", str(path)]) == 0  # again: says so, changes nothing
    assert "already revoked" in capsys.readouterr().out
    assert main(["tokens", "revoke", "nobody", "--tokens", str(path)]) == 2
    assert "no token named nobody" in capsys.readouterr().err
    assert main(["tokens", "list", "--tokens", str(tmp_path / "none")]) == 2


def test_concurrent_adds_and_a_revoke_lose_no_entry(tmp_path):
    path = tmp_path / "tokens"
    add_token(path, "first")
    names = [f"v{i}" for i in range(20)]
    threads = [threading.Thread(target=add_token, args=(path, n)) for n in names]
    threads.append(threading.Thread(target=revoke_token, args=(path, "first")))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = {e.name: e for e in list_tokens(path)}
    assert set(entries) == {"first", *names} and entries["first"].revoked_at


class DyingWorker:
    """A settler whose process dies after claiming the run (as a killed worker would)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def settle(self, part, sha, uploader, origin, claimed_uuid) -> Result:
        assert self.collector._claim(sha, "0e1d4a5c-7a52-4b8e-9d55-4ab0b6b8d2f1", None, uploader, origin, 1) is None
        raise WorkerLost("a worker process died while storing the upload")

    def close(self) -> None:
        pass


def test_a_dead_worker_leaves_no_claim(tmp_path, caplog):
    collector = Collector(tmp_path / "collect")
    collector.workers = DyingWorker(collector)
    with caplog.at_level("INFO", logger="pytomo.collector.uploads"):
        result = collector.receive(io.BytesIO(b"SQLite format 3\0 and more"), declared=25, encoding="",
                                   uploader="alice", origin=Origin())
    assert result.status == 503 and result.retry_after_s > 0 and result.outcome == "busy"
    assert collector.listing() == [] and not list(collector.files.iterdir()) and not list(collector.tmp.iterdir())
    assert collector._claim("aa", "0e1d4a5c-7a52-4b8e-9d55-4ab0b6b8d2f1", None, "x", Origin(), 1) is None  # free again
    assert [r.getMessage().split(" status=")[0] for r in caplog.records] == [
        "upload uploader=alice run=- outcome=busy"]
    collector.close()


class FullDisk(DyingWorker):
    """A settler that hits a full disk after claiming (an error that is not a refusal)."""

    def settle(self, part, sha, uploader, origin, claimed_uuid) -> Result:
        raise OSError(28, "No space left on device")


def test_an_unexpected_error_is_logged_as_failed_and_raised(tmp_path, caplog):
    collector = Collector(tmp_path / "collect")
    collector.workers = FullDisk(collector)
    with caplog.at_level("INFO", logger="pytomo.collector.uploads"), pytest.raises(OSError):
        collector.receive(io.BytesIO(b"x" * 10), declared=10, encoding="", uploader="bob", origin=Origin())
    assert [r.getMessage().split(" body_bytes=")[0] for r in caplog.records] == [
        "upload uploader=bob run=- outcome=failed status=500"]
    assert "body_bytes=10 db_bytes=10 " in caplog.records[0].getMessage()
    assert not list(collector.tmp.iterdir())
    collector.close()


def test_worker_processes_settle_uploads_and_a_bad_start_is_one_error(tmp_path):
    import time

    from pytomo.collector.workers import Workers
    from pytomo.errors import PytomoError

    collector = Collector(tmp_path / "collect")
    pool = Workers(collector.root, (), collector.max_bytes, 2)
    try:
        pool.warm()
        collector.workers = pool
        result = collector.receive(io.BytesIO(b"not a database" * 10), declared=140, encoding="", uploader="alice",
                                   origin=Origin())
        assert result.status == 422 and "not an SQLite database" in result.message  # checked in a worker
        assert not list(collector.tmp.iterdir()) and collector.listing() == []
    finally:
        collector.close()
    broken = Workers(tmp_path / "collect", (str(tmp_path / "missing.mmdb"),), 1024, 1)
    start = time.monotonic()
    with pytest.raises(PytomoError, match="did not start"):
        broken.warm()
    assert time.monotonic() - start < 60
    broken.close()


def test_the_collector_without_pyarrow_says_so_at_start(tmp_path, monkeypatch, capsys):
    """The volunteer executable leaves pyarrow out: its collector stops at start with one line, not at each upload."""
    from pytomo.__main__ import frozen_main

    tokens = tmp_path / "tokens"
    add_token(tokens, "alice")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow: ModuleNotFoundError, as in the executable
    assert frozen_main(["server", "--collect", str(tmp_path / "c"), "--tokens", str(tokens), "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pytomo: server --collect needs pyarrow, which the volunteer executable does not carry: install "
                   "the Python package; see README.md, The volunteer executable"]
    assert not (tmp_path / "c").exists()
