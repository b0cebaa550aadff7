"""Shared fixtures: running the crawler as a volunteer would, and reading what it stored."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``live`` need the real platforms: skipped unless PYTOMO_LIVE=1."""
    if os.environ.get("PYTOMO_LIVE") == "1" and os.environ.get("PYTOMO_NO_INTERNET") != "1":
        return
    skip = pytest.mark.skip(reason="needs the real platforms (set PYTOMO_LIVE=1)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


def run_crawler(args: list[str], *, timeout_s: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run ./start_crawl.py with ``args``; stdin is not a terminal."""
    return subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, **kw)


def database_of(proc: subprocess.CompletedProcess) -> Path:
    """The database path: the last line the crawler printed."""
    assert proc.returncode in (0, 130), proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.name.endswith(".pytomo_database.db") and path.exists(), proc.stdout
    return path


def connect(path: Path) -> sqlite3.Connection:
    """Read-only connection with rows by column name."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def uuid_of(db: Path) -> str:
    """The run UUID stored in a run database (``run.run_uuid``)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute("SELECT run_uuid FROM run").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def lab():
    """The lab of the default scenario, running for the module (a module may define its own ``lab``)."""
    from pytomo.lab.runtime import Lab
    from pytomo.lab.scenario import default_scenario_path, load_scenario

    with Lab(load_scenario(default_scenario_path())) as running:
        yield running
