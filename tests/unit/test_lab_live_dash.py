"""The lab's live DASH channel: what a scenario may ask for, ffmpeg's dash muxer command, and the watcher's reading
of an MPD version."""

from __future__ import annotations

from pytomo.lab.live import LiveSpec
from pytomo.lab.live_dash import MPD, DashLiveChannel, read_mpd_version
from pytomo.lab.scenario import parse_scenario

NGINX = {"name": "n", "ip": "127.77.1.2", "software": "nginx"}


def test_a_live_dash_channel_is_ffmpegs_dash_muxer_in_real_time_video_only():
    scenario = parse_scenario({"servers": [NGINX], "videos": [{"id": "ch", "server": "n", "delivery": "dash",
                                                               "live": True, "live_timeline": True}]}, "live.toml")
    assert scenario.videos[0].live and scenario.videos[0].live_timeline
    channel = DashLiveChannel("ch", LiveSpec(segment_s=2.0, bitrate_bps=300_000), timeline=True)
    try:
        cmd = channel.command()
    finally:
        channel.stop()
    assert cmd[cmd.index("-f", cmd.index("-pix_fmt")) + 1] == "dash" and cmd[-1].endswith(MPD)
    for option, value in (("-seg_duration", "2"), ("-window_size", "5"), ("-use_template", "1"),
                          ("-use_timeline", "1"), ("-streaming", "0"), ("-ldash", "0"), ("-map", "0:v")):
        assert cmd[cmd.index(option) + 1] == value
    version = read_mpd_version('<MPD type="dynamic" publishTime="2026-12-06T19:42:53.044Z" '
                               'minimumUpdatePeriod="PT2S"><Period start="PT0S"/></MPD>')
    assert version["type"] == "dynamic" and version["publishTime"] == "2026-12-06T19:42:53.044Z"
    assert version["minimumUpdatePeriod"] == "PT2S" and not version["ended"]
    assert version["availabilityStartTime"] is None
