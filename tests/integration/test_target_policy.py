"""The crawler refuses non-global addresses it was not given; every address used here is on loopback."""

from __future__ import annotations

import pytest

from pytomo.engine.targets import TargetPolicy, non_global_reason
from pytomo.errors import ForbiddenAddress
from pytomo.lab.media import MediaSpec, ensure_media
from tests.conftest import connect, database_of, run_crawler
from tests.scripted_http import Request, ScriptedServer, response


@pytest.mark.parametrize("address, reason", [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.254", "private"), ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"), ("127.77.1.1", "loopback"), ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"), ("0.0.0.0", "this network"), ("224.0.0.251", "multicast"),
    ("192.0.2.10", "documentation"), ("198.51.100.7", "documentation"), ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"), ("fd00::1", "unique local"),
    ("ff02::1", "multicast"), ("2001:db8::1", "documentation"), ("::ffff:192.168.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::a00:1", "private"), ("fec0::1", "site-local"),
])
def test_non_global_ranges_are_named(address, reason):
    assert non_global_reason(address).startswith(reason)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2a00:1450:4007:80a::200e", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "172.32.0.1", "100.128.0.1"])
def test_global_addresses_are_allowed(address):
    assert non_global_reason(address) is None
    TargetPolicy().check(address, "example.org", "http://example.org/")  # no raise, nothing sent


def test_given_hosts_may_be_non_global_and_nothing_else():
    policy = TargetPolicy()
    policy.give(["127.0.0.1", "media.home.arpa"])
    policy.check("127.0.0.1", "127.0.0.1", "http://127.0.0.1/a")
    policy.check("192.168.1.20", "media.home.arpa", "http://media.home.arpa/a")  # the name the user gave
    with pytest.raises(ForbiddenAddress, match=r"a loopback \(127.0.0.0/8\) address"):
        policy.check("127.0.0.2", "127.0.0.2", "http://127.0.0.2/a")
    with pytest.raises(ForbiddenAddress, match="private"):  # a name not given that resolves inside the network
        policy.check("10.0.0.5", "evil.example", "http://evil.example/a")
    TargetPolicy(allow_private=True).check("10.0.0.5", "evil.example", "http://evil.example/a")


@pytest.fixture
def servers():
    clip = ensure_media(MediaSpec("mp4", duration_s=4.0)).path.read_bytes()
    inner = ScriptedServer({"/clip.mp4": lambda req: response("200 OK", {"Content-Type": "video/mp4",
                                                                         "Content-Length": str(len(clip))}, clip)},
                           host="127.0.0.2")
    with inner:
        def to_inner(req: Request):
            return response("302 Found", {"Location": f"{inner.base}/clip.mp4", "Content-Length": "0"})

        def page(req: Request):
            body = f'<!doctype html><html><body><video src="{inner.base}/clip.mp4"></video></body></html>'.encode()
            return response("200 OK", {"Content-Type": "text/html", "Content-Length": str(len(body))}, body)

        with ScriptedServer({"/go": to_inner, "/page.html": page}, host="127.0.0.1") as outer:
            yield outer, inner


def test_a_redirect_from_a_given_loopback_url_to_another_loopback_address_is_refused(servers, tmp_path):
    outer, inner = servers
    proc = run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--database-dir", str(tmp_path),
                        f"{outer.base}/go", f"{outer.base}/page.html"])
    conn = connect(database_of(proc))
    for path in ("/go", "/page.html"):
        video = conn.execute("SELECT * FROM videos WHERE page_url = ?", (f"{outer.base}{path}",)).fetchone()
        assert (video["status"], video["error_stage"], video["error_kind"]) == (
            "error", "redirects", "forbidden_address"), path
        assert "127.0.0.2" in video["error_message"] and "loopback" in video["error_message"]
    hop = conn.execute("SELECT * FROM hops WHERE address = '127.0.0.2'").fetchone()
    assert hop["error"] and hop["status_code"] is None
    assert conn.execute("SELECT count(*) FROM rtt_samples WHERE address = '127.0.0.2'").fetchone()[0] == 0
    assert inner.requests == []  # not one request reached the address that was not given


def test_allow_private_targets_lets_the_same_redirect_through(servers, tmp_path):
    outer, inner = servers
    proc = run_crawler(["-s", "generic", "-b", "-D", "2", "-n", "1", "-S", "0", "--allow-private-targets",
                        "--database-dir", str(tmp_path), f"{outer.base}/go"])
    conn = connect(database_of(proc))
    video = conn.execute("SELECT * FROM videos").fetchone()
    assert video["status"] == "ok", video["error_message"]
    assert {r.path for r in inner.requests} == {"/clip.mp4"}  # the page probe and the measurement
