"""Player profiles: the registry, the --player option, a resume threshold that grows, one playout per profile."""

import pytest

from pytomo.engine.analysis import play_profiles
from pytomo.engine.playout import simulate
from pytomo.engine.profiles import PROFILES, driving_profile, player_names, profile, profiles
from pytomo.errors import UsageError
from pytomo.results import DownloadAnalysis, PlayoutInput, PlayoutParams, Transfer, utc_now
from pytomo.settings import PLAYER_PROFILES, Settings, build


def test_every_named_profile_is_registered_and_cites_its_parameters():
    assert set(PROFILES) | {"2015"} == set(PLAYER_PROFILES)
    for p in PROFILES.values():
        assert p.cited, p.name
        assert all(c.source and c.value for c in p.cited)
        assert p.params().profile == p.name


def test_the_2015_profile_takes_the_settings_thresholds():
    s = Settings(initial_buffer_s=3.0, min_buffer_s=0.2, restart_buffer_s=1.5)
    assert profile("2015", s).params() == PlayoutParams(3.0, 0.2, 1.5)


def test_player_option_is_a_list_checked_against_the_registry():
    s = build(overrides={"player": "dashjs,2015,dashjs"})
    assert player_names(s.player) == ("dashjs", "2015")
    assert [p.name for p in profiles(s)] == ["dashjs", "2015"]
    assert driving_profile(s).name == "dashjs"
    with pytest.raises(UsageError, match="--player"):
        build(overrides={"player": "2015,vlc"})


def test_resume_threshold_grows_after_each_stall_up_to_its_ceiling():
    # 1 s of media at 0.1, then 0.5 s more every 1.5 s: every resume needs more media ahead than the one before.
    events = [(0.1, 1, 1.0)] + [(0.1 + 1.5 * k, k + 1, 1.0 + 0.5 * k) for k in range(1, 12)]
    fixed = simulate(events, 18.0, PlayoutParams(0.5, 0.0, 0.2))
    growing = simulate(events, 18.0, PlayoutParams(0.5, 0.0, 0.2, restart_growth=2.0, restart_max_s=0.8))
    assert growing.stall_count < fixed.stall_count
    assert growing.stall_total_s > fixed.stall_total_s
    # resumes need more than 0.2, 0.4, then at most 0.8 s ahead
    gaps = []
    for s in growing.stalls:
        resumed_at = s.start_s + s.duration_s
        media = max(m for t, _, m in events if t <= resumed_at + 1e-9)
        gaps.append(media - s.media_position_s)
    assert gaps[0] > 0.2 and gaps[1] > 0.4 and all(g > 0.8 - 1e-9 or g > 0.4 for g in gaps[2:])


def test_every_profile_plays_the_same_arrivals():
    t = Transfer(url="http://x/", address="127.0.0.1", started_at=utc_now(), window_s=5.0, bin_s=0.1)
    a = DownloadAnalysis(transfer=t, params=PlayoutParams())
    a.playout_input = PlayoutInput(((0.5, 100, 0.5), (1.5, 300, 2.5), (5.0, 900, 6.0)), 6.0, 30.0, False)
    chosen = profiles(build(overrides={"player": "2015,native,shaka"}))
    play_profiles(a, chosen, driving="2015")
    by = {p.profile: p for p in a.profile_playouts}
    assert set(by) == {"2015", "native", "shaka"}
    assert by["2015"].drove_fetch and not by["shaka"].drove_fetch
    assert by["2015"].result is not None and by["2015"].result.time_to_start_s == pytest.approx(1.5)  # 2.5 s >= -B 2
    # 0.5 s of media at 0.5 meets Shaka's 0.35 s; its first frame shows 0.05 s later (start_latency_s)
    assert by["shaka"].result is not None and by["shaka"].result.time_to_start_s == pytest.approx(0.55)


def test_a_download_without_playout_gets_a_row_per_profile_with_the_reason():
    t = Transfer(url="http://x/", address="127.0.0.1", started_at=utc_now(), window_s=5.0, bin_s=0.1)
    a = DownloadAnalysis(transfer=t, params=PlayoutParams(), playout_problem="not a media file")
    play_profiles(a, profiles(build(overrides={"player": "dashjs,hlsjs"})))
    assert [(p.profile, p.result, p.problem) for p in a.profile_playouts] == [
        ("dashjs", None, "not a media file"), ("hlsjs", None, "not a media file")]


# ---------------------------------------------------------------------- the picture with separate buffers

MSE = PlayoutParams(0.35, 0.15, 0.55, restart_growth=2.0, restart_max_s=3.15, profile="test")


def test_video_underflow_within_the_grace_freezes_the_picture_while_the_audio_plays_on():
    from pytomo.engine.picture import simulate_picture

    # 4 s of video and 8 s of audio at t=1; the next video segment (to 8 s) at t=6.5: the picture freezes at about
    # 4.85 (0.15 s before the video ends), the audio clock runs on, and the picture moves again at 6.5, 1.65 s on,
    # skipping the frames between: no `waiting`, but a frozen picture a viewer sees.
    events = [(1.0, 100, 4.0, 8.0), (6.5, 200, 8.0, 8.0)]
    r = simulate_picture(events, 12.0, MSE, grace_s=3.0)
    assert r.time_to_start_s == pytest.approx(1.0)
    assert r.stall_count == 2
    first = r.stalls[0]
    assert first.start_s == pytest.approx(4.85, abs=0.02) and first.duration_s == pytest.approx(1.65, abs=0.02)
    # the clock ran on during the freeze (5.5 s of media at 6.5): the video, and now the audio too, run out 0.15 s
    # before 8 s of media, at 8.85, and the clock stops
    assert r.stalls[1].start_s == pytest.approx(8.85, abs=0.02) and r.stalls[1].ongoing


def test_video_underflow_past_the_grace_stops_the_clock():
    from pytomo.engine.picture import BUFFERING, simulate_picture

    events = [(1.0, 100, 4.0, 30.0), (10.0, 200, 8.0, 30.0)]
    r = simulate_picture(events, 12.0, MSE, grace_s=3.0)
    s = r.stalls[0]
    assert s.start_s == pytest.approx(4.85, abs=0.02) and s.duration_s == pytest.approx(10.0 - 4.85, abs=0.02)
    assert any(p.state == BUFFERING for p in r.timeline)  # `waiting` 3 s after the freeze
    # the clock stopped 3 s into the freeze: the media position then was 3.85 + 3 = 6.85 s, 2.15 s of video skipped
    assert [p.playhead_s for p in r.timeline if p.state == BUFFERING][0] == pytest.approx(6.85, abs=0.02)


def test_audio_underflow_stops_the_clock_at_once_and_the_resume_threshold_grows():
    from pytomo.engine.picture import simulate_picture

    events = [(1.0, 1, 2.0, 1.0), (3.0, 2, 4.0, 1.5), (3.2, 3, 4.0, 1.9), (5.0, 4, 10.0, 10.0)]
    r = simulate_picture(events, 8.0, MSE, grace_s=3.0)
    # stops at 0.85 s of media (t = 1.85); 1.5 s of audio is only 0.65 ahead, > 0.55: resumes at 3.0; runs out at
    # 1.35 s of media (t=3.5; 1.9 s arrived at 3.2 gives 0.9 s ahead at 3.2, fine, stalls at 1.75 media, t = 3.9);
    # the threshold is now 0.15 + 0.8: resumes only at t=5
    assert [round(s.start_s, 2) for s in r.stalls] == [1.85, 3.9]
    assert r.stalls[0].duration_s == pytest.approx(1.15, abs=0.02)
    assert r.stalls[1].duration_s == pytest.approx(1.1, abs=0.02)


def test_the_chromium_profiles_play_separate_buffers_with_the_picture_model():
    t = Transfer(url="http://x/", address="127.0.0.1", started_at=utc_now(), window_s=12.0, bin_s=0.1)
    a = DownloadAnalysis(transfer=t, params=PlayoutParams())
    a.playout_input = PlayoutInput(((1.0, 100, 4.0), (6.5, 200, 8.0)), 12.0, 30.0, False,
                                   av_events=((1.0, 100, 4.0, 8.0), (6.5, 200, 8.0, 8.0)))
    play_profiles(a, profiles(build(overrides={"player": "2015,dashjs"})))
    by = {p.profile: p.result for p in a.profile_playouts}
    assert by["2015"] is not None and by["dashjs"] is not None
    # the 2015 model stops the playhead at the first stall, so its second comes 4 s of media after 6.5; with the
    # audio playing on through the frozen picture, the second segment runs out 1.65 s sooner (1.6: dash.js's first
    # frame shows 0.05 s after the threshold is met)
    second_2015, second_dashjs = by["2015"].stalls[1].start_s, by["dashjs"].stalls[1].start_s
    assert second_2015 - second_dashjs == pytest.approx(1.6, abs=0.03)
