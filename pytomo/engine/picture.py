"""The picture a viewer sees with separate audio and video buffers, as Chromium's renderer plays them.

Chromium's clock is the audio. When the video buffer runs dry while audio is still buffered, the audio plays on and
the picture freezes; the element fires ``waiting`` (and the clock stops) only if the video has not come back within
``video_underflow_grace_s`` (3 s: ``RendererImpl::OnBufferingStateChange``, ``MediaVideoUnderflowThreshold``). Video
that comes back within the grace resumes at the audio's position: the frames in between are skipped. When the audio
runs dry the clock stops at once. Either way the viewer sees a frozen picture, and that is the stall counted here:
from the moment the picture froze to the moment it moves again.

Arrival events are ``(t_s, received_bytes, video_s, audio_s)``: from wall time ``t_s`` the first ``video_s`` seconds
of video and ``audio_s`` seconds of audio are buffered. The player is stepped every ``STEP_S``; the thresholds are
those of ``PlayoutParams`` (start on both buffers, stall at ``min_buffer_s``, resume above the resume threshold,
which grows after each stop of the clock).
"""

from __future__ import annotations

from collections.abc import Iterable

from pytomo.engine.playout import BUFFERING, ENDED, INITIAL_BUFFERING, PLAYING, grown
from pytomo.results import BufferPoint, PlayoutParams, PlayoutResult, Stall

FROZEN = "frozen"  # the clock runs on the audio, the picture does not move
STEP_S = 0.01


class _Picture:
    """The renderer's state between two steps."""

    def __init__(self, p: PlayoutParams, grace_s: float) -> None:
        self.p, self.grace_s = p, grace_s
        self.state = INITIAL_BUFFERING
        self.playhead = self.played = 0.0
        self.video = self.audio = 0.0
        self.received = 0
        self.whole = False
        self.restart_s = p.restart_buffer_s
        self.frozen_at = self.stall_start = self.stall_pos = 0.0
        self.stalls: list[Stall] = []
        self.timeline: list[BufferPoint] = []
        self.time_to_start: float | None = None
        self.initial: tuple[int, float] | None = None
        self.ready_at = 0.0  # when the start threshold was met

    @property
    def ahead(self) -> float:
        """Media playable ahead of the playhead: the smaller of the two buffers."""
        return min(self.video, self.audio) - self.playhead

    def _to(self, t: float, state: str) -> None:
        self.state = state
        self.timeline.append(BufferPoint(t, state, self.playhead, max(0.0, self.ahead)))

    def _stall_ends(self, t: float) -> None:
        self.stalls.append(Stall(self.stall_start, self.stall_pos, t - self.stall_start))
        self._to(t, PLAYING)

    def _starting(self, t: float) -> None:
        """Before the first frame: the start threshold, then the player's own set-up time."""
        p = self.p
        if self.initial is None and (self.ahead >= p.initial_buffer_s or (self.whole and self.ahead > 0)):
            self.initial, self.ready_at = (self.received, self.ahead), t
        if self.initial is not None and t >= self.ready_at + p.start_latency_s - 1e-9:
            self.time_to_start = t
            self._to(t, PLAYING)

    def step(self, t: float) -> None:
        """Decide the state at ``t`` from the buffers, then let the clock run one step."""
        p, v_ahead, a_ahead = self.p, self.video - self.playhead, self.audio - self.playhead
        if self.state == INITIAL_BUFFERING:
            self._starting(t)
        elif self.state == PLAYING:
            if self.whole and self.ahead <= 0:
                self._to(t, ENDED)
            elif not self.whole and min(v_ahead, a_ahead) <= p.min_buffer_s:
                self.stall_start, self.stall_pos, self.frozen_at = t, self.playhead, t
                self._to(t, BUFFERING if a_ahead <= p.min_buffer_s else FROZEN)
        elif self.state == FROZEN:
            if v_ahead > p.min_buffer_s or self.whole:
                self._stall_ends(t)  # the picture catches up with the audio: frames in between are skipped
            elif a_ahead <= p.min_buffer_s or t - self.frozen_at >= self.grace_s:
                self._to(t, BUFFERING)  # `waiting`: the clock stops
        elif self.state == BUFFERING and (self.ahead > self.restart_s or self.whole):
            self.restart_s = grown(self.restart_s, p)
            self._stall_ends(t)
        if self.state == PLAYING:
            self.played += STEP_S
        if self.state in (PLAYING, FROZEN):
            self.playhead += STEP_S


def simulate_picture(events: Iterable[tuple[float, int, float, float]], end_s: float, params: PlayoutParams,
                     grace_s: float = 3.0, media_duration_s: float | None = None,
                     complete: bool = False) -> PlayoutResult:
    """Run the renderer over separate audio and video arrivals up to wall time ``end_s``."""
    evs = sorted(events)
    r = _Picture(params, grace_s)
    i, n = 0, round(end_s / STEP_S)
    for k in range(n):
        t = k * STEP_S
        while i < len(evs) and evs[i][0] <= t:
            _, r.received, video, audio = evs[i]
            r.video, r.audio = max(r.video, video), max(r.audio, audio)
            i += 1
            r.whole = r.whole or (complete and i == len(evs)) or (
                media_duration_s is not None and min(r.video, r.audio) >= media_duration_s - 1e-6)
        r.step(t)
    if r.state in (BUFFERING, FROZEN):
        r.stalls.append(Stall(r.stall_start, r.stall_pos, end_s - r.stall_start, ongoing=True))
    r.timeline.append(BufferPoint(end_s, r.state, r.playhead, max(0.0, r.ahead)))
    initial_bytes, initial_buffer = r.initial if r.initial else (None, None)
    return PlayoutResult(
        params=params, end_s=end_s, time_to_start_s=r.time_to_start, initial_data_bytes=initial_bytes,
        initial_buffer_s=initial_buffer, stalls=tuple(r.stalls), buffer_at_end_s=max(0.0, r.ahead),
        media_received_s=min(r.video, r.audio), played_s=r.played, state_at_end=r.state,
        timeline=tuple(r.timeline))
