"""The live HLS player against a scripted server: it ends with the window whatever the playlist says (a hostile
target duration of 0 s reloads at most every 0.5 s), counts missing and skipped segments, and ends at ENDLIST."""

from __future__ import annotations

import threading
import time

from pytomo.engine.live import RELOAD_FLOOR_S, LivePlay
from pytomo.media.manifest import parse_hls
from pytomo.results import PlayoutParams, SegmentedSession, SegmentRecord, Transfer, utc_now
from pytomo.settings import Settings

URL = "http://cdn.test/live.m3u8"


def playlist(first: int, count: int, target: int = 1, end: bool = False) -> str:
    lines = ["#EXTM3U", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for n in range(first, first + count):
        lines += ["#EXTINF:1.0,", f"s{n}.ts"]
    return "\n".join(lines + (["#EXT-X-ENDLIST"] if end else [])) + "\n"


class ScriptedRun:
    """A play whose requests a script answers at once: playlists from ``playlists()``, segments 200 or 404."""

    def __init__(self, playlists, gone=()) -> None:
        self.t0, self.wall0 = time.perf_counter(), time.time()
        self.agg = Transfer(url=URL, address="127.0.0.1", started_at=utc_now(), window_s=2.0, bin_s=0.1)
        self.session = SegmentedSession(presentation=None, transfer=self.agg)
        self.state = {"bytes": 0}
        self.lock = threading.Lock()
        self.playlists, self.gone = playlists, set(gone)

    def fetch(self, target, stream, kind, track, seg=None, window_s=30.0, byte_range=None, should_stop=None):
        now = time.perf_counter() - self.t0
        status = 404 if target.rsplit("/", 1)[1] in self.gone else 200
        body = self.playlists().encode() if kind in ("manifest", "reload") else b"x" * 1000
        tr = Transfer(url=target, address="127.0.0.1", started_at=utc_now(), window_s=window_s, bin_s=0.1,
                      status=status, head=body if status == 200 else b"", ended_by="eof")
        with self.lock:
            self.state["bytes"] += len(body)
            rec = SegmentRecord(len(self.session.records), stream, kind, None, None, target, status, now, now, now,
                                len(body), seg.start_s if seg else None, seg.duration_s if seg else None,
                                status == 200)
            self.session.records.append(rec)
        return tr, rec

    def fetch_part(self, target, track, kind, seg, window_s, byte_range):
        return self.fetch(target, track.stream, kind, track, seg)[1]


class Player:
    def __init__(self) -> None:
        self.s = Settings()
        self.params = PlayoutParams()
        self.should_stop = lambda: False

    def goal_s(self, track, top, segment_s):
        return 30.0


def play(run: ScriptedRun, deadline: float = 2.0) -> LivePlay:
    first = run.playlists()
    run.fetch(URL, "manifest", "manifest", None)
    pres = parse_hls(URL, first, lambda u: "")
    live = LivePlay(Player(), run, pres, pres.video[0], deadline)
    live.play()
    return live


def test_a_hostile_target_duration_reloads_no_faster_than_the_floor_and_the_window_ends_it():
    run = ScriptedRun(lambda: playlist(0, 3, target=0))
    started = time.perf_counter()
    live = play(run)
    assert time.perf_counter() - started < 3.0
    assert run.agg.ended_by == "window"
    assert 1 <= live.facts.reloads <= 2.0 / RELOAD_FLOOR_S + 1
    assert live.facts.unchanged_reloads == live.facts.reloads  # it never changed
    reloads = [r for r in run.session.records if r.kind == "reload"]
    assert all(r.playlist_changed is False and r.new_segments == 0 and r.media_sequence == 0 for r in reloads)


def test_missing_segments_are_counted_and_passed_over_and_endlist_ends_the_play():
    loads = iter([playlist(0, 4), playlist(0, 5, end=True)])
    last = {"text": ""}

    def script() -> str:
        last["text"] = next(loads, last["text"])
        return last["text"]

    run = ScriptedRun(script, gone={"s2.ts"})
    live = play(run, deadline=5.0)
    assert run.agg.ended_by == "eof"
    media = [r for r in run.session.records if r.kind == "media"]
    assert [r.media_sequence for r in media] == [1, 2, 3, 4]  # 4 s listed: three target durations back is s1
    assert live.facts.missing == 1 and live.facts.skipped == 0 and live.facts.start_number == 1
    assert [r.media_start_s for r in media if r.complete] == [0.0, 1.0, 2.0]  # one after the other
    reload = next(r for r in run.session.records if r.kind == "reload")
    assert reload.playlist_changed is True and reload.new_segments == 1


def test_segments_that_left_the_playlist_are_skipped():
    loads = iter([playlist(0, 4), playlist(20, 4)])
    last = {"text": ""}

    def script() -> str:
        last["text"] = next(loads, last["text"])
        return last["text"]

    live = play(ScriptedRun(script), deadline=1.5)
    # s1..s3 fetched at once, then the window moved to s20..s23: s4..s19 left before they could be fetched, and
    # play goes on where it would start, three target durations (3 s) from the end: at s21, as hls.js does
    assert live.facts.skipped == 17
    assert live.next_number == 24
    fetched = [r.url.rsplit("/", 1)[1] for r in live.run.session.records if r.kind == "media"]
    assert "s20.ts" not in fetched and fetched[-3:] == ["s21.ts", "s22.ts", "s23.ts"]


def test_a_segment_in_flight_that_left_the_playlist_while_starved_is_abandoned():
    """hls.js: a playlist update that leaves the playhead behind the window, buffer starving, seeks to the live sync
    position and aborts the fragment in flight. s3 takes forever; the window moves to s20..s23 meanwhile."""
    loads = iter([playlist(0, 4), playlist(0, 4), playlist(20, 4)])
    last = {"text": ""}

    def script() -> str:
        last["text"] = next(loads, last["text"])
        return last["text"]

    class Slow(ScriptedRun):
        def fetch(self, target, stream, kind, track, seg=None, window_s=30.0, byte_range=None, should_stop=None):
            if target.endswith("/s1.ts"):  # the first segment asked (the start is 3 s from the end): it hangs
                until = time.perf_counter() + 3.0
                while time.perf_counter() < until and not (should_stop and should_stop()):
                    time.sleep(0.01)
                tr = Transfer(url=target, address="127.0.0.1", started_at=utc_now(), window_s=window_s, bin_s=0.1,
                              status=200, ended_by="interrupted")
                with self.lock:
                    rec = SegmentRecord(len(self.session.records), stream, kind, None, None, target, 200, 0.0, 0.0,
                                        0.0, 0, 0.0, 1.0, False)
                    self.session.records.append(rec)
                return tr, rec
            return super().fetch(target, stream, kind, track, seg, window_s, byte_range, should_stop)

    started = time.perf_counter()
    live = play(Slow(script), deadline=2.5)
    assert time.perf_counter() - started < 2.9  # abandoned at the reload, not after its 3 s
    media = [r.url.rsplit("/", 1)[1] for r in live.run.session.records if r.kind == "media"]
    assert media[0] == "s1.ts" and media[1:4] == ["s21.ts", "s22.ts", "s23.ts"]
    assert live.facts.skipped == 21 - 1  # s1 abandoned, s2..s20 jumped over
    abandoned = live.run.session.records[[r.url.rsplit("/", 1)[1] for r in live.run.session.records].index("s1.ts")]
    assert abandoned.error and "abandoned" in abandoned.error


def test_a_failure_on_the_reload_thread_is_the_play_s_outcome():
    class Failing(ScriptedRun):
        def fetch(self, target, stream, kind, track, seg=None, window_s=30.0, byte_range=None, should_stop=None):
            if kind == "reload":
                raise RuntimeError("the reload broke")
            return super().fetch(target, stream, kind, track, seg, window_s, byte_range, should_stop)

    run = Failing(lambda: playlist(0, 4))
    started = time.perf_counter()
    try:
        play(run, deadline=5.0)
    except RuntimeError as exc:
        assert "the reload broke" in str(exc)
    else:
        raise AssertionError("the reload thread's failure was lost")
    assert time.perf_counter() - started < 3.0  # it ended the play, not the window
