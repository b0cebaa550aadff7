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


class _Model:
    """The 2015 state machine between two arrivals: wall time ``now``, the media buffered, the playhead."""

    def __init__(self, p: PlayoutParams) -> None:
        self.p = p
        self.state = INITIAL_BUFFERING
        self.now = self.media = self.playhead = self.played = 0.0
        self.whole = False
        self.stall_start = self.stall_pos = 0.0
        self.restart_s = p.restart_buffer_s
        self.start_at: float | None = None  # when the first frame shows, once the threshold is met
        self.stalls: list[Stall] = []
        self.timeline: list[BufferPoint] = []
        self.time_to_start: float | None = None
        self.initial_bytes: int | None = None
        self.initial_buffer: float | None = None

    def _point(self, t: float) -> None:
        self.timeline.append(BufferPoint(t, self.state, self.playhead, self.media - self.playhead))

    def advance(self, until: float) -> None:
        """Let wall time run from ``now`` to ``until`` with a constant amount of media."""
        if until <= self.now:
            return
        if self.state == INITIAL_BUFFERING and self.start_at is not None and self.start_at < until:
            self.now, self.state, self.time_to_start = max(self.now, self.start_at), PLAYING, self.start_at
            self._point(self.now)  # the first frame shows
        if self.state == PLAYING:
            limit = self.media if self.whole else self.media - self.p.min_buffer_s
            reach = self.now + max(0.0, limit - self.playhead)
            if reach < until - _EPS:
                self.played += reach - self.now
                self.playhead = max(self.playhead, limit)
                self.state = ENDED if self.whole else BUFFERING
                self.stall_start, self.stall_pos = reach, self.playhead
                self._point(reach)
            else:
                self.played += until - self.now
                self.playhead += until - self.now
        self.now = until

    def arrive(self, t: float, received: int) -> None:
        """The state after an arrival at ``t``: start, resume or stall."""
        p, ahead = self.p, self.media - self.playhead
        if self.state == INITIAL_BUFFERING and self.start_at is None and (
                self.media >= p.initial_buffer_s or (self.whole and self.media > 0)):
            self.initial_bytes, self.initial_buffer = int(received), self.media
            self.start_at = t + p.start_latency_s
            if p.start_latency_s <= 0:
                self.state, self.time_to_start = PLAYING, t
        elif self.state == BUFFERING and (ahead > self.restart_s or self.whole):
            self.stalls.append(Stall(self.stall_start, self.stall_pos, t - self.stall_start))
            self.state = PLAYING
            self.restart_s = grown(self.restart_s, p)
        elif self.state == PLAYING and not self.whole and ahead <= p.min_buffer_s:
            self.state = BUFFERING
            self.stall_start, self.stall_pos = t, self.playhead
        self._point(t)


def simulate(events: Iterable[tuple[float, int, float]], end_s: float, params: PlayoutParams | None = None,
             media_duration_s: float | None = None, complete: bool = False) -> PlayoutResult:
    """Run the player over arrival events up to wall time ``end_s``.

    ``complete`` says the last event delivered the whole file (the download ended at end of file); with
    ``media_duration_s`` known, an event that makes the whole duration playable also counts as complete.
    """
    m = _Model(params or PlayoutParams())
    evs = list(events)
    for i, (t_s, received, playable_s) in enumerate(evs):
        t = min(max(t_s, m.now), end_s)
        m.advance(t)
        if t_s > end_s:
            break
        m.media = max(m.media, playable_s)
        m.whole = m.whole or (complete and i == len(evs) - 1) or (
            media_duration_s is not None and m.media >= media_duration_s - 1e-6)
        m.arrive(t, received)
    m.advance(end_s)
    if m.state == BUFFERING:
        m.stalls.append(Stall(m.stall_start, m.stall_pos, end_s - m.stall_start, ongoing=True))
    m._point(end_s)
    return PlayoutResult(
        params=m.p, end_s=end_s, time_to_start_s=m.time_to_start, initial_data_bytes=m.initial_bytes,
        initial_buffer_s=m.initial_buffer, stalls=tuple(m.stalls), buffer_at_end_s=max(0.0, m.media - m.playhead),
        media_received_s=m.media, played_s=m.played, state_at_end=m.state, timeline=tuple(m.timeline))
