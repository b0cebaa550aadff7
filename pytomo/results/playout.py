"""What a viewer lived through: the player's thresholds, its stalls and buffer timeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlayoutParams:
    """Thresholds of the player, in seconds of media, and the profile (pytomo/engine/profiles.py) they come from.

    After each stall the part of the resume threshold above ``min_buffer_s`` is multiplied by ``restart_growth``, up
    to ``restart_max_s`` in all (Chromium's renderer doubles the audio it wants queued after every underflow); 1.0
    keeps it fixed, as in 2015.
    """

    initial_buffer_s: float = 2.0
    min_buffer_s: float = 0.1
    restart_buffer_s: float = 1.0
    restart_growth: float = 1.0
    restart_max_s: float | None = None
    profile: str = "2015"
    start_latency_s: float = 0.0  # the first frame shows this long after the start threshold is met


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


@dataclass(frozen=True)
class PlayoutInput:
    """What the playout model plays: arrival events ``(t_s, bytes, playable_s)`` up to ``end_s``, run by every
    profile alike."""

    events: tuple[tuple[float, int, float], ...]
    end_s: float
    media_duration_s: float | None
    complete: bool
    av_events: tuple[tuple[float, int, float, float], ...] = ()  # separate buffers: (t_s, bytes, video_s, audio_s)


@dataclass(frozen=True)
class ProfilePlayout:
    """One player profile's playout of a download (a row of ``playouts``); ``result`` None: ``problem`` says why."""

    profile: str
    drove_fetch: bool  # this profile decided what an HLS/DASH session fetched
    result: PlayoutResult | None
    problem: str | None = None
