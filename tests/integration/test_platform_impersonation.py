"""A platform CDN that refuses a non-browser TLS handshake (``tls_fingerprint``), from both sides: the lab's server
tells curl_cffi's Chrome and Firefox from Python's ssl and plain libcurl by the ClientHello it peeked at, and a
``-s dailymotion --lab`` crawl asks again as yt-dlp does (none, then Chrome, then Firefox), storing which browser
each request presented; a CDN that refuses every client gives ``blocked_client`` with what was tried."""

from __future__ import annotations

import json
import time

import pytest
import requests
from curl_cffi import Curl, CurlInfo, CurlOpt

from pytomo.engine.curl import impersonation_target
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario
from tests.conftest import connect, database_of, run_crawler

SCENARIO_TOML = """
[scenario]
name = "tls-fingerprint"
description = "Dailymotion-like CDNs: one refuses a non-browser TLS handshake, one refuses every client"

[video_defaults]
duration_s = 12.0
bitrate_bps = 800_000

[[servers]]
name = "dm-browser"
ip = "127.77.1.60"
tls_fingerprint = "browser"

[[servers]]
name = "dm-refuse"
ip = "127.77.1.61"
tls_fingerprint = "refuse"

[[videos]]
id = "lab-dm-browser"
server = "dm-browser"
delivery = "hls"
segment_s = 2.0

[[videos]]
id = "lab-dm-refuse"
server = "dm-refuse"
delivery = "hls"
segment_s = 2.0
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tls-fingerprint") / "scenario.toml"
    path.write_text(SCENARIO_TOML)
    return path


@pytest.fixture(scope="module")
def lab(scenario_file):
    import tomllib
    with Lab(parse_scenario(tomllib.loads(scenario_file.read_text()), "tls-fingerprint")) as running:
        yield running


def _records(lab, n: int) -> list[dict]:
    deadline = time.monotonic() + 3.0
    while len(lab.truth.records) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(lab.truth.records)


def _curl_status(url: str, ip: str, ca: str, target: str | None) -> int:
    host, port = url.split("/")[2].split(":")
    c = Curl()
    try:
        c.setopt(CurlOpt.URL, url)
        c.setopt(CurlOpt.RESOLVE, [f"{host}:{port}:{ip}"])
        c.setopt(CurlOpt.CAINFO, ca)
        c.setopt(CurlOpt.WRITEFUNCTION, lambda data: len(data))
        if target:
            assert c.impersonate(impersonation_target(target)) == 0
        c.perform()
        return int(c.getinfo(CurlInfo.RESPONSE_CODE))  # type: ignore[arg-type]
    finally:
        c.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_server_refuses_what_does_not_look_like_a_browser(lab):
    video = lab.scenario.video("lab-dm-browser")
    url = lab.cache_url(video)
    ip = lab.scenario.server("dm-browser").ip
    ca = str(lab.ca_file)
    host, port = url.split("/")[2].split(":")
    plain = requests.get(url.replace(host, ip), headers={"Host": f"{host}:{port}"}, verify=False, timeout=10)
    statuses = {"python": plain.status_code}
    for target in (None, "chrome", "firefox"):
        statuses[target or "libcurl"] = _curl_status(url, ip, ca, target)
    assert statuses == {"python": 403, "libcurl": 403, "chrome": 200, "firefox": 200}
    records = _records(lab, 4)[-4:]
    assert [r["status"] for r in records] == [403, 403, 200, 200]
    assert [r["tls_client"] for r in records] == ["not_browser", "not_browser", "browser", "browser"]
    assert [r["refused"] for r in records] == ["tls_client", "tls_client", None, None]
    assert "grease" in records[2]["client_hello"] and "delegated_credentials" in records[3]["client_hello"]
    assert all(r["client_hello"].startswith("t1") for r in records)


def test_a_crawl_asks_again_as_a_browser_and_stores_who_was_presented(scenario_file, tmp_path):
    truth = tmp_path / "truth.jsonl"
    urls = [f"https://www.dailymotion.com/video/{v}" for v in ("x8labtls1", "x8labtls2", "x8labtls3")]
    proc = run_crawler(["-s", "dailymotion", "-b", "--lab", "--lab-scenario", str(scenario_file), "-D", "2",
                        "-n", "1", "-S", "0", "--lab-truth", str(truth), "--database-dir", str(tmp_path), *urls],
                       timeout_s=300)
    conn = connect(database_of(proc))
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    served = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]

    # x8labtls1: no word from yt-dlp's log, so none first: the walk's plain first byte was refused, Chrome's served
    first = rows["x8labtls1"]
    assert first["status"] == "ok", (first["error_kind"], first["error_message"])
    tried = json.loads(first["extractor_json"])["impersonation"]["tried"]
    assert tried[0] == ["none", 403] and tried[1][0].startswith("chrome") and tried[1][1] == 206
    hop = conn.execute("SELECT impersonate FROM hops WHERE video_row_id = ? ORDER BY hop_index DESC",
                       (first["id"],)).fetchone()
    assert hop["impersonate"].startswith("chrome")
    requests_ = conn.execute("SELECT s.impersonate, s.http_status FROM segment_requests s JOIN downloads d"
                             " ON d.id = s.download_id WHERE d.video_row_id = ?", (first["id"],)).fetchall()
    assert requests_ and all(r["impersonate"].startswith("chrome") and r["http_status"] in (200, 206)
                             for r in requests_)
    browser = [t for t in served if t["video_id"] == "lab-dm-browser"]
    assert browser[0]["status"] == 403 and browser[0]["tls_client"] == "not_browser"
    assert browser[0]["refused"] == "tls_client" and browser[0]["range"] == "bytes=0-0"
    assert browser[1]["status"] == 206 and browser[1]["tls_client"] == "browser"
    assert "grease" in browser[1]["client_hello"]
    assert sum(t["status"] == 403 for t in browser) == 1  # x8labtls2 started as Chrome: never refused

    # x8labtls2: yt-dlp's log says its manifest request succeeded impersonating Chrome: Chrome from the first request
    second = rows["x8labtls2"]
    record = json.loads(second["extractor_json"])
    assert second["status"] == "ok" and record["ytdlp_manifest_requests"] == ["none", "chrome"]
    assert record["impersonation"]["tried"][0][0].startswith("chrome") and record["impersonation"]["first"] == "chrome"

    # x8labtls3: refused whatever the handshake: blocked_client, with every browser tried
    third = rows["x8labtls3"]
    assert (third["error_stage"], third["error_kind"]) == ("redirects", "blocked_client")
    assert "403 with none, chrome" in third["error_message"] and ", firefox" in third["error_message"]
    refused = [t for t in served if t["video_id"] == "lab-dm-refuse"]
    assert [t["tls_client"] for t in refused] == ["not_browser", "browser", "browser"]
    assert all(t["status"] == 403 and t["refused"] == "tls_client" for t in refused)
