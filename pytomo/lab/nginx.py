"""Debian's nginx as lab cache servers: its configuration, its child process, and its access log as ground truth."""

from __future__ import annotations

import grp
import json
import logging
import math
import os
import pwd
import re
import shutil
import signal
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytomo.lab.served import ServerProcess, Site

if TYPE_CHECKING:
    from pytomo.lab.scenario import ServerProfile

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

log = logging.getLogger(__name__)

# nginx's limit_rate (ngx_http_write_filter_module.c) lets a response's bytes (headers included) reach
#   limit_rate_after + limit_rate x (now_sec - start_sec + 1)
# where now_sec and start_sec are whole wall-clock seconds (start: the request's first bytes read), and sendfile
# may round a send up to the end of a file page: at most one page more.
LIMIT_RATE_FORMULA = ("total_bytes_sent <= limit_rate_after_bytes + limit_rate_bps / 8 x "
                      "(floor(msec) - floor(msec - request_time_s) + 1) + 4096")
LIMIT_SLACK_BYTES = 4096
MIME_TYPES = {"mp4": "video/mp4", "m4s": "video/iso.segment", "webm": "video/webm", "flv": "video/x-flv",
              "ts": "video/mp2t", "m3u8": "application/vnd.apple.mpegurl", "mpd": "application/dash+xml",
              "html": "text/html", "json": "application/json"}
GZIP_TYPES = ("application/vnd.apple.mpegurl", "application/dash+xml")
LOG_FIELDS = ("server_addr", "server_port", "request_method", "request_uri", "status", "body_bytes_sent",
              "bytes_sent", "request_time", "connection", "connection_requests", "msec", "http_range",
              "sent_http_content_length", "sent_http_content_encoding", "server_protocol", "ssl_protocol",
              "http_user_agent")
READY_URI = "/.pytomo-ready"  # the lab's own probe that nginx answers (a 404 left out of the truth)
_LOOP_STEPS = 64  # redirect_loop: ?loop=N counts up to this, then keeps appending a digit
_START_TIMEOUT_S = 10.0


def worker_user(media_dirs: Iterable[Path]) -> tuple[str, str] | None:
    """As root, the user and group that own the media (so that workers can read them); None when not root."""
    if os.geteuid() != 0:
        return None  # nginx ignores ``user`` without root: workers run as we do
    for folder in media_dirs:
        try:
            st = folder.stat()
        except OSError:
            continue
        try:
            return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            continue
    return "root", "root"


def _quote(text: str | Path) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def log_format() -> str:
    """The access log's JSON line, one string per field."""
    body = ",".join(f'"{name}":"${name}"' for name in LOG_FIELDS)
    return "log_format pytomo_truth escape=json '{" + body + "}';"


def render_config(sites: list[Site], workdir: Path, user: tuple[str, str] | None = None) -> str:
    """The whole nginx.conf for these sites, everything but the media kept inside ``workdir``."""
    w = workdir
    lines = ["daemon off;", "master_process on;", "worker_processes 1;", f"pid {_quote(w / 'nginx.pid')};",
             f"lock_file {_quote(w / 'nginx.lock')};", f"error_log {_quote(w / 'error.log')} warn;"]
    if user is not None:
        lines.append(f"user {_quote(user[0])} {_quote(user[1])};")
    lines += ["events { worker_connections 512; }", "http {"]
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        lines.append(f"    {kind}_temp_path {_quote(w / 'temp' / kind)};")
    lines.append("    types {")
    lines += [f"        {mime} {ext};" for ext, mime in MIME_TYPES.items()]
    lines += ["    }", "    default_type application/octet-stream;",
              "    " + log_format(),
              f"    access_log {_quote(w / 'access.log')} pytomo_truth;",  # no buffer: one write per request
              "    sendfile on;", "    tcp_nopush on;", "    tcp_nodelay on;",
              "    keepalive_timeout 75s;", "    keepalive_requests 100000;",
              "    server_tokens off;", "    absolute_redirect off;", "    disable_symlinks off;",
              "    gzip on;", f"    gzip_types {' '.join(GZIP_TYPES)};", "    gzip_min_length 20;",
              "    gzip_vary on;", "    gzip_proxied any;",
              "    map $arg_loop $pytomo_next_loop {", '        default "${arg_loop}1";', '        "" 1;']
    lines += [f"        {n} {n + 1};" for n in range(1, _LOOP_STEPS)]
    lines.append("    }")
    for site in sites:
        lines += _server_block(site, w)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _server_block(site: Site, workdir: Path) -> list[str]:
    p = site.profile
    root = workdir / "root" / p.name
    lines = ["    server {", f"        listen {p.ip}:{site.port}{' ssl http2' if site.cert else ''};",
             f"        server_name {p.host};", f"        root {_quote(root)};"]
    if site.cert:  # nginx 1.22 (Debian 12): http2 is a listen parameter
        lines += [f"        ssl_certificate {_quote(site.cert[0])};",
                  f"        ssl_certificate_key {_quote(site.cert[1])};", "        ssl_protocols TLSv1.2 TLSv1.3;"]
    if p.alt_svc == "h3":  # HTTP/3 advertised on this port, where nothing listens on UDP (no QUIC in nginx 1.22)
        lines.append(f"        add_header Alt-Svc 'h3=\":{site.port}\"; ma=86400' always;")
    if p.rate_bps:
        lines.append(f"        limit_rate {limit_rate_bytes(p.rate_bps)};")
        if p.burst_bytes:
            lines.append(f"        limit_rate_after {int(p.burst_bytes)};")
    if p.fault in ("404", "403", "500"):
        answer = f"return {p.fault};"
    elif p.fault == "redirect_loop":
        answer = "return 302 $uri?loop=$pytomo_next_loop;"  # relative Location, as the lab's server sends
    else:
        answer = "try_files $uri =404;"
    lines += ["        location / { return 404; }",
              "        location ~ ^/s/[^/]+/files\\.json$ { return 404; }"]
    if site.progressive:
        lines.append("        location ~ ^/v/[\\w-]+\\.(mp4|webm|flv)$ { " + answer + " }")
    if site.segmented:
        lines.append("        location ~ ^/s/[\\w-]+/[\\w./-]+$ { " + answer + " }")
    lines.append("    }")
    return lines


def limit_rate_bytes(rate_bps: float) -> int:
    """nginx's limit_rate (bytes/s) for a rate in bit/s."""
    return max(1, round(rate_bps / 8))


def limit_bound_bytes(rate_bps: float | None, burst_bytes: int, started_s: float, ended_s: float) -> int | None:
    """Most bytes (headers and body) nginx may have sent between two epoch times under its limit_rate."""
    if not rate_bps:
        return None
    whole_s = math.floor(ended_s) - math.floor(started_s) + 1
    return int(burst_bytes) + limit_rate_bytes(rate_bps) * whole_s + LIMIT_SLACK_BYTES


def _number(text: str | None, kind: Callable[[str], Any] = int) -> Any:
    if text in (None, "", "-"):
        return None
    try:
        return kind(text)
    except ValueError:
        return None


def parse_log_line(line: str) -> dict[str, Any] | None:
    """One access-log line as typed values (None for a line that is not ours)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or "request_uri" not in raw:
        return None
    return {"server_addr": raw.get("server_addr"), "server_port": _number(raw.get("server_port")),
            "method": raw.get("request_method"), "request_uri": raw.get("request_uri"),
            "status": _number(raw.get("status")), "body_bytes_sent": _number(raw.get("body_bytes_sent")),
            "total_bytes_sent": _number(raw.get("bytes_sent")),
            "request_time_s": _number(raw.get("request_time"), float),
            "connection": _number(raw.get("connection")),
            "connection_requests": _number(raw.get("connection_requests")),
            "msec": _number(raw.get("msec"), float), "range": raw.get("http_range") or None,
            "content_length_bytes": _number(raw.get("sent_http_content_length")),
            "content_encoding": raw.get("sent_http_content_encoding") or None,
            "protocol": raw.get("server_protocol") or None, "tls_version": raw.get("ssl_protocol") or None,
            "user_agent": raw.get("http_user_agent") or None}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def request_record(lab: Lab, profile: ServerProfile, request_uri: str | None) -> dict[str, Any]:
    """The fixed part of a ground-truth record for one request a cache server logged (nginx, Caddy)."""
    path = (request_uri or "").split("?", 1)[0]
    video_id, segment = None, None
    if m := re.fullmatch(r"/v/([\w-]+)\.\w+", path):
        video_id = m.group(1)
    elif m := re.fullmatch(r"/s/([\w-]+)/(.+)", path):
        video_id, segment = m.group(1), m.group(2)
    video = lab.scenario.video(video_id) if video_id else None
    if video is not None and video.server == profile.name:
        record = lab.truth_record(video, profile)
    else:
        # not one of this server's videos (a 404): request_uri says what was asked
        record = {"video_id": None, "cache_host": profile.host, "cache_ip": profile.ip,
                  "rate_bps": profile.rate_bps, "burst_bytes": profile.burst_bytes, "ttfb_delay_s": 0.0,
                  "stalls": [], "fault": profile.fault, **lab.path_truth(profile)}
    if segment is not None:
        seg = lab.segmented.get(video_id)
        record.update(segment=segment, size_bytes=seg.sizes.get(segment) if seg else None)
    return record


def truth_record(entry: dict[str, Any], lab: Lab, profile: ServerProfile) -> dict[str, Any]:
    """A ground-truth record (truth.TRUTH_FIELDS) from one parsed access-log entry."""
    record = request_record(lab, profile, entry["request_uri"])
    ended = entry["msec"]
    started = ended - (entry["request_time_s"] or 0.0) if ended is not None else None
    rate = profile.rate_bps
    record.update(
        software="nginx", method=entry["method"], status=entry["status"], range=entry["range"],
        bytes_sent=entry["body_bytes_sent"], body_bytes_sent=entry["body_bytes_sent"],
        total_bytes_sent=entry["total_bytes_sent"], request_time_s=entry["request_time_s"],
        connection=entry["connection"], connection_requests=entry["connection_requests"], msec=ended,
        content_length_bytes=entry["content_length_bytes"], content_encoding=entry["content_encoding"],
        request_uri=entry["request_uri"], protocol=entry.get("protocol"), tls_version=entry.get("tls_version"),
        user_agent=entry.get("user_agent"),
        started_at=_iso(started) if started is not None else None, ended_at=_iso(ended) if ended is not None else None,
        limit_rate_bps=limit_rate_bytes(rate) * 8 if rate else None,
        limit_rate_after_bytes=int(profile.burst_bytes) if rate else None,
        limit_bound_bytes=limit_bound_bytes(rate, profile.burst_bytes, started, ended) if started else None)
    return record


def _answers_as_nginx(ip: str, port: int) -> bool:
    """True when nginx (and not whatever else holds the port) answers there."""
    try:
        with socket.create_connection((ip, port), timeout=0.5) as sock:
            sock.settimeout(1.0)
            sock.sendall(f"HEAD {READY_URI} HTTP/1.0\r\n\r\n".encode())
            head = sock.recv(4096).decode("latin-1").lower()
    except OSError:
        return False
    return head.startswith("http/") and "\r\nserver: nginx" in head


class NginxServers(ServerProcess):
    """One nginx master process serving every ``software = "nginx"`` cache server of a lab (SIGQUIT at stop:
    the requests in flight finish)."""

    NAME = "nginx"
    STOP_SIGNALS = ((signal.SIGQUIT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))

    def __init__(self, lab: Lab, profiles: list[ServerProfile], exe: str,
                 run_in: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        super().__init__(lab, profiles, exe, run_in)
        self._by_addr: dict[str, ServerProfile] = {}

    def _launch(self) -> None:
        w = self._prepare()
        shutil.rmtree(w / "temp", ignore_errors=True)
        (w / "temp").mkdir()
        self._by_addr = {f"{s.profile.ip}:{s.port}": s.profile for s in self.sites.values()}
        folders = [m.path.parent for m in self.lab.media.values()]
        folders += [s.root.parent for s in self.lab.segmented.values()]
        conf = w / "nginx.conf"
        conf.write_text(render_config(list(self.sites.values()), w, worker_user(folders)))
        self._spawn([self.exe, "-p", str(w), "-c", str(conf), "-e", str(w / "error.log")])
        self._wait_ready(_answers_as_nginx, _START_TIMEOUT_S)

    def _last_error(self) -> str:
        lines = self._log_lines()
        emerg = [ln for ln in lines if "[emerg]" in ln or "[alert]" in ln or "[crit]" in ln]
        return (emerg or lines or ["no message"])[-1]

    def _record(self, line: str) -> dict[str, Any] | None:
        entry = parse_log_line(line)
        if entry is None:
            return None
        profile = self._by_addr.get(f"{entry['server_addr']}:{entry['server_port']}")
        if profile is None or entry["request_uri"] == READY_URI:
            return None
        return truth_record(entry, self.lab, profile)
