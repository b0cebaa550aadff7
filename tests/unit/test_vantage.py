"""AS and country from offline MaxMind-format databases (``--ip-db``), and what the run row may hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet

from pytomo.engine.vantage import NO_DATABASE, Vantage, fields
from pytomo.errors import UsageError
from pytomo.settings import build
from pytomo.storage.sqlite import local_zone, stored_settings
from pytomo.version import __version__, commit, full_version

LAB_NET, DOC_NET = "127.77.0.0/16", "203.0.113.0/24"  # the lab's servers; TEST-NET-3 (RFC 5737)
LAB_AS, DOC_AS = (64512, "Pytomo Lab AS"), (64496, "Documentation AS")  # private-use and documentation ASNs


def write_test_databases(directory: Path) -> tuple[Path, Path]:
    """A GeoLite2-ASN-like and a GeoLite2-Country-like database covering the lab and TEST-NET-3; (asn, country)."""
    asn = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN", description="pytomo test")
    for net, (number, name) in ((LAB_NET, LAB_AS), (DOC_NET, DOC_AS)):
        asn.insert_network(IPSet([net]), {"autonomous_system_number": MmdbU32(number),
                                          "autonomous_system_organization": name})
    country = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country",
                         description="pytomo test")
    country.insert_network(IPSet([LAB_NET]), {"country": {"iso_code": "FR", "names": {"en": "France"}}})
    country.insert_network(IPSet([DOC_NET]), {"registered_country": {"iso_code": "JP"}})
    paths = directory / "test-asn.mmdb", directory / "test-country.mmdb"
    asn.to_db_file(str(paths[0]))
    country.to_db_file(str(paths[1]))
    return paths


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> tuple[Path, Path]:
    return write_test_databases(tmp_path_factory.mktemp("mmdb"))


def test_both_databases_give_as_and_country(databases):
    with Vantage(databases, lookup_private=True) as v:
        o = v.lookup("127.77.1.3")
        assert (o.as_number, o.as_name, o.country, o.problem) == (*LAB_AS, "FR", None)
    with Vantage(databases, lookup_private=True) as v:  # documentation ranges are not global either
        o = v.lookup("203.0.113.9")
        assert (o.as_number, o.as_name, o.country, o.problem) == (*DOC_AS, "JP", None)
    assert Vantage(databases).lookup("203.0.113.9").problem.endswith("not looked up")


def test_private_and_loopback_are_not_looked_up(databases):
    with Vantage(databases) as v:
        for address, word in (("127.77.1.3", "loopback"), ("10.1.2.3", "private"), ("fe80::1", "link-local"),
                              ("192.168.0.1", "private")):
            o = v.lookup(address)
            assert o.as_number is None and o.country is None and o.problem.startswith(word), (address, o)


def test_missing_fields_say_why(databases):
    asn_only = Vantage(databases[:1], lookup_private=True)
    o = asn_only.lookup("203.0.113.1")
    assert o.as_number == DOC_AS[0] and o.country is None and o.problem == "no country in the IP databases"
    assert Vantage(databases, lookup_private=True).lookup("198.51.100.1").problem == "not in the IP databases"
    assert Vantage(databases).lookup("1.1.1.1").problem == "not in the IP databases"  # global, not covered
    assert Vantage().lookup("203.0.113.1").problem == NO_DATABASE
    assert Vantage(databases).lookup("not-an-ip").problem.startswith("not an IP address")
    assert Vantage(databases).lookup("2001:db8::1").as_number is None  # IPv6, not covered


def test_an_unreadable_database_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(UsageError, match="bad.mmdb"):
        Vantage([bad])
    with pytest.raises(UsageError, match="missing.mmdb"):
        Vantage([tmp_path / "missing.mmdb"])


def test_record_layouts():
    assert fields({"asn": "AS15169", "as_name": "Google LLC", "country_code": "US"}) == (15169, "Google LLC", "US")
    assert fields({"autonomous_system_number": 3215, "autonomous_system_organization": "Orange"}) == (
        3215, "Orange", None)
    assert fields({"country": {"iso_code": "DE"}}) == (None, None, "DE")
    assert fields(None) == (None, None, None)


def test_stored_settings_keep_no_path_credential_or_host(tmp_path):
    s = build(overrides={"ip_db": [str(tmp_path / "GeoLite2-ASN.mmdb")], "input_file": "/home/alice/urls.txt",
                         "cookies_file": "/home/alice/cookies.txt", "lab_scenario": "/srv/x/delay.toml",
                         "lab_truth": "/tmp/t/truth.jsonl", "database_dir": "/home/alice/runs",
                         "http_proxy": "http://bob:hunter2@proxy.example:3128", "youtube_api_key": "k3y"})
    out = stored_settings(s)
    text = json.dumps(out)
    for leak in ("alice", "hunter2", "bob", "k3y", str(tmp_path)):
        assert leak not in text
    assert out["ip_db"] == ["GeoLite2-ASN.mmdb"] or out["ip_db"] == ("GeoLite2-ASN.mmdb",)
    assert out["input_file"] == "urls.txt" and out["lab_scenario"] == "delay.toml"
    assert out["database_dir"] == "<set>" and out["youtube_api_key"] == "<set>"
    assert out["http_proxy"] == "http://<redacted>@proxy.example:3128"
    assert stored_settings(build())["database_dir"] == "databases"
    assert stored_settings(build(overrides={"http_proxy": "http://proxy:3128"}))["http_proxy"] == "http://proxy:3128"


def test_local_zone(tmp_path):
    assert local_zone({"TZ": "Europe/Paris"}, tmp_path).name == "Europe/Paris"
    assert local_zone({"TZ": ":/usr/share/zoneinfo/America/New_York"}, tmp_path).name == "America/New_York"
    bad = local_zone({"TZ": "CET-1CEST,M3.5.0,M10.5.0/3"}, tmp_path)
    assert bad.name is None and "not an IANA" in bad.problem
    (tmp_path / "timezone").write_text("Asia/Tokyo\n")
    assert local_zone({}, tmp_path) == local_zone({}, tmp_path)
    assert local_zone({}, tmp_path).name == "Asia/Tokyo" and local_zone({}, tmp_path).source == "/etc/timezone"
    (tmp_path / "timezone").unlink()
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    z = local_zone({}, tmp_path)
    assert (z.name, z.source) == ("Europe/Berlin", "/etc/localtime")
    (tmp_path / "localtime").unlink()
    assert local_zone({}, tmp_path).name is None and local_zone({}, tmp_path).problem


def test_version_carries_the_commit():
    c = commit()
    assert c is None or full_version().startswith(__version__ + "+g")
    assert full_version().startswith(__version__)
