"""Playout-buffer emulation: the 2015 state machine, exact in continuous time, with no I/O and no clock.

The download is described by arrival events ``(t_s, received_bytes, playable_s)``: from wall time ``t_s`` (seconds
since the request was sent) the first ``playable_s`` seconds of media are in the buffer. Between events that
amount is constant. The player:

- waits in INITIAL_BUFFERING until at least ``initial_buffer_s`` of media is playable (or the whole media has
  arrived), then plays;
- while PLAYING, the playhead advances one media second per wall second; when the buffered media ahead of the
  playhead falls to ``min_buffer_s`` the player stalls (BUFFERING), unless the whole media has already arrived;
- in BUFFERING it resumes as soon as more than ``restart_buffer_s`` of media is ahead of the playhead, or the
  whole media has arrived; after each stall the part of that threshold above ``min_buffer_s`` is multiplied by
  ``restart_growth`` (at most ``restart_max_s`` in all), as a player whose renderer asks for more after every
  underflow.

Stall start times are computed exactly between events, not only at arrival times. The 2015 tool's
``start_playback`` bug (it kept the duration of one read instead of the elapsed time) is not reproduced: the
playhead starts at the wall time at which the threshold was crossed.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytomo.results import BufferPoint, PlayoutParams, PlayoutResult, Stall

INITIAL_BUFFERING = "initial_buffering"
PLAYING = "playing"
BUFFERING = "buffering"
ENDED = "ended"

_EPS = 1e-9


def grown(restart_s: float, p: PlayoutParams) -> float:
    """The resume threshold after one more stall: its part above ``min_buffer_s`` times ``restart_growth``."""
    grown = p.min_buffer_s + (restart_s - p.min_buffer_s) * p.restart_growth
    return grown if p.restart_max_s is None else min(grown, max(p.restart_max_s, restart_s))


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
    restart_s = p.restart_buffer_s
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
        elif state == BUFFERING and (media - playhead > restart_s or whole):
            stalls.append(Stall(stall_start, stall_pos, t - stall_start))
            state = PLAYING
            restart_s = grown(restart_s, p)
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
