"""Player profiles: the playout model set to follow one real player's rules, each parameter cited to its source.

A profile says when playback starts, when it stalls and resumes (the thresholds of ``PlayoutParams``), and, for
HLS and DASH, what the player fetches: how far ahead (its buffer goal) and which rendition (its ABR rule). The
``2015`` profile takes its thresholds from the settings (``-B``, ``-M``, ``--restart-buffer``); the others are
fixed by the player they follow. ``docs/measurement.md`` gives the differences measured against each player
playing the same streams in headless Chromium (``pytomo lab play``, ``bench/players.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    buffer_goal_s: float | None = None  # HLS/DASH: fetch no further ahead; None: the --max-buffer setting
    abr_start_bps: float | None = None  # HLS/DASH --abr player: the bandwidth estimate before any measurement
    abr_safety: float = 1.0  # the share of the estimate a rendition's declared bandwidth may use
    abr_half_life_s: float = 3.0  # the estimate's exponentially weighted moving average, in seconds of download
    parallel_streams: bool = False  # fetches audio and video segments at once, on two connections
    cited: tuple[Cited, ...] = ()

    def params(self) -> PlayoutParams:
        """The thresholds of the playout model."""
        return PlayoutParams(self.initial_buffer_s, self.min_buffer_s, self.restart_buffer_s,
                             restart_growth=self.restart_growth, restart_max_s=self.restart_max_s, profile=self.name)


_DASHJS = "dash.js 5.2.1 (npm dashjs)"
_SHAKA = "Shaka Player 5.2.12 (npm shaka-player)"
_HLSJS = "hls.js 1.7.4 (npm hls.js)"
_CHROMIUM = "Chromium's media pipeline (Debian chromium)"

# Chromium decides when an element starts and resumes, for a progressive file and under Media Source Extensions
# alike: the three libraries leave it to the element (their own start thresholds are off by default). Its audio
# renderer waits for a playback threshold of decoded audio that doubles after each underflow.
_CHROMIUM_RENDERER = (
    Cited("audio playback threshold at start", "200 ms of decoded audio",
          "media/filters/audio_renderer_algorithm.cc kStartingCapacityInMs"),
    Cited("growth after an underflow", "x2 per underflow, at most 3 s",
          "media/filters/audio_renderer_algorithm.cc IncreasePlaybackThreshold, kMaxCapacityInMs"),
    Cited("video frames queued before 'have enough'", "4 decoded frames",
          "media/base/limits.h kMaxVideoFrames; media/renderers/video_renderer_impl.cc HaveEnoughData_Locked"),
)

PROFILES: dict[str, PlayerProfile] = {
    "native": PlayerProfile(
        "native", "Chromium <video> on a progressive file", initial_buffer_s=1.0, min_buffer_s=0.0,
        restart_buffer_s=0.2, restart_growth=2.0, restart_max_s=3.0, cited=_CHROMIUM_RENDERER + (
            Cited("media read ahead before the first frame", "about 1 s (measured: see docs/measurement.md)",
                  "media/filters/ffmpeg_demuxer.cc; media/blink/multibuffer_data_source.cc preload"),)),
    "dashjs": PlayerProfile(
        "dashjs", _DASHJS, initial_buffer_s=0.2, min_buffer_s=0.0, restart_buffer_s=0.2, restart_growth=2.0,
        restart_max_s=3.0, buffer_goal_s=12.0, abr_start_bps=1_000_000, abr_safety=0.9, abr_half_life_s=3.0,
        parallel_streams=True, cited=_CHROMIUM_RENDERER + (
            Cited("streaming.buffer.stableBufferTime", "12 s", "src/core/Settings.js"),
            Cited("streaming.abr.initialBitrate", "-1 (none): the default estimate", "src/core/Settings.js"),
            Cited("streaming.abr.throughput.*", "EWMA of segment throughput", "src/streaming/rules/abr/"),
            Cited("streaming.abr.bandwidthSafetyFactor", "0.9", "src/core/Settings.js"),)),
    "shaka": PlayerProfile(
        "shaka", _SHAKA, initial_buffer_s=0.2, min_buffer_s=0.0, restart_buffer_s=0.2, restart_growth=2.0,
        restart_max_s=3.0, buffer_goal_s=10.0, abr_start_bps=1_000_000, abr_safety=0.85, abr_half_life_s=2.0,
        parallel_streams=True, cited=_CHROMIUM_RENDERER + (
            Cited("streaming.rebufferingGoal", "0: start and resume are the media element's",
                  "lib/util/player_configuration.js:191; lib/player.js pollBufferState_"),
            Cited("streaming.bufferingGoal", "10 s", "lib/util/player_configuration.js:192"),
            Cited("abr.bandwidthUpgradeTarget", "0.85", "lib/util/player_configuration.js:311"),
            Cited("abr.bandwidthDowngradeTarget", "0.95", "lib/util/player_configuration.js:312"),)),
    "hlsjs": PlayerProfile(
        "hlsjs", _HLSJS, initial_buffer_s=0.2, min_buffer_s=0.0, restart_buffer_s=0.2, restart_growth=2.0,
        restart_max_s=3.0, buffer_goal_s=30.0, abr_start_bps=500_000, abr_safety=0.7, abr_half_life_s=3.0,
        parallel_streams=True, cited=_CHROMIUM_RENDERER + (
            Cited("maxBufferLength", "30 s", "src/config.ts"),
            Cited("abrEwmaDefaultEstimate", "500 kbit/s", "src/config.ts"),
            Cited("abrBandWidthUpFactor", "0.7", "src/config.ts"),)),
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
