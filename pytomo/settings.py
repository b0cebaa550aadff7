"""One settings object for a run, layered: defaults < config file (TOML) < command line; frozen once built."""

from __future__ import annotations

import dataclasses
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
    random_seed: int | None = None  # sampling of related links (None: random)
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
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) pytomo/4"
    # download and playout
    download_time_s: float = 30.0  # -D; <= 0 means max_download_time_s
    max_download_time_s: float = 600.0
    throughput_bin_s: float = 0.1
    media_head_bytes: int = 2 * 1024 * 1024  # bytes kept in memory for MediaInfo
    initial_buffer_s: float = 2.0  # -B
    min_buffer_s: float = 0.1  # -M
    restart_buffer_s: float = 1.0  # --restart-buffer
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
    # lab
    lab_scenario: str | None = None
    lab_truth: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        """The download window actually used, in seconds."""
        return self.download_time_s if self.download_time_s > 0 else self.max_download_time_s

    def as_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready, as stored in the run row."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


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
    positive = ("max_crawled_urls", "max_rounds", "ping_count", "redirect_max_hops")
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
                 "max_buffer_s", "bba_cushion_s"):
        if getattr(s, name) <= 0:
            raise UsageError(f"{name} must be positive")
    return s


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
