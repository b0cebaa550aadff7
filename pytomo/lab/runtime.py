"""The running lab: media, DNS and HTTP servers of one scenario, started and stopped together."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

from pytomo.errors import LabError
from pytomo.lab.caddy import CaddyServers, caddy_exe
from pytomo.lab.dns import LabDnsServer
from pytomo.lab.http import CacheHandler, LabServer, PlatformHandler, RedirectorHandler
from pytomo.lab.live import PLAYLIST, LiveChannel, LiveSpec, live_file
from pytomo.lab.live_dash import MPD, DashLiveChannel
from pytomo.lab.media import LabMedia, ensure_media, ffmpeg_unavailable, media_unavailable, pair_specs
from pytomo.lab.netpath import NetPath, PathError, PathSpec, unavailable_reason
from pytomo.lab.nginx import NginxServers
from pytomo.lab.platforms import PLATFORMS_HOST, PLATFORMS_IP, PlatformsHandler, dns_records, endpoints
from pytomo.lab.scenario import DNS_IP, LAB_DOMAIN, PLATFORM_IP, REDIRECTOR_IPS, Scenario, ServerProfile, VideoSpec
from pytomo.lab.segmented import SegmentedMedia, SegmentedSpec, ensure_segmented, segmented_made
from pytomo.lab.segmented import unavailable as segmented_unavailable
from pytomo.lab.served import ServedError
from pytomo.lab.tls import LabTLS
from pytomo.lab.tools import nginx_exe
from pytomo.lab.truth import REQUEST_FIELDS, TruthLog, path_stats_file, requests_file
from pytomo.settings import Settings

log = logging.getLogger(__name__)

PLATFORM_HOST = f"www.{LAB_DOMAIN}"
REDIRECTOR_HOSTS = tuple(f"r{i + 1}.redirector.{LAB_DOMAIN}" for i in range(len(REDIRECTOR_IPS)))
_EXT = {"mp4": "mp4", "mp4-moov-end": "mp4", "fmp4": "mp4", "webm": "webm", "flv": "flv"}


class Lab:
    """An emulated video platform on loopback addresses; a context manager."""

    def __init__(self, scenario: Scenario, truth_path: str | Path | None = None,
                 media_dir: Path | None = None) -> None:
        self.scenario = scenario
        self.truth = TruthLog(truth_path)
        # every request the lab's own servers answered, as each saw it (SNI, the address it arrived at)
        self.request_log = TruthLog(requests_file(truth_path) if truth_path else None, REQUEST_FIELDS)
        self.media_dir = media_dir
        self.media: dict[str, LabMedia] = {}
        self.segmented: dict[str, SegmentedMedia] = {}
        self.live: dict[str, LiveChannel] = {}  # live HLS channels made by ffmpeg as the lab runs
        self.live_path = live_file(truth_path) if truth_path else None  # their playlist versions
        self.dns: LabDnsServer | None = None
        self.platform: LabServer | None = None
        self.redirectors: list[LabServer] = []
        # the platform and the redirectors over HTTPS (on their own addresses, other ports), for the videos with
        # redirect_scheme = "https"; None and [] when no video has
        self.platform_tls: LabServer | None = None
        self.redirectors_tls: list[LabServer] = []
        self.caches: dict[str, LabServer] = {}  # the lab's own cache servers (software = "lab")
        self.nginx: NginxServers | None = None  # the software = "nginx" cache servers (pytomo/lab/nginx.py)
        self.caddy: CaddyServers | None = None  # the software = "caddy" cache servers (pytomo/lab/caddy.py)
        self.platforms: LabServer | None = None  # recorded YouTube/Dailymotion APIs (pytomo/lab/platforms.py)
        self._threads: list[threading.Thread] = []
        self.path: NetPath | None = None  # with network_path = true: the cache servers' namespace path
        self.dns_records: dict[str, list[str]] = {}  # what the lab's DNS server answers, once started
        self.tls: LabTLS | None = None  # the lab's certificate authority and certificates, made at start

    # lifecycle
    def start(self) -> Lab:
        """Generate missing media, then start the HTTP servers and the DNS server."""
        if self.scenario.network_path:
            self._check_path()  # before making media: fail fast
        self.tls = LabTLS(Path(tempfile.mkdtemp(prefix="pytomo-lab-tls-")))
        exe, why = nginx_exe() if self._profiles("nginx") else (None, "")
        if self._profiles("nginx") and exe is None:
            self._leave_out_software("nginx", why)
        caddy, why_not_caddy = caddy_exe() if self._profiles("caddy") else (None, "")
        if self._profiles("caddy") and caddy is None:
            self._leave_out_software("caddy", why_not_caddy)
        self._make_media()
        try:
            self._start_live()
            self._start_servers(exe, caddy)
            self._wait_live()
        except OSError as exc:
            self.stop()
            raise LabError(f"cannot start the lab servers: {exc}") from exc
        except BaseException:
            self.stop()  # the network path above all: no namespace left behind
            raise
        return self

    def _make_media(self) -> None:
        """Make (or find made, or shipped) every video's media; leave out the videos whose media cannot be had here
        (a Shaka form without Shaka Packager; without ffmpeg, what neither the cache nor the bundle holds)."""
        missing: dict[str, str] = {}
        for video in self.scenario.videos:
            why_not = self._media_unavailable(video)
            if why_not:
                missing[video.id] = why_not
            elif video.live:
                live_spec = LiveSpec(video.segment_s, video.media.bitrate_bps)
                self.live[video.id] = (DashLiveChannel(video.id, live_spec, self.live_path, video.live_timeline)
                                       if video.delivery == "dash" else LiveChannel(video.id, live_spec,
                                                                                   self.live_path))
            elif video.delivery == "progressive":
                self.media[video.id] = ensure_media(video.media, self.media_dir)
            else:
                self.segmented[video.id] = ensure_segmented(self._segmented_spec(video), self.media_dir)
        if missing:
            self._leave_out(set(missing), f"videos {', '.join(sorted(missing))} left out: "
                                          f"{next(iter(missing.values()))}")

    @staticmethod
    def _segmented_spec(video: VideoSpec) -> SegmentedSpec:
        return SegmentedSpec(video.delivery, duration_s=video.media.duration_s, segment_s=video.segment_s,
                             packaging=video.packaging)

    def _media_unavailable(self, video: VideoSpec) -> str | None:
        """Why ``video``'s media cannot be had here, else None."""
        if video.live:
            return ffmpeg_unavailable()
        if video.delivery == "progressive":
            specs = [video.media, *(pair_specs(video.media).values() if video.pair else ())]
            return next(filter(None, (media_unavailable(s, self.media_dir) for s in specs)), None)
        spec = self._segmented_spec(video)
        why_not = segmented_unavailable(spec, self.media_dir)
        if why_not is None and not segmented_made(spec, self.media_dir):
            return ffmpeg_unavailable()
        return why_not

    def _start_live(self) -> None:
        """Start ffmpeg for every live channel (their playlists fill while the servers start)."""
        for channel in self.live.values():
            channel.start()

    def _wait_live(self) -> None:
        """Wait for every live channel's first segment; a channel ffmpeg cannot make is left out with one line."""
        failed: dict[str, str] = {}
        for video_id, channel in list(self.live.items()):
            try:
                channel.wait_ready()
            except LabError as exc:
                failed[video_id] = str(exc)
        if failed:
            self._leave_out(set(failed), f"live videos {', '.join(sorted(failed))} left out: "
                                         f"{next(iter(failed.values()))}")

    def _start_servers(self, nginx: str | None, caddy: str | None) -> None:
        """The network path, nginx and Caddy (their executables), the HTTP servers and the DNS server."""
        if self.scenario.network_path:
            self._start_path()
        if self._profiles("nginx") and nginx is not None:  # without an executable they were left out already
            self._start_nginx(nginx)
        if self._profiles("caddy") and caddy is not None:
            self._start_caddy(caddy)
        self.platform = self._serve(PLATFORM_IP, PlatformHandler, role="platform", host=PLATFORM_HOST)
        self.redirectors = [self._serve(ip, RedirectorHandler, role="redirector", host=host)
                            for ip, host in zip(REDIRECTOR_IPS, REDIRECTOR_HOSTS)]
        if any(v.redirect_scheme == "https" for v in self.scenario.videos):
            self.platform_tls = self._serve(PLATFORM_IP, PlatformHandler, role="platform", host=PLATFORM_HOST,
                                            tls=True)
            self.redirectors_tls = [self._serve(ip, RedirectorHandler, role="redirector", host=host, tls=True)
                                    for ip, host in zip(REDIRECTOR_IPS, REDIRECTOR_HOSTS)]
        self.platforms = self._serve(PLATFORMS_IP, PlatformsHandler, role="platforms", host=PLATFORMS_HOST)
        for profile in self.scenario.servers:
            if profile.software == "lab":
                self.caches[profile.name] = self._serve(profile.ip, CacheHandler, profile)
        records = {PLATFORM_HOST: [PLATFORM_IP]}
        records.update({h: [ip] for h, ip in zip(REDIRECTOR_HOSTS, REDIRECTOR_IPS)})
        records.update({p.host: [p.ip] for p in self.scenario.servers})
        records.update(dns_records())
        self.dns_records = records
        self.dns = LabDnsServer(records, ttl_s=self.scenario.dns_ttl_s, host=DNS_IP).start()

    @property
    def ca_file(self) -> Path:
        """The lab's CA certificate (PEM): what a client of the lab trusts."""
        return _running(self.tls, "certificate authority").ca_file

    def _serve(self, ip: str, handler: type[BaseHTTPRequestHandler], profile: ServerProfile | None = None, *,
               role: str = "cache", host: str | None = None, tls: bool = False) -> LabServer:
        """Start one of the lab's own servers: a cache server (``profile``), or the ``role`` server ``host``
        (over HTTPS with ``host``'s certificate when ``tls``)."""
        host = profile.host if profile is not None else host or ip
        ca = _running(self.tls, "certificate authority")
        context = (ca.server_context(host, profile.fault) if profile is not None and profile.tls
                   else ca.server_context(host) if tls else None)
        if self.path is not None and profile is not None:  # a cache server listens in the path's namespace
            server = self.path.call(lambda: LabServer(ip, handler, self, profile, context, role=role, host=host))
        else:
            server = LabServer(ip, handler, self, profile, context, role=role, host=host)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"lab-{ip}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        """Stop every server (nginx and Caddy first, their last access-log lines read into the ground truth)."""
        if self.nginx is not None:
            self.truth.remove_source(self.nginx.collect)
            self.nginx.stop()
            self.nginx = None
        if self.caddy is not None:
            self.truth.remove_source(self.caddy.collect)
            self.caddy.stop()
            self.caddy = None
        for channel in self.live.values():
            channel.stop()
        self.live = {}
        for server in [self.platform, self.platform_tls, self.platforms, *self.redirectors, *self.redirectors_tls,
                       *self.caches.values()]:
            if server is not None:
                server.shutdown()
                server.server_close()
        if self.dns is not None:
            self.dns.stop()
        if self.tls is not None:
            shutil.rmtree(self.tls.folder, ignore_errors=True)
            self.tls = None
        if self.path is not None:
            self.path.stop()  # kept (stopped) for its final_stats
            if self.truth.path is not None and self.path.final_stats is not None:
                path_stats_file(self.truth.path).write_text(json.dumps(self.path.final_stats))
        self.platform, self.platforms, self.redirectors, self.caches, self.dns = None, None, [], {}, None
        self.platform_tls, self.redirectors_tls = None, []

    # nginx cache servers (pytomo/lab/nginx.py)
    def _profiles(self, software: str) -> list[ServerProfile]:
        return [p for p in self.scenario.servers if p.software == software]

    def _start_caddy(self, exe: str) -> None:
        self.caddy = self._start_served(CaddyServers(self, self._profiles("caddy"), exe, run_in=self._run_in()))

    def _start_nginx(self, exe: str) -> None:
        self.nginx = self._start_served(NginxServers(self, self._profiles("nginx"), exe, run_in=self._run_in()))

    def _run_in(self) -> Callable[[Callable[[], Any]], Any] | None:
        """Where real servers start: in the network path's namespace when there is one (else None: here)."""
        return self.path.call if self.path is not None else None

    def _start_served(self, served: _Served) -> _Served | None:
        """Start a real server's process, its log a source of the truth; None (its servers left out) on failure."""
        try:
            served.start()
        except (ServedError, OSError) as exc:
            self._leave_out_software(served.NAME, str(exc))
            return None
        self.truth.add_source(served.collect)
        return served

    def _leave_out_software(self, software: str, why: str) -> None:
        """Drop the nginx (or Caddy) servers and their videos from the running scenario, saying so in one line."""
        names = {p.name for p in self._profiles(software)}
        dropped = {v.id for v in self.scenario.videos if v.server in names}
        self._leave_out(dropped, f"{software} cache servers {', '.join(sorted(names))} and their {len(dropped)} "
                                 f"videos left out: {why}", servers=names)

    def _leave_out(self, dropped: set[str], line: str, servers: frozenset[str] | set[str] = frozenset()) -> None:
        """Drop videos (and servers) from the running scenario, saying so in one line."""
        log.warning("lab: %s", line)
        videos = tuple(dataclasses.replace(v, related=tuple(r for r in v.related if r not in dropped))
                       for v in self.scenario.videos if v.id not in dropped)
        kept = tuple(p for p in self.scenario.servers if p.name not in servers)
        self.scenario = dataclasses.replace(self.scenario, servers=kept, videos=videos)
        for vid in dropped:
            self.media.pop(vid, None)
            self.segmented.pop(vid, None)
            channel = self.live.pop(vid, None)
            if channel is not None:
                channel.stop()

    def cache_port(self, name: str) -> int:
        """The port of cache server ``name`` (the lab's own or nginx)."""
        if name in self.caches:
            return self.caches[name].port
        if self.caddy is not None and name in self.caddy.sites:
            return self.caddy.port(name)
        if self.nginx is None:
            raise LabError(f"the lab has no cache server {name!r}")
        return self.nginx.port(name)

    # network path (pytomo/lab/netpath.py)
    def _check_path(self) -> None:
        reason = unavailable_reason()
        if reason:
            where = self.scenario.source or self.scenario.name
            raise LabError(f"lab scenario {self.scenario.name} asks for the network path (network_path = true), "
                           f"which cannot be built here: {reason}; run as root, or set network_path = false in "
                           f"{where} to serve on loopback without path delay, rate or loss")

    def _start_path(self) -> None:
        specs = [PathSpec(p.name, delay_ms=p.path_delay_ms, rate_bps=p.path_rate_bps, loss=p.path_loss,
                          loss_up=p.path_loss_up, queue_bytes=p.path_queue_bytes, mtu_bytes=p.path_mtu_bytes)
                 for p in self.scenario.servers]
        try:
            self.path = NetPath(specs, seed=self.scenario.path_seed).start()
        except PathError as exc:
            raise LabError(str(exc)) from exc
        servers = tuple(dataclasses.replace(p, ip=self.path.address(p.name)) for p in self.scenario.servers)
        self.scenario = dataclasses.replace(self.scenario, servers=servers)

    def path_truth(self, profile: ServerProfile) -> dict:
        """The path fields of a ground-truth record (null without the path)."""
        on = self.path is not None
        queue = (self.path.spec(profile.name).effective_queue_bytes
                 if self.path is not None and profile.path_rate_bps else None)
        return {"path_delay_ms": profile.path_delay_ms if on else None,
                "path_rate_bps": profile.path_rate_bps if on else None, "path_loss": profile.path_loss if on else None,
                "path_loss_up": profile.path_loss_up if on else None, "path_queue_bytes": queue,
                "path_mtu_bytes": profile.path_mtu_bytes if on else None}

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses
    @property
    def platform_base(self) -> str:
        """The platform's base URL."""
        return f"http://{PLATFORM_HOST}:{_running(self.platform, 'platform').port}"

    def layer(self, settings: Settings) -> Settings:
        """``settings`` with this lab's URLs layered in, as the plugins see them while it runs: the recorded
        YouTube and Dailymotion APIs, the recorded yt-dlp info source (unless one is set) and the platform."""
        urls = endpoints(self)
        return dataclasses.replace(settings, youtube_api_base_url=urls["youtube_api"],
                                   dailymotion_api_base_url=urls["dailymotion_api"],
                                   info_source_url=settings.info_source_url or urls["info_source"],
                                   lab_platform_url=self.platform_base)

    def _platform_base_of(self, video: VideoSpec | None) -> str:
        """The platform's base URL for a video's page and first hops: HTTPS for redirect_scheme = "https"."""
        if video is not None and video.redirect_scheme == "https":
            return f"https://{PLATFORM_HOST}:{_running(self.platform_tls, 'platform over HTTPS').port}"
        return self.platform_base

    def page_url(self, video_id: str) -> str:
        """The watch-page URL of a video, as the crawler is given it."""
        return f"{self._platform_base_of(self.scenario.video(video_id))}/watch?v={video_id}"

    def cache_url(self, video: VideoSpec) -> str:
        """The URL at the end of a video's redirect chain."""
        profile = self.scenario.server(video.server)
        base = self.cache_base(profile)
        if video.id in self.live:
            return f"{base}/s/{video.id}/{MPD if video.delivery == 'dash' else PLAYLIST}"
        if video.delivery != "progressive":
            return f"{base}/s/{video.id}/{self.segmented[video.id].manifest}"
        return f"{base}/v/{video.id}.{_EXT[video.media.container]}"

    def cache_base(self, profile: ServerProfile) -> str:
        """``scheme://host:port`` of a cache server."""
        return f"{'https' if profile.tls else 'http'}://{profile.host}:{self.cache_port(profile.name)}"

    def redirect_chain(self, video_id: str) -> list[str]:
        """Every URL of a video's media chain, the cache URL last (hops = len - 1)."""
        video = self.scenario.video(video_id)
        if video is None:
            return []
        cache = self.cache_url(video)
        if video.hops == 0:
            return [cache]
        platform = self._platform_base_of(video)
        redirectors = self.redirectors_tls if video.redirect_scheme == "https" else self.redirectors
        chain = [f"{platform}/media/{video.id}"]
        if video.hops == 3:
            chain.append(f"{platform}/media/{video.id}/next")
        for i in range(video.hops - len(chain)):
            chain.append(f"{redirectors[i].scheme}://{REDIRECTOR_HOSTS[i]}:{redirectors[i].port}/r/{video.id}")
        return [*chain, cache]

    def media_url(self, video_id: str) -> str:
        """The media URL written into the watch page (first URL of the chain)."""
        return self.redirect_chain(video_id)[0]

    def stream_url(self, video_id: str) -> str:
        """The URL of a video's media (progressive) or manifest (HLS, DASH) at its cache server."""
        video = self.scenario.video(video_id)
        if video is None:
            raise LabError(f"the lab has no video {video_id!r}")
        return self.cache_url(video)

    def host_map(self) -> dict[str, str]:
        """Every lab host name and its address, as the lab's DNS server answers (first address of each)."""
        return {host: ips[0] for host, ips in self.dns_records.items() if ips}

    def popular(self, time_frame: str) -> list[VideoSpec]:
        """The videos of a popular list, in scenario order."""
        return [v for v in self.scenario.videos if time_frame in v.popular]

    def truth_record(self, video: VideoSpec, profile: ServerProfile) -> dict:
        """The fixed part of a ground-truth record for a transfer of ``video`` from ``profile``."""
        return {**self._transfer_record(video, profile), **self.path_truth(profile)}

    def _transfer_record(self, video: VideoSpec, profile: ServerProfile) -> dict:
        media = self.media.get(video.id)
        if media is None:  # segmented: the per-file facts are added by the cache server
            seg = self.segmented.get(video.id)  # None: a live channel, of no set duration
            return {"software": "lab", "video_id": video.id, "page_url": self.page_url(video.id),
                    "media_url": self.media_url(video.id), "cache_host": profile.host, "cache_ip": profile.ip,
                    "rate_bps": profile.rate_bps, "burst_bytes": profile.burst_bytes,
                    "ttfb_delay_s": profile.ttfb_delay_s, "stalls": [list(s) for s in profile.stalls],
                    "fault": profile.fault,
                    "container": video.delivery, "bitrate_bps": None,
                    "duration_s": seg.spec.duration_s if seg else None,
                    "size_bytes": None, "range": None, "status": None, "segment": None}
        return {"software": "lab", "video_id": video.id, "page_url": self.page_url(video.id),
                "media_url": self.media_url(video.id), "cache_host": profile.host, "cache_ip": profile.ip,
                "rate_bps": profile.rate_bps, "burst_bytes": profile.burst_bytes, "ttfb_delay_s": profile.ttfb_delay_s,
                "stalls": [list(s) for s in profile.stalls], "fault": profile.fault,
                "container": video.media.container, "bitrate_bps": media.bitrate_bps,
                "duration_s": media.duration_s, "size_bytes": media.size_bytes, "range": None, "status": None}

    def describe(self) -> list[str]:
        """Human-readable lines with every address of the running lab."""
        dns = _running(self.dns, "DNS server")
        platforms = _running(self.platforms, "platforms server")
        lines = [f"lab scenario {self.scenario.name}: {self.scenario.description}",
                 f"dns      {dns.host}:{dns.port} (UDP and TCP)",
                 f"platform {self.platform_base}/  ({PLATFORM_IP})",
                 f"popular  {self.platform_base}/api/popular?time_frame=today",
                 f"recorded http://{PLATFORMS_HOST}:{platforms.port}/  ({PLATFORMS_IP}: YouTube, Dailymotion, "
                 "yt-dlp; see docs/platforms.md)"]
        if self.platform_tls is not None:
            lines.append(f"platform https://{PLATFORM_HOST}:{self.platform_tls.port}/  ({PLATFORM_IP}, "
                         "redirect_scheme = \"https\" videos)")
        for server in [*self.redirectors, *self.redirectors_tls]:
            lines.append(f"redirect {server.scheme}://{server.host}:{server.port}/  ({server.ip})")
        for profile in self.scenario.servers:
            rate = "unlimited" if profile.rate_bps is None else f"{profile.rate_bps / 1e6:g} Mbit/s"
            extra = f", fault {profile.fault}" if profile.fault else ""
            if profile.software == "caddy":
                rate = "caddy (HTTP/1.1, HTTP/2, HTTP/3)"
            if profile.software == "nginx":
                rate = f"nginx, {rate}" + (f" after {profile.burst_bytes} bytes" if profile.burst_bytes else "")
            if self.path is not None:
                path_rate = (f"{profile.path_rate_bps / 1e6:g} Mbit/s" if profile.path_rate_bps is not None
                             else "no rate limit")
                extra += (f", path {profile.path_delay_ms:g} ms one way, {path_rate}, loss "
                          f"{profile.path_loss:g} down {profile.path_loss_up:g} up")
            lines.append(f"cache    {self.cache_base(profile)}/  ({profile.ip}, {rate}{extra})")
        if self.path is not None:
            lines.append(f"path     namespace {self.path.netns}, from {self.path.root_ip} on {self.path.root_link}")
        for video in self.scenario.videos:
            lines.append(f"video    {self.page_url(video.id)}")
        return lines


_Server = TypeVar("_Server", LabServer, LabDnsServer, LabTLS)
_Served = TypeVar("_Served", NginxServers, CaddyServers)


def _running(server: _Server | None, what: str) -> _Server:
    """``server``, which must have been started."""
    if server is None:
        raise LabError(f"the lab's {what} is not running")
    return server
