"""The DNS stage: a host resolved by every configured resolver, each answer kept with its rcode, TTL and latency."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rcode
import dns.resolver

from pytomo.errors import UsageError
from pytomo.results import DnsAnswer, utc_now
from pytomo.settings import DEFAULTS

log = logging.getLogger(__name__)

RDTYPES = ("A", "AAAA")
_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 buffer size: larger answers come back truncated, then over TCP
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_RESOLVER_FORMS = "expected label=ip[:port], ip, [v6]:port or system"


@dataclass(frozen=True)
class ResolverSpec:
    """One resolver to ask: a nameserver address, or None for the system's nameservers."""

    label: str  # e.g. "system", "lab", "google"
    address: str | None = None  # None: every nameserver of the system's resolver configuration
    port: int = 53


def system_nameservers(filename: str | None = None) -> list[tuple[str, int]]:
    """The (address, port) of every nameserver of dnspython's default system configuration (or of filename)."""
    try:
        resolver = dns.resolver.Resolver() if filename is None else dns.resolver.Resolver(filename=filename)
    except dns.exception.DNSException as exc:
        log.debug("no system resolver configuration: %s", exc)
        return []
    found: list[tuple[str, int]] = []
    for server in resolver.nameservers:
        if isinstance(server, dns.nameserver.Do53Nameserver):
            found.append((server.address, server.port))
        elif isinstance(server, str) and _is_ip(server):
            found.append((server, resolver.nameserver_ports.get(server, resolver.port)))
        else:
            log.debug("system nameserver %s is not plain DNS; skipped", server)
    return found


class DnsProbe:
    """Asks each resolver for each record type of a host and records every answer, failures included."""

    def __init__(self, resolvers: Sequence[ResolverSpec], *, timeout_s: float = DEFAULTS.dns_timeout_s,
                 rdtypes: Sequence[str] = RDTYPES, getaddrinfo_fallback: bool = True) -> None:
        for spec in resolvers:
            if spec.address is not None and not _is_ip(spec.address):
                raise ValueError(f"resolver {spec.label!r}: address must be an IP literal, not {spec.address!r}")
        unknown = [rdtype for rdtype in rdtypes if rdtype not in RDTYPES]
        if unknown:
            raise ValueError(f"unsupported record types {unknown}; DnsProbe asks only for {RDTYPES}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.resolvers = tuple(resolvers)
        self.timeout_s = timeout_s
        self.rdtypes = tuple(rdtypes)
        self.getaddrinfo_fallback = getaddrinfo_fallback
        self._journal = threading.local()  # this thread's answers inside ``recording``

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[DnsAnswer]]:
        """Every answer looked up on this thread inside the block, in order (a page fetch's, for its outcome)."""
        seen: list[DnsAnswer] = []
        outer = getattr(self._journal, "answers", None)
        self._journal.answers = seen
        try:
            yield seen
        finally:
            self._journal.answers = outer

    def lookup(self, host: str) -> list[DnsAnswer]:
        """Every answer for host: one DnsAnswer per address record, or one per failed query."""
        answers = self._lookup(host)
        journal = getattr(self._journal, "answers", None)
        if journal is not None:
            journal.extend(answers)
        return answers

    def _lookup(self, host: str) -> list[DnsAnswer]:
        literal = _literal(host)
        if literal is not None:
            rdtype = "A" if literal.version == 4 else "AAAA"
            return [DnsAnswer(host, "literal", None, rdtype, "NOERROR", str(literal), None, 0.0, utc_now())]
        answers: list[DnsAnswer] = []
        for spec in self.resolvers:
            if spec.address is not None:
                endpoints = [(spec.address, spec.port)]
            else:
                endpoints = system_nameservers()
                if not endpoints:
                    answers.extend(DnsAnswer(host, spec.label, None, rdtype, "NO_NAMESERVERS", None, None, None,
                                             utc_now(), "no nameserver in the system's resolver configuration")
                                   for rdtype in self.rdtypes)
            for address, port in endpoints:
                for rdtype in self.rdtypes:
                    answers.extend(self._query(host, spec.label, address, port, rdtype))
        if self.getaddrinfo_fallback and not addresses(answers):
            answers.extend(self._getaddrinfo(host))
        return answers

    def _query(self, host: str, label: str, address: str, port: int, rdtype: str) -> list[DnsAnswer]:
        """Ask one nameserver for one record type over UDP (then TCP if the answer was truncated)."""
        at = utc_now()
        start = time.perf_counter()

        def failed(rcode: str, error: str | None) -> list[DnsAnswer]:
            latency_ms = (time.perf_counter() - start) * 1000.0
            return [DnsAnswer(host, label, address, rdtype, rcode, None, None, latency_ms, at, error)]

        try:
            query = dns.message.make_query(dns.name.from_text(host), rdtype, use_edns=0, payload=_EDNS_PAYLOAD)
        except dns.exception.DNSException as exc:
            return failed("BADNAME", f"not a DNS name: {exc}")
        try:
            response = dns.query.udp(query, address, timeout=self.timeout_s, port=port,
                                     ignore_unexpected=True, ignore_errors=True)
            if response.flags & dns.flags.TC:
                remaining_s = self.timeout_s - (time.perf_counter() - start)
                if remaining_s <= 0:
                    raise dns.exception.Timeout
                response = dns.query.tcp(query, address, timeout=remaining_s, port=port)
        except (dns.exception.Timeout, TimeoutError):
            return failed("TIMEOUT", f"no answer within {self.timeout_s:g} s")
        except OSError as exc:
            return failed("UNREACHABLE", str(exc) or type(exc).__name__)
        except dns.exception.DNSException as exc:
            return failed("BADRESPONSE", str(exc) or type(exc).__name__)
        latency_ms = (time.perf_counter() - start) * 1000.0
        rcode = dns.rcode.to_text(response.rcode())
        if response.rcode() != dns.rcode.NOERROR:
            return [DnsAnswer(host, label, address, rdtype, rcode, None, None, latency_ms, at)]
        # dnspython ignores (UDP) or refuses (TCP) an answer whose opcode differs from the query's, so this is the
        # QueryMessage its wire reader builds for a QUERY.
        assert isinstance(response, dns.message.QueryMessage)
        try:
            rrset = response.resolve_chaining().answer
        except dns.exception.DNSException as exc:
            return [DnsAnswer(host, label, address, rdtype, "BADRESPONSE", None, None, latency_ms, at,
                              str(exc) or type(exc).__name__)]
        if rrset is None:
            return [DnsAnswer(host, label, address, rdtype, rcode, None, None, latency_ms, at, f"no {rdtype} record")]
        return [DnsAnswer(host, label, address, rdtype, rcode, rdata.address, rrset.ttl, latency_ms, at)
                for rdata in rrset]

    def _getaddrinfo(self, host: str) -> list[DnsAnswer]:
        """The addresses the system's own lookup gives (it honours /etc/hosts), of the wanted families."""
        at = utc_now()
        start = time.perf_counter()
        try:
            infos = socket.getaddrinfo(host, None)
            error = None
        except (OSError, UnicodeError) as exc:
            infos, error = [], str(exc) or type(exc).__name__
        latency_ms = (time.perf_counter() - start) * 1000.0
        found: dict[str, str] = {}
        for family, *_, sockaddr in infos:
            rdtype = {socket.AF_INET: "A", socket.AF_INET6: "AAAA"}.get(family)
            if rdtype in self.rdtypes:
                found.setdefault(str(sockaddr[0]), rdtype)  # an AF_INET(6) address: already a str
        if not found:
            return [_getaddrinfo_answer(host, self.rdtypes[0] if self.rdtypes else "A", "FAILED", None, latency_ms,
                                        at, error or f"no address of type {'/'.join(self.rdtypes)}")]
        return [_getaddrinfo_answer(host, rdtype, "NOERROR", address, latency_ms, at, None)
                for address, rdtype in found.items()]


def _getaddrinfo_answer(host: str, rdtype: str, rcode: str, address: str | None, latency_ms: float, at: datetime,
                        error: str | None) -> DnsAnswer:
    return DnsAnswer(host, "getaddrinfo", None, rdtype, rcode, address, None, latency_ms, at, error)


def addresses(answers: Iterable[DnsAnswer]) -> list[str]:
    """The distinct addresses of answers, in order of first appearance."""
    return list(dict.fromkeys(a.address for a in answers if a.address is not None))


def parse_resolver(text: str) -> ResolverSpec:
    """A resolver from the command line: ``label=ip[:port]``, ``ip``, ``[v6]:port`` or ``system``."""
    label, sep, target = text.strip().partition("=")
    if not sep:
        label, target = "", label
    label, target = label.strip(), target.strip()
    if sep and not _LABEL.match(label):
        raise UsageError(f"bad resolver {text!r}: the label must be letters, digits, '_', '.' or '-'; "
                         f"{_RESOLVER_FORMS}")
    if target == "system":
        return ResolverSpec(label or "system")
    address, port = _split_address_port(text, target)
    if not label:
        label = address if port == 53 else (f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    return ResolverSpec(label, address, port)


def _split_address_port(text: str, target: str) -> tuple[str, int]:
    """(ip, port) from ``ip``, ``ipv4:port``, ``[ipv6]`` or ``[ipv6]:port``; UsageError otherwise."""
    port_text = None
    if target.startswith("["):
        match = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", target)
        ip = _literal(match.group(1)) if match else None
        if match is None or ip is None or ip.version != 6:
            raise UsageError(f"bad resolver {text!r}: brackets must hold an IPv6 address; {_RESOLVER_FORMS}")
        port_text = match.group(2)
    elif target.count(":") == 1:
        host, port_text = target.split(":")
        ip = _literal(host)
        if ip is None or ip.version != 4:
            raise UsageError(f"bad resolver {text!r}: {host!r} is not an IPv4 address; {_RESOLVER_FORMS}")
    else:
        ip = _literal(target)  # a bare IPv4 or IPv6 address
        if ip is None:
            raise UsageError(f"bad resolver {text!r}: {target!r} is not an IP address; {_RESOLVER_FORMS}")
    if port_text is None:
        return str(ip), 53
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(f"bad resolver {text!r}: port {port_text!r} is not a number from 1 to 65535")
    return str(ip), int(port_text)


def _literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address text spells (brackets allowed around IPv6), or None for a host name."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
