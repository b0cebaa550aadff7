"""Consent before a first crawl: asked once on a terminal, remembered, skipped by -b and without a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time

from pytomo import settings as settings_mod
from pytomo.consent import CONSENT_VERSION, ask, has_consent, statement
from tests.conftest import ROOT


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _settings(**kw):
    return settings_mod.build({}, {"service": "youtube", "database_dir": "/tmp/pytomo-db", **kw})


def test_statement_says_what_is_measured_and_stored():
    text = statement(_settings(label="volunteer-7", download_time_s=20.0, ping_count=4))
    for needle in ("YouTube", "round-trip time", "4 pings", "download the video for 20 s", "/tmp/pytomo-db",
                   "volunteer-7", "public address is not recorded"):
        assert needle in text


def test_asked_once_then_remembered(tmp_path):
    path = tmp_path / "consent.json"
    out = io.StringIO()
    assert ask(_settings(), _Tty("no\n"), out, path) is False
    assert "Do you agree?" in out.getvalue() and not path.exists()
    assert ask(_settings(), _Tty("y\n"), out, path) is True
    assert json.loads(path.read_text())["version"] == CONSENT_VERSION and has_consent(path)
    out2 = io.StringIO()
    assert ask(_settings(), _Tty(""), out2, path) is True and out2.getvalue() == ""


def test_batch_and_non_terminal_are_not_asked(tmp_path):
    path = tmp_path / "consent.json"
    out = io.StringIO()
    assert ask(_settings(batch=True), _Tty(""), out, path) is True
    assert ask(_settings(), io.StringIO(""), out, path) is True
    assert out.getvalue() == "" and not path.exists()
    path.write_text(json.dumps({"version": CONSENT_VERSION - 1, "consent": True}))
    assert not has_consent(path)  # a new statement is asked again


def test_the_crawler_asks_on_a_pseudo_terminal(tmp_path):
    master, slave = pty.openpty()
    env = {**os.environ, "PYTOMO_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "start_crawl.py"), "-s", "generic", "http://127.0.0.1:9/x"],
                            cwd=ROOT, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            seen += os.read(master, 4096)
    os.write(master, b"n\n")
    assert proc.wait(timeout=30) == 0
    os.close(master)
    assert b"Pytomo measures how video streaming works" in seen
    assert b"not started" in proc.stderr.read()
    assert not (tmp_path / "consent.json").exists()
