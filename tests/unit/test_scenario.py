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
    https = [v for v in sc.videos if v.redirect_scheme == "https"]  # HTTPS hop by hop in the default crawl
    assert https and all("all_time" in v.popular and sc.server(v.server).tls for v in https)
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
    ({"videos": [{"id": "v1", "server": "a", "redirect_scheme": "ftp"}]}, "redirect_scheme must be one of"),
    ({"videos": [{"id": "v1", "server": "a", "redirect_scheme": "https"}]}, "is not .set tls = true"),
    ({"servers": [{"name": "a", "tls": True}], "videos": [{"id": "v1", "server": "a", "hops": 0,
                                                           "redirect_scheme": "https"}]}, "needs redirect hops"),
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


def test_default_scenario_has_nginx_cache_servers_beside_the_labs():
    sc = load_scenario(default_scenario_path())
    nginx = {s.name: s for s in sc.servers if s.software == "nginx"}
    assert {n: (s.ip, s.rate_bps, s.burst_bytes) for n, s in nginx.items()}.items() >= {
        "nginx-unlimited": ("127.77.2.1", None, 0), "nginx-fast": ("127.77.2.2", 4_000_000, 0),
        "nginx-slow": ("127.77.2.3", 200_000, 250_000), "nginx-segments": ("127.77.2.4", 5_000_000, 0)}.items()
    on = {(v.server, v.delivery, v.media.container, v.packaging) for v in sc.videos if v.server in nginx}
    assert ("nginx-unlimited", "progressive", "mp4", "ffmpeg") in on
    assert ("nginx-fast", "progressive", "webm", "ffmpeg") in on
    assert ("nginx-slow", "progressive", "mp4-moov-end", "ffmpeg") in on
    assert {c for s, d, c, _p in on if d == "progressive"} >= {"mp4", "mp4-moov-end", "webm", "flv", "fmp4"}
    assert {(d, p) for s, d, _c, p in on if s == "nginx-segments"} >= {("hls", "ffmpeg"), ("dash", "ffmpeg")}
    slow = nginx["nginx-slow"]
    assert slow.rate_bps < min(v.media.bitrate_bps for v in sc.videos if v.server == slow.name)
    assert all(s.software == "lab" for s in sc.servers if s.stalls or s.ttfb_delay_s or s.fault in ("reset", "html"))


@pytest.mark.parametrize("server, words", [
    ({"name": "a", "software": "apache"}, "software must be one of"),
    ({"name": "a", "software": "nginx", "fault": "reset"}, "nginx cannot script the fault"),
    ({"name": "a", "software": "nginx", "stalls": [[1000, 1.0]]}, "nginx cannot pause"),
    ({"name": "a", "software": "nginx", "ttfb_delay_s": 0.5}, "nginx cannot pause"),
])
def test_nginx_servers_only_take_what_nginx_can_do(server, words):
    with pytest.raises(LabError, match=words):
        parse_scenario({**BASE, "servers": [server]}, "test.toml")
    ok = parse_scenario({**BASE, "servers": [{"name": "a", "software": "nginx", "fault": "redirect_loop"}]})
    assert ok.servers[0].software == "nginx"


def test_default_scenario_has_a_youtube_like_host_with_a_pair_and_an_available_at_video():
    sc = load_scenario(default_scenario_path())
    youtube = sc.server("cache-youtube")
    assert (youtube.ip, youtube.software, youtube.rules, youtube.rate_bps) == ("127.77.1.14", "lab", "youtube", 8e6)
    on = {v.id: v for v in sc.videos if v.server == youtube.name}
    assert on["lab-yt-pair"].pair and on["lab-yt-pair"].media.container == "mp4"
    assert "lab-yt-later" in on and all(v.hops == 0 and v.popular == () for v in on.values())
    assert [s.name for s in sc.servers if s.rules] == ["cache-youtube"]


@pytest.mark.parametrize("change, words", [
    ({"servers": [{"name": "a", "rules": "vimeo"}]}, "rules must be one of"),
    ({"servers": [{"name": "a", "software": "nginx", "rules": "youtube"}]}, "only the lab's own server"),
    ({"videos": [{"id": "v1", "server": "a", "container": "m4a"}]}, "container must be one of"),
    ({"videos": [{"id": "v1", "server": "a", "container": "webm", "pair": True}]}, "a pair"),
    ({"videos": [{"id": "v1", "server": "a", "delivery": "hls", "pair": True}]}, "a pair"),
    ({"servers": [{"name": "a", "software": "nginx"}], "videos": [{"id": "v1", "server": "a", "pair": True}]},
     "a pair"),
    ({"videos": [{"id": "v1", "server": "a", "pair": "yes"}]}, "pair must be true or false"),
])
def test_rules_and_pairs_are_checked(change, words):
    with pytest.raises(LabError, match=words):
        parse_scenario({**BASE, **change}, "test.toml")
    ok = parse_scenario({"servers": [{"name": "a", "rules": "youtube"}],
                         "videos": [{"id": "v1", "server": "a", "pair": True}]})
    assert ok.servers[0].rules == "youtube" and ok.videos[0].pair


def test_audio_only_media_specs():
    from pytomo.lab.media import MediaSpec, pair_specs

    parts = pair_specs(MediaSpec("mp4", duration_s=10.0, bitrate_bps=2_000_000))
    assert parts["video"].audio is False and parts["video"].video_bitrate_bps == 1_980_000
    assert parts["audio"].container == "m4a" and parts["audio"].audio_only and parts["audio"].video_bitrate_bps == 0
    with pytest.raises(LabError, match="audio only"):
        MediaSpec("m4a", audio=False)
    with pytest.raises(LabError, match="pair"):
        pair_specs(MediaSpec("webm"))
