"""What a reference player (dash.js, Shaka Player, hls.js, Chromium's own <video>) said of one lab stream."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PICTURE_STALL_S = 0.25
"""A picture stall: the presented frame does not change for at least this long while the player is not paused."""


@dataclass(frozen=True)
class StallInterval:
    """One interruption after playback started, in seconds from the player's first request."""

    start_s: float
    end_s: float
    ongoing: bool = False  # still stalled when the window closed

    @property
    def duration_s(self) -> float:
        """How long it lasted (up to the end of the window when ongoing)."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with the duration."""
        return {"start_s": self.start_s, "end_s": self.end_s, "duration_s": self.duration_s, "ongoing": self.ongoing}


@dataclass(frozen=True)
class PlayerAccount:
    """A reference player's own account of one play: raw samples, events, requests, renditions, derived figures.

    Every time is in seconds from the player's first network request for the stream (manifest or progressive
    file), the crawler's origin too. A figure that cannot be measured is None, with the reason in ``unmeasured``.
    """

    player: str  # dashjs, shaka, hlsjs or native
    player_version: str | None
    browser: str
    url: str
    rendition: str  # as asked: auto, lowest, highest or an index (lowest bitrate first)
    window_s: float
    origin_epoch_s: float | None  # wall-clock time of the first request (None: the player requested nothing)
    samples: tuple[dict[str, Any], ...]  # every 100 ms: playhead, paused, ready state, buffers, frames
    frames: tuple[tuple[float, float], ...]  # every presented frame (requestVideoFrameCallback): (t_s, media time)
    events: tuple[dict[str, Any], ...]  # {t_s, source: element|dashjs|shaka|hlsjs, name, detail}
    requests: tuple[dict[str, Any], ...]  # {url, start_s, response_s, end_s, bytes, status, range, ...}
    renditions: tuple[dict[str, Any], ...]  # {t_s, source: library or picture, bitrate_bps, width, height, id}
    errors: tuple[str, ...]
    time_to_start_s: float | None
    stalls_by_events: tuple[StallInterval, ...] | None
    stalls_by_picture: tuple[StallInterval, ...] | None
    stall_time_by_events_s: float | None
    stall_time_by_picture_s: float | None
    played_s: float | None
    rendition_switches: int | None
    bytes_received: int | None
    request_count: int
    picture_stall_threshold_s: float = PICTURE_STALL_S
    live_latency_start_s: float | None = None  # live: the wall clock minus the playhead's date, at the start
    live_latency_end_s: float | None = None  # ... and at the window's end (each sample's: samples[i]["latency_s"])
    unmeasured: dict[str, str] = field(default_factory=dict)  # figure name -> why it is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``from_dict`` reads it back)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("stalls_by_events", "stalls_by_picture"):
            stalls = out[name]
            out[name] = None if stalls is None else [s.to_dict() for s in stalls]
        for name in ("samples", "events", "requests", "renditions", "errors"):
            out[name] = list(out[name])
        out["frames"] = [list(f) for f in self.frames]
        out["unmeasured"] = dict(self.unmeasured)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlayerAccount:
        """The account written by ``to_dict``."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data}
        for name in ("stalls_by_events", "stalls_by_picture"):
            stalls = values.get(name)
            values[name] = None if stalls is None else tuple(
                StallInterval(s["start_s"], s["end_s"], bool(s.get("ongoing", False))) for s in stalls)
        for name in ("samples", "events", "requests", "renditions", "errors"):
            values[name] = tuple(values.get(name) or ())
        values["frames"] = tuple((float(t), float(m)) for t, m in values.get("frames") or ())
        values["unmeasured"] = dict(values.get("unmeasured") or {})
        return cls(**values)

    def summary_lines(self) -> list[str]:
        """One line per figure, for people."""
        def show(name: str, value: object, unit: str = "") -> str:
            if value is None:
                return f"{name}: not measured ({self.unmeasured.get(name, 'unknown')})"
            if isinstance(value, float):
                return f"{name}: {value:.2f}{unit}"
            return f"{name}: {value}{unit}"

        def stalls(name: str, found: tuple[StallInterval, ...] | None) -> str:
            if found is None:
                return show(name, None)
            spans = [f"[{s.start_s:.2f}-{s.end_s:.2f}{' ongoing' if s.ongoing else ''}]" for s in found]
            return " ".join([f"{name}: {len(found)}", *spans])

        return [f"player: {self.player} {self.player_version or ''} in {self.browser}, rendition {self.rendition}, "
                f"window {self.window_s:g} s",
                show("time_to_start_s", self.time_to_start_s, " s"),
                stalls("stalls_by_events", self.stalls_by_events),
                show("stall_time_by_events_s", self.stall_time_by_events_s, " s"),
                stalls("stalls_by_picture", self.stalls_by_picture),
                show("stall_time_by_picture_s", self.stall_time_by_picture_s, " s"),
                show("played_s", self.played_s, " s"),
                show("rendition_switches", self.rendition_switches),
                *([show("live_latency_start_s", self.live_latency_start_s, " s"),
                   show("live_latency_end_s", self.live_latency_end_s, " s")]
                  if "live_latency_start_s" not in self.unmeasured else []),
                show("bytes_received", self.bytes_received),
                f"request_count: {self.request_count}",
                f"errors: {'; '.join(self.errors) if self.errors else 'none'}"]
