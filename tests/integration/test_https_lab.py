"""HTTPS against real servers: the lab's CA, Caddy and nginx over TLS, the trust options, and bad certificates.

The truth is each server's own access log (Caddy's ``size`` and ``proto``, nginx's ``$body_bytes_sent``,
``$server_protocol`` and ``$ssl_protocol``) and ``curl`` with the lab's CA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from urllib.parse import urlsplit

import pytest

from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import parse_scenario
from tests.conftest import connect, database_of, run_crawler

needs_caddy = pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed (apt-get install caddy)")
needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")

SCENARIO = {
    "scenario": {"name": "https", "description": "HTTPS cache servers of every kind, and three bad certificates"},
    "video_defaults": {"duration_s": 8.0, "bitrate_bps": 1_000_000},
    "servers": [
        {"name": "caddy", "ip": "127.77.3.1", "software": "caddy"},
        {"name": "nginx-tls", "ip": "127.77.3.2", "software": "nginx", "tls": True},
        {"name": "lab-tls", "ip": "127.77.3.3", "tls": True, "rate_bps": 20_000_000},
        {"name": "bad-name", "ip": "127.77.3.4", "fault": "tls_wrong_name"},
        {"name": "bad-date", "ip": "127.77.3.5", "fault": "tls_expired"},
        {"name": "bad-ca", "ip": "127.77.3.6", "fault": "tls_unknown_ca"},
    ],
    "videos": [
        {"id": "caddy-mp4", "server": "caddy", "hops": 2},
        {"id": "caddy-dash", "server": "caddy", "delivery": "dash", "segment_s": 2.0},
        {"id": "nginx-mp4", "server": "nginx-tls", "container": "webm"},
        {"id": "nginx-hls", "server": "nginx-tls", "delivery": "hls", "segment_s": 2.0},
        {"id": "lab-mp4", "server": "lab-tls", "container": "mp4-moov-end"},
        {"id": "bad-name", "server": "bad-name"},
        {"id": "bad-date", "server": "bad-date"},
        {"id": "bad-ca", "server": "bad-ca"},
    ],
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    truth = tmp_path_factory.mktemp("https-lab") / "truth.jsonl"
    with Lab(parse_scenario(SCENARIO, "https"), truth_path=truth) as running:
        yield running


def _generic(lab, tmp_path, urls, *more, env=None):
    """A crawl of ``urls`` by the generic plugin, resolving lab names with the lab's DNS server only."""
    dns = f"lab={lab.dns.host}:{lab.dns.port}"
    return run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--no-system-dns",
                        "--dns-resolver", dns, "--database-dir", str(tmp_path), *more, *urls], timeout_s=180,
                       env={**os.environ, **(env or {})})


def _videos(conn):
    return {r["video_id"] or r["page_url"]: r for r in conn.execute("SELECT * FROM videos")}


@needs_caddy
@needs_nginx
def test_curl_with_the_labs_ca_gets_every_protocol_the_servers_offer(lab):
    """The lab's servers as a third-party client sees them: Caddy speaks HTTP/1.1 and HTTP/2 over TLS and
    advertises HTTP/3; nginx speaks HTTP/2 by ALPN; the lab's own server HTTP/1.1 only."""
    for vid, offered in (("caddy-mp4", {"1.1", "2"}), ("nginx-mp4", {"1.1", "2"}), ("lab-mp4", {"1.1"})):
        url = lab.stream_url(vid)
        u = urlsplit(url)
        ip = lab.scenario.server(lab.scenario.video(vid).server).ip
        got = set()
        for flag in ("--http1.1", "--http2"):
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", flag, "--cacert", str(lab.ca_file),
                                  "--resolve", f"{u.hostname}:{u.port}:{ip}", "-w", "%{http_version} %{http_code}",
                                  "-D", "-", url], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            got.add(out.stdout.split()[-2])
        assert got == offered, vid
    head = subprocess.run(["curl", "-sSI", "--cacert", str(lab.ca_file), "--resolve",
                           f"{urlsplit(lab.stream_url('caddy-mp4')).hostname}:{urlsplit(lab.stream_url('caddy-mp4')).port}"
                           f":{lab.scenario.server('caddy').ip}", lab.stream_url("caddy-mp4")],
                          capture_output=True, text=True, timeout=30)
    assert "alt-svc: h3=" in head.stdout.lower(), head.stdout


@needs_caddy
@needs_nginx
def test_the_lab_crawl_measures_https_against_each_servers_log(tmp_path):
    """Over requests (--http 1.1): test_transports.py has HTTP/2 and HTTP/3 through libcurl."""
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(_scenario_file(tmp_path)), "-b", "-t", "all_time",
                        "-D", "3", "-n", "1", "-S", "0", "--http", "1.1", "--database-dir", str(tmp_path / "db"),
                        "--lab-truth", str(tmp_path / "truth.jsonl")], timeout_s=300)
    conn = connect(database_of(proc))
    videos = _videos(conn)
    from pytomo.lab.truth import read_truth

    truth = read_truth(tmp_path / "truth.jsonl")
    for vid, software in (("caddy-mp4", "caddy"), ("nginx-mp4", "nginx"), ("lab-mp4", "lab")):
        v = videos[vid]
        assert v["status"] == "ok", (vid, v["error_message"])
        d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
        served = [t for t in truth if t["video_id"] == vid and t["method"] == "GET" and t["range"] is None]
        assert len(served) == 1 and served[0]["software"] == software
        assert d["bytes"] == served[0]["bytes_sent"], vid  # the server's own count
        assert d["http_version"] == "HTTP/1.1" and served[0]["protocol"] in ("HTTP/1.1",)
        assert d["tls_version"] == served[0]["tls_version"] == "TLSv1.3", vid
        hop = conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index DESC", (v["id"],)).fetchone()
        assert hop["url"].startswith("https://") and hop["tls_version"] == "TLSv1.3"
        assert hop["new_connection"] == 1 and hop["tls_handshake_s"] > 0, vid
        # whether the download reused the last hop's connection, as the server counted its requests on it (nginx's
        # $connection_requests, the lab server's own count: it closes after a HEAD); Caddy keeps it alive
        reused = served[0]["connection_requests"] > 1 if software != "caddy" else True
        assert d["new_connection"] == (0 if reused else 1), vid
        assert software != "nginx" or reused
    for vid, software in (("caddy-dash", "caddy"), ("nginx-hls", "nginx")):
        v = videos[vid]
        assert v["status"] == "ok", (vid, v["error_message"])
        d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
        rows = conn.execute("SELECT * FROM segment_requests WHERE download_id = ?", (d["id"],)).fetchall()
        assert rows and all(r["http_version"] == "HTTP/1.1" and r["tls_version"] == "TLSv1.3" for r in rows)
        assert d["http_version"] == "HTTP/1.1" and d["tls_version"] == "TLSv1.3"
        logged = {t["request_uri"]: t for t in truth if t["video_id"] == vid and t["software"] == software}
        for r in rows:
            if r["complete"] and r["range_first_byte"] is None:
                path = urlsplit(r["url"]).path
                assert logged[path]["bytes_sent"] == r["bytes"] or logged[path]["content_encoding"], path
    kinds = {vid: videos[vid]["error_kind"] for vid in ("bad-name", "bad-date", "bad-ca")}
    assert kinds == {"bad-name": "tls_name_mismatch", "bad-date": "tls_expired", "bad-ca": "tls_unknown_ca"}


def _scenario_file(tmp_path, scenario=SCENARIO):
    """A scenario (SCENARIO unless told) as a TOML file (the crawler's --lab-scenario)."""
    import json

    def value(v):
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    lines = [f"[scenario]\nname = {value(scenario['scenario']['name'])}\n"
             f"description = {value(scenario['scenario']['description'])}\n",
             "[video_defaults]\n" + "".join(f"{k} = {value(v)}\n" for k, v in scenario["video_defaults"].items())]
    for table in ("servers", "videos"):
        for row in scenario[table]:
            lines.append(f"[[{table}]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in row.items()))
    path = tmp_path / f"{scenario['scenario']['name']}.toml"
    path.write_text("\n".join(lines))
    return path


@needs_caddy
def test_a_local_ca_is_trusted_by_ca_file_and_by_the_python_variables(lab, tmp_path):
    """As a user behind a TLS proxy: without the CA every video is a TLS error of its own kind, with the DNS answers
    of the failed page fetch kept; with --ca-file, SSL_CERT_FILE or REQUESTS_CA_BUNDLE it is measured."""
    url = lab.stream_url("caddy-mp4")
    host = urlsplit(url).hostname
    plain = _generic(lab, tmp_path / "none", [url], env={"SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": ""})
    conn = connect(database_of(plain))
    (v,) = _videos(conn).values()
    assert (v["status"], v["error_stage"], v["error_kind"]) == ("error", "resolve_page", "tls_unknown_ca")
    assert "--ca-file" in v["error_message"] and "Traceback" not in plain.stderr
    dns = conn.execute("SELECT host, address FROM dns_answers WHERE video_row_id = ? AND address IS NOT NULL",
                       (v["id"],)).fetchall()
    assert {(r["host"], r["address"]) for r in dns} == {(host, lab.scenario.server("caddy").ip)}
    for name, more, env in (("flag", ["--ca-file", str(lab.ca_file)], {}),
                            ("ssl", [], {"SSL_CERT_FILE": str(lab.ca_file), "REQUESTS_CA_BUNDLE": ""}),
                            ("requests", [], {"REQUESTS_CA_BUNDLE": str(lab.ca_file)})):
        proc = _generic(lab, tmp_path / name, [url], *more, env=env)
        conn = connect(database_of(proc))
        (v,) = _videos(conn).values()
        assert v["status"] == "ok", (name, v["error_message"])
        d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
        assert d["tls_version"] == "TLSv1.3" and d["bytes"] == lab.media["caddy-mp4"].size_bytes


def test_a_bad_ca_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    for arg in (str(bad), str(tmp_path / "missing.pem")):
        proc = run_crawler(["-s", "generic", "-b", "--ca-file", arg, "--database-dir", str(tmp_path),
                            "https://example.invalid/v.mp4"], timeout_s=60)
        assert proc.returncode == 2 and "ca_file (--ca-file)" in proc.stderr and "Traceback" not in proc.stderr


HOPS_SCENARIO = {
    "scenario": {"name": "https-hops", "description": "HTTPS redirect chains, hop by hop, each host its own name"},
    "video_defaults": {"duration_s": 6.0, "bitrate_bps": 1_000_000, "redirect_scheme": "https"},
    "servers": [
        {"name": "hops-tls", "ip": "127.77.3.9", "tls": True},
        {"name": "hops-bad-name", "ip": "127.77.3.10", "fault": "tls_wrong_name"},
    ],
    "videos": [
        # platform /media/ID -> platform /media/ID/next (a relative Location) -> r1 -> the cache server
        {"id": "https-hops", "server": "hops-tls", "hops": 3},
        # platform /media/ID -> r1 -> a cache server whose certificate is for another name
        {"id": "https-hops-bad-name", "server": "hops-bad-name", "hops": 2},
    ],
}


@pytest.fixture(scope="module")
def hops_crawl(tmp_path_factory):
    """A lab crawl (--http auto, the default) of HOPS_SCENARIO: the database, the truth and the request log."""
    from pytomo.lab.truth import read_truth, requests_file

    out = tmp_path_factory.mktemp("https-hops")
    truth = out / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(_scenario_file(out, HOPS_SCENARIO)), "-b", "-t",
                        "all_time", "-D", "2", "-n", "1", "-S", "0", "--database-dir", str(out / "db"),
                        "--lab-truth", str(truth)], timeout_s=300)
    return connect(database_of(proc)), read_truth(truth), read_truth(requests_file(truth))


def _hops(conn, video_row_id):
    return conn.execute("SELECT * FROM hops WHERE video_row_id = ? ORDER BY hop_index", (video_row_id,)).fetchall()


def _answered(conn, video_row_id, host):
    """The addresses the crawler's DNS answers gave for ``host`` (the lab's resolver)."""
    rows = conn.execute("SELECT resolver, address FROM dns_answers WHERE video_row_id = ? AND host = ? AND address "
                        "IS NOT NULL", (video_row_id, host)).fetchall()
    assert rows and {r["resolver"] for r in rows} == {"lab"}, host
    return {r["address"] for r in rows}


def _served_hop(requests, hop):
    """The one request of the lab's request log that answered a stored hop (HEAD, by Host and path)."""
    u = urlsplit(hop["url"])
    path = u.path + (f"?{u.query}" if u.query else "")
    found = [r for r in requests if r["host"] == u.netloc and r["path"] == path and r["method"] == "HEAD"]
    assert len(found) == 1, (hop["url"], found)
    return found[0]


def test_https_redirects_hop_by_hop_keep_sni_and_pinning(hops_crawl):
    """Each hop of an HTTPS chain reached the address the crawler's own DNS answer gave for its host, with that
    host's name as SNI (what each lab server received in the handshake), over a new TLS connection as the server
    counted it; the download is what the cache server logged, with the cache's name as SNI."""
    conn, truth, requests = hops_crawl
    v = _videos(conn)["https-hops"]
    assert v["status"] == "ok", v["error_message"]
    hops = _hops(conn, v["id"])
    assert [urlsplit(h["url"]).scheme for h in hops] == ["https"] * 4
    assert [h["status_code"] for h in hops] == [302, 302, 302, 200]  # r1 answers 302 as a chain's third hop
    assert hops[0]["location"].startswith("/")  # the platform to itself
    assert len({h["address"] for h in hops}) == 3  # the platform (twice), the redirector, the cache server
    for hop in hops:
        served = _served_hop(requests, hop)
        assert hop["address"] in _answered(conn, v["id"], hop["host"]), hop["url"]
        assert served["server_ip"] == hop["address"] and served["server_host"] == hop["host"], hop["url"]
        assert served["scheme"] == "https" and served["sni"] == hop["host"], (hop["url"], served["sni"])
        assert served["status"] == hop["status_code"]
        assert hop["tls_version"] == served["tls_version"] == "TLSv1.3"
        assert hop["http_version"] == served["protocol"] == "HTTP/1.1"
        # the lab's servers close every connection after one answer: each hop opened its own
        assert served["connection_requests"] == 1 and hop["new_connection"] == 1, hop["url"]
        assert hop["tcp_connect_s"] > 0 and hop["tls_handshake_s"] > 0, hop["url"]
    assert len({served["connection"] for served in map(lambda h: _served_hop(requests, h), hops)}) == 4
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
    (got,) = [t for t in truth if t["video_id"] == "https-hops" and t["method"] == "GET"]
    cache = hops[-1]
    assert got["sni"] == cache["host"] == got["cache_host"] and got["cache_ip"] == d["address"] == cache["address"]
    assert d["bytes"] == got["bytes_sent"] > 0 and d["tls_version"] == got["tls_version"] == "TLSv1.3"
    assert d["http_version"] == got["protocol"] == "HTTP/1.1"  # the lab's own server offers no HTTP/2


def test_a_wrong_name_after_https_hops_is_its_own_error(hops_crawl):
    """A certificate for another name at the end of an HTTPS chain: redirects/tls_name_mismatch, the hops before it
    kept with their SNI, the DNS answer of the refused host kept, and no request reached that server."""
    conn, _truth, requests = hops_crawl
    v = _videos(conn)["https-hops-bad-name"]
    assert (v["status"], v["error_stage"], v["error_kind"]) == ("error", "redirects", "tls_name_mismatch")
    hops = _hops(conn, v["id"])
    assert [h["status_code"] for h in hops] == [302, 307, None] and hops[-1]["error"]  # r1 answers 307 here
    for hop in hops[:-1]:
        served = _served_hop(requests, hop)
        assert served["sni"] == hop["host"] and served["server_ip"] == hop["address"]
    refused = hops[-1]
    assert refused["address"] in _answered(conn, v["id"], refused["host"])
    assert not [r for r in requests if r["server_host"] == refused["host"]]


def test_requests_to_two_names_at_once_each_keep_their_own_sni():
    """Two threads of one client asking two HTTPS hosts at once (a pair's video and audio over --http 1.1): each
    connection sends its own host's name and checks its certificate for it, as each server saw (its request log).
    The name once went through the pool manager's shared settings, and one request now and then took the other's."""
    from pytomo.engine.http import HttpClient

    scenario = {"scenario": {"name": "two-names"}, "video_defaults": {"duration_s": 2.0},
                "servers": [{"name": "name-a", "ip": "127.77.3.11", "tls": True},
                            {"name": "name-b", "ip": "127.77.3.12", "tls": True}],
                "videos": [{"id": "on-a", "server": "name-a"}, {"id": "on-b", "server": "name-b"}]}
    with Lab(parse_scenario(scenario, "two-names")) as running:
        where = running.host_map()
        urls = [running.stream_url("on-a"), running.stream_url("on-b")] * 2
        failures: list[BaseException] = []

        def head(client, url):
            try:
                client.request("HEAD", url).close()
            except Exception as exc:  # noqa: BLE001 - collected for the assertion below
                failures.append(exc)

        for _round in range(15):
            client = HttpClient(lambda host: [where[host]], ca_files=[running.ca_file], http_protocol="1.1")
            threads = [threading.Thread(target=head, args=(client, url)) for url in urls]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            client.close()
        seen = running.request_log.records
    assert not failures, failures[:3]
    assert len(seen) == 15 * len(urls)
    assert all(r["sni"] == r["server_host"] and r["server_ip"] == where[r["server_host"]] for r in seen)


REUSE_SCENARIO = {
    "scenario": {"name": "https-reuse", "description": "the last hop's connection carries the download"},
    "video_defaults": {"duration_s": 6.0, "bitrate_bps": 1_000_000, "hops": 1},
    "servers": [
        {"name": "nginx-reuse", "ip": "127.77.3.21", "software": "nginx", "tls": True},
        {"name": "caddy-reuse", "ip": "127.77.3.22", "software": "caddy"},
    ],
    "videos": [
        {"id": "nginx-reuse-mp4", "server": "nginx-reuse"},
        {"id": "caddy-reuse-mp4", "server": "caddy-reuse"},
    ],
}


@needs_caddy
@needs_nginx
def test_under_auto_the_download_reuses_the_last_hops_connection_as_the_server_logged(tmp_path):
    """--http auto (the default): the redirect walk's HTTPS hops go through libcurl, as the media do. nginx logs the
    last hop's HEAD and the media GET on one connection (its ``$connection``), both HTTP/2.0, and the download
    says it reused it; Caddy answers the HEAD over HTTP/2 with an Alt-Svc for h3, so the download opens a new QUIC
    connection (HTTP/3 in Caddy's log), as Chrome's next new connection to the origin would."""
    from pytomo.lab.truth import read_truth

    truth_path = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(_scenario_file(tmp_path, REUSE_SCENARIO)), "-b", "-t",
                        "all_time", "-D", "2", "-n", "1", "-S", "0", "--database-dir", str(tmp_path / "db"),
                        "--lab-truth", str(truth_path)], timeout_s=300)
    conn = connect(database_of(proc))
    truth = read_truth(truth_path)
    videos = _videos(conn)
    rows = {}
    for vid in ("nginx-reuse-mp4", "caddy-reuse-mp4"):
        v = videos[vid]
        assert v["status"] == "ok", (vid, v["error_message"])
        hop = _hops(conn, v["id"])[-1]
        d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (v["id"],)).fetchone()
        logged = [t for t in truth if t["video_id"] == vid and t["software"] != "lab"]
        rows[vid] = hop, d, logged
    hop, d, logged = rows["nginx-reuse-mp4"]
    (head,) = [t for t in logged if t["method"] == "HEAD"]
    (get,) = [t for t in logged if t["method"] == "GET"]
    assert head["connection"] == get["connection"] and head["protocol"] == get["protocol"] == "HTTP/2.0"
    assert hop["http_version"] == d["http_version"] == "HTTP/2" and hop["http_stream_id"] == 1
    assert hop["new_connection"] == 1 and hop["tcp_connect_s"] > 0 and hop["tls_handshake_s"] > 0
    assert d["new_connection"] == 0 and d["http_stream_id"] == 3 and d["bytes"] == get["bytes_sent"]
    hop, d, logged = rows["caddy-reuse-mp4"]
    assert hop["http_version"] == "HTTP/2" and hop["new_connection"] == 1
    assert d["http_version"] == "HTTP/3" and d["new_connection"] == 1 and d["http_stream_id"] == 0
    assert [t["protocol"] for t in logged] == ["HTTP/2.0", "HTTP/3.0"]
