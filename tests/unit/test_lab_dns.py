"""The lab DNS server, queried with dnspython over UDP and TCP; every expected answer is the configured record."""

import ipaddress
import socket
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from pytomo.engine.resolve import DnsProbe, ResolverSpec
from pytomo.errors import LabError
from pytomo.lab.dns import LabDnsServer

RECORDS = {
    "Video.Lab.Example.": ["127.77.1.1", "127.77.1.2", "::1"],
    "v4only.lab.example": ["127.77.1.3"],
}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Fail any DNS query to a non-loopback server and any getaddrinfo of a name other than localhost."""
    for name in ("udp", "tcp"):
        real = getattr(dns.query, name)

        def guarded(q, where, *args, _real=real, **kwargs):
            assert ipaddress.ip_address(where).is_loopback, f"DNS query to {where} in a test"
            return _real(q, where, *args, **kwargs)

        monkeypatch.setattr(dns.query, name, guarded)


@pytest.fixture
def server():
    with LabDnsServer(RECORDS, ttl_s=123) as srv:
        yield srv


def ask(srv, name, rdtype, *, tcp=False):
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, srv.host, timeout=2, port=srv.port)


def rdata_texts(response):
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


def test_a_record_lists_the_ipv4_addresses_with_the_configured_ttl(server):
    response = ask(server, "video.lab.example", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert rdata_texts(response) == ["127.77.1.1", "127.77.1.2"]
    assert [rrset.ttl for rrset in response.answer] == [123]


def test_aaaa_record_lists_the_ipv6_addresses(server):
    response = ask(server, "video.lab.example", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert rdata_texts(response) == ["::1"]


def test_name_without_ipv6_gets_noerror_and_no_data(server):
    response = ask(server, "v4only.lab.example", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []


def test_unknown_name_gets_nxdomain(server):
    response = ask(server, "nothere.lab.example", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.answer == []


def test_other_record_types_get_noerror_and_no_data(server):
    response = ask(server, "video.lab.example", "MX")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []


@pytest.mark.parametrize("name", ["VIDEO.lab.EXAMPLE", "video.lab.example.", "v4ONLY.Lab.Example."])
def test_names_are_case_insensitive_with_or_without_trailing_dot(server, name):
    expected = {"video": ["127.77.1.1", "127.77.1.2"], "v4only": ["127.77.1.3"]}[name.split(".")[0].lower()]
    assert rdata_texts(ask(server, name, "A")) == expected


def test_tcp_gives_the_same_answers(server):
    assert rdata_texts(ask(server, "video.lab.example", "A", tcp=True)) == ["127.77.1.1", "127.77.1.2"]
    assert ask(server, "nothere.lab.example", "A", tcp=True).rcode() == dns.rcode.NXDOMAIN
    assert server.queries == [("video.lab.example", "A", "tcp"), ("nothere.lab.example", "A", "tcp")]


def test_queries_log_every_answered_query_in_order(server):
    ask(server, "Video.Lab.Example", "A")
    ask(server, "v4only.lab.example.", "AAAA")
    ask(server, "nothere.lab.example", "A", tcp=True)
    assert server.queries == [("video.lab.example", "A", "udp"), ("v4only.lab.example", "AAAA", "udp"),
                              ("nothere.lab.example", "A", "tcp")]


def test_garbage_packets_get_no_answer_and_do_not_kill_the_server(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.3)
        for junk in (b"", b"\xff", b"\x12\x34" + b"\xff" * 40):
            udp.sendto(junk, (server.host, server.port))
        with pytest.raises(TimeoutError):
            udp.recv(4096)
    with socket.create_connection((server.host, server.port), timeout=2) as tcp:
        tcp.sendall(b"\x00\x05hello")  # a length-prefixed message that is not DNS
        tcp.sendall(b"\x00\x03")  # then half a message and a close
    assert rdata_texts(ask(server, "video.lab.example", "A")) == ["127.77.1.1", "127.77.1.2"]
    assert rdata_texts(ask(server, "video.lab.example", "A", tcp=True)) == ["127.77.1.1", "127.77.1.2"]
    assert server.queries == [("video.lab.example", "A", "udp"), ("video.lab.example", "A", "tcp")]


def test_large_answer_is_truncated_over_udp_and_complete_over_tcp():
    many = [f"127.77.2.{i}" for i in range(1, 101)]  # 100 A records: about 1.6 kB
    with LabDnsServer({"big.lab.example": many}) as srv:
        truncated = dns.query.udp(dns.message.make_query("big.lab.example", "A"), srv.host, timeout=2, port=srv.port)
        assert truncated.flags & dns.flags.TC
        answers = DnsProbe([ResolverSpec("lab", srv.host, srv.port)], rdtypes=("A",),
                           getaddrinfo_fallback=False).lookup("big.lab.example")
        assert sorted(a.address for a in answers) == sorted(many)
        assert srv.queries == [("big.lab.example", "A", "udp"), ("big.lab.example", "A", "udp"),
                               ("big.lab.example", "A", "tcp")]


def test_delay_shows_in_the_measured_latency():
    with LabDnsServer(RECORDS, delay_s=0.2) as srv:
        answers = DnsProbe([ResolverSpec("lab", srv.host, srv.port)], rdtypes=("A",)).lookup("v4only.lab.example")
    assert [(a.address, a.rcode) for a in answers] == [("127.77.1.3", "NOERROR")]
    assert 200.0 <= answers[0].latency_ms < 200.0 + 300.0


def test_resolver_slower_than_the_timeout_gives_timeout_after_about_timeout_s():
    with LabDnsServer(RECORDS, delay_s=2.0) as srv:
        probe = DnsProbe([ResolverSpec("slow", srv.host, srv.port)], timeout_s=0.3, rdtypes=("A",),
                         getaddrinfo_fallback=False)
        started = time.perf_counter()
        answers = probe.lookup("v4only.lab.example")
        elapsed_s = time.perf_counter() - started
        stop_started = time.perf_counter()
    stop_s = time.perf_counter() - stop_started
    assert [(a.resolver, a.rcode, a.address) for a in answers] == [("slow", "TIMEOUT", None)]
    assert 300.0 <= answers[0].latency_ms < 600.0
    assert 0.3 <= elapsed_s < 0.6
    assert stop_s < 0.5  # stop() does not wait for the pending 2 s delay
    assert srv.queries == []  # the delayed answer was never sent


def test_stop_closes_both_sockets_and_ends_the_threads():
    before = set(threading.enumerate())
    srv = LabDnsServer(RECORDS, host="127.77.0.60").start()
    ask(srv, "video.lab.example", "A", tcp=True)
    port = srv.port
    srv.stop()
    time.sleep(0.05)
    assert set(threading.enumerate()) <= before
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.77.0.60", port))  # would raise EADDRINUSE if the server had leaked its sockets
        tcp.bind(("127.77.0.60", port))


def test_fixed_port_and_ipv6_host():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe_sock:
        probe_sock.bind(("::1", 0))
        free_port = probe_sock.getsockname()[1]
    with LabDnsServer(RECORDS, host="::1", port=free_port) as srv:
        assert srv.port == free_port
        assert rdata_texts(ask(srv, "video.lab.example", "A")) == ["127.77.1.1", "127.77.1.2"]
        assert rdata_texts(ask(srv, "video.lab.example", "AAAA", tcp=True)) == ["::1"]


@pytest.mark.parametrize("records, host", [
    ({"a.lab.example": ["not-an-ip"]}, "127.77.0.53"),
    ({"a.lab.example": "127.0.0.1"}, "127.77.0.53"),
    ({"a.lab.example": ["127.0.0.1"]}, "localhost"),
])
def test_bad_configuration_is_a_lab_error(records, host):
    with pytest.raises(LabError):
        LabDnsServer(records, host=host)
