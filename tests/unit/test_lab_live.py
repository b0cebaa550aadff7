"""The lab's live channels: what a scenario may ask for, ffmpeg's command, and the watcher's reading of a version."""

from __future__ import annotations

import pytest

from pytomo.errors import LabError
from pytomo.lab.live import PLAYLIST, LiveChannel, LiveSpec, read_version
from pytomo.lab.scenario import parse_scenario

NGINX = {"name": "n", "ip": "127.77.1.2", "software": "nginx"}
LAB = {"name": "a", "ip": "127.77.1.1"}


def test_a_live_video_is_hls_by_ffmpeg_on_nginx():
    scenario = parse_scenario({"servers": [NGINX], "videos": [{"id": "ch", "server": "n", "delivery": "hls",
                                                               "live": True}]}, "live.toml")
    assert scenario.videos[0].live
    assert not parse_scenario({"servers": [NGINX], "videos": [{"id": "v", "server": "n"}]}, "x.toml").videos[0].live


@pytest.mark.parametrize("video, words", [
    ({"id": "ch", "server": "n", "delivery": "dash", "packaging": "shaka-number", "live": True}, "a live channel is"),
    ({"id": "ch", "server": "n", "delivery": "hls", "packaging": "shaka-cmaf", "live": True}, "a live channel is"),
    ({"id": "ch", "server": "a", "delivery": "hls", "live": True}, "a live channel is"),
    ({"id": "ch", "server": "n", "delivery": "hls", "live": "yes"}, "live must be true or false"),
])
def test_what_cannot_be_live_is_refused(video, words):
    with pytest.raises(LabError, match=words):
        parse_scenario({"servers": [NGINX, LAB], "videos": [video]}, "live.toml")


def test_ffmpeg_makes_a_sliding_dated_window_in_real_time():
    channel = LiveChannel("ch", LiveSpec(segment_s=2.0, bitrate_bps=400_000))
    try:
        cmd = channel.command()
        assert "-re" in cmd and cmd[cmd.index("-hls_time") + 1] == "2"
        assert cmd[cmd.index("-hls_list_size") + 1] == "5"
        assert cmd[cmd.index("-hls_flags") + 1] == "delete_segments+program_date_time+temp_file"
        assert cmd[-1] == str(channel.root / PLAYLIST)
    finally:
        channel.stop()
    assert not channel.base.exists()


def test_a_version_as_the_watcher_reads_it():
    text = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:12\n#EXTINF:2.0,\n"
            "#EXT-X-PROGRAM-DATE-TIME:2026-12-06T19:06:35.250+0000\nseg00012.ts\n#EXTINF:2.0,\nseg00013.ts\n")
    assert read_version(text) == {"media_sequence": 12, "segments": ["seg00012.ts", "seg00013.ts"], "ended": False}
    assert read_version(text + "#EXT-X-ENDLIST\n")["ended"]
