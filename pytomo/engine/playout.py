"""Playout-buffer emulation: the 2015 state machine, exact in continuous time, with no I/O and no clock.

The download is described by arrival events ``(t_s, received_bytes, playable_s)``: from wall time ``t_s`` (seconds
since the request was sent) the first ``playable_s`` seconds of media are in the buffer. Between events that
amount is constant. The player:

- waits in INITIAL_BUFFERING until at least ``initial_buffer_s`` of media is playable (or the whole media has
  arrived), then plays;
- while PLAYING, the playhead advances one media second per wall second; when the buffered media ahead of the
  playhead falls to ``min_buffer_s`` the player stalls (BUFFERING), unless the whole media has already arrived;
- in BUFFERING it resumes as soon as more than ``restart_buffer_s`` of media is ahead of the playhead, or the
  whole media has arrived.

Stall start times are computed exactly between events, not only at arrival times. The 2015 tool's
``start_playback`` bug (it kept the duration of one read instead of the elapsed time) is not reproduced: the
playhead starts at the wall time at which the threshold was crossed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

INITIAL_BUFFERING = "initial_buffering"
PLAYING = "playing"
BUFFERING = "buffering"
ENDED = "ended"

_EPS = 1e-9


@dataclass(frozen=True)
class PlayoutParams:
    """Thresholds of the player, in seconds of media."""

    initial_buffer_s: float = 2.0
    min_buffer_s: float = 0.1
    restart_buffer_s: float = 1.0


@dataclass(frozen=True)
class Stall:
    """One interruption after playback started: wall start (s since request), media position, duration."""

    start_s: float
    media_position_s: float
    duration_s: float
    ongoing: bool = False  # still stalled when the window closed


@dataclass(frozen=True)
class BufferPoint:
    """The buffer level right after a state change or arrival, for the playout timeline."""

    t_s: float
    state: str
    playhead_s: float
    buffer_s: float


@dataclass(frozen=True)
class PlayoutResult:
    """What a viewer lived through during the measured window."""

    params: PlayoutParams
    end_s: float
    time_to_start_s: float | None
    initial_data_bytes: int | None
    initial_buffer_s: float | None
    stalls: tuple[Stall, ...]
    buffer_at_end_s: float
    media_received_s: float
    played_s: float
    state_at_end: str
    timeline: tuple[BufferPoint, ...]

    @property
    def started(self) -> bool:
        """True when playback started inside the window."""
        return self.time_to_start_s is not None

    @property
    def stall_count(self) -> int:
        """Number of interruptions after playback started (the initial buffering is not one)."""
        return len(self.stalls)

    @property
    def stall_total_s(self) -> float:
        """Total time spent stalled after playback started, in seconds."""
        return sum(s.duration_s for s in self.stalls)


def simulate(events: Iterable[tuple[float, int, float]], end_s: float, params: PlayoutParams | None = None,
             media_duration_s: float | None = None, complete: bool = False) -> PlayoutResult:
    """Run the player over arrival events up to wall time ``end_s``.

    ``complete`` says the last event delivered the whole file (the download ended at end of file); with
    ``media_duration_s`` known, an event that makes the whole duration playable also counts as complete.
    """
    p = params or PlayoutParams()
    evs = list(events)
    state = INITIAL_BUFFERING
    now = 0.0
    media = 0.0
    playhead = 0.0
    played = 0.0
    whole = False
    stall_start = 0.0
    stall_pos = 0.0
    stalls: list[Stall] = []
    timeline: list[BufferPoint] = []
    time_to_start: float | None = None
    initial_bytes: int | None = None
    initial_buffer: float | None = None

    def advance(until: float) -> None:
        """Let wall time run from ``now`` to ``until`` with a constant amount of media."""
        nonlocal now, playhead, played, state, stall_start, stall_pos
        if until <= now:
            return
        if state == PLAYING:
            limit = media if whole else media - p.min_buffer_s
            reach = now + max(0.0, limit - playhead)
            if reach < until - _EPS:
                played += reach - now
                playhead = max(playhead, limit)
                if whole:
                    state = ENDED
                else:
                    state = BUFFERING
                    stall_start, stall_pos = reach, playhead
                timeline.append(BufferPoint(reach, state, playhead, media - playhead))
            else:
                played += until - now
                playhead += until - now
        now = until

    for i, (t_s, received, playable_s) in enumerate(evs):
        t = min(max(t_s, now), end_s)
        advance(t)
        if t_s > end_s:
            break
        media = max(media, playable_s)
        last = i == len(evs) - 1
        whole = whole or (complete and last) or (
            media_duration_s is not None and media >= media_duration_s - 1e-6)
        if state == INITIAL_BUFFERING and (media >= p.initial_buffer_s or (whole and media > 0)):
            state = PLAYING
            time_to_start, initial_bytes, initial_buffer = t, int(received), media
        elif state == BUFFERING and (media - playhead > p.restart_buffer_s or whole):
            stalls.append(Stall(stall_start, stall_pos, t - stall_start))
            state = PLAYING
        elif state == PLAYING and not whole and media - playhead <= p.min_buffer_s:
            state = BUFFERING
            stall_start, stall_pos = t, playhead
        timeline.append(BufferPoint(t, state, playhead, media - playhead))
    advance(end_s)
    if state == BUFFERING:
        stalls.append(Stall(stall_start, stall_pos, end_s - stall_start, ongoing=True))
    timeline.append(BufferPoint(end_s, state, playhead, media - playhead))
    return PlayoutResult(
        params=p, end_s=end_s, time_to_start_s=time_to_start, initial_data_bytes=initial_bytes,
        initial_buffer_s=initial_buffer, stalls=tuple(stalls), buffer_at_end_s=max(0.0, media - playhead),
        media_received_s=media, played_s=played, state_at_end=state, timeline=tuple(timeline))
