"""One settings object for a run, layered: defaults < config file (TOML) < command line; frozen once built."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytomo.errors import UsageError

TIME_FRAMES = ("today", "week", "month", "all_time")
ABR_MODES = ("fixed", "buffer")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Every setting of a crawl, with its unit in its name. Field docs are in ``docs/options.md``."""

    # crawl
    service: str = "generic"  # -s
    urls: tuple[str, ...] = ()  # positional URLs
    input_file: str | None = None  # -f
    batch: bool = False  # -b: never prompt
    max_crawled_urls: int = 10000  # -u: stop after this many distinct videos measured
    max_rounds: int = 10000  # -r
    loop: bool = False  # -l
    related: bool = False  # -R
    max_per_url: int = 10  # -p: related links sampled per video
    max_per_page: int = 10  # -P: related links considered per page; size of the popular seed list
    time_frame: str = "today"  # -t
    delay_between_requests_s: float = 10.0  # -S
    random_seed: int | None = None  # sampling of related links and loop intervals (None: random)
    # volunteer defaults (pytomo/engine/schedule.py, pytomo/consent.py)
    label: str = ""  # --label: replaces the host name in file names and the run row
    loop_mean_interval_s: float = 600.0  # -l: mean of the exponential spacing between measurements; 0: use -S
    loop_min_interval_s: float = 60.0  # floor of that spacing
    loop_max_interval_s: float = 1500.0  # cap of that spacing
    bot_check_pause_s: float = 60.0  # first pause after a bot check; doubles with every one in a row
    bot_check_max_pause_s: float = 3600.0  # cap of that pause
    # probes
    ping_count: int = 10  # -n
    ping_interval_s: float = 0.2
    ping_timeout_s: float = 1.0
    dns_timeout_s: float = 4.0
    dns_system: bool = True  # query the system's nameservers
    dns_extra: tuple[str, ...] = ()  # extra resolvers, "label=ip[:port]"
    download_extra_dns: bool = False  # --download-extra-dns: also download from addresses only extra resolvers gave
    redirect_max_hops: int = 10
    http_timeout_s: float = 5.0
    http_proxy: str | None = None  # --http-proxy
    cookies_file: str | None = None  # --cookies: Netscape cookies file, for yt-dlp and for the media requests
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) pytomo/4"
    # download and playout
    download_time_s: float = 30.0  # -D; <= 0 means max_download_time_s
    max_download_time_s: float = 600.0
    throughput_bin_s: float = 0.1
    media_head_bytes: int = 2 * 1024 * 1024  # bytes kept in memory for MediaInfo
    initial_buffer_s: float = 2.0  # -B
    min_buffer_s: float = 0.1  # -M
    restart_buffer_s: float = 1.0  # --restart-buffer
    # budgets for untrusted input: crossing one is an outcome with its kind, never a crash or a silent cut
    page_limit_bytes: int = 2 * 1024 * 1024  # HTML read from a page to find its <video>
    manifest_limit_bytes: int = 4 * 1024 * 1024  # one HLS playlist, DASH MPD or segment index
    manifest_segments_max: int = 100_000  # segments one rendition may list
    media_box_limit_bytes: int = 64 * 1024 * 1024  # the largest box or element an indexer holds (moov, WebM headers)
    request_deadline_s: float = 30.0  # headers and body of a request outside the download window (pages, manifests)
    stage_deadline_s: float = 120.0  # resolving the page, and walking the redirects, of one video
    allow_private_targets: bool = False  # --allow-private-targets: non-global addresses not given may be reached
    # segmented streaming (HLS, DASH)
    abr: str = "fixed"  # --abr: fixed (one rendition, full rate) or buffer (BBA-0)
    rendition: str = "highest"  # --rendition: highest, lowest, an index from the lowest, or a bit/s cap
    max_buffer_s: float = 30.0  # --max-buffer: the player does not fetch further ahead
    bba_reservoir_s: float = 5.0
    bba_cushion_s: float = 10.0
    # output
    database_dir: str = "databases"
    provider: str = ""  # --provider
    no_log_ip: bool = True  # -x (the public address is never looked up by this version)
    log_level: str = "INFO"  # -L
    # platforms (pytomo/services/youtube.py, dailymotion.py; docs/platforms.md)
    media_format: str = "player"  # --format: player, <N>p, best, worst, progressive, or a format id
    youtube_api_key: str = ""  # --youtube-api-key or $PYTOMO_YOUTUBE_API_KEY (never stored)
    youtube_api_base_url: str = "https://www.googleapis.com/youtube/v3"
    youtube_region: str = ""  # --youtube-region: regionCode of the chart and searches
    youtube_search: str = ""  # --youtube-search: seed (and -t) search query
    youtube_playlist: str = ""  # --youtube-playlist: seed playlist id
    youtube_related: str = "search"  # --youtube-related: search (tags or title), channel (uploads) or none
    youtube_player_client: tuple[str, ...] = ()  # --youtube-client: yt-dlp's player_client (empty: its default)
    dailymotion_api_base_url: str = "https://api.dailymotion.com"
    dailymotion_sort: str = ""  # --dailymotion-sort: API sort of the seed list (default: from -t)
    dailymotion_media: str = "yt-dlp"  # --dailymotion-media: yt-dlp, or api (stream fields; partner access)
    dailymotion_access_token: str = ""  # Bearer token for --dailymotion-media api (never stored)
    info_source_url: str = ""  # recordings of yt-dlp's output instead of yt-dlp (the lab serves one)
    # lab
    lab: bool = False  # --lab: run the lab in the process; youtube and dailymotion use its recordings
    lab_scenario: str | None = None
    lab_truth: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        """The download window actually used, in seconds."""
        return self.download_time_s if self.download_time_s > 0 else self.max_download_time_s

    def as_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready, as stored in the run row (secrets only say whether they are set)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in SECRETS:
            out[name] = "<set>" if out[name] else ""
        return out


SECRETS = ("youtube_api_key", "dailymotion_access_token")
MEDIA_FORMAT = re.compile(r"^(player|progressive|best|worst|\d{2,4}p|[\w.-]+(\+[\w.-]+)?)$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
YOUTUBE_RELATED = ("search", "channel", "none")
DAILYMOTION_MEDIA = ("yt-dlp", "api")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _check(name: str, value: Any) -> Any:
    """Coerce one override to its default's type, or raise UsageError."""
    if name not in _FIELDS:
        raise UsageError(f"unknown setting {name!r}")
    default = _FIELDS[name].default
    if default is dataclasses.MISSING:
        return value
    kind = type(default)
    if isinstance(default, tuple):
        if isinstance(value, str):
            return (value,)
        return tuple(str(v) for v in value)
    if default is None or value is None:
        return value
    if kind is bool and not isinstance(value, bool):
        raise UsageError(f"setting {name} must be true or false, not {value!r}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise UsageError(f"setting {name} must be a number, not {value!r}")
    return kind(value)


def validate(s: Settings) -> Settings:
    """Reject values that make no sense, with one clear message."""
    if s.time_frame not in TIME_FRAMES:
        raise UsageError(f"time frame must be one of {', '.join(TIME_FRAMES)}, not {s.time_frame!r}")
    if s.log_level.upper() not in LOG_LEVELS:
        raise UsageError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {s.log_level!r}")
    if s.abr not in ABR_MODES:
        raise UsageError(f"abr must be one of {', '.join(ABR_MODES)}, not {s.abr!r}")
    if s.rendition not in ("highest", "lowest") and not s.rendition.isdigit():
        raise UsageError(f"rendition must be highest, lowest, an index or a bit/s cap, not {s.rendition!r}")
    if s.media_box_limit_bytes < 65_536:
        raise UsageError(f"media_box_limit_bytes must be at least 65536, not {s.media_box_limit_bytes}")
    _validate_platforms(s)
    _validate_volunteer(s)
    positive = ("max_crawled_urls", "max_rounds", "ping_count", "redirect_max_hops", "page_limit_bytes",
                "manifest_limit_bytes", "manifest_segments_max")
    for name in positive:
        if getattr(s, name) < 1:
            raise UsageError(f"{name} must be at least 1, not {getattr(s, name)}")
    for name in ("max_per_url", "max_per_page"):
        if getattr(s, name) < 0:
            raise UsageError(f"{name} must not be negative")
    for name in ("delay_between_requests_s", "initial_buffer_s", "min_buffer_s", "restart_buffer_s",
                 "ping_interval_s"):
        if getattr(s, name) < 0:
            raise UsageError(f"{name} must not be negative")
    for name in ("ping_timeout_s", "dns_timeout_s", "http_timeout_s", "throughput_bin_s", "max_download_time_s",
                 "max_buffer_s", "bba_cushion_s", "request_deadline_s", "stage_deadline_s"):
        if getattr(s, name) <= 0:
            raise UsageError(f"{name} must be positive")
    return s


def _validate_platforms(s: Settings) -> None:
    if not MEDIA_FORMAT.match(s.media_format):
        raise UsageError("format must be player, <N>p (e.g. 720p), best, worst, progressive or a format id "
                         f"(e.g. 18 or 137+140), not {s.media_format!r}")
    if s.youtube_related not in YOUTUBE_RELATED:
        raise UsageError(f"youtube related must be one of {', '.join(YOUTUBE_RELATED)}, not {s.youtube_related!r}")
    if s.dailymotion_media not in DAILYMOTION_MEDIA:
        raise UsageError(f"dailymotion media must be one of {', '.join(DAILYMOTION_MEDIA)}, "
                         f"not {s.dailymotion_media!r}")
    if s.dailymotion_sort and not re.fullmatch(r"[a-z][a-z-]*", s.dailymotion_sort):
        raise UsageError(f"dailymotion sort must be an API sort name such as trending, not {s.dailymotion_sort!r}")
    if s.youtube_region and not re.fullmatch(r"[A-Za-z]{2}", s.youtube_region):
        raise UsageError(f"youtube region must be a two-letter country code, not {s.youtube_region!r}")
    for name in ("youtube_api_base_url", "dailymotion_api_base_url", "info_source_url"):
        value = getattr(s, name)
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise UsageError(f"{name} must be an http(s) URL, not {value!r}")


def _validate_volunteer(s: Settings) -> None:
    if s.label and not LABEL.match(s.label):
        raise UsageError("label must be 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), "
                         f"not {s.label!r}")
    for name in ("loop_mean_interval_s", "loop_min_interval_s", "loop_max_interval_s", "bot_check_pause_s",
                 "bot_check_max_pause_s"):
        if getattr(s, name) < 0:
            raise UsageError(f"{name} must not be negative")
    if s.loop_max_interval_s < s.loop_min_interval_s:
        raise UsageError("loop_max_interval_s must not be below loop_min_interval_s")
    if s.bot_check_max_pause_s < s.bot_check_pause_s:
        raise UsageError("bot_check_max_pause_s must not be below bot_check_pause_s")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file whose keys are setting names."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from exc
    return data.get("pytomo", data)


def build(config: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Layer defaults < config < overrides, check types and values, and return frozen settings."""
    values: dict[str, Any] = {}
    for layer in (config or {}, overrides or {}):
        for name, value in layer.items():
            values[name] = _check(name, value)
    s = Settings(**values)
    return validate(dataclasses.replace(s, log_level=s.log_level.upper()))
