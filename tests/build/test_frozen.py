"""The volunteer executable, built once (a folder build and its archive), unpacked alone into an empty folder: it
crawls the lab and serves the pages, fits in 90 MB, starts in under a second, and leaves the researchers' tools out."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from pytomo.paths import BUNDLED_MEDIA_DIR, LEFT_OUT
from tests.conftest import ROOT

pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (./quickstart.sh installs it)")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the suite builds on Linux only")

MAX_BYTES = 90_000_000  # what a volunteer downloads: the archive of the folder build
MAX_START_S = 1.0  # --version, the best of several runs


@pytest.fixture(scope="module")
def built() -> tuple[Path, Path]:
    """Build once: (the archive, the executable in dist/)."""
    sys.path.insert(0, str(ROOT / "build"))
    try:
        from pyinstaller import archive, executable
    finally:
        sys.path.pop(0)
    done = subprocess.run([sys.executable, str(ROOT / "build" / "pyinstaller.py")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    exe = executable()
    assert done.stdout.strip().splitlines()[-1] == str(exe) and exe.exists()
    assert archive().is_file()
    return archive(), exe


@pytest.fixture(scope="module")
def executable(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive unpacked alone into an empty folder, as a volunteer does: its executable."""
    folder = tmp_path_factory.mktemp("empty")
    with tarfile.open(built[0]) as archive:
        archive.extractall(folder, filter="tar")
    alone = folder / built[1].parent.name / built[1].name
    assert os.access(alone, os.X_OK)
    return alone


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_frozen_download_is_at_most_90_mb_and_carries_no_researchers_library(built, executable):
    assert built[0].stat().st_size <= MAX_BYTES, f"{built[0].stat().st_size / 1e6:.1f} MB"
    inside = executable.parent
    names = {part.lower() for path in inside.rglob("*") for part in path.relative_to(inside).parts}
    for library in LEFT_OUT:
        assert not any(n == library.lower() or n.startswith((library.lower() + ".", library.lower() + "-"))
                       or n.startswith(f"lib{library.lower()}") for n in names), library
    assert not any("ffmpeg" in n for n in names), "an ffmpeg binary is in the bundle"
    media = list((inside / "_internal" / BUNDLED_MEDIA_DIR).glob("*.json"))
    assert len(media) == 5, media  # the default scenario's five progressive files, each with its facts


def test_frozen_version_starts_in_under_a_second_with_the_runtime_facts(executable):
    env = _env()
    crawl = subprocess.run([str(executable), "crawl", "--version"], cwd=executable.parent.parent, env=env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    times = []
    for _ in range(5):
        start = time.monotonic()
        done = subprocess.run([str(executable), "--version"], cwd=executable.parent.parent, env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        times.append(time.monotonic() - start)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout == crawl.stdout  # the runtime facts, as crawl --version prints them
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pytomo 4.") and lines[1] == f"yt-dlp {version('yt-dlp')}", lines
    assert lines[2].startswith(f"JS runtime (as yt-dlp detects it): deno {version('deno')} at "), lines
    assert min(times) < MAX_START_S, f"--version took {min(times):.2f} s at best ({times})"


@pytest.mark.parametrize("command", ["export", "analyse"])
def test_frozen_researchers_tools_answer_one_line(executable, command):
    for argv in ([command, "--help"], [command, "x.db", "--to", "out"]):
        done = subprocess.run([str(executable), *argv], cwd=executable.parent.parent, env=_env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert done.returncode == 2 and done.stdout == "", done
        assert done.stderr == (f"pytomo: {command} is a researcher's tool, not in the volunteer executable: install "
                               "the Python package; see docs/analysis.md\n"), done.stderr


def test_frozen_collector_answers_one_line_for_its_missing_library(executable, tmp_path):
    done = subprocess.run([str(executable), "server", "--collect", str(tmp_path / "c"), "--tokens",
                           str(tmp_path / "t"), "0"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "needs pyarrow" in done.stderr, done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_frozen_executable_crawls_the_lab_and_serves_the_pages(executable):
    folder = executable.parent.parent  # the empty folder the archive was unpacked into
    env = {**_env(), "PYTOMO_CACHE_DIR": str(folder / "cache")}  # no lab media made before
    path = "/usr/bin:/bin"
    if shutil.which("ffmpeg", path=path) is None:  # no ffmpeg at all: the lab's media are the bundle's
        env["PATH"] = path
    crawl = subprocess.run([str(executable), "crawl", "-s", "lab", "-b", "-P", "3", "-D", "1", "-n", "1", "-S", "0",
                            "--database-dir", "dbs"], cwd=folder, env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    if env.get("PATH") == path:  # the videos it cannot make are left out in one line; nothing made in the cache
        assert sum("left out: no ffmpeg" in line for line in crawl.stderr.splitlines()) == 1, crawl.stderr[-3000:]
        assert not [p for p in (folder / "cache").rglob("*") if p.is_file()]
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
    folder = executable.parent.parent
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


# the media of the default scenario (30 s at 1 Mbit/s): the executable ships them made
_HTTPS_SCENARIO = """
[scenario]
name = "frozen-https"
description = "HTTPS through the frozen executable's libcurl (curl_cffi)"
[video_defaults]
duration_s = 30.0
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
    folder = executable.parent.parent
    scenario = folder / "https.toml"
    caddy = shutil.which("caddy") is not None
    scenario.write_text(_HTTPS_SCENARIO + (_CADDY if caddy else ""))
    env = {**_env(), "PYTOMO_CACHE_DIR": str(folder / "cache-https")}
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
