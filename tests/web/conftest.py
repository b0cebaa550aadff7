"""One lab crawl shared by the web and RRD tests, and the server started on its databases folder."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_of, run_crawler

HOSTILE_TITLE = "<script>alert(\"pwned\")</script> \"Quotes\" & 'apostrophes' — Ünïcødé 日本語 ✓"


@pytest.fixture(scope="session")
def lab_db(tmp_path_factory) -> Path:
    """A finished lab crawl (its database, and the RRD files the crawler kept beside it)."""
    out = tmp_path_factory.mktemp("web-lab")
    proc = run_crawler(["-s", "lab", "-b", "-t", "all_time", "-P", "50", "-D", "2", "-n", "2", "-S", "0",
                        "--database-dir", str(out)])
    return database_of(proc)


def read_db(path: Path) -> sqlite3.Connection:
    """An immutable read-only connection: unlike ``mode=ro`` alone, it creates no ``-wal``/``-shm`` beside the file."""
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` with its size and mtime, to show nothing was created or changed."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Server:
    """``start_server.py`` in a child process, on a free loopback port."""

    def __init__(self, args: list[str], cache_dir: Path) -> None:
        env = dict(os.environ, PYTOMO_CACHE_DIR=str(cache_dir))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), *args, "0"], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        match = re.match(r"serving (http://\S+/)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = match.group(1)
        self.first_line = line

    def stop(self) -> str:
        """Stop it (Ctrl-C) and return what it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def server(lab_db, tmp_path_factory):
    """The server on the lab crawl's folder; yields it with the folder's state before any request."""
    cache = tmp_path_factory.mktemp("web-cache")
    before = folder_state(lab_db.parent)
    srv = Server(["-d", str(lab_db.parent)], cache)
    time.sleep(0.1)
    yield srv, before, cache
    srv.stop()
    shutil.rmtree(cache, ignore_errors=True)
