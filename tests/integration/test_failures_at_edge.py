"""Failures at the edge: a full disk mid-crawl, bad files named on the command line, a server dripping its headers."""

from __future__ import annotations

import resource
import signal
import sqlite3
import time

import pytest

from pytomo.engine.download import download
from pytomo.engine.http import HttpClient
from pytomo.lab.media import MediaSpec, ensure_media
from tests.conftest import run_crawler
from tests.scripted_http import Answer, Request, ScriptedServer, response


@pytest.fixture(scope="module")
def clip():
    return ensure_media(MediaSpec("mp4", duration_s=4.0)).path.read_bytes()


def _limit_file_size(limit_bytes: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return preexec


def test_full_disk_mid_crawl_gives_one_line_the_summary_and_a_whole_database(clip, tmp_path):
    routes = {"/clip.mp4": lambda req: response("200 OK", {"Content-Type": "video/mp4",
                                                           "Content-Length": str(len(clip))}, clip)}
    with ScriptedServer(routes) as srv:
        urls = [f"{srv.base}/clip.mp4?n={i}" for i in range(60)]
        proc = run_crawler(["-s", "generic", "-b", "-D", "1", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                            *urls], preexec_fn=_limit_file_size(600_000), timeout_s=300)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("start_crawl.py: error:")]
    assert len(errors) == 1 and "the disk is full" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr
    assert "videos," in proc.stdout  # the summary
    db = next(tmp_path.glob("*.pytomo_database.db"))
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = conn.execute("SELECT count(*) FROM videos").fetchone()[0]
    assert 0 < stored < 60
    assert conn.execute("SELECT count(*) FROM downloads").fetchone()[0] == stored  # no half-stored video


@pytest.mark.parametrize("content", [None, "this is [not toml", "[scenario]\nname = 'x'\n"])
def test_a_bad_lab_scenario_file_is_a_usage_error(tmp_path, content):
    path = tmp_path / "scenario.toml"
    if content is not None:
        path.write_text(content)
    proc = run_crawler(["-s", "lab", "-b", "--lab-scenario", str(path), "--database-dir", str(tmp_path)],
                       timeout_s=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.db"))


def test_headers_dripped_one_byte_at_a_time_are_given_up_at_the_deadline():
    def drip(req: Request) -> Answer:
        answer = response("200 OK", {"Content-Type": "video/mp4", "Content-Length": "10"}, b"0123456789")
        answer.drip_s = 0.5  # one byte every half second: never a 5 s silence, never done
        return answer

    with ScriptedServer({"/slow": drip}) as srv:
        http = HttpClient(lambda host: ["127.0.0.1"], timeout_s=2.0)
        t0 = time.monotonic()
        tr = download(http, f"{srv.base}/slow", "127.0.0.1", window_s=30, timeout_s=2.0)
        took_s = time.monotonic() - t0
        http.close()
    assert tr.ended_by == "error" and tr.error_kind == "timeout", tr.error
    assert "did not all arrive within 2 s" in tr.error
    assert took_s < 4.0
