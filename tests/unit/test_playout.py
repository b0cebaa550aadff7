"""The playout model on hand-written arrival traces whose outcome is worked out by hand."""

import pytest

from pytomo.engine.playout import BUFFERING, ENDED, PLAYING, simulate
from pytomo.results import PlayoutParams


def linear(rate_media_per_s: float, step_s: float, end_s: float, bytes_per_media_s: int = 125_000):
    """Arrival events every step_s where media grows at rate_media_per_s seconds per wall second."""
    n = int(round(end_s / step_s))
    out = []
    for k in range(1, n + 1):
        t = k * step_s
        media = rate_media_per_s * t
        out.append((t, int(media * bytes_per_media_s), media))
    return out


def test_fast_link_starts_at_threshold_and_never_stalls():
    r = simulate(linear(2.0, 0.1, 10.0), end_s=10.0)
    assert r.time_to_start_s == pytest.approx(1.0)
    assert r.initial_data_bytes == 250_000
    assert r.stall_count == 0
    assert r.played_s == pytest.approx(9.0)
    assert r.buffer_at_end_s == pytest.approx(20.0 - 9.0)
    assert r.state_at_end == PLAYING


def test_slow_link_stalls_exactly_when_buffer_runs_out():
    # media = 0.5 t_k at each event t_k (constant until the next); start at t=4 (2 s of media).
    # After the event at 7.7 (3.85 s of media) the buffer 3.85 - (t - 4) falls to 0.1 s at t = 7.75, playhead 3.75.
    # Resume when more than 1 s is ahead: 0.5 t_k - 3.75 > 1 -> first event after 9.5, i.e. 9.6.
    r = simulate(linear(0.5, 0.1, 9.95), end_s=9.95)
    assert r.time_to_start_s == pytest.approx(4.0)
    assert r.stall_count == 1
    s = r.stalls[0]
    assert s.start_s == pytest.approx(7.75)
    assert s.media_position_s == pytest.approx(3.75)
    assert s.duration_s == pytest.approx(1.85)
    assert not s.ongoing


def test_stall_start_is_exact_between_arrivals():
    # 3 s of media at t=0.1, then nothing until t=5 when 10 s arrive.
    events = [(0.1, 375_000, 3.0), (5.0, 1_250_000, 10.0)]
    r = simulate(events, end_s=6.0)
    assert r.time_to_start_s == pytest.approx(0.1)
    assert r.initial_buffer_s == pytest.approx(3.0)
    assert [(round(s.start_s, 6), round(s.media_position_s, 6), round(s.duration_s, 6)) for s in r.stalls] == [
        (3.0, 2.9, 2.0)]
    assert r.stall_total_s == pytest.approx(2.0)
    assert r.played_s == pytest.approx(2.9 + 1.0)


def test_ongoing_stall_at_window_end_is_counted_and_flagged():
    events = [(0.1, 375_000, 3.0)]
    r = simulate(events, end_s=4.0)
    assert r.stall_count == 1
    assert r.stalls[0].ongoing
    assert r.stalls[0].duration_s == pytest.approx(1.0)
    assert r.state_at_end == BUFFERING
    assert r.buffer_at_end_s == pytest.approx(0.1)


def test_whole_short_media_starts_below_threshold_and_ends_without_stall():
    r = simulate([(0.2, 100_000, 1.5)], end_s=5.0, complete=True)
    assert r.time_to_start_s == pytest.approx(0.2)
    assert r.stall_count == 0
    assert r.state_at_end == ENDED
    assert r.played_s == pytest.approx(1.5)
    assert r.buffer_at_end_s == pytest.approx(0.0)


def test_media_duration_reached_counts_as_complete():
    r = simulate([(0.5, 1_000_000, 8.0)], end_s=20.0, media_duration_s=8.0)
    assert r.stall_count == 0 and r.state_at_end == ENDED


def test_no_start_inside_window():
    r = simulate(linear(0.5, 0.1, 3.0), end_s=3.0)
    assert r.time_to_start_s is None and not r.started
    assert r.stall_count == 0
    assert r.played_s == 0.0
    assert r.media_received_s == pytest.approx(1.5)


def test_thresholds_drive_the_model():
    trace = linear(0.5, 0.1, 20.0)
    default = simulate(trace, end_s=20.0)
    bigger = simulate(trace, end_s=20.0, params=PlayoutParams(initial_buffer_s=4.0))
    assert bigger.time_to_start_s == pytest.approx(8.0)
    assert default.time_to_start_s == pytest.approx(4.0)
    # a larger restart threshold makes each stall longer
    longer = simulate(trace, end_s=20.0, params=PlayoutParams(restart_buffer_s=3.0))
    assert longer.stalls[0].duration_s > default.stalls[0].duration_s


def test_2015_start_playback_bug_is_fixed():
    # 400 kbit/s link, 500 kbit/s media: 2 s of media need 1,000,000 bits -> 2.5 s. The 2015 tool put the
    # playhead at the duration of the last read (~0.1 s) and so counted a stall almost at once.
    trace = linear(0.8, 0.1, 6.0, bytes_per_media_s=62_500)
    r = simulate(trace, end_s=6.0)
    assert r.time_to_start_s == pytest.approx(2.5)
    assert r.stall_count == 0
    assert r.buffer_at_end_s == pytest.approx(0.8 * 6.0 - (6.0 - 2.5))
