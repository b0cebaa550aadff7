"""Which addresses the crawler may connect to: global ones, and non-global ones only where the user pointed it.

A hostile page, redirect, manifest or DNS answer must not aim the crawler inside the volunteer's network (RIPE
Atlas probes refuse such targets likewise). Non-global addresses are allowed only when the user gave them: an IP
literal in a URL given on the command line or in the input file, or an address a given host name resolved to;
the lab and ``--allow-private-targets`` allow them all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pytomo.errors import ForbiddenAddress

# Non-global ranges with the name a stored outcome gives them (IANA special-purpose registries, RFC 6890).
_NAMED_RANGES = tuple((ipaddress.ip_network(net), name) for net, name in (
    ("0.0.0.0/8", "this network"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"), ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"), ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"), ("2001::/23", "IETF protocol assignments"), ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"), ("fec0::/10", "site-local"), ("ff00::/8", "multicast"),
))


def non_global_reason(address: str) -> str | None:
    """Why ``address`` is not a global unicast address (e.g. "private (10.0.0.0/8)"), or None when it is global.

    IPv4-mapped and NAT64 (64:ff9b::/96) IPv6 addresses are judged by the IPv4 address they carry.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return non_global_reason(str(ip.ipv4_mapped))
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return non_global_reason(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    for net, name in _NAMED_RANGES:
        if ip.version == net.version and ip in net:
            return f"{name} ({net})"
    if not ip.is_global:
        return "not global"
    return None


class TargetPolicy:
    """Decides, before any connection, whether an address may be reached for a URL of a given host."""

    def __init__(self, *, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._given_hosts: set[str] = set()

    def give(self, hosts: Iterable[str]) -> None:
        """Hosts (names or IP literals) of URLs the user gave explicitly."""
        self._given_hosts.update(h.strip("[]").lower() for h in hosts if h)

    def check(self, address: str, host: str, url: str) -> None:
        """Raise ForbiddenAddress unless ``address`` (reached for ``host`` in ``url``) is allowed."""
        if self.allow_private:
            return
        why = non_global_reason(address)
        if why is None or host.strip("[]").lower() in self._given_hosts:
            return
        raise ForbiddenAddress(f"refused to connect to {address}, a {why} address, for {url}: only addresses the "
                               "user gave may be non-global (--allow-private-targets allows them all)",
                               address=address, url=url)
