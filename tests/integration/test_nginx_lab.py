"""Debian's nginx as lab cache servers, and a plain nginx nobody configured for us, checked against nginx's own log."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pytomo.lab import runtime
from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.lab.nginx import LIMIT_SLACK_BYTES
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario
from pytomo.lab.segmented import SegmentedSpec, ensure_segmented
from pytomo.lab.served import free_port
from pytomo.lab.tools import nginx_exe
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler

NGINX, WHY = nginx_exe()
pytestmark = pytest.mark.skipif(NGINX is None, reason=WHY or "nginx is not installed")

WINDOW_S = 10.0
SERVERS = [
    {"name": "ngx-open", "ip": "127.77.3.1", "software": "nginx"},
    {"name": "ngx-fast", "ip": "127.77.3.2", "software": "nginx", "rate_bps": 4_000_000},
    {"name": "ngx-slow", "ip": "127.77.3.3", "software": "nginx", "rate_bps": 600_000, "burst_bytes": 250_000},
    {"name": "ngx-404", "ip": "127.77.3.4", "software": "nginx", "fault": "404"},
    {"name": "ngx-loop", "ip": "127.77.3.5", "software": "nginx", "fault": "redirect_loop"},
]
VIDEOS = [
    {"id": "n-mp4", "server": "ngx-open", "container": "mp4", "hops": 0},
    {"id": "n-fmp4", "server": "ngx-open", "container": "fmp4"},
    {"id": "n-webm", "server": "ngx-fast", "container": "webm", "hops": 2},
    {"id": "n-flv", "server": "ngx-fast", "container": "flv"},
    {"id": "n-moov-end", "server": "ngx-slow", "container": "mp4-moov-end"},
    {"id": "n-404", "server": "ngx-404", "container": "mp4"},
    {"id": "n-loop", "server": "ngx-loop", "container": "mp4"},
]
SCENARIO = {"scenario": {"name": "nginx-test"}, "video_defaults": {"duration_s": 30.0, "bitrate_bps": 1_000_000},
            "servers": SERVERS, "videos": VIDEOS}
COMPLETE = {"n-mp4", "n-fmp4", "n-webm", "n-flv"}  # within the window, at their servers' rates
LIMITED = {"n-webm", "n-flv", "n-moov-end"}


def _toml(data: dict) -> str:
    def value(v):
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    out = ["[scenario]", *(f"{k} = {value(v)}" for k, v in data["scenario"].items()), "[video_defaults]",
           *(f"{k} = {value(v)}" for k, v in data["video_defaults"].items())]
    for table in ("servers", "videos"):
        for row in data[table]:
            out += [f"[[{table}]]", *(f"{k} = {value(v)}" for k, v in row.items())]
    return "\n".join(out) + "\n"


# --- the lab with nginx servers, crawled by the real crawler (needs the downloader to end at Content-Length) ---

@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("nginx-crawl")
    scenario = out / "nginx.toml"
    scenario.write_text(_toml(SCENARIO))
    truth = out / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-P", "50",
                        "-D", str(WINDOW_S), "-n", "1", "-S", "0", "--database-dir", str(out), "--lab-truth",
                        str(truth)])
    return proc, connect(database_of(proc)), read_truth(truth)


def _main(truth, video_id):
    rows = [t for t in truth if t["video_id"] == video_id and t["method"] == "GET" and t["range"] is None]
    assert len(rows) == 1, rows
    assert rows[0]["software"] == "nginx"
    return rows[0]


def _download(conn, video_id):
    return conn.execute("SELECT d.* FROM downloads d JOIN videos v ON v.id = d.video_row_id WHERE v.video_id = ?",
                        (video_id,)).fetchone()


def test_every_stream_is_stored_ok_and_complete_ones_end_at_eof(crawl):
    _proc, conn, truth = crawl
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    assert set(rows) == {v["id"] for v in VIDEOS}
    for vid in COMPLETE | {"n-moov-end"}:
        assert rows[vid]["status"] == "ok", (vid, rows[vid]["error_message"])
    for vid in COMPLETE:
        d, t = _download(conn, vid), _main(truth, vid)
        assert d["ended_by"] == "eof", (vid, d["ended_by"], d["error"])
        assert t["status"] == 200 and d["bytes"] == t["body_bytes_sent"] == t["size_bytes"], vid
        assert d["content_length_bytes"] == t["content_length_bytes"]
    slow = _download(conn, "n-moov-end")
    assert slow["ended_by"] == "window" and slow["bytes"] <= _main(truth, "n-moov-end")["body_bytes_sent"]


def test_throughput_against_nginx_and_its_limit_rate_formula(crawl):
    _proc, conn, truth = crawl
    for vid in LIMITED:
        d, t = _download(conn, vid), _main(truth, vid)
        nginx_bps = t["body_bytes_sent"] * 8 / t["request_time_s"]
        # nginx's own word keeps within its formula, and keeps up the rate
        assert t["total_bytes_sent"] <= t["limit_bound_bytes"], vid
        floor_bytes = t["limit_rate_after_bytes"] + t["limit_rate_bps"] / 8 * t["request_time_s"]
        assert t["total_bytes_sent"] >= 0.95 * min(floor_bytes, t["size_bytes"]), vid
        # the crawler sees what nginx sent (a cut transfer: nginx notices the close at its next write, <= 1 s on)
        assert d["avg_throughput_bps"] == pytest.approx(nginx_bps, rel=0.05 if vid in COMPLETE else 0.15), vid
        # the second's worth nginx lets through at once shows in a transfer of a few seconds
        assert d["avg_throughput_bps"] > t["limit_rate_bps"], vid
        seconds = d["last_byte_s"] - d["headers_s"]
        upper = t["limit_rate_after_bytes"] + t["limit_rate_bps"] / 8 * (seconds + 2) + LIMIT_SLACK_BYTES
        assert d["bytes"] <= upper, vid


def test_stalls_only_below_the_bitrate(crawl):
    _proc, conn, _truth = crawl
    for vid in COMPLETE | {"n-moov-end"}:
        d = _download(conn, vid)
        if vid == "n-moov-end":
            assert d["stall_count"] >= 1 and d["stall_total_s"] > 0
        else:
            assert d["stall_count"] == 0, vid


def test_nginx_faults_are_stored_as_the_right_errors(crawl):
    _proc, conn, truth = crawl
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    assert (rows["n-404"]["status"], rows["n-404"]["error_stage"], rows["n-404"]["error_kind"]) == (
        "error", "redirects", "http_status")
    assert "404" in rows["n-404"]["error_message"]
    assert [t["status"] for t in truth if t["video_id"] == "n-404" and t["method"] == "GET"][:1] == [404]
    assert (rows["n-loop"]["status"], rows["n-loop"]["error_stage"], rows["n-loop"]["error_kind"]) == (
        "error", "redirects", "hop_limit")
    loops = [t for t in truth if t["video_id"] == "n-loop"]
    assert len(loops) >= 2 and {t["status"] for t in loops} == {302}
    assert {t["request_uri"] for t in loops} >= {"/v/n-loop.mp4", "/v/n-loop.mp4?loop=1"}


# --- nginx's limit_rate, measured here without the crawler ---

def _get(ip: str, port: int, path: str, seconds: float) -> list[tuple[float, int]]:
    """(elapsed s, bytes received) marks of one GET read for ``seconds``."""
    marks = []
    with socket.create_connection((ip, port)) as sock:
        sock.settimeout(0.02)
        start = time.monotonic()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = 0
        while (now := time.monotonic() - start) < seconds:
            try:
                got += len(sock.recv(1 << 16))
            except TimeoutError:
                pass
            marks.append((now, got))
    return marks


def test_limit_rate_lets_one_seconds_worth_through_at_once(tmp_path):
    scenario = parse_scenario({"servers": [SERVERS[2]], "videos": [VIDEOS[4]]}, "limit.toml")
    with Lab(scenario, truth_path=tmp_path / "truth.jsonl") as lab:
        profile = scenario.server("ngx-slow")
        marks = _get(profile.ip, lab.cache_port("ngx-slow"), "/v/n-moov-end.mp4", 2.5)
        time.sleep(0.3)
        records = [r for r in lab.truth.records if r["video_id"] == "n-moov-end"]
    early = max(b for s, b in marks if s <= 0.5)
    assert 250_000 + 75_000 <= early <= 250_000 + 75_000 + LIMIT_SLACK_BYTES + 1_000  # headers: < 1,000 bytes
    assert max(b for _s, b in marks) <= 250_000 + 4 * 75_000 + LIMIT_SLACK_BYTES
    (record,) = records  # nginx logged the cut transfer, within its own formula
    assert record["software"] == "nginx" and record["total_bytes_sent"] <= record["limit_bound_bytes"]
    assert record["body_bytes_sent"] >= max(b for _s, b in marks) - 1_000


def test_records_are_read_right_after_a_transfer_and_lab_servers_say_lab(tmp_path):
    servers = [SERVERS[0], {"name": "py", "ip": "127.77.3.9"}]
    videos = [VIDEOS[0], {"id": "p-mp4", "server": "py", "container": "mp4"}]
    scenario = parse_scenario({"servers": servers, "videos": videos}, "two.toml")
    with Lab(scenario, truth_path=tmp_path / "truth.jsonl") as lab:
        for vid, server in (("n-mp4", "ngx-open"), ("p-mp4", "py")):
            profile = scenario.server(server)
            marks = _get(profile.ip, lab.cache_port(server), f"/v/{vid}.mp4", 0.5)
            assert marks[-1][1] > 1_000_000
        by_id = {r["video_id"]: r for r in lab.truth.records}
        assert any("nginx" in line for line in lab.describe())
    assert by_id["n-mp4"]["software"] == "nginx" and by_id["p-mp4"]["software"] == "lab"
    assert by_id["n-mp4"]["bytes_sent"] == by_id["n-mp4"]["size_bytes"]
    assert len(read_truth(tmp_path / "truth.jsonl")) == 2


# --- nginx absent or failing: its servers and videos are left out with one line ---

@pytest.mark.parametrize("exe", [None, "/bin/false"])
def test_without_nginx_its_videos_are_left_out_with_one_line(monkeypatch, caplog, exe):
    monkeypatch.setattr(runtime, "nginx_exe", lambda: (exe, "nginx is not installed (Debian package nginx-light)"))
    servers = [SERVERS[0], {"name": "py", "ip": "127.77.3.9"}]
    videos = [{**VIDEOS[0], "related": ["p-mp4"]}, {"id": "p-mp4", "server": "py", "container": "mp4",
                                                   "related": ["n-mp4"]}]
    scenario = parse_scenario({"servers": servers, "videos": videos}, "absent.toml")
    with caplog.at_level(logging.WARNING, logger="pytomo.lab"), Lab(scenario) as lab:
        assert [v.id for v in lab.scenario.videos] == ["p-mp4"] and lab.scenario.videos[0].related == ()
        assert [s.name for s in lab.scenario.servers] == ["py"] and lab.nginx is None
        assert not any("ngx-open" in line for line in lab.describe())
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "ngx-open" in lines[0] and "left out" in lines[0], lines
    assert ("not installed" in lines[0]) if exe is None else ("exited" in lines[0])


# --- a plain nginx that nobody configured for us, crawled by the generic service ---

@pytest.fixture(scope="module")
def plain_nginx(tmp_path_factory):
    www = tmp_path_factory.mktemp("plain-www")
    mp4 = ensure_media(MediaSpec("mp4"))
    shutil.copy(mp4.path, www / "clip.mp4")
    (www / "slow").mkdir()
    shutil.copy(mp4.path, www / "slow" / "clip.mp4")
    for protocol, seg in (("hls", 2.0), ("dash", 4.0)):
        shutil.copytree(ensure_segmented(SegmentedSpec(protocol, segment_s=seg)).root, www / protocol)
    port = free_port("127.0.0.1")
    conf = www.parent / "plain-nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the test's private folder
    conf.write_text(f"""daemon off;
worker_processes 1;
{user}pid {www.parent}/plain-nginx.pid;
error_log {www.parent}/plain-error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    types {{ application/dash+xml mpd; video/iso.segment m4s; }}
    access_log {www.parent}/plain-access.log;
    client_body_temp_path {www.parent}/plain-temp;
    sendfile on;
    keepalive_timeout 65;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location /slow/ {{ limit_rate 75k; }}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(www.parent), "-e", str(www.parent / "plain-error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", mp4, www.parent / "plain-access.log"
    proc.send_signal(15)
    proc.wait(10)


_COMBINED = re.compile(r'"(?P<method>\w+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d+) (?P<bytes>\d+)')


def test_plain_nginx_crawled_by_the_generic_service(plain_nginx, tmp_path):
    base, mp4, access_log = plain_nginx
    urls = [f"{base}/clip.mp4", f"{base}/slow/clip.mp4", f"{base}/hls/master.m3u8", f"{base}/dash/manifest.mpd"]
    proc = run_crawler(["-s", "generic", "-b", "-D", "14", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        *urls])
    conn = connect(database_of(proc))
    time.sleep(0.5)
    served = [m.groupdict() for m in map(_COMBINED.search, Path(access_log).read_text().splitlines()) if m]
    rows = {r["page_url"]: r for r in conn.execute("SELECT * FROM videos")}
    assert set(rows) == set(urls)
    downloads = {}
    for url in urls:
        assert rows[url]["status"] == "ok", (url, rows[url]["error_message"])
        downloads[url] = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (rows[url]["id"],)).fetchone()
    full = downloads[urls[0]]
    logged = [int(s["bytes"]) for s in served if s["uri"] == "/clip.mp4" and s["status"] == "200"]
    assert full["ended_by"] == "eof" and full["bytes"] == mp4.size_bytes == logged[-1]
    assert full["stall_count"] == 0
    slow = downloads[urls[1]]  # 600 kbit/s for a 1 Mbit/s video: it stalls
    assert slow["ended_by"] == "window" and slow["stall_count"] >= 1
    for url in urls[2:]:
        d = downloads[url]
        assert d["stall_count"] == 0, url
        segs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? AND kind = 'media'",
                            (d["id"],)).fetchall()
        complete = [s for s in segs if s["complete"]]
        assert len(complete) >= 2, url
        for s in complete:  # every complete segment is in nginx's log with its bytes
            path = s["url"].removeprefix(base)
            assert any(x["uri"] == path and x["status"] in ("200", "206") for x in served), path


def test_a_port_taken_meanwhile_is_tried_again(monkeypatch, tmp_path):
    from pytomo.lab import served

    taken = socket.create_server(("127.77.3.1", 0))
    ports = [taken.getsockname()[1]]
    monkeypatch.setattr(served, "free_port", lambda ip: ports.pop() if ports else free_port(ip))
    scenario = parse_scenario({"servers": [SERVERS[0]], "videos": [VIDEOS[0]]}, "taken.toml")
    try:
        with Lab(scenario) as lab:
            assert lab.nginx is not None and lab.cache_port("ngx-open") != taken.getsockname()[1]
            assert _get("127.77.3.1", lab.cache_port("ngx-open"), "/v/n-mp4.mp4", 0.3)[-1][1] > 1_000_000
    finally:
        taken.close()
