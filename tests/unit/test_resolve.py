"""The DNS stage against lab servers whose records are the ground truth; no query leaves the loopback range."""

import ipaddress
import socket

import dns.query
import pytest

from pytomo.engine import resolve
from pytomo.engine.resolve import DnsProbe, ResolverSpec, addresses, parse_resolver, system_nameservers
from pytomo.errors import UsageError
from pytomo.lab.dns import LabDnsServer
from pytomo.results import DnsAnswer, utc_now

HOST = "cache.lab.example"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Fail any DNS query to a non-loopback server and any getaddrinfo of a name other than localhost."""
    for name in ("udp", "tcp"):
        real = getattr(dns.query, name)

        def guarded(q, where, *args, _real=real, **kwargs):
            assert ipaddress.ip_address(where).is_loopback, f"DNS query to {where} in a test"
            return _real(q, where, *args, **kwargs)

        monkeypatch.setattr(dns.query, name, guarded)
    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host != "localhost":
            ipaddress.ip_address(host)  # raises for any other name: it would go to the system's resolver
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(resolve, "system_nameservers", _refuse_system_resolver)


def _refuse_system_resolver(*args, **kwargs):
    raise AssertionError("a test asked the system's resolver")


@pytest.fixture
def lab_a():
    with LabDnsServer({HOST: ["127.77.3.1", "127.77.3.2", "::1"], "only-a.lab.example": ["127.77.3.9"]},
                      ttl_s=60, host="127.77.0.53") as srv:
        yield srv


@pytest.fixture
def lab_b():
    with LabDnsServer({HOST: ["127.77.4.1"]}, ttl_s=900, host="127.77.0.54") as srv:
        yield srv


def facts(answers):
    return [(a.host, a.resolver, a.resolver_address, a.rdtype, a.rcode, a.address, a.ttl_s, a.error) for a in answers]


def test_each_resolver_records_its_own_answers_with_its_label_and_ttl(lab_a, lab_b):
    probe = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port), ResolverSpec("other", lab_b.host, lab_b.port)])
    answers = probe.lookup(HOST)
    # the order of records inside one answer is shuffled (round robin), so compare those sorted
    assert sorted(facts(answers)) == sorted([
        (HOST, "lab", "127.77.0.53", "A", "NOERROR", "127.77.3.1", 60, None),
        (HOST, "lab", "127.77.0.53", "A", "NOERROR", "127.77.3.2", 60, None),
        (HOST, "lab", "127.77.0.53", "AAAA", "NOERROR", "::1", 60, None),
        (HOST, "other", "127.77.0.54", "A", "NOERROR", "127.77.4.1", 900, None),
        (HOST, "other", "127.77.0.54", "AAAA", "NOERROR", None, None, "no AAAA record"),
    ])
    assert [(a.resolver, a.rdtype) for a in answers] == [("lab", "A"), ("lab", "A"), ("lab", "AAAA"),
                                                         ("other", "A"), ("other", "AAAA")]
    assert all(a.latency_ms is not None and 0 < a.latency_ms < 1000 for a in answers)
    assert lab_a.queries == [(HOST, "A", "udp"), (HOST, "AAAA", "udp")]
    assert lab_b.queries == [(HOST, "A", "udp"), (HOST, "AAAA", "udp")]


def test_addresses_are_distinct_in_order_of_first_appearance():
    at = utc_now()

    def answer(address):
        return DnsAnswer(HOST, "lab", "127.77.0.53", "A", "NOERROR", address, 60, 1.0, at)

    given = [answer("127.77.3.2"), answer(None), answer("::1"), answer("127.77.3.2"), answer("127.77.3.1")]
    assert addresses(given) == ["127.77.3.2", "::1", "127.77.3.1"]
    assert addresses([]) == []


def test_nxdomain_is_one_answer_without_address(lab_a):
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)], getaddrinfo_fallback=False).lookup(
        "missing.lab.example")
    assert [(a.rdtype, a.rcode, a.address, a.ttl_s) for a in answers] == [("A", "NXDOMAIN", None, None),
                                                                          ("AAAA", "NXDOMAIN", None, None)]


def test_rdtypes_limit_the_queries(lab_a):
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)], rdtypes=("AAAA",)).lookup(HOST)
    assert facts(answers) == [(HOST, "lab", "127.77.0.53", "AAAA", "NOERROR", "::1", 60, None)]
    assert lab_a.queries == [(HOST, "AAAA", "udp")]


def test_silent_resolver_times_out_and_the_next_one_still_answers(lab_b):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.77.0.55", 0))
        probe = DnsProbe([ResolverSpec("silent", "127.77.0.55", silent.getsockname()[1]),
                          ResolverSpec("other", lab_b.host, lab_b.port)], timeout_s=0.2, rdtypes=("A",))
        answers = probe.lookup(HOST)
    assert [(a.resolver, a.rcode, a.address) for a in answers] == [("silent", "TIMEOUT", None),
                                                                    ("other", "NOERROR", "127.77.4.1")]
    assert 200.0 <= answers[0].latency_ms < 500.0
    assert answers[0].error == "no answer within 0.2 s"


@pytest.mark.parametrize("host, rdtype, address", [
    ("127.77.3.7", "A", "127.77.3.7"),
    ("::1", "AAAA", "::1"),
    ("[::1]", "AAAA", "::1"),
    ("2001:DB8::0:1", "AAAA", "2001:db8::1"),
])
def test_literal_address_is_its_own_answer_and_sends_no_query(lab_a, host, rdtype, address):
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)]).lookup(host)
    assert facts(answers) == [(host, "literal", None, rdtype, "NOERROR", address, None, None)]
    assert answers[0].latency_ms == 0
    assert lab_a.queries == []


def test_getaddrinfo_fallback_finds_localhost_from_etc_hosts(lab_a):
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)]).lookup("localhost")
    dns_part = [(a.resolver, a.rcode) for a in answers if a.resolver == "lab"]
    assert dns_part == [("lab", "NXDOMAIN"), ("lab", "NXDOMAIN")]
    fallback = [a for a in answers if a.resolver == "getaddrinfo"]
    assert "127.0.0.1" in [a.address for a in fallback]  # /etc/hosts: 127.0.0.1 localhost
    assert all(ipaddress.ip_address(a.address).is_loopback for a in fallback)
    assert all(a.rcode == "NOERROR" and a.ttl_s is None and a.latency_ms >= 0 for a in fallback)
    assert [a.rdtype for a in fallback] == ["A" if ":" not in a.address else "AAAA" for a in fallback]
    assert len({a.address for a in fallback}) == len(fallback)


def test_no_fallback_when_a_resolver_found_an_address(lab_a, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _refuse_system_resolver)
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)]).lookup("only-a.lab.example")
    assert [(a.resolver, a.rdtype, a.rcode, a.address) for a in answers] == [
        ("lab", "A", "NOERROR", "127.77.3.9"), ("lab", "AAAA", "NOERROR", None)]


def test_failed_getaddrinfo_is_recorded_not_raised(lab_a, monkeypatch):
    def fail(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)], rdtypes=("A",)).lookup("missing.lab.example")
    assert facts(answers) == [
        ("missing.lab.example", "lab", "127.77.0.53", "A", "NXDOMAIN", None, None, None),
        ("missing.lab.example", "getaddrinfo", None, "A", "FAILED", None, None, "[Errno -2] Name or service not known"),
    ]


def test_system_resolver_asks_every_system_nameserver_under_one_label(lab_a, lab_b, monkeypatch):
    monkeypatch.setattr(resolve, "system_nameservers", lambda: [(lab_a.host, lab_a.port), (lab_b.host, lab_b.port)])
    answers = DnsProbe([ResolverSpec("system")], rdtypes=("A",)).lookup(HOST)
    assert sorted((a.resolver, a.resolver_address, a.address) for a in answers) == [
        ("system", "127.77.0.53", "127.77.3.1"), ("system", "127.77.0.53", "127.77.3.2"),
        ("system", "127.77.0.54", "127.77.4.1")]
    assert [a.resolver_address for a in answers] == ["127.77.0.53", "127.77.0.53", "127.77.0.54"]


def test_system_resolver_without_nameservers_is_recorded(monkeypatch):
    monkeypatch.setattr(resolve, "system_nameservers", lambda: [])
    answers = DnsProbe([ResolverSpec("system")], getaddrinfo_fallback=False).lookup(HOST)
    assert [(a.resolver, a.rdtype, a.rcode, a.address) for a in answers] == [
        ("system", "A", "NO_NAMESERVERS", None), ("system", "AAAA", "NO_NAMESERVERS", None)]


def test_system_nameservers_reads_every_nameserver_of_a_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# test\nsearch lab.example\nnameserver 192.0.2.1\nnameserver 2001:db8::53\n"
                    "nameserver 192.0.2.2\noptions timeout:1\n")
    assert system_nameservers(str(conf)) == [("192.0.2.1", 53), ("2001:db8::53", 53), ("192.0.2.2", 53)]
    empty = tmp_path / "empty.conf"
    empty.write_text("search lab.example\n")
    assert system_nameservers(str(empty)) == []  # the name imported above is the real function, not the guard


def test_bad_host_name_is_recorded(lab_a):
    answers = DnsProbe([ResolverSpec("lab", lab_a.host, lab_a.port)], rdtypes=("A",),
                       getaddrinfo_fallback=False).lookup("a..b")
    assert [(a.rcode, a.address) for a in answers] == [("BADNAME", None)]
    assert lab_a.queries == []


@pytest.mark.parametrize("text, expected", [
    ("lab=127.77.0.53:5353", ResolverSpec("lab", "127.77.0.53", 5353)),
    ("google=8.8.8.8", ResolverSpec("google", "8.8.8.8", 53)),
    ("8.8.4.4", ResolverSpec("8.8.4.4", "8.8.4.4", 53)),
    ("127.0.0.1:5300", ResolverSpec("127.0.0.1:5300", "127.0.0.1", 5300)),
    ("[::1]:5353", ResolverSpec("[::1]:5353", "::1", 5353)),
    ("v6=[2001:4860:4860::8888]", ResolverSpec("v6", "2001:4860:4860::8888", 53)),
    ("v6=2001:4860:4860::8844", ResolverSpec("v6", "2001:4860:4860::8844", 53)),
    ("::1", ResolverSpec("::1", "::1", 53)),
    (" lab = 127.77.0.53 ", ResolverSpec("lab", "127.77.0.53", 53)),
    ("system", ResolverSpec("system", None, 53)),
    ("isp=system", ResolverSpec("isp", None, 53)),
])
def test_parse_resolver_accepts_the_documented_forms(text, expected):
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", [
    "", "lab=", "=127.0.0.1", "my lab=127.0.0.1", "lab=dns.google", "lab=127.0.0.1:0", "lab=127.0.0.1:65536",
    "lab=127.0.0.1:x", "127.0.0.1:53:53", "[127.0.0.1]:53", "[::1", "[::1]:", "lab=256.1.1.1",
])
def test_parse_resolver_rejects_bad_input_with_one_line(text):
    with pytest.raises(UsageError) as caught:
        parse_resolver(text)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(text) in message


def test_programming_errors_raise():
    with pytest.raises(ValueError):
        DnsProbe([ResolverSpec("bad", "dns.google")])
    with pytest.raises(ValueError):
        DnsProbe([], rdtypes=("MX",))
