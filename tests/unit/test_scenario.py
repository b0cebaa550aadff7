"""Lab scenarios: the default one is complete, and a wrong scenario is refused with a clear message."""

import pytest

from pytomo.errors import LabError
from pytomo.lab.scenario import FAULTS, default_scenario_path, load_scenario, parse_scenario


def test_default_scenario_covers_what_the_lab_promises():
    sc = load_scenario(default_scenario_path())
    unlimited = [s for s in sc.servers if s.rate_bps is None and not s.fault and not s.stalls]
    assert unlimited
    bitrate = {v.server: v.media.bitrate_bps for v in sc.videos}
    paced = [s for s in sc.servers if s.rate_bps and not s.fault]
    assert any(s.rate_bps > bitrate[s.name] for s in paced)
    assert any(s.rate_bps < bitrate[s.name] for s in paced)
    assert any(s.stalls for s in sc.servers)
    assert {s.fault for s in sc.servers if s.fault} == set(FAULTS)
    assert {v.media.container for v in sc.videos} >= {"mp4", "mp4-moov-end", "fmp4", "webm", "flv"}
    assert {v.hops for v in sc.videos} == {0, 1, 2, 3}
    hostile = [v for v in sc.videos if "<script>" in v.title]
    assert hostile and '"' in hostile[0].title and any(ord(c) > 127 for c in hostile[0].title)
    assert all(s.ip.startswith("127.") for s in sc.servers)


BASE = {"servers": [{"name": "a", "ip": "127.77.1.1"}], "videos": [{"id": "v1", "server": "a"}]}


@pytest.mark.parametrize("change, words", [
    ({"servers": [{"name": "a", "ip": "10.0.0.1"}]}, "not a loopback address"),
    ({"servers": [{"name": "a", "ip": "127.77.0.1"}]}, "reserved"),
    ({"servers": [{"name": "a", "fault": "explode"}]}, "fault must be one of"),
    ({"servers": [{"name": "a", "rate_bps": 0}]}, "rate_bps must be positive"),
    ({"videos": [{"id": "v1", "server": "b"}]}, "unknown server"),
    ({"videos": [{"id": "v 1", "server": "a"}]}, "video id"),
    ({"videos": [{"id": "v1", "server": "a", "container": "avi"}]}, "container"),
    ({"videos": [{"id": "v1", "server": "a", "hops": 4}]}, "hops"),
    ({"videos": [{"id": "v1", "server": "a", "related": ["v9"]}]}, "related video"),
    ({"videos": []}, "at least one"),
])
def test_bad_scenarios_are_refused(change, words):
    with pytest.raises(LabError, match=words):
        parse_scenario({**BASE, **change}, "test.toml")


def test_unreadable_scenario(tmp_path):
    with pytest.raises(LabError, match="cannot read"):
        load_scenario(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[servers]\n")
    with pytest.raises(LabError, match="not valid TOML"):
        load_scenario(bad)
