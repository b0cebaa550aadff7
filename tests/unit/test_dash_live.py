"""Live DASH: a dynamic MPD is known as live, its segments become available by the clock ($Number$ and a
SegmentTimeline with r="-1"), and the live player follows it against a scripted server (starts at the live edge
minus the delay, refetches the MPD every minimumUpdatePeriod, ends with the window or when the MPD turns static)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pytomo.engine.dash_live import LiveDashPlay, live_delay_s, start_number
from pytomo.engine.mpd_live import available, read_live_mpd
from pytomo.errors import ManifestError
from pytomo.media.manifest import parse_dash
from tests.unit.test_live_player import Player, ScriptedRun

URL = "http://cdn.test/s/live.mpd"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mpd(ast: float, *, kind: str = "dynamic", timeline: str | None = None, delay: str | None = "PT2S",
        update: str = "PT1S", extra: str = "") -> str:
    template = ('<SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s" '
                'media="c-$RepresentationID$-$Number%05d$.m4s" startNumber="1"'
                + (f"><SegmentTimeline>{timeline}</SegmentTimeline></SegmentTemplate>" if timeline
                   else ' duration="1000"/>'))
    spd = f' suggestedPresentationDelay="{delay}"' if delay else ""
    return (f'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{kind}" '
            f'availabilityStartTime="{iso(ast)}" publishTime="{iso(ast)}" minimumUpdatePeriod="{update}" '
            f'timeShiftBufferDepth="PT5S"{spd} {extra}><UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" '
            f'value="http://127.77.0.1/time"/><Period id="0" start="PT0S"><AdaptationSet contentType="video">'
            f'<Representation id="v" mimeType="video/mp4" bandwidth="500000">{template}</Representation>'
            "</AdaptationSet></Period></MPD>")


def test_a_dynamic_mpd_is_live_and_its_fields_are_read():
    ast = 1_800_000_000.0
    pres = parse_dash(URL, mpd(ast))
    assert pres.live and pres.duration_s is None and pres.video[0].segments == ()
    m = read_live_mpd(URL, mpd(ast))
    assert (m.dynamic, m.availability_start_s, m.min_update_s, m.time_shift_s, m.suggested_delay_s) == (
        True, ast, 1.0, 5.0, 2.0)
    assert m.utc_timing == (("urn:mpeg:dash:utc:http-xsdate:2014", "http://127.77.0.1/time"),)
    assert m.clock_offset_s == 0.0  # only a direct UTCTiming is used; no time server is asked
    assert not parse_dash(URL, mpd(ast, kind="static").replace("minimumUpdatePeriod", "mediaPresentationDuration")
                          ).live


def test_number_segments_are_available_once_their_end_has_passed_within_the_time_shift_buffer():
    ast = 1_800_000_000.0
    m = read_live_mpd(URL, mpd(ast))
    rep = m.reps["v"]
    assert available(m, rep, ast + 0.99, 100) == []
    assert [s.number for s in available(m, rep, ast + 1.0, 100)] == [1]
    segs = available(m, rep, ast + 10.5, 100)
    assert [s.number for s in segs] == [6, 7, 8, 9, 10]  # ending from 5.5 s (10.5 s less 5 s of time shift) to 10.5 s
    assert segs[-1].url == "http://cdn.test/s/c-v-00010.m4s" and segs[-1].program_date_s == ast + 9.0
    assert [s.number for s in available(m, rep, ast + 1e6, 3)] == [999998, 999999, 1000000]  # bounded


def test_a_timeline_repeat_of_minus_one_runs_to_the_live_edge_and_a_hostile_one_costs_nothing():
    ast = 1_800_000_000.0
    m = read_live_mpd(URL, mpd(ast, timeline='<S t="0" d="1000" r="-1"/>'))
    assert [s.number for s in available(m, m.reps["v"], ast + 3.2, 100)] == [1, 2, 3]
    m = read_live_mpd(URL, mpd(ast, timeline='<S t="0" d="1000" r="2"/><S d="500" r="-1"/>'))
    segs = available(m, m.reps["v"], ast + 4.0, 100)
    assert [(s.number, s.start_s, s.duration_s) for s in segs] == [(1, 0.0, 1.0), (2, 1.0, 1.0), (3, 2.0, 1.0),
                                                                  (4, 3.0, 0.5), (5, 3.5, 0.5)]
    hostile = read_live_mpd(URL, mpd(0.0, timeline='<S t="0" d="1" r="9223372036854775000"/>'))
    started = time.perf_counter()
    assert len(available(hostile, hostile.reps["v"], time.time(), 1000)) == 1000
    assert time.perf_counter() - started < 1.0


def test_unreadable_live_fields_are_manifest_errors():
    with pytest.raises(ManifestError):
        read_live_mpd(URL, mpd(0.0).replace('availabilityStartTime="', 'availabilityStartTime="x'))
    m = read_live_mpd(URL, mpd(0.0).replace("availabilityStartTime", "data-ast"))
    with pytest.raises(ManifestError):
        available(m, m.reps["v"], time.time(), 10)


def test_the_start_is_the_live_edge_minus_the_suggested_delay_else_four_segments():
    ast = 1_800_000_000.0
    m = read_live_mpd(URL, mpd(ast))
    segs = available(m, m.reps["v"], ast + 10.5, 100)
    assert live_delay_s(m, m.reps["v"]) == 2.0 and start_number(segs, 2.0) == 9
    bare = read_live_mpd(URL, mpd(ast, delay=None))
    assert live_delay_s(bare, bare.reps["v"]) == 4.0 and start_number(segs, 4.0) == 7


def play(run: ScriptedRun, deadline: float = 2.5) -> LiveDashPlay:
    first = run.playlists()
    run.fetch(URL, "manifest", "manifest", None)
    pres = parse_dash(URL, first)
    live = LiveDashPlay(Player(), run, pres, pres.video[0], deadline, first)
    live.play()
    return live


def test_the_player_fetches_segments_as_they_become_available_and_refetches_the_mpd():
    ast = time.time() - 6.5  # the live edge at 6 s for another half second
    run = ScriptedRun(lambda: mpd(ast))
    live = play(run)
    assert run.agg.ended_by == "window"
    media = [r for r in run.session.records if r.kind == "media"]
    numbers = [r.media_sequence for r in media]
    assert numbers[0] == 5 and numbers == list(range(5, 5 + len(numbers)))  # edge (6 s) minus 2 s
    for r in media:  # never asked for before its end had passed
        assert ast + (r.media_sequence or 0) <= run.wall0 + r.trequest_s + 0.05
    reloads = [r for r in run.session.records if r.kind == "reload"]
    assert 1 <= len(reloads) <= 3 and live.facts.reloads == len(reloads)
    assert all(r.playlist_changed is False for r in reloads)  # the same MPD text each time
    assert live.facts.missing == 0 and live.facts.target_duration_s is None
    assert all(d is not None for _s, _d, d in live.facts.played)


def test_an_mpd_turned_static_ends_the_stream_and_404_segments_are_counted_missing():
    ast = time.time() - 6.5
    loads = iter([mpd(ast)] + [mpd(ast, kind="static")] * 10)
    run = ScriptedRun(lambda: next(loads), gone={"c-v-00005.m4s"})
    live = play(run, deadline=4.0)
    assert run.agg.ended_by == "eof"
    assert live.facts.missing == 1 and live.facts.reloads == 1
