"""The lab's YouTube-like media host (``rules = "youtube"``) obeys each of its rules, shown with plain requests and
sockets: the recorded User-Agent, available_at, googlevideo's refusals since August 2026 (no Range, an open range,
a HEAD, a range over the server's cap), keep-alive between ranges, and the video and audio of a pair as separate
files."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest
import requests

from pytomo.lab.platforms import PLATFORMS_IP, fill, recordings
from pytomo.lab.rules import range_refusal
from pytomo.lab.tools import ffprobe_exe
from pytomo.services.formats import choose

CHUNK_BYTES = 262_144
SERVER = "cache-youtube"


def _info(lab, video_id: str) -> dict:
    """What the lab's recorded yt-dlp gives for a YouTube video: its info dict."""
    base = f"http://{PLATFORMS_IP}:{lab.platforms.port}"
    answer = requests.get(f"{base}/ytdlp/info", params={"url": f"https://www.youtube.com/watch?v={video_id}"},
                          timeout=10).json()
    return answer["info"]


def _by_ip(lab, url: str) -> str:
    """The URL with the cache server's host name replaced by its address (the test does not use the lab's DNS)."""
    profile = lab.scenario.server(SERVER)
    return url.replace(profile.host, profile.ip)


def _format(info: dict, format_id: str) -> dict:
    return next(f for f in info["formats"] if f["format_id"] == format_id)


def _records(lab, wait_for: int = 0, **match) -> list[dict]:
    """The truth records that match, waiting up to 3 s for at least ``wait_for`` of them."""
    deadline = time.monotonic() + 3.0
    while True:
        found = [r for r in lab.truth.records if all(r.get(k) == v for k, v in match.items())]
        if len(found) >= wait_for or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_recorded_formats_carry_the_players_request_fields():
    for entry in recordings("youtube")["videos"]:
        for f in entry["ytdlp"].get("info", {}).get("formats", []):
            assert set(f["http_headers"]) == {"User-Agent", "Accept", "Accept-Language", "Sec-Fetch-Mode"}
            if f["protocol"] == "https" and f["ext"] != "mhtml":
                assert f["downloader_options"] == {"http_chunk_size": CHUNK_BYTES}


def test_the_pair_is_chosen_as_video_only_and_audio_only_urls(lab):
    info = _info(lab, "LabPairAV08")
    choice = choose(info["formats"])
    assert choice.format_id == "134+140"
    video, audio = choice.streams()
    assert (video.kind, audio.kind) == ("video", "audio")
    assert video.url.endswith("/v/lab-yt-pair.video.mp4") and audio.url.endswith("/v/lab-yt-pair.audio.m4a")
    assert choice.primary["downloader_options"]["http_chunk_size"] == CHUNK_BYTES
    assert choice.primary["http_headers"] == choice.audio["http_headers"]


def test_unlisted_recordings_are_found_by_id_and_playlist_only(lab):
    base = f"http://{PLATFORMS_IP}:{lab.platforms.port}/youtube/v3"
    key = recordings("youtube")["api_key"]
    by_id = requests.get(f"{base}/videos", params={"part": "id", "id": "LabPairAV08,LabPreRol09", "key": key},
                         timeout=10).json()
    assert [i["id"] for i in by_id["items"]] == ["LabPairAV08", "LabPreRol09"]
    search = requests.get(f"{base}/search", params={"part": "id", "q": "rules pair ad", "maxResults": 50, "key": key},
                          timeout=10).json()
    assert not {i["id"]["videoId"] for i in search["items"]} & {"LabPairAV08", "LabPreRol09"}
    playlist = requests.get(f"{base}/playlistItems", params={"part": "contentDetails", "key": key,
                                                            "playlistId": "PLpytomoLabRules0001"}, timeout=10).json()
    assert [i["contentDetails"]["videoId"] for i in playlist["items"]] == ["LabPairAV08", "LabPreRol09"]


def test_a_request_without_the_formats_user_agent_is_refused(lab):
    fmt = _format(_info(lab, "LabPairAV08"), "134")
    url = _by_ip(lab, fmt["url"])
    refused = requests.get(url, headers={"Range": "bytes=0-1023"}, timeout=10)
    assert refused.status_code == 403
    other = requests.get(url, headers={"Range": "bytes=0-1023", "User-Agent": "Mozilla/5.0 (other)"}, timeout=10)
    assert other.status_code == 403
    served = requests.get(url, headers={**fmt["http_headers"], "Range": "bytes=0-1023"}, timeout=10)
    assert served.status_code == 206 and len(served.content) == 1024
    records = _records(lab, 2, video_id="lab-yt-pair", refused="user_agent")
    assert {r["user_agent"] for r in records} >= {requests.utils.default_user_agent(), "Mozilla/5.0 (other)"}
    assert all(r["status"] == 403 and r["bytes_sent"] == 0 and r["range"] == "bytes=0-1023" for r in records)
    ok = _records(lab, 1, video_id="lab-yt-pair", status=206, user_agent=fmt["http_headers"]["User-Agent"])
    assert ok and ok[0]["refused"] is None and ok[0]["rules"] == "youtube"


def test_nothing_is_served_before_available_at(lab):
    entry = next(v for v in recordings("youtube")["videos"] if v["id"] == "LabPreRol09")
    fill(entry["ytdlp"], lab)  # filled without being given out: the server's clock is not set
    assert lab.caches[SERVER].available.get("lab-yt-later") is None
    asked = time.time()
    fmt = _format(_info(lab, "LabPreRol09"), "18")
    available_at = fmt["available_at"]
    assert isinstance(available_at, int) and asked + 3 <= available_at <= asked + 4.5
    url, headers = _by_ip(lab, fmt["url"]), {**fmt["http_headers"], "Range": f"bytes=0-{CHUNK_BYTES - 1}"}
    early = requests.get(url, headers=headers, timeout=10)
    assert early.status_code == 403 and time.time() < available_at
    time.sleep(max(0.0, available_at - time.time()) + 0.05)
    late = requests.get(url, headers=headers, timeout=10)
    assert late.status_code == 206 and len(late.content) == CHUNK_BYTES
    records = _records(lab, 2, video_id="lab-yt-later")
    assert [(r["status"], r["refused"]) for r in records] == [(403, "not_available_yet"), (206, None)]
    assert all(r["available_at_s"] == available_at for r in records)


def test_the_request_shapes_googlevideo_refuses():
    assert range_refusal("HEAD", "bytes=0-99") == "head"
    assert range_refusal("GET", None) == range_refusal("GET", "") == "no_range"
    for open_range in ("bytes=0-", "bytes=-500", "bytes=0-99,200-299", "bytes=a-b"):
        assert range_refusal("GET", open_range) == "open_range", open_range
    assert range_refusal("GET", "bytes=0-99") is None
    assert range_refusal("GET", "bytes=100-1048675", 1_048_576) is None  # exactly the cap
    assert range_refusal("GET", "bytes=100-1048676", 1_048_576) == "range_too_large"


def test_no_range_an_open_range_a_head_and_a_range_over_the_cap_are_refused(lab):
    fmt = _format(_info(lab, "LabPairAV08"), "134")
    url = _by_ip(lab, fmt["url"])
    cap = lab.scenario.server(SERVER).max_range_bytes
    assert cap == 1_048_576
    asked = {"no_range": {}, "open_range": {"Range": "bytes=0-"}, "range_too_large": {"Range": f"bytes=0-{cap}"}}
    for why, extra in asked.items():
        answer = requests.get(url, headers={**fmt["http_headers"], **extra}, timeout=10)
        assert answer.status_code == 403 and why in answer.text, why
    head = requests.head(url, headers={**fmt["http_headers"], "Range": "bytes=0-99"}, timeout=10)
    assert head.status_code == 403
    served = requests.get(url, headers={**fmt["http_headers"], "Range": f"bytes=1-{cap}"}, timeout=10)
    assert served.status_code == 206 and len(served.content) == cap  # exactly the cap: served
    refused = {r["refused"]: r for r in _records(lab, 4, video_id="lab-yt-pair", part="video") if r["refused"]}
    assert set(refused) >= {"no_range", "open_range", "range_too_large", "head"}
    assert refused["head"]["method"] == "HEAD"
    assert all(r["status"] == 403 and r["bytes_sent"] == 0 for r in refused.values())


def test_ranges_come_at_the_servers_rate_back_to_back_on_one_connection(lab):
    fmt = _format(_info(lab, "LabPairAV08"), "134")
    profile = lab.scenario.server(SERVER)
    ranges = [(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES - 1) for i in range(4, 8)]
    with requests.Session() as session:
        session.headers.update(fmt["http_headers"])
        start = time.monotonic()
        for first, last in ranges:
            answer = session.get(_by_ip(lab, fmt["url"]), headers={"Range": f"bytes={first}-{last}"}, timeout=10)
            assert answer.status_code == 206 and len(answer.content) == CHUNK_BYTES
            assert answer.headers["Connection"] == "keep-alive"
        rate_bps = len(ranges) * CHUNK_BYTES * 8 / (time.monotonic() - start)
    assert rate_bps == pytest.approx(profile.rate_bps, rel=0.15)
    wanted = {f"bytes={a}-{b}" for a, b in ranges}
    records = [r for r in _records(lab, 4, video_id="lab-yt-pair", part="video") if r["range"] in wanted]
    assert len(records) == 4 and len({r["connection"] for r in records}) == 1
    assert [r["connection_requests"] for r in records] == [1, 2, 3, 4]
    assert all(r["pace_rate_bps"] == profile.rate_bps and r["bytes_sent"] == CHUNK_BYTES for r in records)


def test_keep_alive_over_a_raw_socket_and_close_on_request(lab):
    fmt = _format(_info(lab, "LabPairAV08"), "140")
    path = "/" + fmt["url"].split("/", 3)[3]
    profile = lab.scenario.server(SERVER)
    agent = fmt["http_headers"]["User-Agent"]
    with socket.create_connection((profile.ip, lab.cache_port(SERVER)), timeout=10) as sock:
        reader = sock.makefile("rb")
        for close in (False, True):
            extra = "Connection: close\r\n" if close else ""
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\nRange: bytes=0-99\r\n{extra}\r\n"
                         .encode())
            status = reader.readline()
            headers = {}
            while (line := reader.readline().strip()):
                k, v = line.decode().split(":", 1)
                headers[k.lower()] = v.strip()
            assert status.startswith(b"HTTP/1.1 206") and len(reader.read(int(headers["content-length"]))) == 100
            assert headers["connection"] == ("close" if close else "keep-alive")
        assert reader.read() == b""  # closed after the second answer, as asked
    records = [r for r in _records(lab, 2, part="audio", range="bytes=0-99")][-2:]
    assert len({r["connection"] for r in records}) == 1 and [r["connection_requests"] for r in records] == [1, 2]


def test_the_pair_is_two_files_ffprobe_reads_as_video_only_and_audio_only(lab, tmp_path):
    ffprobe, why = ffprobe_exe()
    if ffprobe is None:
        pytest.skip(why)
    info = _info(lab, "LabPairAV08")
    parts = lab.caches[SERVER].parts["lab-yt-pair"]
    muxed = lab.media["lab-yt-pair"].path.read_bytes()
    kinds = {}
    for format_id, part in (("134", "video"), ("140", "audio")):
        fmt = _format(info, format_id)
        size = parts[part].size_bytes
        last = min(size, 4 * CHUNK_BYTES) - 1  # the whole audio file; the head of the video file (moov first)
        answer = requests.get(_by_ip(lab, fmt["url"]), headers={**fmt["http_headers"], "Range": f"bytes=0-{last}"},
                              timeout=30)
        assert answer.status_code == 206 and answer.headers["Content-Range"] == f"bytes 0-{last}/{size}"
        assert answer.headers["Content-Type"] == ("video/mp4" if part == "video" else "audio/mp4")
        body = answer.content
        assert body == parts[part].path.read_bytes()[:last + 1] and body != muxed[:last + 1]
        (tmp_path / part).write_bytes(body)
        probe = subprocess.run([ffprobe, "-v", "error", "-show_streams", "-of", "json", str(tmp_path / part)],
                               capture_output=True, text=True, timeout=60, check=True)
        kinds[part] = sorted(s["codec_type"] for s in json.loads(probe.stdout)["streams"])
        (record,) = _records(lab, 1, video_id="lab-yt-pair", part=part, range=f"bytes=0-{last}")
        assert record["container"] == parts[part].spec.container and record["size_bytes"] == size
    assert kinds == {"video": ["video"], "audio": ["audio"]}
