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
    assert by["shaka"].result is not None and by["shaka"].result.time_to_start_s == pytest.approx(0.5)


def test_a_download_without_playout_gets_a_row_per_profile_with_the_reason():
    t = Transfer(url="http://x/", address="127.0.0.1", started_at=utc_now(), window_s=5.0, bin_s=0.1)
    a = DownloadAnalysis(transfer=t, params=PlayoutParams(), playout_problem="not a media file")
    play_profiles(a, profiles(build(overrides={"player": "dashjs,hlsjs"})))
    assert [(p.profile, p.result, p.problem) for p in a.profile_playouts] == [
        ("dashjs", None, "not a media file"), ("hlsjs", None, "not a media file")]
