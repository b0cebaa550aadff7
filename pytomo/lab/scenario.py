"""Lab scenarios: the platform's videos and the cache servers' profiles, read from a documented TOML file."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytomo.errors import LabError
from pytomo.lab.clienthello import BROWSER_RULES
from pytomo.lab.media import CONTAINERS, MediaSpec
from pytomo.lab.tls import TLS_FAULTS

DELIVERIES = ("progressive", "hls", "dash")
FAULTS = ("404", "403", "500", "reset", "redirect_loop", "short_body", "html", *TLS_FAULTS)
# lab: our scriptable server (pytomo/lab/http.py); nginx: Debian's nginx (pytomo/lab/nginx.py); caddy: Debian's
# Caddy, HTTPS only, HTTP/1.1, HTTP/2 and HTTP/3 on one port (pytomo/lab/caddy.py)
SOFTWARE = ("lab", "nginx", "caddy")
# What a lab server enforces on media requests, as a platform's media host does (pytomo/lab/http.py, docs/lab.md):
# youtube: the recorded format's User-Agent, only closed ranges (no HEAD, no request without a Range or with an
# open one; max_range_bytes caps them), available_at, keep-alive between requests
RULES = ("youtube",)
NGINX_FAULTS = ("404", "403", "500", "redirect_loop", *TLS_FAULTS)  # the faults nginx's configuration can express
CADDY_FAULTS = ("404", "403", "500", *TLS_FAULTS)  # and Caddy's
# How a segmented video is packaged: ffmpeg's own HLS/DASH muxers, or Shaka Packager in one of its forms.
PACKAGINGS = {
    "hls": ("ffmpeg", "shaka-cmaf", "shaka-byterange"),
    "dash": ("ffmpeg", "shaka-number", "shaka-time", "shaka-segmentbase"),
}
TIME_FRAMES = ("today", "week", "month", "all_time")
# The scheme of a video's watch page and redirect hops: http, or https (each hop's own certificate from the lab's CA)
REDIRECT_SCHEMES = ("http", "https")
LAB_DOMAIN = "lab.pytomo.test"
PLATFORM_IP = "127.77.0.1"
REDIRECTOR_IPS = ("127.77.0.2", "127.77.0.3", "127.77.0.4")
DNS_IP = "127.77.0.53"


@dataclass(frozen=True)
class ServerProfile:
    """How one cache server serves media: pacing, delay before the first byte, scripted pauses, faults."""

    name: str
    host: str
    ip: str
    software: str = "lab"  # one of SOFTWARE
    tls: bool = False  # HTTPS with a certificate of the lab's CA (always for caddy and the TLS faults)
    rate_bps: float | None = None  # None: as fast as the machine goes
    burst_bytes: int = 0  # bytes sent unpaced before pacing starts (as CDNs do at start-up)
    ttfb_delay_s: float = 0.0
    stalls: tuple[tuple[int, float], ...] = ()  # (after_bytes, pause_s)
    fault: str | None = None
    fault_after_bytes: int = 0  # for reset and short_body
    rules: str | None = None  # one of RULES: what the server enforces on media requests; None: nothing
    max_range_bytes: int | None = None  # rules = "youtube": a longer range is refused with a 403; None: no cap
    # one of BROWSER_RULES: browser (403 unless the client's TLS hello looks like Chrome's or Firefox's), refuse
    # (403 whatever the hello); None: any client (pytomo/lab/clienthello.py); lab servers over HTTPS only
    tls_fingerprint: str | None = None
    # "h3": nginx over TLS advertises HTTP/3 on its own port (Alt-Svc) where nothing listens on UDP: a closed QUIC port
    alt_svc: str | None = None
    # network path (only with the scenario's network_path = true; see pytomo/lab/netpath.py)
    path_delay_ms: float = 0.0  # one way, each direction
    path_rate_bps: float | None = None  # each direction, IP bytes; None: no rate limit
    path_loss: float = 0.0  # share of packets dropped from the server to the client
    path_loss_up: float = 0.0  # share dropped from the client to the server
    path_queue_bytes: int | None = None  # None: the path's default (2 x bandwidth-delay product, >= 100 ms)
    path_mtu_bytes: int = 1500


@dataclass(frozen=True)
class VideoSpec:
    """One video of the lab platform."""

    id: str
    title: str
    server: str
    media: MediaSpec
    hops: int = 1
    popular: tuple[str, ...] = TIME_FRAMES
    related: tuple[str, ...] = ()
    delivery: str = "progressive"  # progressive, hls or dash
    segment_s: float = 2.0  # for hls and dash
    packaging: str = "ffmpeg"  # for hls and dash: one of PACKAGINGS[delivery]
    pair: bool = False  # also served as a video-only file and an audio-only file (mp4, lab servers only)
    redirect_scheme: str = "http"  # one of REDIRECT_SCHEMES: the watch page and every redirect hop over it
    live: bool = False  # hls or dash on nginx: a live channel made by ffmpeg in real time (pytomo/lab/live.py,
    # pytomo/lab/live_dash.py)
    live_timeline: bool = False  # a live dash channel: a SegmentTimeline ($Time$ timing) instead of @duration


@dataclass(frozen=True)
class Scenario:
    """A whole lab: its servers and videos."""

    name: str
    description: str
    servers: tuple[ServerProfile, ...]
    videos: tuple[VideoSpec, ...]
    dns_ttl_s: int = 300
    network_path: bool = False  # cache servers behind the namespace path (root only)
    path_seed: int = 0  # seeds the path's loss draws
    source: str | None = None
    extra: dict = field(default_factory=dict)

    def server(self, name: str) -> ServerProfile:
        """The server profile called ``name``."""
        for s in self.servers:
            if s.name == name:
                return s
        raise LabError(f"scenario {self.name}: no server named {name!r}")

    def video(self, video_id: str) -> VideoSpec | None:
        """The video with this id, or None."""
        for v in self.videos:
            if v.id == video_id:
                return v
        return None


def _loopback(ip: str, where: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise LabError(f"{where}: {ip!r} is not an IP address") from exc
    if not addr.is_loopback:
        raise LabError(f"{where}: {ip} is not a loopback address; the lab only uses 127.0.0.0/8")
    return ip


def _server(i: int, raw: dict, where: str) -> ServerProfile:
    name = str(raw.get("name") or f"cache{i + 1}")
    fault = raw.get("fault")
    if fault is not None:
        fault = str(fault)
        if fault not in FAULTS:
            raise LabError(f"{where}: server {name}: fault must be one of {', '.join(FAULTS)}, not {fault!r}")
    rate = raw.get("rate_bps")
    if rate is not None and float(rate) <= 0:
        raise LabError(f"{where}: server {name}: rate_bps must be positive (omit it for unlimited)")
    stalls = tuple((int(b), float(t)) for b, t in raw.get("stalls", ()))
    path = _path_fields(raw, f"{where}: server {name}")
    if any(b < 0 or t < 0 for b, t in stalls):
        raise LabError(f"{where}: server {name}: stalls are [after_bytes, pause_s] with non-negative values")
    software = str(raw.get("software", "lab"))
    if software not in SOFTWARE:
        raise LabError(f"{where}: server {name}: software must be one of {', '.join(SOFTWARE)}, not {software!r}")
    rules = raw.get("rules")
    if rules is not None:
        rules = str(rules)
        if rules not in RULES:
            raise LabError(f"{where}: server {name}: rules must be one of {', '.join(RULES)}, not {rules!r}")
        if software != "lab":
            raise LabError(f"{where}: server {name}: only the lab's own server enforces rules; "
                           "use software = \"lab\" for it")
    _check_software(software, fault, rate, stalls, float(raw.get("ttfb_delay_s", 0.0)), f"{where}: server {name}")
    fingerprint = _tls_fingerprint(raw, software, f"{where}: server {name}")
    return ServerProfile(
        name=name,
        host=str(raw.get("host") or f"{name}.{LAB_DOMAIN}").lower(),
        ip=_loopback(str(raw.get("ip") or f"127.77.1.{i + 1}"), f"{where}: server {name}"),
        software=software,
        tls=bool(raw.get("tls", False)) or software == "caddy" or fault in TLS_FAULTS or fingerprint is not None,
        rate_bps=None if rate is None else float(rate),
        burst_bytes=int(raw.get("burst_bytes", 0)),
        ttfb_delay_s=float(raw.get("ttfb_delay_s", 0.0)),
        stalls=tuple(sorted(stalls)),
        fault=fault,
        fault_after_bytes=int(raw.get("fault_after_bytes", 0)),
        rules=rules,
        max_range_bytes=_max_range(raw, rules, f"{where}: server {name}"),
        tls_fingerprint=fingerprint,
        alt_svc=_alt_svc(raw, software, f"{where}: server {name}"),
        **path,
    )


def _max_range(raw: dict, rules: str | None, where: str) -> int | None:
    """A server's max_range_bytes, checked: a positive number of bytes, under rules = "youtube"."""
    cap = raw.get("max_range_bytes")
    if cap is None:
        return None
    if rules != "youtube":
        raise LabError(f"{where}: max_range_bytes is one of the youtube rules: set rules = \"youtube\" with it")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
        raise LabError(f"{where}: max_range_bytes must be a positive whole number of bytes, not {cap!r}")
    return cap


def _tls_fingerprint(raw: dict, software: str, where: str) -> str | None:
    """A server's tls_fingerprint rule, checked: one of BROWSER_RULES, on the lab's own server (which reads the
    client's hello before the handshake; nginx and Caddy do not say what they received)."""
    rule = raw.get("tls_fingerprint")
    if rule is None:
        return None
    if rule not in BROWSER_RULES:
        raise LabError(f"{where}: tls_fingerprint must be one of {', '.join(BROWSER_RULES)}, not {rule!r}")
    if software != "lab" or raw.get("tls") is False:
        raise LabError(f"{where}: tls_fingerprint needs the lab's own server over HTTPS (software = \"lab\", "
                       "tls = true)")
    return str(rule)


def _alt_svc(raw: dict, software: str, where: str) -> str | None:
    """A server's alt_svc, checked: "h3" on nginx over TLS (Debian's nginx has no QUIC: the port it advertises for
    HTTP/3 is closed; Caddy advertises its own, open one)."""
    value = raw.get("alt_svc")
    if value is None:
        return None
    if value != "h3":
        raise LabError(f"{where}: alt_svc must be \"h3\", not {value!r}")
    if software != "nginx" or raw.get("tls") is not True:
        raise LabError(f"{where}: alt_svc needs nginx over HTTPS (software = \"nginx\", tls = true)")
    return "h3"


def _check_software(software: str, fault: str | None, rate: Any, stalls: tuple, ttfb_delay_s: float,
                    where: str) -> None:
    """What nginx and Caddy cannot be configured to do."""
    if software == "lab":
        return
    allowed = NGINX_FAULTS if software == "nginx" else CADDY_FAULTS
    if fault is not None and fault not in allowed:
        raise LabError(f"{where}: {software} cannot script the fault {fault!r} (it can: {', '.join(allowed)}); "
                       "use software = \"lab\" for it")
    if stalls or ttfb_delay_s:
        raise LabError(f"{where}: {software} cannot pause mid-body or delay its first byte; "
                       "use software = \"lab\" for stalls and ttfb_delay_s")
    if software == "caddy" and rate is not None:
        raise LabError(f"{where}: Caddy has no rate limit of its own; set path_rate_bps (the network path) instead "
                       "of rate_bps")


def _path_fields(raw: dict, where: str) -> dict:
    """The server's network-path fields, checked."""
    delay = float(raw.get("path_delay_ms", 0.0))
    rate = raw.get("path_rate_bps")
    queue = raw.get("path_queue_bytes")
    mtu = int(raw.get("path_mtu_bytes", 1500))
    fields: dict[str, Any] = {"path_delay_ms": delay, "path_rate_bps": None if rate is None else float(rate),
              "path_loss": float(raw.get("path_loss", 0.0)), "path_loss_up": float(raw.get("path_loss_up", 0.0)),
              "path_queue_bytes": None if queue is None else int(queue), "path_mtu_bytes": mtu}
    if not 0 <= delay <= 10_000:
        raise LabError(f"{where}: path_delay_ms must be 0 to 10000")
    if rate is not None and not 1_000 <= float(rate) <= 10e9:
        raise LabError(f"{where}: path_rate_bps must be 1000 to 1e10 (omit it for no rate limit)")
    if not (0 <= fields["path_loss"] < 1 and 0 <= fields["path_loss_up"] < 1):
        raise LabError(f"{where}: path_loss and path_loss_up are shares of packets, from 0 up to (not including) 1")
    if not 576 <= mtu <= 65_535:
        raise LabError(f"{where}: path_mtu_bytes must be 576 to 65535")
    if queue is not None and int(queue) < mtu:
        raise LabError(f"{where}: path_queue_bytes must hold at least one packet ({mtu} bytes)")
    return fields


def _video(raw: dict, defaults: dict, servers: dict[str, ServerProfile], where: str) -> VideoSpec:
    merged = {**defaults, **raw}
    vid = str(merged.get("id", ""))
    if not vid or not vid.replace("-", "").replace("_", "").isalnum():
        raise LabError(f"{where}: video id {vid!r} must be letters, digits, '-' or '_'")
    server = str(merged.get("server", ""))
    if server not in servers:
        raise LabError(f"{where}: video {vid}: unknown server {server!r}")
    container = str(merged.get("container", "mp4"))
    if container not in CONTAINERS:
        raise LabError(f"{where}: video {vid}: container must be one of {', '.join(CONTAINERS)}")
    hops = int(merged.get("hops", 1))
    if not 0 <= hops <= 3:
        raise LabError(f"{where}: video {vid}: hops must be 0 to 3")
    popular = tuple(merged.get("popular", TIME_FRAMES))
    bad = [p for p in popular if p not in TIME_FRAMES]
    if bad:
        raise LabError(f"{where}: video {vid}: unknown time frame {bad[0]!r}")
    delivery = str(merged.get("delivery", "progressive"))
    if delivery not in DELIVERIES:
        raise LabError(f"{where}: video {vid}: delivery must be one of {', '.join(DELIVERIES)}")
    packaging = str(merged.get("packaging", "ffmpeg"))
    if delivery == "progressive" and packaging != "ffmpeg":
        raise LabError(f"{where}: video {vid}: packaging is for hls and dash videos only")
    if delivery != "progressive" and packaging not in PACKAGINGS[delivery]:
        raise LabError(f"{where}: video {vid}: packaging for {delivery} must be one of "
                       f"{', '.join(PACKAGINGS[delivery])}, not {packaging!r}")
    pair = merged.get("pair", False)
    if not isinstance(pair, bool):
        raise LabError(f"{where}: video {vid}: pair must be true or false")
    if pair and (delivery != "progressive" or container != "mp4" or servers[server].software != "lab"):
        raise LabError(f"{where}: video {vid}: a pair (video-only and audio-only files) is made from a progressive "
                       "mp4 video on a software = \"lab\" server")
    redirect_scheme = _redirect_scheme(merged, hops, servers[server], f"{where}: video {vid}")
    live = _live(merged, delivery, packaging, servers[server], f"{where}: video {vid}")
    media = MediaSpec(container=container, duration_s=float(merged.get("duration_s", 30.0)),
                      bitrate_bps=int(merged.get("bitrate_bps", 1_000_000)))
    return VideoSpec(id=vid, title=str(merged.get("title", vid)), server=server, media=media, hops=hops,
                     popular=popular, related=tuple(str(r) for r in merged.get("related", ())),
                     delivery=delivery, segment_s=float(merged.get("segment_s", 2.0)), packaging=packaging,
                     pair=pair, redirect_scheme=redirect_scheme, live=live,
                     live_timeline=live and delivery == "dash" and merged.get("live_timeline", False) is True)


def _live(merged: dict, delivery: str, packaging: str, server: ServerProfile, where: str) -> bool:
    """A video's live switch, checked: a live channel is HLS or DASH packaged by ffmpeg and served by nginx."""
    live = merged.get("live", False)
    if not isinstance(live, bool):
        raise LabError(f"{where}: live must be true or false")
    if live and (delivery not in ("hls", "dash") or packaging != "ffmpeg" or server.software != "nginx"):
        raise LabError(f"{where}: a live channel is delivery = \"hls\" or \"dash\" made by ffmpeg (packaging "
                       "\"ffmpeg\") on a software = \"nginx\" server")
    return live


def _redirect_scheme(merged: dict, hops: int, server: ServerProfile, where: str) -> str:
    """A video's redirect_scheme, checked: https needs redirect hops and ends at an HTTPS cache server."""
    scheme = merged.get("redirect_scheme", "http")
    if scheme not in REDIRECT_SCHEMES:
        raise LabError(f"{where}: redirect_scheme must be one of {', '.join(REDIRECT_SCHEMES)}, not {scheme!r}")
    if scheme == "https" and hops < 1:
        raise LabError(f"{where}: redirect_scheme = \"https\" needs redirect hops (hops = 1 to 3)")
    if scheme == "https" and not server.tls:
        raise LabError(f"{where}: redirect_scheme = \"https\" ends at a cache server over HTTPS; server "
                       f"{server.name} is not (set tls = true on it)")
    return str(scheme)


def parse_scenario(data: dict, source: str = "<scenario>") -> Scenario:
    """Build a Scenario from the parsed TOML document, checking every field."""
    raw_servers = data.get("servers") or []
    raw_videos = data.get("videos") or []
    if not raw_servers or not raw_videos:
        raise LabError(f"{source}: a scenario needs at least one [[servers]] and one [[videos]] table")
    servers = [_server(i, raw, source) for i, raw in enumerate(raw_servers)]
    by_name = {s.name: s for s in servers}
    if len(by_name) != len(servers):
        raise LabError(f"{source}: server names must be unique")
    if len({s.ip for s in servers}) != len(servers) or len({s.host for s in servers}) != len(servers):
        raise LabError(f"{source}: every server needs its own host name and address")
    taken = {PLATFORM_IP, DNS_IP, *REDIRECTOR_IPS}
    for s in servers:
        if s.ip in taken:
            raise LabError(f"{source}: server {s.name}: {s.ip} is reserved for the lab's own hosts")
    defaults = data.get("video_defaults", {})
    videos = [_video(raw, defaults, by_name, source) for raw in raw_videos]
    ids = [v.id for v in videos]
    if len(set(ids)) != len(ids):
        raise LabError(f"{source}: video ids must be unique")
    for v in videos:
        for r in v.related:
            if r not in ids:
                raise LabError(f"{source}: video {v.id}: related video {r!r} does not exist")
    meta = data.get("scenario", {})
    return Scenario(name=str(meta.get("name", Path(source).stem)), description=str(meta.get("description", "")),
                    servers=tuple(servers), videos=tuple(videos), dns_ttl_s=int(meta.get("dns_ttl_s", 300)),
                    network_path=_switch(meta.get("network_path", False), source),
                    path_seed=int(meta.get("path_seed", 0)), source=source)


def _switch(value: object, source: str) -> bool:
    if not isinstance(value, bool):
        raise LabError(f"{source}: [scenario] network_path must be true or false")
    return value


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise LabError(f"cannot read lab scenario {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"lab scenario {path} is not valid TOML: {exc}") from exc
    return parse_scenario(data, str(path))


def default_scenario_path() -> Path:
    """The scenario used when none is given."""
    from pytomo.paths import lab_scenarios_dir

    return lab_scenarios_dir() / "default.toml"
