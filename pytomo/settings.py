"""One settings table for a run: each setting declared once; layered defaults < config file (TOML) < command line."""

from __future__ import annotations

import dataclasses
import re
import ssl
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytomo.errors import UsageError

TIME_FRAMES = ("today", "week", "month", "all_time")
ABR_MODES = ("fixed", "buffer", "player")
PLAYER_PROFILES = ("2015", "dashjs", "shaka", "hlsjs", "native")  # pytomo/engine/profiles.py
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
YOUTUBE_RELATED = ("search", "channel", "none")
DAILYMOTION_MEDIA = ("yt-dlp", "api")
MEDIA_FORMAT = re.compile(r"^(player|progressive|best|worst|\d{2,4}p|[\w.-]+(\+[\w.-]+)?)$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Check = Callable[[str, Any], "str | None"]
"""A limit of one setting: (label, value) -> the one-line complaint, or None when the value is fine."""


def at_least(minimum: int) -> Check:
    """A whole number not below ``minimum``."""
    return lambda label, v: None if v >= minimum else f"{label} must be at least {minimum}, not {v!r}"


def not_negative(label: str, value: float) -> str | None:
    """Zero or more."""
    return None if value >= 0 else f"{label} must not be negative, not {value!r}"


def positive(label: str, value: float) -> str | None:
    """More than zero."""
    return None if value > 0 else f"{label} must be positive, not {value!r}"


def one_of(choices: tuple[str, ...]) -> Check:
    """One of a few words."""
    return lambda label, v: None if v in choices else (
        f"invalid choice for {label}: {v!r} (choose from {', '.join(choices)})")


def matches(pattern: str | re.Pattern[str], must: str) -> Check:
    """A text matching ``pattern`` (empty allowed: the setting is then unset); ``must`` says what it must be."""
    regex = re.compile(pattern)
    return lambda label, v: None if not v or regex.fullmatch(v) else f"{label} must be {must}, not {v!r}"


http_url = matches(r"https?://[^/\s]+.*", "an http(s) URL")


def _ca_file(label: str, value: str) -> str | None:
    try:
        ssl.create_default_context(cafile=value)
    except OSError as exc:
        return f"{label}: cannot read {value}: {exc.strerror or exc}"
    except ssl.SSLError:
        return f"{label}: {value} holds no PEM certificate"
    return None


def _rendition(label: str, value: str) -> str | None:
    ok = value in ("highest", "lowest") or value.isdigit()
    return None if ok else f"{label} must be highest, lowest, an index or a bit/s cap, not {value!r}"


def _players(label: str, value: str) -> str | None:
    names = [n.strip() for n in value.split(",")]
    bad = [n for n in names if n not in PLAYER_PROFILES]
    return None if not bad else (f"{label} must be a comma-separated list of {', '.join(PLAYER_PROFILES)}, "
                                 f"not {value!r}")


T = TypeVar("T")

STORED = ("value", "base-name", "set", "redacted-url", "secret")
"""How ``run.settings_json`` keeps a setting (``Setting.stored``; pytomo/storage/sqlite.py ``stored_settings``):
as given; a local file by its base name (each, for a list); ``<set>`` unless it is the default (a local directory:
its name may be a person's); a URL without its user:password; a secret only as ``<set>``, never logged either."""


def _opt(default: T, help: str, *, group: str = "", flag: str | tuple[str, ...] = (), unit: str = "",
         check: Check | None = None, **more: Any) -> T:
    """One setting: its default (the dataclass field's) and the rest of its row of the table (see ``Setting``);
    a plugin's settings take the plugin's name as their group."""
    flags = (flag,) if isinstance(flag, str) else flag
    return field(default=default, metadata={"setting": dict(help=help, group=group, flag=flags, unit=unit,
                                                            check=check, **more)})


# ------------------------------------------------------------------------------------------ the plugins' sections
# Each service plugin with settings of its own owns one section: the settings named ``<plugin>_<key>``, read from
# the config file's ``[<plugin>]`` table (``<key> = ...``) as well as by their flat name. The plugin names its section
# (``Service.SETTINGS``, pytomo/services/); ``Settings`` is the core settings and every section, so the plugins' values
# are ``settings.youtube_api_key`` as the others are. The sections are declared here, not in the plugins' modules,
# because the settings layer is below the plugins (tests/unit/test_import_graph.py) and the lab, which may not import
# a plugin, layers its URLs into these fields.


@dataclass(frozen=True)
class YouTubeSettings:
    """The ``youtube`` plugin's settings (pytomo/services/youtube.py; docs/platforms.md): ``[youtube]``."""

    youtube_api_key: str = _opt("", "YouTube Data API key: -t uses videos.list?chart=mostPopular",
                                flag="--youtube-api-key", metavar="KEY", env="PYTOMO_YOUTUBE_API_KEY", stored="secret",
                                note="other frames a `search.list` by view count")
    youtube_api_base_url: str = _opt("https://www.googleapis.com/youtube/v3", "YouTube Data API", check=http_url,
                                     stored="redacted-url", trusted_host=True)
    youtube_region: str = _opt("", "country of the chart and searches (regionCode)", flag="--youtube-region",
                               metavar="CC", label="youtube region",
                               check=matches(r"[A-Za-z]{2}", "a two-letter country code"))
    youtube_category: str = _opt("", "category of the chart (videoCategoryId, e.g. 10 Music, 20 Gaming, 30 Movies); "
                                 "none: the chart as YouTube makes it", flag="--youtube-category", metavar="ID",
                                 label="youtube category",
                                 check=matches(r"[0-9]{1,3}", "a video category id (a number, e.g. 10)"))
    youtube_search: str = _opt("", "seed search (with a key: search.list by view count in the -t frame; without: "
                               "yt-dlp)", flag="--youtube-search", metavar="QUERY")
    youtube_playlist: str = _opt("", "seed playlist", flag="--youtube-playlist", metavar="ID")
    youtube_related: str = _opt("search", "related videos: search (by tags or title), channel (its uploads), none",
                                flag="--youtube-related", metavar="HOW", check=one_of(YOUTUBE_RELATED),
                                label="youtube related")
    youtube_player_client: tuple[str, ...] = _opt((), "yt-dlp player_client to use (repeatable)",
                                                  flag="--youtube-client", metavar="CLIENT",
                                                  shown="yt-dlp's own choice")


@dataclass(frozen=True)
class DailymotionSettings:
    """The ``dailymotion`` plugin's settings (pytomo/services/dailymotion.py; docs/platforms.md): ``[dailymotion]``."""

    dailymotion_api_base_url: str = _opt("https://api.dailymotion.com", "Dailymotion API", check=http_url,
                                         stored="redacted-url", trusted_host=True)
    dailymotion_sort: str = _opt("", "API sort of the seed list, e.g. trending", flag="--dailymotion-sort",
                                 metavar="SORT", shown="visited-today/-week/-month from -t", label="dailymotion sort",
                                 check=matches(r"[a-z][a-z-]*", "an API sort name such as trending"))
    dailymotion_media: str = _opt("yt-dlp", "media through yt-dlp, or api (the video object's stream fields: "
                                  "partner access)", flag="--dailymotion-media", metavar="HOW",
                                  check=one_of(DAILYMOTION_MEDIA), label="dailymotion media")
    dailymotion_access_token: str = _opt("", "Bearer token for --dailymotion-media api", stored="secret")


PLUGIN_SECTIONS: dict[str, type] = {"youtube": YouTubeSettings, "dailymotion": DailymotionSettings}
"""Plugin name (``-s``, the config file's table) -> its section; the registry's plugins name the same
(tests/unit/test_services.py)."""

GROUPS = {  # argparse groups and docs/options.md sections, in order
    "crawl": "crawl",
    "platforms": "platforms (docs/platforms.md)",
    **{name: f"{name} plugin ([{name}] in the config file)" for name in PLUGIN_SECTIONS},
    "probes": "probes",
    "download": "download and playout",
    "budgets": "budgets for what servers send",
    "output": "output",
    "lab": "lab",
}


@dataclass(frozen=True)
class Settings(YouTubeSettings, DailymotionSettings):
    """Every setting of a crawl, with its unit in its name; each field is one row of ``SETTINGS`` (docs/options.md):
    the core settings below and the plugins' sections above."""

    # crawl
    service: str = _opt("generic", "service plugin: lab, youtube, dailymotion or generic", group="crawl", flag="-s",
                        metavar="SERVICE", note="`lab` starts the built-in lab in the process and crawls it; "
                        "youtube and dailymotion: [platforms.md](platforms.md)")
    urls: tuple[str, ...] = _opt((), "page or media URLs to crawl (instead of a popular list)", group="crawl",
                                 flag="urls", metavar="URL", note="when given (or `-f`), no popular list is fetched")
    input_file: str | None = _opt(None, "file of URLs, one per line", group="crawl", flag=("-f", "--input-file"),
                                  metavar="FILE", stored="base-name",
                                  note="blank lines and `#` comments skipped; a bad line stops with its number")
    batch: bool = _opt(False, "never prompt", group="crawl", flag=("-b", "--batch"),
                       note="without it, and only when stdin is a terminal, the first crawl prints what it will "
                       "measure and store and asks for consent, remembered in `$PYTOMO_CONFIG_DIR` or "
                       "`~/.config/pytomo/consent.json` (asked again only when the statement changes)")
    max_crawled_urls: int = _opt(10000, "stop after N distinct videos measured", group="crawl", flag="-u",
                                 metavar="N", check=at_least(1), note="2015 counted rows")
    max_rounds: int = _opt(10000, "maximum rounds", group="crawl", flag="-r", metavar="N", check=at_least(1),
                           note="also in loop mode")
    loop: bool = _opt(False, "crawl the same seeds again, round after round", group="crawl", flag=("-l", "--loop"),
                      negative=("--no-loop",), note="related videos are not followed; measurements spaced at "
                      "random (`--loop-interval`)")
    related: bool = _opt(False, "also crawl related videos", group="crawl", flag=("-R", "--related"),
                         negative=("--no-related",), note="the next round is made of the related videos of this one")
    max_per_url: int = _opt(10, "related videos sampled (at random) per video", group="crawl", flag="-p",
                            metavar="N", check=not_negative)
    max_per_page: int = _opt(10, "related links considered per page, and size of the popular list", group="crawl",
                             flag="-P", metavar="N", check=not_negative)
    time_frame: str = _opt("today", "popular list: today, week, month, all_time", group="crawl", flag="-t",
                           metavar="FRAME", check=one_of(TIME_FRAMES), label="time frame")
    delay_between_requests_s: float = _opt(
        10.0, "pause after each video (not after the last)", group="crawl", flag="-S", unit="s", metavar="SECONDS",
        check=not_negative, note="in loop mode the random spacing replaces it; longer after a bot check "
        "(`bot_check_pause_s`)")
    random_seed: int | None = _opt(None, "seed of the sampling of related videos and of the loop spacing",
                                   group="crawl", shown="random")
    # volunteer defaults (pytomo/engine/schedule.py, pytomo/consent.py)
    label: str = _opt("", "name of this computer in file names and the run row", group="output", flag="--label",
                      metavar="NAME", shown="the host name", label="label",
                      check=matches(LABEL, "1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or "
                                    "digit)"), note="replaces the host name in the database file name and "
                      "`run.host_label`")
    loop_mean_interval_s: float = _opt(
        600.0, "-l: mean of the random (exponential) spacing between measurements; 0: -S", group="crawl",
        flag="--loop-interval", unit="s", metavar="SECONDS", check=not_negative,
        note="start-to-start spacing drawn from an exponential distribution, so that volunteers do not "
        "synchronise (as ndt7 clients)")
    loop_min_interval_s: float = _opt(60.0, "-l: shortest spacing", group="crawl", flag="--loop-min-interval",
                                      unit="s", metavar="SECONDS", check=not_negative,
                                      note="ndt7's ratio: 0.1 × the mean")
    loop_max_interval_s: float = _opt(1500.0, "-l: longest spacing", group="crawl", flag="--loop-max-interval",
                                      unit="s", metavar="SECONDS", check=not_negative,
                                      note="2.5 × the mean; draws outside are clamped")
    bot_check_pause_s: float = _opt(60.0, "first pause after a bot check or HTTP 429", group="crawl", unit="s",
                                    check=not_negative, note="doubled after each further one in a row")
    bot_check_max_pause_s: float = _opt(3600.0, "cap of that pause", group="crawl", unit="s", check=not_negative)
    # probes
    ping_count: int = _opt(10, "RTT probes per address", group="probes", flag="-n", metavar="N", check=at_least(1),
                           note="and per method (the 2015 option had no effect)")
    ping_interval_s: float = _opt(0.2, "spacing of the RTT probes", group="probes", unit="s", check=not_negative)
    ping_timeout_s: float = _opt(1.0, "wait for one RTT probe's answer", group="probes", unit="s", check=positive)
    dns_timeout_s: float = _opt(4.0, "wait for one resolver's answer", group="probes", unit="s", check=positive)
    dns_system: bool = _opt(True, "query the system's nameservers", group="probes", negative=("--no-system-dns",))
    dns_extra: tuple[str, ...] = _opt((), "an extra resolver to query (repeatable)", group="probes",
                                      flag="--dns-resolver", metavar="LABEL=IP[:PORT]",
                                      note="queried for every host")
    download_extra_dns: bool = _opt(False, "also download from addresses that only extra resolvers gave",
                                    group="probes", flag="--download-extra-dns")
    redirect_max_hops: int = _opt(10, "redirects followed to the media", group="probes", check=at_least(1))
    http_timeout_s: float = _opt(5.0, "connect and read timeout of a request", group="probes", unit="s",
                                 check=positive, note="response headers must arrive whole within it, however "
                                 "slowly a server drips them")
    http_proxy: str | None = _opt(None, "HTTP proxy for every request", group="probes", flag="--http-proxy",
                                  metavar="PROXY", stored="redacted-url", trusted_host=True,
                                  note="addresses are then chosen by the proxy")
    cookies_file: str | None = _opt(None, "cookies in Netscape format (as yt-dlp reads them), sent by yt-dlp and "
                                    "with media requests", group="probes", flag="--cookies", metavar="FILE",
                                    stored="base-name")
    http_protocol: str = _opt("auto", "HTTP version of media requests over HTTPS: 1.1, 2, 3 or auto", group="probes",
                              flag="--http", metavar="VERSION", check=one_of(("1.1", "2", "3", "auto")),
                              note="2, 3 and auto go through libcurl (curl_cffi): auto is HTTP/2 by ALPN and HTTP/3 "
                              "on a new connection once the server advertised it in `Alt-Svc` (TCP kept, with "
                              "libcurl's reason, when QUIC fails); the redirect walk's HTTPS hops go over the same "
                              "transport (the download then reuses the last hop's connection); plain-HTTP URLs and "
                              "hops stay on HTTP/1.1, and so do the walk's hops behind `--http-proxy`; no TCP_INFO "
                              "over HTTP/3 (QUIC)")
    ca_file: str | None = _opt(None, "CA certificates (PEM) trusted besides the default bundle, as on a network whose "
                               "TLS proxy signs what it forwards", group="probes", flag="--ca-file", metavar="FILE",
                               stored="base-name", env="REQUESTS_CA_BUNDLE|SSL_CERT_FILE", check=_ca_file,
                               note="taken from `REQUESTS_CA_BUNDLE` or else `SSL_CERT_FILE` when set, as Python's "
                               "tools do, but added to certifi's bundle rather than replacing it; the lab's own CA "
                               "is trusted only while the lab runs")
    user_agent: str = _opt("Mozilla/5.0 (X11; Linux x86_64) pytomo/4", "User-Agent of our requests",
                           group="probes")
    allow_private_targets: bool = _opt(
        False, "let redirects, pages, manifests and DNS answers lead to private, loopback, link-local and other "
        "non-global addresses the URLs given did not name", group="probes", flag="--allow-private-targets",
        shown="off: refused", note="CGNAT, multicast and documentation ranges too, IPv4 and IPv6; by default such a "
        "connection is refused before anything is sent and stored as `redirects/forbidden_address`. URLs given on "
        "the command line or in `-f`, the API, recording and proxy URLs of the settings (\"its host may be "
        "non-global\" below), and the lab may always reach theirs")
    ip_db: tuple[str, ...] = _opt((), "an offline IP database in MaxMind's format (.mmdb: GeoLite2 or DB-IP Lite, "
                                  "ASN or country) giving the AS and country of each cache server (repeatable)",
                                  group="probes", flag="--ip-db", metavar="FILE", stored="base-name",
                                  note="no online lookup; the first file that has a field gives it; private and "
                                  "loopback addresses are not looked up (the lab's are); the volunteer's own address "
                                  "is never looked up nor stored")
    # download and playout
    download_time_s: float = _opt(30.0, "download window per video; <= 0: {max_download_time_s}", group="download",
                                  flag="-D", unit="s", metavar="SECONDS", note="counted from the response headers")
    max_download_time_s: float = _opt(600.0, "the window of -D <= 0", group="download", unit="s", check=positive)
    throughput_bin_s: float = _opt(0.1, "width of the throughput samples", group="download", unit="s",
                                   check=positive)
    media_head_bytes: int = _opt(2 * 1024 * 1024, "bytes of the media kept in memory for MediaInfo",
                                 group="download", unit="bytes")
    initial_buffer_s: float = _opt(2.0, "media buffered before playback starts", group="download", flag="-B",
                                   unit="s", metavar="SECONDS", check=not_negative,
                                   note="documented in 2015, missing there")
    min_buffer_s: float = _opt(0.1, "buffer under which playback stalls", group="download", flag="-M", unit="s",
                               metavar="SECONDS", check=not_negative)
    restart_buffer_s: float = _opt(1.0, "buffer needed to resume after a stall", group="download",
                                   flag="--restart-buffer", unit="s", metavar="SECONDS", check=not_negative)
    player: str = _opt("2015", "playout profiles to run over every download, comma-separated: 2015, dashjs, shaka, "
                       "hlsjs, native", group="download", flag="--player", metavar="LIST", check=_players,
                       label="--player", note="each profile follows one player's rules (docs/measurement.md); one "
                       "row per profile in `playouts`; the first also decides what an HLS/DASH session fetches "
                       "(its buffer goal, and its ABR rule with `--abr player`); the 2015 profile always feeds the "
                       "`downloads` and `pytomo_crawl` columns")
    # budgets for untrusted input: crossing one is an outcome with its kind, never a crash or a silent cut
    page_limit_bytes: int = _opt(2 * 1024 * 1024, "HTML read from a page to find its <video>", group="budgets",
                                 unit="bytes", check=at_least(1))
    manifest_limit_bytes: int = _opt(4 * 1024 * 1024, "one HLS playlist, DASH MPD or segment index",
                                     group="budgets", unit="bytes", check=at_least(1))
    manifest_segments_max: int = _opt(100_000, "segments one rendition may list", group="budgets",
                                      check=at_least(1))
    media_box_limit_bytes: int = _opt(64 * 1024 * 1024, "the largest box or element a container index holds "
                                      "(moov, WebM headers)", group="budgets", unit="bytes", check=at_least(65_536))
    request_deadline_s: float = _opt(30.0, "headers and body of a request outside the download window (pages, "
                                     "manifests)", group="budgets", unit="s", check=positive)
    stage_deadline_s: float = _opt(120.0, "resolving the page, and walking the redirects, of one video",
                                   group="budgets", unit="s", check=positive)
    # segmented streaming (HLS, DASH)
    abr: str = _opt("fixed", "HLS/DASH: fixed (one rendition at full rate), buffer (buffer-based adaptation) or "
                    "player (the first --player profile's rule)",
                    group="download", flag="--abr", metavar="MODE", check=one_of(ABR_MODES),
                    note="`fixed` adapts nothing (as SamKnows, for reproducibility); `buffer` adapts the video "
                    "rendition to the buffer level (BBA-0); `player` estimates the throughput as that player does "
                    "and takes the highest rendition its safety factor allows")
    rendition: str = _opt("highest", "HLS/DASH fixed mode: highest, lowest, an index from the lowest, or a bit/s "
                          "cap", group="download", flag="--rendition", metavar="CHOICE", check=_rendition,
                          label="rendition")
    max_buffer_s: float = _opt(30.0, "HLS/DASH: do not fetch more than this ahead of the playhead",
                               group="download", flag="--max-buffer", unit="s", metavar="SECONDS", check=positive)
    bba_reservoir_s: float = _opt(5.0, "--abr buffer: the reservoir of BBA-0", group="download", unit="s")
    bba_cushion_s: float = _opt(10.0, "--abr buffer: the cushion of BBA-0", group="download", unit="s",
                                check=positive)
    # output
    database_dir: str = _opt("databases", "where run databases (and their logs) go", group="output",
                             flag="--database-dir", metavar="DIR", stored="set")
    provider: str = _opt("", "ISP label, put into file names", group="output", flag="--provider", metavar="ISP",
                         note="and into the run row")
    # upload to a collector (pytomo/upload, docs/web.md)
    centralise: bool = _opt(False, "upload the run database to the collector (--collector) when the run ends",
                            group="output", flag=("-c", "--centralise", "--centralize"),
                            note="the 2015 option, now an authenticated upload; what is sent, where, and how to "
                            "withdraw are said before the first crawl; with `-b`, giving `-c` is the consent. A run "
                            "that cannot be sent stays in the outbox for `pytomo upload`")
    collector_url: str = _opt("", "the collector that -c and `pytomo upload` send runs to", group="output",
                              flag="--collector", metavar="URL", check=http_url, stored="redacted-url",
                              note="https://, or plain http:// to a loopback address only")
    collector_token: str = _opt("", "this volunteer's token for the collector", group="output",
                                env="PYTOMO_COLLECTOR_TOKEN", stored="secret",
                                note="config file or environment only (a command line is seen by every user)")
    no_log_ip: bool = _opt(True, "do not record the public address (always the case: this version never looks it "
                           "up)", group="output", flag=("-x", "--no-log-ip"), note="there is no option to record "
                           "it; the option is kept for old scripts")
    log_level: str = _opt("INFO", "log level of the run log: DEBUG, INFO, WARNING, ERROR, CRITICAL", group="output",
                          flag="-L", metavar="LEVEL", check=one_of(LOG_LEVELS), upper=True, label="log level")
    # platforms: what the yt-dlp plugins share (pytomo/services/platform.py) and the lab plugin's platform
    media_format: str = _opt(
        "player", "format to measure: player (what a 1080p player plays), <N>p, best, worst, progressive, or a "
        "format id such as 18 or 137+140", group="platforms", flag="--format", metavar="CHOICE", label="format",
        check=matches(MEDIA_FORMAT, "player, <N>p (e.g. 720p), best, worst, progressive or a format id (e.g. 18 or "
                      "137+140)"))
    info_source_url: str = _opt("", "recordings of yt-dlp's output instead of yt-dlp (the lab serves one)",
                                group="platforms", check=http_url, stored="redacted-url", trusted_host=True)
    lab_platform_url: str = _opt("", "base URL of the lab's platform (watch pages, popular list); the run sets it "
                                 "when the lab runs", group="platforms", check=http_url, stored="redacted-url")
    # lab
    lab: bool = _opt(False, "run the lab here; -s youtube/dailymotion use its recorded APIs and pages", group="lab",
                     flag="--lab")
    lab_scenario: str | None = _opt(None, "scenario of the lab (-s lab, --lab)", group="lab", flag="--lab-scenario",
                                    metavar="FILE", shown="the built-in default", stored="base-name")
    lab_truth: str | None = _opt(None, "write the lab's ground-truth log (JSON lines) here", group="lab",
                                 flag="--lab-truth", metavar="FILE", stored="base-name")

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


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: everything the command line, the config file, the checks and the docs use."""

    name: str  # the Settings field, the key in run.settings_json and the config file's flat key
    default: Any  # the Settings field's default
    unit: str = ""  # "s", "bytes" or "" (also the suffix of the name)
    help: str = ""  # one line: --help and docs/options.md
    flag: tuple[str, ...] = ()  # command-line flags; a name without "-" is positional; empty: config file only
    check: Check | None = None  # its limits, checked once (build) whatever layer the value came from
    group: str = "crawl"  # a key of GROUPS
    kind: type = str  # the type of the value (of each item, for a tuple)
    metavar: str = ""
    negative: tuple[str, ...] = ()  # flags that turn a bool setting off (--no-loop)
    label: str = ""  # how error messages call it (default: the name and its first flag)
    note: str = ""  # more for docs/options.md than --help has room for
    shown: str = ""  # the default as shown, when the value alone says too little ("the host name")
    env: str = ""  # an environment variable layered under the config file ("A|B": the first one set)
    upper: bool = False  # case-insensitive, kept in capitals
    plugin: str = ""  # the service plugin owning it (its section, its config-file table); "" for the core settings
    stored: str = "value"  # how run.settings_json keeps it: one of STORED
    trusted_host: bool = False  # a URL whose host the user chose: it may be non-global (as a URL given), see
    #                             --allow-private-targets and pytomo/run.py

    @property
    def secret(self) -> bool:
        """Never shown: the run row and the run log say only whether it is set."""
        return self.stored == "secret"

    @property
    def key(self) -> str:
        """Its key in the config file: the name, or ``<plugin>.<key>`` (the key of the ``[<plugin>]`` table)."""
        return f"{self.plugin}.{self.name.removeprefix(self.plugin + '_')}" if self.plugin else self.name

    @property
    def many(self) -> bool:
        """A tuple of values (repeatable option)."""
        return isinstance(self.default, tuple)

    @property
    def what(self) -> str:
        """The name used in messages."""
        if self.label:
            return self.label
        return f"{self.name} ({self.flag[0]})" if self.flag and self.flag[0].startswith("-") else self.name

    def shown_default(self) -> str:
        """The default as --help and the docs show it, with its unit."""
        if self.shown:
            return self.shown
        if self.env:
            return " or ".join(f"${name}" for name in self.env.split("|"))
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if value is None or value in ("", ()):
            return ""
        if self.unit == "bytes" and value % (1024 * 1024) == 0:
            return f"{value // (1024 * 1024)} MiB"
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{text} {self.unit}" if self.unit == "s" else text


def described(setting: Setting) -> str:
    """Its help with the defaults of the settings it names (``{name}``) filled in from the table."""
    return setting.help.format_map({s.name: s.shown_default() for s in SETTINGS}) if "{" in setting.help else (
        setting.help)


def _kind(name: str, default: Any, hints: dict[str, Any]) -> type:
    if default is not None and not isinstance(default, tuple):
        return type(default)
    args = [a for a in typing.get_args(hints[name]) if a is not type(None) and a is not Ellipsis]
    return args[0] if args else str


def _rows(cls: type, plugin: str, hints: dict[str, Any]) -> list[Setting]:
    own = set() if plugin else {f.name for section in PLUGIN_SECTIONS.values() for f in dataclasses.fields(section)}
    return [Setting(name=f.name, default=f.default, kind=_kind(f.name, f.default, hints),
                    **{**f.metadata["setting"], "group": f.metadata["setting"]["group"] or plugin}, plugin=plugin)
            for f in dataclasses.fields(cls) if f.name not in own]


def _table() -> tuple[Setting, ...]:
    """The core rows, then every plugin section's rows."""
    hints = typing.get_type_hints(Settings)
    rows = _rows(Settings, "", hints)
    for plugin, section in PLUGIN_SECTIONS.items():
        rows += _rows(section, plugin, hints)
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _table()
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECRETS = tuple(s.name for s in SETTINGS if s.secret)
DEFAULTS = Settings()
"""Every default, for the engine's functions called without a run's settings (a default is declared once: here)."""


def _coerce(setting: Setting, value: Any) -> Any:
    """One value from a layer -> the setting's type, or UsageError."""
    name, kind = setting.name, setting.kind
    if setting.many:
        return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)
    if value is None:
        return value
    if kind is bool and not isinstance(value, bool):
        raise UsageError(f"setting {name} must be true or false, not {value!r}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise UsageError(f"setting {name} must be a number, not {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise UsageError(f"setting {name} must be a whole number, not {value!r}")
    value = kind(value)
    return value.upper() if setting.upper else value


CROSS_CHECKS: tuple[tuple[str, str], ...] = (  # (upper, lower): the first must not be below the second
    ("loop_max_interval_s", "loop_min_interval_s"),
    ("bot_check_max_pause_s", "bot_check_pause_s"),
)


def validate(s: Settings) -> Settings:
    """Every setting's own check, then the checks between settings; the first complaint is a UsageError."""
    for setting in SETTINGS:
        value = getattr(s, setting.name)
        if setting.check is not None and value is not None:
            complaint = setting.check(setting.what, value)
            if complaint:
                raise UsageError(complaint)
    for upper, lower in CROSS_CHECKS:
        if getattr(s, upper) < getattr(s, lower):
            raise UsageError(f"{upper} must not be below {lower}")
    return s


def config_values(data: dict[str, Any], where: str) -> dict[str, Any]:
    """The settings of a config file's TOML, by name: the core settings' keys, and each plugin's settings in its
    table (``[youtube]`` ``api_key = ...``) or by their flat name (``youtube_api_key = ...``, the older spelling);
    unknown keys, or one setting given both ways, are refused in one line."""
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in data.items():
        if key in PLUGIN_SECTIONS and not isinstance(value, dict):
            raise UsageError(f"{where}: {key} must be a table ([{key}] with its settings, see docs/options.md)")
        pairs = [(f"{key}.{k}", v) for k, v in value.items()] if key in PLUGIN_SECTIONS else [(key, value)]
        for spelling, v in pairs:
            setting = BY_KEY.get(spelling) or BY_NAME.get(spelling)
            if setting is None:
                unknown.append(spelling)
            elif setting.name in spelled:
                raise UsageError(f"{where}: {setting.key} is given twice ({spelled[setting.name]} and {spelling}); "
                                 "keep one")
            else:
                spelled[setting.name], values[setting.name] = spelling, v
    if unknown:
        raise UsageError(f"{where}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))} "
                         "(see docs/options.md)")
    return values


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file (its keys at top level or under ``[pytomo]``): the settings it sets, by name
    (``config_values``)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from exc
    return config_values(data.get("pytomo", data), f"config file {path}")


def from_environment(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    """The settings that have an environment variable, from it (a layer under the config file)."""
    out = {}
    for setting in SETTINGS:
        names = [n for n in setting.env.split("|") if n and environ.get(n)]  # the first one set, in order
        if names:
            out[setting.name] = environ[names[0]]
    return out


def build(config: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Layer defaults < config < overrides, check types and values, and return frozen settings."""
    values: dict[str, Any] = {}
    for layer in (config or {}, overrides or {}):
        for name, value in layer.items():
            if name not in BY_NAME:
                raise UsageError(f"unknown setting {name!r}")
            values[name] = _coerce(BY_NAME[name], value)
    return validate(Settings(**values))
