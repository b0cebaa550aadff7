"""The derived figures of a reference player's account, from made-up samples and frames; the JSON round trip;
``pytomo lab play``'s exit status when the player cannot run."""

from __future__ import annotations

from pytomo.cli import main
from pytomo.lab.reference import (
    host_rules,
    live_latency,
    played_s,
    rendition_switches,
    stalls_by_events,
    stalls_by_picture,
    time_to_start,
)
from pytomo.results.reference import PlayerAccount, StallInterval


def _samples(until_s: float, paused_from: float | None = None) -> list[dict]:
    return [{"t_s": round(i * 0.1, 3), "current_time_s": max(0.0, i * 0.1 - 0.5), "paused": paused_from is not None
             and i * 0.1 >= paused_from, "ended": False, "total_video_frames": i} for i in range(int(until_s * 10) + 1)]


def _frames(start_s: float, until_s: float, freeze: tuple[float, float] | None = None) -> list[tuple[float, float]]:
    """25 frames/s from start_s (first picture at media time 0 shown 0.2 s before), frozen over ``freeze``."""
    out = [(start_s - 0.2, 0.0)]
    t, media = start_s, 0.0
    while t < until_s:
        if freeze is None or not freeze[0] < t < freeze[1]:
            media += 0.04
            out.append((round(t + 0.04, 3), round(media, 3)))
        t += 0.04
    return out


def test_time_to_start_is_when_the_first_picture_began_to_move():
    assert abs(time_to_start(_frames(0.5, 5.0)) - 0.5) < 1e-6
    assert time_to_start([(0.3, 0.0), (0.4, 0.0)]) is None  # the first picture never moved
    assert time_to_start([], _samples(3.0)) == 0.5  # without frames: the playhead


def test_a_seek_is_not_a_start():
    """Shaka Player on a live channel below its bitrate seeks to its edge again and again and shows nothing."""
    seeking = [{"t_s": 0.1 * i, "current_time_s": 0.0 if i < 3 else 230.0 + 0.5 * (i // 10), "paused": False,
                "ended": False, "ready_state": 1} for i in range(60)]
    assert time_to_start([], seeking) is None
    shown = [{**s, "ready_state": 2} for s in seeking]  # the jumps are seeks, the rest does not move with the clock
    assert time_to_start([], shown) is None


def test_live_latency_is_read_from_the_start_on():
    samples = [{"t_s": 0.1 * i, "latency_s": None if i < 2 else 9.0 if i < 5 else 6.0 + 0.01 * i} for i in range(30)]
    assert live_latency(samples, 0.5) == (6.05, 6.29)
    assert live_latency(samples, None) == (None, None)
    assert live_latency([{"t_s": 1.0, "latency_s": None}], 0.5) == (None, None)  # on demand: no date


def test_picture_stalls_are_frozen_frames_while_playing():
    frames = _frames(0.5, 10.0, freeze=(3.0, 4.5))
    stalls = stalls_by_picture(frames, _samples(10.0), 0.5, 10.0)
    assert len(stalls) == 1 and abs(stalls[0].start_s - 3.0) < 0.05 and abs(stalls[0].end_s - 4.5) < 0.05
    assert stalls_by_picture(frames, _samples(10.0, paused_from=2.0), 0.5, 10.0) == ()  # paused: not a stall
    short = _frames(0.5, 10.0, freeze=(3.0, 3.2))  # 0.2 s: under the threshold
    assert stalls_by_picture(short, _samples(10.0), 0.5, 10.0) == ()
    ongoing = stalls_by_picture(_frames(0.5, 6.0), _samples(8.0), 0.5, 8.0)
    assert ongoing == (StallInterval(6.0, 8.0, ongoing=True),) or (len(ongoing) == 1 and ongoing[0].ongoing)


def test_event_stalls_are_waiting_to_playing_after_start():
    def element(name: str, t_s: float) -> dict:
        return {"source": "element", "name": name, "t_s": t_s}

    events = [element("waiting", 0.1), element("playing", 0.5),
              {"source": "dashjs", "name": "BUFFER_EMPTY", "t_s": 2.0}, element("waiting", 3.0),
              element("playing", 4.0), element("waiting", 7.0)]
    assert stalls_by_events(events, 0.5, 9.0) == (StallInterval(3.0, 4.0), StallInterval(7.0, 9.0, ongoing=True))


def test_played_and_switches():
    assert played_s(_frames(0.5, 5.0), _samples(5.0), 0.5) == 4.5
    assert played_s([], _samples(5.0), None) is None
    renditions = [{"source": "picture", "height": 360, "width": 640},
                  {"source": "hlsjs", "bitrate_bps": 1, "height": 240},
                  {"source": "hlsjs", "bitrate_bps": 1, "height": 240},
                  {"source": "hlsjs", "bitrate_bps": 2, "height": 480}]
    assert rendition_switches(renditions) == 1
    assert rendition_switches(renditions[:1]) == 0
    assert rendition_switches([]) is None


def test_host_rules_map_lab_names_and_nothing_else():
    rules = host_rules({"a.lab.pytomo.test": "127.77.1.1"})
    assert rules.startswith("MAP a.lab.pytomo.test 127.77.1.1,") and "MAP * ~NOTFOUND" in rules


def test_account_round_trips_through_json():
    import json

    account = PlayerAccount(player="native", player_version="1", browser="Chromium", url="http://x/", rendition="auto",
                            window_s=5.0, origin_epoch_s=1.0, samples=({"t_s": 0.0},), frames=((0.1, 0.0),),
                            events=(), requests=({"url": "http://x/", "bytes": 3},), renditions=(), errors=(),
                            time_to_start_s=0.2, stalls_by_events=(), stalls_by_picture=(StallInterval(1.0, 2.0),),
                            stall_time_by_events_s=0.0, stall_time_by_picture_s=1.0, played_s=4.0,
                            rendition_switches=0, bytes_received=3, request_count=1,
                            unmeasured={"x": "because"})
    assert PlayerAccount.from_dict(json.loads(json.dumps(account.to_dict()))) == account
    assert any(line.startswith("stalls_by_picture: 1 [1.00-2.00]") for line in account.summary_lines())


def test_lab_play_without_chromium_is_a_usage_error(capsys):
    status = main(["lab", "play", "--player", "native", "--video", "mp4-x0_6", "--chromium", "/nonexistent/chromium"])
    assert status == 2
    assert "chromium" in capsys.readouterr().err
