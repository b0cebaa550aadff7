"""AS number, AS name and country of an address from offline IP databases in MaxMind's format (``--ip-db``).

The user places the files (GeoLite2-ASN / GeoLite2-Country or -City, DB-IP Lite ASN / Country, IPinfo Lite) and
names them; nothing is looked up online. Each database gives what it has; the first one that has a field wins.
Private, loopback and other non-global addresses are not looked up (their AS says nothing of the network), except
in the lab, whose cache servers live on 127.77.0.0/16.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import maxminddb

from pytomo.errors import UsageError
from pytomo.results import AddressOrigin

log = logging.getLogger(__name__)

NO_DATABASE = "no IP database (--ip-db)"
CACHE_SIZE = 4096


def _as_number(record: Mapping[str, Any]) -> int | None:
    value = record.get("autonomous_system_number", record.get("asn"))
    if isinstance(value, str):  # IPinfo: "AS15169"
        value = value.upper().removeprefix("AS")
        return int(value) if value.isdigit() else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_name(record: Mapping[str, Any]) -> str | None:
    value = record.get("autonomous_system_organization", record.get("as_name"))
    return value if isinstance(value, str) and value else None


def _country(record: Mapping[str, Any]) -> str | None:
    for key in ("country", "registered_country"):  # GeoLite2 / DB-IP: {"country": {"iso_code": "FR", ...}}
        part = record.get(key)
        if isinstance(part, Mapping) and isinstance(part.get("iso_code"), str):
            return part["iso_code"]
    code = record.get("country_code")  # IPinfo Lite
    return code if isinstance(code, str) and code else None


def fields(record: Any) -> tuple[int | None, str | None, str | None]:
    """(AS number, AS name, country) of one database record, whichever of the known layouts it has."""
    if not isinstance(record, Mapping):
        return None, None, None
    return _as_number(record), _as_name(record), _country(record)


def not_looked_up(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a non-global address is not looked up, or None for a global one."""
    for attr, what in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return f"{what} address: not looked up"
    return None if ip.is_global else "non-global address: not looked up"


class Vantage:
    """Looks addresses up in the databases named by ``--ip-db``; thread-safe reads, answers cached."""

    def __init__(self, paths: Iterable[str | Path] = (), *, lookup_private: bool = False) -> None:
        self.lookup_private = lookup_private
        self.readers: list[Any] = []
        self._cache: dict[str, AddressOrigin] = {}
        for path in paths:
            try:
                reader = maxminddb.open_database(str(path))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                self.close()
                raise UsageError(f"cannot read the IP database {path} (--ip-db): {exc}") from None
            log.info("IP database %s: %s, built %s", Path(path).name, reader.metadata().database_type,
                     reader.metadata().build_epoch)
            self.readers.append(reader)

    def close(self) -> None:
        """Close the databases."""
        for reader in self.readers:
            reader.close()
        self.readers = []

    def __enter__(self) -> Vantage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, address: str | None) -> AddressOrigin:
        """AS number, AS name and country of ``address``; None fields with the reason when it cannot be known."""
        if not address:
            return AddressOrigin(problem="no address")
        cached = self._cache.get(address)
        if cached is None:
            cached = self._lookup(address)
            if len(self._cache) < CACHE_SIZE:
                self._cache[address] = cached
        return cached

    def _lookup(self, address: str) -> AddressOrigin:
        if not self.readers:
            return AddressOrigin(problem=NO_DATABASE)
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return AddressOrigin(problem=f"not an IP address: {address!r}")
        why = None if self.lookup_private else not_looked_up(ip)
        if why:
            return AddressOrigin(problem=why)
        asn = name = country = None
        for reader in self.readers:
            try:
                record = reader.get(str(ip))
            except (ValueError, maxminddb.InvalidDatabaseError) as exc:  # an IPv6 address in an IPv4-only database
                log.debug("IP database lookup of %s: %s", ip, exc)
                continue
            a, n, c = fields(record)
            asn, name, country = asn if asn is not None else a, name or n, country or c
        if asn is None and country is None:
            return AddressOrigin(as_name=name, problem="not in the IP databases")
        missing = [what for what, value in (("AS", asn), ("country", country)) if value is None]
        return AddressOrigin(asn, name, country, problem=f"no {' or '.join(missing)} in the IP databases"
                             if missing else None)
