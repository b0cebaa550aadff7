"""--http 1.1, 2, 3 and auto against Debian's Caddy and nginx over TLS: the protocol and bytes of each request,
against each server's own access log (Caddy's ``proto`` and ``size``, nginx's ``$server_protocol`` and
``$body_bytes_sent``)."""

from __future__ import annotations

import json
import shutil
import time
from urllib.parse import urlsplit

import pytest

from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario
from pytomo.lab.truth import read_truth
from tests.conftest import connect, database_of, run_crawler

pytestmark = [pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed: apt-get install caddy"),
              pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")]

SCENARIO = {
    "scenario": {"name": "transports", "description": "Caddy and nginx over TLS"},
    "video_defaults": {"duration_s": 6.0, "bitrate_bps": 1_000_000, "hops": 1},
    "servers": [{"name": "caddy", "ip": "127.77.3.1", "software": "caddy"},
                {"name": "nginx-tls", "ip": "127.77.3.2", "software": "nginx", "tls": True}],
    "videos": [{"id": "caddy-mp4", "server": "caddy"},
               {"id": "caddy-dash", "server": "caddy", "delivery": "dash", "segment_s": 2.0},
               {"id": "caddy-hls", "server": "caddy", "delivery": "hls", "segment_s": 2.0},
               {"id": "nginx-mp4", "server": "nginx-tls", "container": "webm"},
               {"id": "nginx-dash", "server": "nginx-tls", "delivery": "dash", "segment_s": 2.0}],
}
LABEL = {"1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}
LOGGED = {"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2.0", "HTTP/3": "HTTP/3.0"}  # as the servers write it


def _toml(data: dict) -> str:
    def value(v):
        return str(v).lower() if isinstance(v, bool) else json.dumps(v)

    out = ["[scenario]", *(f"{k} = {value(v)}" for k, v in data["scenario"].items()), "[video_defaults]",
           *(f"{k} = {value(v)}" for k, v in data["video_defaults"].items())]
    for table in ("servers", "videos"):
        for row in data[table]:
            out += [f"[[{table}]]", *(f"{k} = {value(v)}" for k, v in row.items())]
    return "\n".join(out) + "\n"


def _crawl(tmp_path, protocol: str):
    scenario = tmp_path / "transports.toml"
    scenario.write_text(_toml(SCENARIO))
    truth = tmp_path / f"truth-{protocol}.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-D", "4", "-n", "1",
                        "-S", "0", "--http", protocol, "--database-dir", str(tmp_path / protocol),
                        "--lab-truth", str(truth)], timeout_s=300)
    return connect(database_of(proc)), read_truth(truth)


def _rows(conn, video_id: str):
    v = conn.execute("SELECT * FROM videos WHERE video_id = ?", (video_id,)).fetchone()
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
    segments = conn.execute("SELECT * FROM segment_requests WHERE download_id = ?", (d["id"],)).fetchall()
    return v, d, segments


def _logged(truth, video_id: str, path: str):
    return [t for t in truth if t["video_id"] == video_id and (t["request_uri"] or "").split("?")[0] == path
            and t["method"] == "GET"]


@pytest.mark.parametrize("protocol", ["1.1", "2", "3"])
def test_each_protocol_is_what_the_servers_logged(tmp_path, protocol):
    conn, truth = _crawl(tmp_path, protocol)
    want = LABEL[protocol]
    for vid in ("caddy-mp4", "caddy-dash", "caddy-hls", "nginx-mp4", "nginx-dash"):
        if protocol == "3" and vid.startswith("nginx"):
            # nginx 1.22 has no QUIC: HTTP/3 only is refused, from the redirect walk's last hop on (its HTTPS hops go
            # over the media's transport)
            v = conn.execute("SELECT * FROM videos WHERE video_id = ?", (vid,)).fetchone()
            assert (v["status"], v["error_stage"], v["error_kind"]) == ("error", "redirects", "connect"), vid
            assert "QUIC" in v["error_message"], v["error_message"]
            hop = conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index DESC",
                               (v["id"],)).fetchone()
            assert hop["status_code"] is None and hop["error"] and hop["url"].startswith("https://"), vid
            assert not [t for t in truth if t["video_id"] == vid and t["software"] == "nginx"], vid
            continue
        v, d, segments = _rows(conn, vid)
        assert v["status"] == "ok", (vid, v["error_message"])
        assert d["http_version"] == want and d["tls_version"] == "TLSv1.3", vid
        assert (d["http_stream_id"] is None) == (want == "HTTP/1.1") and d["quic_fallback"] is None, vid
        samples = conn.execute("SELECT COUNT(*) FROM tcp_info_samples WHERE download_id = ?", (d["id"],)).fetchone()[0]
        assert (samples > 0) == (want != "HTTP/3"), (vid, samples)  # TCP_INFO over TCP only
        requests = [{"url": d["url"], "bytes": d["bytes"], "complete": d["ended_by"] == "eof",
                     "http_version": d["http_version"]}] if not segments else [dict(r) for r in segments]
        for r in requests:
            assert r["http_version"] == want, (vid, r["url"])
            if not r["complete"]:
                continue
            logged = _logged(truth, vid, urlsplit(r["url"]).path)
            assert logged, (vid, r["url"])
            assert LOGGED[want] in {t["protocol"] for t in logged}, (vid, r["url"])
            # the server's own count of the body it wrote; nginx counts a chunked body (a gzipped manifest over
            # HTTP/1.1) with its chunk framing, which the crawler does not (docs/measurement.md, Compression)
            sent = {t["bytes_sent"] for t in logged}
            chunked = want == "HTTP/1.1" and any(t["content_length_bytes"] is None and t["content_encoding"]
                                                 for t in logged)
            assert r["bytes"] in sent or (chunked and any(0 < b - r["bytes"] <= 64 for b in sent)), (
                vid, r["url"], r["bytes"], sent)


def test_auto_takes_http3_where_it_is_advertised_and_http2_elsewhere(tmp_path):
    conn, truth = _crawl(tmp_path, "auto")
    for vid in ("caddy-mp4", "caddy-dash", "caddy-hls"):
        v, d, segments = _rows(conn, vid)
        assert v["status"] == "ok", (vid, v["error_message"])
        # the redirect walk's answers over HTTP/1.1 carried Caddy's Alt-Svc: every media request went over QUIC
        assert d["http_version"] == "HTTP/3", vid
        assert all(r["http_version"] == "HTTP/3" for r in segments), vid
        assert {t["protocol"] for t in truth if t["video_id"] == vid and t["method"] == "GET"} >= {"HTTP/3.0"}
    for vid in ("nginx-mp4", "nginx-dash"):  # no Alt-Svc from nginx: HTTP/2 by ALPN
        v, d, segments = _rows(conn, vid)
        assert v["status"] == "ok" and d["http_version"] == "HTTP/2", vid
        assert all(r["http_version"] == "HTTP/2" for r in segments), vid


def test_a_generic_crawl_with_auto_stores_http3_transfers_matching_caddys_log(tmp_path):
    """The issue's first check: ``-s generic -b --http auto https://…`` against the lab's Caddy."""
    with Lab(parse_scenario(SCENARIO, "transports"), truth_path=tmp_path / "truth.jsonl") as lab:
        url = lab.stream_url("caddy-mp4")
        proc = run_crawler(["-s", "generic", "-b", "-D", "4", "-n", "1", "-S", "0", "--http", "auto", "--ca-file",
                            str(lab.ca_file), "--no-system-dns", "--dns-resolver", f"lab={lab.dns.host}:{lab.dns.port}",
                            "--database-dir", str(tmp_path), url], timeout_s=120)
        conn = connect(database_of(proc))
        truth = lab.truth.records
    (v,) = conn.execute("SELECT * FROM videos").fetchall()
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
    assert v["status"] == "ok" and d["http_version"] == "HTTP/3" and d["ended_by"] == "eof", v["error_message"]
    quic = [t for t in truth if t["protocol"] == "HTTP/3.0" and t["method"] == "GET"]
    assert len(quic) == 1 and quic[0]["bytes_sent"] == d["bytes"] == lab.media["caddy-mp4"].size_bytes


def test_a_cancelled_transfer_stops_at_the_server(tmp_path):
    """A window-cut body ends there: libcurl aborts the transfer and closes its connection, so the server stops
    sending (its own count of bytes sent stays near what the crawler read), and nothing runs on in the background
    while the next video is measured."""
    import time

    from pytomo.engine.curl import CurlTransport, read_chunk

    scenario = {"scenario": {"name": "cancel", "description": "a paced TLS server"},
                "video_defaults": {"duration_s": 8.0, "bitrate_bps": 1_000_000, "hops": 0},
                "servers": [{"name": "paced-tls", "ip": "127.77.3.3", "tls": True, "rate_bps": 2_000_000}],
                "videos": [{"id": "paced", "server": "paced-tls"}]}
    with Lab(parse_scenario(scenario, "cancel"), truth_path=tmp_path / "truth.jsonl") as lab:
        transport = CurlTransport("auto", ca_file=str(lab.ca_file))
        answer = transport.request(lab.stream_url("paced"), "127.77.3.3")
        assert answer.status_code == 200 and answer.http_version == "HTTP/1.1"
        read, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 0.5:
            chunk = read_chunk(answer, 1.0)
            assert chunk is not None and chunk[0]
            read += len(chunk[0])
        answer.cancel()
        if answer.sock is not None:
            answer.sock.close()
        assert answer.ended.wait(2.0)
        deadline = time.monotonic() + 5.0
        while not lab.truth.records and time.monotonic() < deadline:
            time.sleep(0.05)
        transport.close()
        (record,) = lab.truth.records
    size = lab.media["paced"].size_bytes
    assert read < record["bytes_sent"] < min(size, read + 600_000), (read, record["bytes_sent"], size)


def test_an_impersonated_request_presents_the_browser_and_is_recorded(tmp_path):
    """``impersonate="chrome"``: libcurl presents curl_cffi's newest Chrome (its name, from curl_cffi, is recorded);
    Caddy's own log shows that browser's User-Agent (its default headers), a whole 9 MB body comes over HTTP/2 with the
    browser's own SETTINGS (no stall at 1 MiB, docs/lab.md), and a plain request to the same origin never reuses the
    impersonating connection."""
    from curl_cffi.requests.impersonate import resolve_latest_browser_type

    from pytomo.engine.download import download
    from pytomo.engine.http import HttpClient

    scenario = {"scenario": {"name": "impersonate", "description": "Caddy and nginx over TLS"},
                "video_defaults": {"duration_s": 80.0, "bitrate_bps": 1_000_000, "hops": 0},
                "servers": SCENARIO["servers"],
                "videos": [{"id": "big", "server": "caddy"}, {"id": "nginx-big", "server": "nginx-tls"}]}
    with Lab(parse_scenario(scenario, "impersonate"), truth_path=tmp_path / "truth.jsonl") as lab:
        client = HttpClient(lambda host: [], ca_files=[lab.ca_file], http_protocol="2", user_agent="pytomo-test")
        chrome = str(resolve_latest_browser_type("chrome"))
        try:
            first = download(client, lab.stream_url("big"), "127.77.3.1", window_s=60.0, timeout_s=10.0,
                             impersonate="chrome")
            plain = download(client, lab.stream_url("big"), "127.77.3.1", window_s=0.3, timeout_s=10.0)
            nginx = download(client, lab.stream_url("nginx-big"), "127.77.3.2", window_s=60.0, timeout_s=10.0,
                             impersonate="firefox")
        finally:
            client.close()
        deadline = time.monotonic() + 5.0
        while len(lab.truth.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        truth = lab.truth.records
    size = lab.media["big"].size_bytes
    assert first.ended_by == "eof" and first.bytes_total == size and first.http_version == "HTTP/2", first.error
    assert first.impersonate == chrome and plain.impersonate is None
    assert plain.connection is not None and plain.connection.new  # not the impersonating handle's connection
    assert nginx.ended_by == "eof" and nginx.http_version == "HTTP/2"
    assert nginx.impersonate == str(resolve_latest_browser_type("firefox"))
    caddy = [t for t in truth if t["cache_host"].startswith("caddy.")]
    browser = [t for t in caddy if f"Chrome/{chrome.removeprefix('chrome')}" in (t["user_agent"] or "")]
    assert len(caddy) == 2 and len(browser) == 1  # the browser's User-Agent (its default headers), not ours
    assert browser[0]["protocol"] == "HTTP/2.0" and browser[0]["bytes_sent"] == size
    assert [t["user_agent"] for t in caddy if t is not browser[0]] == ["pytomo-test"]
    assert [t["protocol"] for t in truth if t["cache_host"].startswith("nginx-tls.")] == ["HTTP/2.0"]


FALLBACK = {
    "scenario": {"name": "fallback", "description": "Caddy with HTTP/3, nginx advertising a closed QUIC port"},
    "video_defaults": {"duration_s": 6.0, "bitrate_bps": 1_000_000, "hops": 1},
    "servers": [{"name": "caddy", "ip": "127.77.3.1", "software": "caddy"},
                {"name": "nginx-alt", "ip": "127.77.3.4", "software": "nginx", "tls": True, "alt_svc": "h3"}],
    "videos": [{"id": "caddy-mp4", "server": "caddy"},
               {"id": "caddy-dash", "server": "caddy", "delivery": "dash", "segment_s": 2.0},
               {"id": "nginx-mp4", "server": "nginx-alt"},
               {"id": "nginx-dash", "server": "nginx-alt", "delivery": "dash", "segment_s": 2.0}],
}


def _requests(conn, video_id: str) -> list[dict]:
    """A video's requests in the order they were sent: the download itself, or its session's segment requests."""
    _v, d, segments = _rows(conn, video_id)
    return [dict(d)] if not segments else [dict(r) for r in segments]


def _in_crawl_order(conn, video_ids: tuple[str, ...]) -> list[str]:
    return [r[0] for r in conn.execute(
        f"SELECT v.video_id FROM videos v JOIN downloads d ON d.video_row_id = v.id WHERE v.video_id IN "
        f"({','.join('?' for _ in video_ids)}) ORDER BY d.id", video_ids)]


def _check_streams(rows: list[dict], first: int, step: int) -> None:
    """The streams libcurl named, against the RFCs' rules: a client's streams on one connection start at ``first``
    and each new one is the next of its kind (RFC 9113 5.1.1: odd, increasing; RFC 9000 2.1: client-initiated
    bidirectional, 0 mod 4)."""
    last: int | None = None
    for r in rows:
        sid = r["http_stream_id"]
        assert sid is not None and sid % step == first, (r["url"], sid)
        if r["new_connection"]:
            assert sid == first, (r["url"], sid)
        elif last is not None:
            assert sid == last + step, (r["url"], sid, last)
        last = sid


def test_auto_falls_back_to_http2_with_libcurls_reason_when_the_quic_port_is_closed(tmp_path):
    """The issue's words: ``auto`` picks HTTP/3 where it is advertised and falls back to HTTP/2 (reason stored) when
    the QUIC port is closed; the origin is then left to TCP (Chrome's broken alternative service), and every
    request carries the stream libcurl opened for it."""
    scenario = tmp_path / "fallback.toml"
    scenario.write_text(_toml(FALLBACK))
    truth_path = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(scenario), "-b", "-t", "all_time", "-D", "4", "-n", "1",
                        "-S", "0", "--http", "auto", "--database-dir", str(tmp_path / "db"),
                        "--lab-truth", str(truth_path), "--player", "2015"], timeout_s=300)
    conn, truth = connect(database_of(proc)), read_truth(truth_path)
    caddy, on_quic, hop_versions = [], [], []
    for vid in _in_crawl_order(conn, ("caddy-mp4", "caddy-dash")):
        v, d, _segments = _rows(conn, vid)
        assert v["status"] == "ok" and d["quic_fallback"] is None, (vid, v["error_message"])
        caddy += _requests(conn, vid)
        # the walk's last hop goes over the media's transport: HTTP/2 before the origin's Alt-Svc is known (its own
        # TCP connection), then on the QUIC connection, before the video's own requests
        hop = dict(conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index DESC",
                                (v["id"],)).fetchone())
        assert hop["http_version"] in ("HTTP/2", "HTTP/3") and hop["http_stream_id"] is not None, hop
        hop_versions.append(hop["http_version"])
        on_quic += ([hop] if hop["http_version"] == "HTTP/3" else []) + _requests(conn, vid)
    assert hop_versions == ["HTTP/2", "HTTP/3"]  # the second video's hop on the QUIC connection the first opened
    assert all(r["http_version"] == "HTTP/3" and r["quic_fallback"] is None for r in caddy)
    _check_streams(on_quic, 0, 4)  # one QUIC connection, or each new one from stream 0
    nginx, on_tcp = [], []
    for vid in _in_crawl_order(conn, ("nginx-mp4", "nginx-dash")):
        v, d, _segments = _rows(conn, vid)
        assert v["status"] == "ok" and d["http_version"] == "HTTP/2", (vid, v["error_message"])
        nginx += _requests(conn, vid)
        hop = dict(conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index DESC",
                                (v["id"],)).fetchone())
        assert hop["http_version"] == "HTTP/2", hop  # never QUIC: unknown at first, then broken
        on_tcp += [hop, *_requests(conn, vid)]
        assert {t["protocol"] for t in truth if t["video_id"] == vid and t["method"] == "GET"} == {"HTTP/2.0"}
    assert all(r["http_version"] == "HTTP/2" for r in nginx)
    # the first media request tried QUIC and was refused (libcurl's words); then QUIC is not tried there again
    reason = nginx[0]["quic_fallback"]
    assert reason and "QUIC connect to 127.77.3.4" in reason and "failed" in reason, reason
    assert all(r["quic_fallback"] is None for r in nginx[1:])
    # each on a kept-alive HTTP/2 connection, or a new one from stream 1 (the first hop's, then the fallback's, the
    # pool's latest, which the later requests take)
    _check_streams(on_tcp, 1, 2)
    dash = _requests(conn, "nginx-dash")
    assert len(dash) >= 3 and len({r["http_stream_id"] for r in dash}) == len(dash)
