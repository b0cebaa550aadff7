"""What a viewer lived through: the player's thresholds, its stalls and buffer timeline."""

from __future__ import annotations

from dataclasses import dataclass


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
