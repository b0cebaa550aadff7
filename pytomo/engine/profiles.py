"""Player profiles: the playout model set to follow one real player's rules, each parameter cited to its source.

A profile says when playback starts, when it stalls and resumes (the thresholds of ``PlayoutParams``), and, for
HLS and DASH, what the player fetches: how far ahead (its buffer goal) and which rendition (its ABR rule). The
``2015`` profile takes its thresholds from the settings (``-B``, ``-M``, ``--restart-buffer``); the others are
fixed by the player they follow. ``docs/measurement.md`` gives the differences measured against each player
playing the same streams in headless Chromium (``pytomo lab play``, ``bench/players.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytomo.errors import UsageError
from pytomo.results import PlayoutParams
from pytomo.settings import PLAYER_PROFILES, Settings


@dataclass(frozen=True)
class Cited:
    """One parameter of a profile: its value as the player's source defines it, and where."""

    parameter: str
    value: str
    source: str  # file and line (or function) at the pinned version


@dataclass(frozen=True)
class PlayerProfile:
    """The rules one player follows; the base of every profile (``PROFILES``)."""

    name: str  # as --player names it
    player: str  # the player and its pinned version
    initial_buffer_s: float  # media ahead of the playhead before playback starts
    min_buffer_s: float  # at or below this the picture freezes
    restart_buffer_s: float  # media ahead needed to resume after a stall
    restart_growth: float = 1.0  # the resume threshold grows by this after each stall
    restart_max_s: float | None = None
    start_latency_s: float = 0.0  # from the start threshold met to the first frame (the player's own set-up)
    buffer_goal_s: float | None = None  # HLS/DASH: fetch no further ahead; None: the --max-buffer setting
    buffer_goal_top_s: float | None = None  # the goal while playing the highest rendition (dash.js)
    buffer_goal_bytes: int | None = None  # the goal is at least this many bytes of the rendition (hls.js)
    buffer_goal_max_s: float | None = None  # and at most this
    goal_counts_next_segment: bool = False  # fetch only while the next whole segment fits under the goal (dash.js)
    abr_start_bps: float | None = None  # HLS/DASH --abr player: the bandwidth estimate before any measurement
    abr_start_safety: float = 1.0  # the share of that first estimate the first rendition may use
    abr_safety: float = 1.0  # the share of the estimate a rendition's declared bandwidth may use
    abr_fast_half_life_s: float = 3.0  # the estimate is the smaller of two exponentially weighted moving
    abr_slow_half_life_s: float = 8.0  # averages, their half-lives in seconds of download time
    parallel_streams: bool = False  # fetches audio and video segments at once, on two connections
    video_underflow_grace_s: float | None = None  # separate buffers: audio plays on this long with a frozen picture
    cited: tuple[Cited, ...] = ()

    def params(self) -> PlayoutParams:
        """The thresholds of the playout model."""
        return PlayoutParams(self.initial_buffer_s, self.min_buffer_s, self.restart_buffer_s,
                             restart_growth=self.restart_growth, restart_max_s=self.restart_max_s, profile=self.name,
                             start_latency_s=self.start_latency_s)


_DASHJS = "dash.js 5.2.1 (npm dashjs)"
_SHAKA = "Shaka Player 5.2.12 (npm shaka-player)"
_HLSJS = "hls.js 1.7.4 (npm hls.js)"

# Chromium decides when an element starts, stalls and resumes, for a progressive file and under Media Source
# Extensions alike: the three libraries leave it to the element (their own thresholds are off by default). Its
# renderers start once 200 ms of audio and 4 video frames are decoded; frames still in the decoders are not
# playable, so the picture freezes about 0.25 s of media before the received data ends (measured: native <video>
# on MP4 at 0.6 x its bitrate in the lab, docs/measurement.md); after each underflow the audio renderer wants
# twice as much queued, up to 3 s. Cited by file and function: Chromium's tree is not at hand here with lines.
_CHROMIUM_RENDERER = (
    Cited("audio playback threshold at start", "200 ms of decoded audio",
          "media/filters/audio_renderer_algorithm.cc AudioRendererAlgorithm::Initialize, kStartingCapacity"),
    Cited("growth after an underflow", "x2 per underflow, at most 3 s",
          "media/filters/audio_renderer_algorithm.cc IncreasePlaybackThreshold, kMaxCapacity; "
          "media/renderers/audio_renderer_impl.cc Render"),
    Cited("video frames queued before 'have enough'", "4 decoded frames",
          "media/base/limits.h kMaxVideoFrames; media/renderers/video_renderer_impl.cc HaveEnoughData_Locked"),
    Cited("playback needs both renderers", "audio AND video have enough",
          "media/renderers/renderer_impl.cc RendererImpl::WaitingForEnoughData"),
    Cited("media still in the decoders at a stall", "0.25 s progressive, 0.15 s MSE (measured, not in a source)",
          "lab: bench/players.py, docs/measurement.md"),
    Cited("video underflow while audio plays", "the picture freezes; `waiting` only after 3 s",
          "media/renderers/renderer_impl.cc OnBufferingStateChange, MediaVideoUnderflowThreshold"),
)


def _chromium(name: str, player: str, cited: tuple[Cited, ...] = (), **fetching: Any) -> PlayerProfile:
    """A profile whose start, stall and resume are Chromium's renderer's, and whose fetching is ``fetching``.

    Under Media Source Extensions (a library fetches: ``fetching`` given) whole segments are appended and the
    picture freezes when fewer than 4 frames (0.15 s) are left; a progressive file is read by the demuxer through
    the decoders, and freezes 0.25 s before the bytes received end (both measured, docs/measurement.md). Playback
    starts with 0.2 s of audio beyond that; the first resume wants 0.4 s, then twice as much each time, at most 3 s.
    """
    margin_s = 0.15 if fetching else 0.25
    fetching.setdefault("video_underflow_grace_s", 3.0)
    return PlayerProfile(name, player, initial_buffer_s=margin_s + 0.2, min_buffer_s=margin_s,
                         restart_buffer_s=margin_s + 0.4, restart_growth=2.0, restart_max_s=margin_s + 3.0,
                         cited=_CHROMIUM_RENDERER + cited, **fetching)


PROFILES: dict[str, PlayerProfile] = {
    "native": _chromium("native", "Chromium <video> on a progressive file (Debian chromium)"),
    "dashjs": _chromium(
        "dashjs", _DASHJS, start_latency_s=0.05, buffer_goal_s=18.0, buffer_goal_top_s=30.0,
        goal_counts_next_segment=True,
        abr_start_bps=1_000_000, abr_start_safety=1.0, abr_safety=0.9, abr_fast_half_life_s=3.0,
        abr_slow_half_life_s=8.0, parallel_streams=True, cited=(
            Cited("start latency", "0.05 s from the first segments' arrival to the first frame (append, decode; "
                  "measured, docs/measurement.md)", "lab: bench/players.py"),
            Cited("streaming.buffer.initialBufferLevel", "NaN: play() at the first append",
                  "src/core/Settings.js:1287; src/streaming/controllers/StreamController.js:897-912"),
            Cited("streaming.buffer.bufferTimeDefault", "18 s", "src/core/Settings.js:1288"),
            Cited("streaming.buffer.bufferTimeAtTopQuality", "30 s", "src/core/Settings.js:1285-1289; "
                  "src/streaming/controllers/ScheduleController.js:324-341"),
            Cited("fetch while", "buffer + segment duration < goal",
                  "src/streaming/controllers/ScheduleController.js:231-246 _shouldBuffer"),
            Cited("audio goal", "video's level + 1 s", "src/streaming/controllers/ScheduleController.js:304-320"),
            Cited("initial video bitrate", "DEFAULT_VIDEO_BITRATE 1000 kbit/s: the highest rung at or under it",
                  "src/streaming/controllers/AbrController.js:46-47, 224-248, 706-731"),
            Cited("ThroughputRule", "0.9 x min(EWMA 3 s, EWMA 8 s) of segment throughput",
                  "src/streaming/rules/abr/ThroughputRule.js:66-83; src/core/Settings.js:1472-1499"),
            Cited("audio and video", "two request loops at once",
                  "src/streaming/StreamProcessor.js:678-693"),)),
    "shaka": _chromium(
        "shaka", _SHAKA, start_latency_s=0.05, buffer_goal_s=10.0, abr_start_bps=1_000_000, abr_start_safety=0.95,
        abr_safety=0.95, abr_fast_half_life_s=2.0, abr_slow_half_life_s=5.0, parallel_streams=True,
        cited=(
            Cited("start latency", "0.05 s from the first segments' arrival to the first frame (append, decode; "
                  "measured, docs/measurement.md)", "lab: bench/players.py"),
            Cited("streaming.rebufferingGoal", "0: start and resume are the media element's",
                  "lib/util/player_configuration.js:191; lib/player.js:4459-4500"),
            Cited("streaming.bufferingGoal", "10 s, per stream, checked before each segment",
                  "lib/util/player_configuration.js:192; lib/media/streaming_engine.js:1634-1705"),
            Cited("run-ahead limit", "a stream at most one segment ahead of the other",
                  "lib/media/streaming_engine.js:1770-1820"),
            Cited("abr.defaultBandwidthEstimate", "1 Mbit/s (Chrome: navigator.connection.downlink)",
                  "lib/util/player_configuration.js:40, 308-309; lib/abr/simple_abr_manager.js:546-557"),
            Cited("choice", "the highest variant with bandwidth <= 0.95 x estimate",
                  "lib/abr/simple_abr_manager.js:286-315; lib/util/player_configuration.js:311-312"),
            Cited("estimate", "min(EWMA 2 s, EWMA 5 s)", "lib/abr/ewma_bandwidth_estimator.js:26-50"),)),
    "hlsjs": _chromium(
        "hlsjs", _HLSJS, start_latency_s=0.25, buffer_goal_s=30.0, buffer_goal_bytes=60_000_000,
        buffer_goal_max_s=600.0,
        abr_start_bps=500_000, abr_start_safety=1.0, abr_safety=0.7, abr_fast_half_life_s=3.0,
        abr_slow_half_life_s=9.0, parallel_streams=True, video_underflow_grace_s=None, cited=(
            Cited("maxBufferLength, maxBufferSize, maxMaxBufferLength", "30 s, 60 MB, 600 s: "
                  "goal = min(max(8 x 60 MB / bitrate, 30 s), 600 s)",
                  "src/config.ts:456-484; src/controller/base-stream-controller.ts:1480-1492"),
            Cited("abrEwmaDefaultEstimate", "500 kbit/s (raised to the first listed variant, at most 5 Mbit/s)",
                  "src/config.ts:510-511; src/controller/level-controller.ts:332-357"),
            Cited("abrBandWidthUpFactor, abrBandWidthFactor", "0.7 up, 0.95 same or down",
                  "src/config.ts:512-517; src/controller/abr-controller.ts:654-752"),
            Cited("estimate", "min(EWMA 3 s, EWMA 9 s) of main fragments", "src/config.ts:506-509"),
            Cited("alternate audio", "in parallel, at most one fragment ahead of main",
                  "src/controller/audio-stream-controller.ts:371-461"),
            Cited("start latency", "0.25 s from the first segments' arrival to the first frame: it transmuxes "
                  "MPEG-TS (and remuxes fMP4) in a worker before appending (measured, docs/measurement.md)",
                  "src/demux/transmuxer-worker.ts; lab: bench/players.py"),
            Cited("audio in the SourceBuffer", "never ahead of the video: both run dry together, the clock stops "
                  "(no frozen picture with audio playing on; measured, docs/measurement.md)",
                  "lab: bench/players.py, audio and video buffer levels of hls.js on HLS at 0.6 x"),)),
}


def profile(name: str, settings: Settings) -> PlayerProfile:
    """The profile called ``name``; ``2015`` with the thresholds of the settings."""
    if name == "2015":
        return PlayerProfile("2015", "Pytomo 2015 playout model", settings.initial_buffer_s, settings.min_buffer_s,
                             settings.restart_buffer_s, cited=(
                                 Cited("thresholds", "-B, -M, --restart-buffer", "the 2015 inventory, section 8"),))
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown player profile {name!r} (choose from {', '.join(PLAYER_PROFILES)})") from None


def profiles(settings: Settings) -> tuple[PlayerProfile, ...]:
    """The profiles of ``--player``, in its order (the first drives what an HLS/DASH session fetches)."""
    return tuple(profile(name, settings) for name in player_names(settings.player))


def player_names(value: str) -> tuple[str, ...]:
    """The profile names of a ``--player`` value, each once."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    return names or ("2015",)


def driving_profile(settings: Settings) -> PlayerProfile:
    """The first ``--player`` profile: the one whose buffer goal and ABR rule an HLS/DASH session follows."""
    return profile(player_names(settings.player)[0], settings)
