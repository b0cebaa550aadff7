"""The one-file executable, built once, copied alone into an empty folder: it crawls the lab and serves the pages."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version

import pytest

from tests.conftest import ROOT

pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (./quickstart.sh installs it)")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the suite builds on Linux only")


@pytest.fixture(scope="module")
def executable(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "build"))
    try:
        from pyinstaller import binary_name
    finally:
        sys.path.pop(0)
    done = subprocess.run([sys.executable, str(ROOT / "build" / "pyinstaller.py")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    built = ROOT / "dist" / binary_name()
    assert done.stdout.strip().splitlines()[-1] == str(built) and built.exists()
    alone = tmp_path_factory.mktemp("empty") / built.name
    shutil.copy2(built, alone)
    assert os.access(alone, os.X_OK)
    return alone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_frozen_executable_crawls_the_lab_and_serves_the_pages(executable):
    folder = executable.parent
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    crawl = subprocess.run([str(executable), "crawl", "-s", "lab", "-b", "-P", "3", "-D", "1", "-n", "1", "-S", "0",
                            "--database-dir", "dbs"], cwd=folder, env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    db = folder / crawl.stdout.strip().splitlines()[-1]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute("SELECT v.video_id, d.bytes, d.media_time_source FROM videos v JOIN downloads d"
                        " ON d.video_row_id = v.id").fetchall()
    assert len(rows) == 3 and all(b > 0 and src for _v, b, src in rows), rows
    conn.close()
    port = _free_port()
    server = subprocess.Popen([str(executable), "server", "-d", "dbs", str(port)], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    page = resp.read().decode()
                    assert resp.status == 200
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the frozen server did not answer"
                time.sleep(0.5)
        assert "Pytomo" in page and "lab" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/videos", timeout=5) as resp:
            assert "Sunrise over the lab (unlimited cache)" in resp.read().decode()  # the first video's title
    finally:
        server.terminate()
        server.wait(timeout=20)


def _offline() -> list[str]:
    """A command prefix that runs without any network (a fresh network namespace), when this system allows it."""
    unshare = shutil.which("unshare")
    for prefix in ([unshare, "-n"], [unshare, "-rn"]) if unshare else ():
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


def test_frozen_executable_names_the_deno_and_ejs_that_ytdlp_finds_inside_it(executable):
    folder = executable.parent
    path = "/usr/bin:/bin"
    assert shutil.which("deno", path=path) is None, "a deno on this PATH would hide the bundled one"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PATH")}
    env["PATH"] = path
    done = subprocess.run([*_offline(), str(executable), "crawl", "--version"], cwd=folder, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pytomo ") and lines[1] == f"yt-dlp {version('yt-dlp')}", lines
    runtime = next(line for line in lines if line.startswith("JS runtime (as yt-dlp detects it): "))
    assert runtime.startswith(f"JS runtime (as yt-dlp detects it): deno {version('deno')} at "), lines
    where = runtime.split(" at ", 1)[1]
    assert "/deno_bin/deno" in where and not where.startswith(str(ROOT)), where  # the bundled binary
    assert f"yt-dlp-ejs (as yt-dlp detects it): {version('yt-dlp-ejs')}" in lines, lines


def test_frozen_executable_says_how_to_use_it(executable):
    done = subprocess.run([str(executable), "nonsense"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown command 'nonsense'" in done.stderr
    done = subprocess.run([str(executable), "crawl", "-n", "zero"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1


_HTTPS_SCENARIO = """
[scenario]
name = "frozen-https"
description = "HTTPS through the frozen executable's libcurl (curl_cffi)"
[video_defaults]
duration_s = 6.0
bitrate_bps = 1000000
hops = 1
[[servers]]
name = "own-tls"
ip = "127.77.3.6"
tls = true
[[videos]]
id = "own-tls-mp4"
server = "own-tls"
popular = ["all_time"]
"""
_CADDY = """
[[servers]]
name = "caddy"
ip = "127.77.3.7"
software = "caddy"
[[videos]]
id = "caddy-mp4"
server = "caddy"
popular = ["all_time"]
"""


def test_frozen_executable_measures_https_through_libcurl(executable):
    """The default --http auto goes through curl_cffi's libcurl: the executable carries it (HTTP/1.1 over TLS from
    the lab's own server, HTTP/3 from Caddy where it is installed)."""
    folder = executable.parent
    scenario = folder / "https.toml"
    caddy = shutil.which("caddy") is not None
    scenario.write_text(_HTTPS_SCENARIO + (_CADDY if caddy else ""))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    crawl = subprocess.run([str(executable), "crawl", "-s", "lab", "--lab-scenario", str(scenario), "-b", "-t",
                            "all_time", "-D", "1", "-n", "1", "-S", "0", "--database-dir", "dbs-https"], cwd=folder,
                           env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    db = folder / crawl.stdout.strip().splitlines()[-1]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = dict(((v, (status, version, tls)) for v, status, version, tls in conn.execute(
        "SELECT v.video_id, v.status, d.http_version, d.tls_version FROM videos v JOIN downloads d"
        " ON d.video_row_id = v.id")))
    conn.close()
    assert rows["own-tls-mp4"] == ("ok", "HTTP/1.1", "TLSv1.3"), rows
    if caddy:
        assert rows["caddy-mp4"] == ("ok", "HTTP/3", "TLSv1.3"), rows
