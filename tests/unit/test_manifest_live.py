"""Live HLS: the tags a live player follows (RFC 8216 4.3.3), where it starts, when it reloads, and the latency to
the live edge from EXT-X-PROGRAM-DATE-TIME."""

from __future__ import annotations

from datetime import datetime

import pytest

from pytomo.engine.live import measure_latency, reload_interval_s, start_index
from pytomo.engine.playout import simulate
from pytomo.errors import ManifestError
from pytomo.media.manifest import parse_hls, parse_media_playlist
from pytomo.results import LiveFacts, PlayoutParams

URL = "http://cdn.test/live/index.m3u8"
T0 = datetime.fromisoformat("2026-12-06T19:06:35.250+00:00").timestamp()

# as ffmpeg's hls muxer writes it with -hls_flags program_date_time (the date after EXTINF)
FFMPEG_LIVE = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T19:06:35.250+0000
seg00007.ts
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T19:06:37.250+0000
seg00008.ts
#EXTINF:2.000000,
seg00009.ts
#EXT-X-DISCONTINUITY
#EXTINF:2.000000,
seg00010.ts
#EXTINF:1.500000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T19:07:00Z
seg00011.ts
"""


def test_a_playlist_without_endlist_is_live_with_its_tags():
    pl = parse_media_playlist(URL, FFMPEG_LIVE)
    assert pl.live and not pl.ended and pl.playlist_type is None
    assert pl.target_duration_s == 2.0 and pl.media_sequence == 7
    assert [s.number for s in pl.segments] == [7, 8, 9, 10, 11]
    dates = [s.program_date_s for s in pl.segments]
    assert dates[0] == pytest.approx(T0) and dates[1] == pytest.approx(T0 + 2)
    assert dates[2] == pytest.approx(T0 + 4)  # carried on from the previous date and duration
    assert dates[3] is None  # after a discontinuity without a date of its own: not known
    assert dates[4] == pytest.approx(T0 + 24.75)
    assert [s.discontinuity for s in pl.segments] == [False, False, False, True, False]
    pres = parse_hls(URL, FFMPEG_LIVE, lambda u: "")
    assert pres.live and pres.duration_s is None
    assert pres.video[0].playlist_url == URL and pres.video[0].target_duration_s == 2.0


@pytest.mark.parametrize(("tail", "live"), [("#EXT-X-ENDLIST\n", False), ("#EXT-X-PLAYLIST-TYPE:EVENT\n", True),
                                            ("#EXT-X-PLAYLIST-TYPE:VOD\n", False),
                                            ("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-ENDLIST\n", False)])
def test_endlist_and_playlist_type(tail, live):
    pres = parse_hls(URL, FFMPEG_LIVE + tail, lambda u: "")
    assert pres.live is live
    assert (pres.duration_s is None) is live


def test_start_and_discontinuity_sequence():
    text = ("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-START:TIME-OFFSET=-5.5,PRECISE=YES\n"
            "#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXTINF:4,\na.ts\n")
    pl = parse_media_playlist(URL, text)
    assert pl.start_offset_s == -5.5 and pl.start_precise and pl.discontinuity_sequence == 3
    master = ("#EXTM3U\n#EXT-X-START:TIME-OFFSET=2\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv.m3u8\n")
    pres = parse_hls(URL, master, lambda u: "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n")
    assert pres.live and pres.video[0].start_offset_s == 2.0


@pytest.mark.parametrize("line", ["#EXT-X-PLAYLIST-TYPE:LIVE", "#EXT-X-TARGETDURATION:-1", "#EXT-X-START:PRECISE=YES",
                                  "#EXT-X-START:TIME-OFFSET=1e400", "#EXT-X-DISCONTINUITY-SEQUENCE:x"])
def test_bad_live_tags_are_manifest_errors(line):
    with pytest.raises(ManifestError):
        parse_media_playlist(URL, f"#EXTM3U\n{line}\n#EXTINF:2,\na.ts\n")


@pytest.mark.parametrize("date", ["yesterday", "9" * 500, "2026-13-45T99:00:00Z", "99999-01-01T00:00:00Z"])
def test_an_unreadable_date_is_no_date(date):
    text = f"#EXTM3U\n#EXTINF:2,\n#EXT-X-PROGRAM-DATE-TIME:{date}\na.ts\n#EXTINF:2,\nb.ts\n"
    assert [s.program_date_s for s in parse_media_playlist(URL, text).segments] == [None, None]
    assert parse_media_playlist(URL, "#EXTM3U\n#EXT-X-TARGETDURATION:6.006\n#EXTINF:6,\na.ts\n").target_duration_s \
        == 6.006


def test_start_three_target_durations_from_the_end():
    segs = parse_media_playlist(URL, FFMPEG_LIVE).segments  # 9.5 s: from the end 6 s back is 3.5 s, in seg 8
    assert start_index(segs, 2.0, None) == 1
    assert start_index(segs, 4.0, None) == 0  # shorter than three target durations: the first segment
    assert start_index(segs, 2.0, -1.0) == 4  # EXT-X-START from the end
    assert start_index(segs, 2.0, 4.5) == 2  # and from the start
    assert start_index(segs, 2.0, 1e9) == 4 and start_index(segs, 2.0, -1e9) == 0
    assert start_index((), 2.0, None) == 0


def test_reload_schedule():
    assert reload_interval_s(2.0, True, 2.0) == 2.0
    assert reload_interval_s(2.0, False, 2.0) == 1.0
    assert reload_interval_s(None, True, 3.0) == 3.0
    assert reload_interval_s(0.0, False, 0.0) == 0.5  # a hostile target duration: never a busy loop


def test_latency_is_wall_clock_minus_the_date_playing():
    facts = LiveFacts(wall0_s=T0 + 10.0)
    facts.played = [(0.0, 2.0, T0 + 4.0), (2.0, 2.0, T0 + 6.0)]
    # both segments arrive at 1 s: playback starts then (2015 thresholds: 2 s buffered), runs dry at 5 s
    playout = simulate([(1.0, 100, 4.0)], 6.0, PlayoutParams(initial_buffer_s=2.0, min_buffer_s=0.0))
    measure_latency(facts, playout)
    assert facts.latency_problem is None
    t, latency, playhead = facts.latency[0]
    assert t == 1.0 and playhead == 0.0 and latency == pytest.approx(10.0 + 1.0 - 4.0)
    assert facts.latency[1][1] == pytest.approx(7.0)  # playing: latency stays
    assert facts.latency[-1][1] == pytest.approx(8.0)  # stalled from 5 s: it grows with the wall clock
    facts.played = [(0.0, 2.0, None)]
    measure_latency(facts, playout)
    assert facts.latency == [] and "PROGRAM-DATE-TIME" in (facts.latency_problem or "")
