"""nginx as a lab cache server: the configuration we write, its access log read back, the limit_rate bound."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pytomo.lab import nginx, served
from pytomo.lab.scenario import ServerProfile
from pytomo.lab.tools import nginx_exe
from pytomo.lab.truth import TRUTH_FIELDS, TruthLog

FAST = ServerProfile("nginx-fast", "nginx-fast.lab.pytomo.test", "127.77.2.2", software="nginx", rate_bps=4_000_000)
SLOW = ServerProfile("nginx-slow", "nginx-slow.lab.pytomo.test", "127.77.2.3", software="nginx", rate_bps=600_000,
                     burst_bytes=250_000)
LOOP = ServerProfile("nginx-loop", "nginx-loop.lab.pytomo.test", "127.77.2.5", software="nginx", fault="redirect_loop")
GONE = ServerProfile("nginx-403", "nginx-403.lab.pytomo.test", "127.77.2.6", software="nginx", fault="403")


def _sites(tmp_path: Path) -> list[served.Site]:
    media = tmp_path / "media.mp4"
    media.write_bytes(b"x")
    site = served.Site
    return [site(FAST, 18001, progressive={"v1.mp4": media}), site(SLOW, 18002, segmented={"v2": tmp_path}),
            site(LOOP, 18003, progressive={"v3.mp4": media}), site(GONE, 18004, progressive={"v4.mp4": media})]


def test_config_has_what_the_lab_asks_of_nginx(tmp_path):
    conf = nginx.render_config(_sites(tmp_path), tmp_path / "w", ("root", "root"))
    for line in ("daemon off;", "sendfile on;", "keepalive_requests 100000;", "gzip on;", "user \"root\" \"root\";",
                 "listen 127.77.2.2:18001;", "limit_rate 500000;", "listen 127.77.2.3:18002;", "limit_rate 75000;",
                 "limit_rate_after 250000;", "return 403;", "return 302 $uri?loop=$pytomo_next_loop;",
                 "gzip_types application/vnd.apple.mpegurl application/dash+xml;", "video/mp2t ts;",
                 "application/dash+xml mpd;", "video/iso.segment m4s;", "video/x-flv flv;", "video/webm webm;"):
        assert line in conf, line
    assert "buffer=" not in conf  # one write per request: the truth is never held back in nginx's memory
    assert conf.count("server {") == 4 and conf.count("limit_rate ") == 2
    assert "escape=json" in conf and all(f"${name}" in conf for name in nginx.LOG_FIELDS)


def test_no_user_directive_when_not_asked(tmp_path):
    assert "user " not in nginx.render_config(_sites(tmp_path), tmp_path, None).replace("$arg_loop", "")


def test_nginx_accepts_the_config(tmp_path):
    exe, why = nginx_exe()
    if exe is None:
        pytest.skip(why)
    work = tmp_path / "w"
    (work / "temp").mkdir(parents=True)
    conf = work / "nginx.conf"
    conf.write_text(nginx.render_config(_sites(tmp_path), work, nginx.worker_user([tmp_path])))
    done = subprocess.run([exe, "-t", "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_worker_user_owns_the_media(tmp_path):
    owner = nginx.worker_user([tmp_path / "missing", tmp_path])
    if os.geteuid() != 0:
        assert owner is None
    else:
        import pwd

        assert owner[0] == pwd.getpwuid(tmp_path.stat().st_uid).pw_name


def test_limit_rate_in_bytes_and_its_bound():
    assert nginx.limit_rate_bytes(600_000) == 75_000 and nginx.limit_rate_bytes(4_000_000) == 500_000
    assert nginx.limit_bound_bytes(None, 0, 10.0, 20.0) is None
    # whole wall-clock seconds: a request from 100.9 to 101.1 (0.2 s) may get two seconds' worth
    assert nginx.limit_bound_bytes(800_000, 0, 100.9, 101.1) == 2 * 100_000 + nginx.LIMIT_SLACK_BYTES
    assert nginx.limit_bound_bytes(800_000, 0, 100.1, 100.3) == 100_000 + nginx.LIMIT_SLACK_BYTES
    assert nginx.limit_bound_bytes(800_000, 5_000, 100.0, 103.5) == 5_000 + 4 * 100_000 + nginx.LIMIT_SLACK_BYTES


LINE = json.dumps({"server_addr": "127.77.2.3", "server_port": "18002", "request_method": "GET",
                   "request_uri": "/s/v2/v0/seg_00001.ts?x=1", "status": "206", "body_bytes_sent": "1000",
                   "bytes_sent": "1300", "request_time": "2.500", "connection": "7", "connection_requests": "3",
                   "msec": "1700000010.750", "http_range": "bytes=0-999", "sent_http_content_length": "1000",
                   "sent_http_content_encoding": ""})


def test_log_line_is_parsed_into_typed_values():
    entry = nginx.parse_log_line(LINE)
    assert entry["status"] == 206 and entry["body_bytes_sent"] == 1000 and entry["total_bytes_sent"] == 1300
    assert entry["request_time_s"] == 2.5 and entry["msec"] == 1700000010.75
    assert entry["connection"] == 7 and entry["connection_requests"] == 3 and entry["range"] == "bytes=0-999"
    assert entry["content_length_bytes"] == 1000 and entry["content_encoding"] is None
    assert nginx.parse_log_line("not json") is None and nginx.parse_log_line("{}") is None
    gzipped = LINE.replace('"sent_http_content_encoding": ""', '"sent_http_content_encoding": "gzip"')
    chunked = nginx.parse_log_line(gzipped.replace('"sent_http_content_length": "1000"',
                                                   '"sent_http_content_length": ""'))
    assert chunked["content_encoding"] == "gzip" and chunked["content_length_bytes"] is None


class _Video:
    id, server, delivery = "v2", "nginx-slow", "hls"


class _Seg:
    sizes = {"v0/seg_00001.ts": 5000}


class _Scenario:
    @staticmethod
    def video(video_id):
        return _Video() if video_id == "v2" else None


class _Lab:
    scenario = _Scenario()
    segmented = {"v2": _Seg()}

    @staticmethod
    def truth_record(video, profile):
        return {"video_id": video.id, "cache_host": profile.host, "software": "lab"}

    @staticmethod
    def path_truth(profile):
        return {"path_delay_ms": None}


def test_truth_record_from_nginx_word():
    record = nginx.truth_record(nginx.parse_log_line(LINE), _Lab(), SLOW)
    assert record["software"] == "nginx" and record["video_id"] == "v2" and record["segment"] == "v0/seg_00001.ts"
    assert record["size_bytes"] == 5000 and record["bytes_sent"] == record["body_bytes_sent"] == 1000
    assert record["status"] == 206 and record["range"] == "bytes=0-999" and record["method"] == "GET"
    assert record["started_at"] == "2023-11-14T22:13:28.250000+00:00"
    assert record["ended_at"] == "2023-11-14T22:13:30.750000+00:00"
    assert record["limit_rate_bps"] == 600_000 and record["limit_rate_after_bytes"] == 250_000
    assert record["limit_bound_bytes"] == 250_000 + 3 * 75_000 + nginx.LIMIT_SLACK_BYTES  # seconds ...28 to ...30
    assert set(record) <= set(TRUTH_FIELDS)
    other = nginx.truth_record(nginx.parse_log_line(LINE.replace("/s/v2/", "/s/elsewhere/")), _Lab(), SLOW)
    assert other["video_id"] is None and other["request_uri"].startswith("/s/elsewhere/")


def test_truth_log_reads_its_sources_first(tmp_path):
    log = TruthLog(tmp_path / "t.jsonl")
    pending = [{"video_id": "a", "software": "nginx"}]

    def source():
        while pending:
            log.add(pending.pop())

    log.add({"video_id": "b", "software": "lab"})
    log.add_source(source)
    assert [r["video_id"] for r in log.records] == ["b", "a"]
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 2
    log.remove_source(source)
    pending.append({"video_id": "c"})
    assert len(log.records) == 2
