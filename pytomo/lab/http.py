"""The lab's HTTP servers: the platform site, the redirectors and the paced, fault-injecting cache servers."""

from __future__ import annotations

import html
import itertools
import json
import logging
import re
import socket
import ssl
import struct
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import SplitResult, parse_qs, urlsplit

from pytomo.lab.clienthello import judge, peek
from pytomo.lab.media import EXTENSIONS, LabMedia, ensure_media, pair_specs
from pytomo.lab.rules import Availability, refusal
from pytomo.lab.segmented import MIME_TYPES
from pytomo.lab.tls import received_sni

if TYPE_CHECKING:
    from pytomo.lab.scenario import ServerProfile, VideoSpec

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

log = logging.getLogger(__name__)

_PACE_QUANTUM_S = 0.005
_UNPACED_CHUNK = 1 << 20
_KEEPALIVE_IDLE_S = 30.0  # a kept-alive connection without a new request for this long is closed
_CONNECTIONS = itertools.count(1)  # connection serial numbers, over every lab server (like nginx's $connection)
PARTS = ("video", "audio")  # the files of a video+audio pair (a scenario video with pair = true)


class LabServer(ThreadingHTTPServer):
    """One threaded HTTP server bound to one loopback address, knowing the lab it belongs to."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, ip: str, handler: type[BaseHTTPRequestHandler], lab: Lab,
                 profile: ServerProfile | None = None, tls: ssl.SSLContext | None = None, *,
                 role: str = "cache", host: str | None = None) -> None:
        self.ip = ip
        self.role = role  # platform, redirector, platforms or cache: its requests' role in the request log
        self.host = host or (profile.host if profile is not None else ip)  # its own host name
        self.tls = tls  # HTTPS: each accepted connection is wrapped, its handshake done in its handler's thread
        self.lab = lab
        self.profile = profile
        self.available = Availability()  # available_at of its videos, as the recorded platform gave them out
        # a cache server's pairs: video id -> part -> file (made here, once, like the lab's other media)
        self.parts: dict[str, dict[str, LabMedia]] = {}
        if profile is not None and profile.software == "lab":
            self.parts = {v.id: {part: ensure_media(spec, lab.media_dir) for part, spec in pair_specs(v.media).items()}
                          for v in lab.scenario.videos if v.pair and v.server == profile.name}
        super().__init__((ip, 0), handler)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.server_address[1]

    @property
    def scheme(self) -> str:
        """http or https."""
        return "https" if self.tls is not None else "http"

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that refused our certificate or hung up is the client's business: logged at debug level."""
        log.debug("lab server %s: connection from %s ended with an error", self.ip, client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PytomoLab/1"
    server: LabServer

    def log_message(self, fmt: str, *args: object) -> None:  # quiet: the lab logs at debug level only
        log.debug("%s %s", self.client_address[0], fmt % args)

    def setup(self) -> None:
        super().setup()
        self.connection_id = next(_CONNECTIONS)
        self.connection_requests = 0  # every request on this connection (the request log's count)
        self.status_sent: int | None = None
        self.arrived_at = self.connection.getsockname()[:2]  # the address and port the client connected to

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status_sent = code  # for the request log
        super().send_response(code, message)

    def _log_request(self, tls: str | None) -> None:
        """One line of the lab's request log: this request as this server saw it (pytomo/lab/truth.py)."""
        self.connection_requests += 1
        server = self.server
        here = self.arrived_at
        server.lab.request_log.add({
            "role": server.role, "server_host": server.host, "server_ip": here[0], "server_port": here[1],
            "client_ip": self.client_address[0], "method": self.command, "path": self.path,
            "host": self.headers.get("Host"), "status": self.status_sent, "scheme": server.scheme,
            "sni": received_sni(self.connection), "tls_version": tls, "protocol": self.request_version,
            "connection": self.connection_id, "connection_requests": self.connection_requests,
            "at": datetime.now(UTC).isoformat()})

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A whole answer, after which the connection is closed."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, "text/plain; charset=utf-8", b"redirect\n", {"Location": location})

    def _not_found(self, what: str = "not found") -> None:
        self._send(404, "text/plain; charset=utf-8", (what + "\n").encode())

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self.status_sent = None
        tls = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else None  # handshake done
        try:
            self.route(urlsplit(self.path))
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._log_request(tls)

    def route(self, url: SplitResult) -> None:  # pragma: no cover - overridden
        self._not_found()


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head>\n<body>\n{body}\n</body></html>\n").encode()


class PlatformHandler(_Handler):
    """The platform site: popular lists, watch pages and the first hop of each media URL."""

    def route(self, url: SplitResult) -> None:
        lab = self.server.lab
        query = parse_qs(url.query)
        path = url.path
        if path == "/":
            items = "".join(f'<li><a href="{html.escape(lab.page_url(v.id))}">{html.escape(v.title)}</a></li>'
                            for v in lab.popular("today"))
            self._send(200, "text/html; charset=utf-8", _page("Pytomo lab", f"<h1>Popular today</h1><ul>{items}</ul>"))
        elif path == "/api/popular":
            frame = (query.get("time_frame") or ["today"])[0]
            try:
                limit = int((query.get("limit") or ["50"])[0])
            except ValueError:
                return self._send(400, "application/json", b'{"error": "limit must be a number"}')
            if frame not in ("today", "week", "month", "all_time"):
                return self._send(400, "application/json", b'{"error": "unknown time_frame"}')
            videos = [{"id": v.id, "title": v.title, "url": lab.page_url(v.id)} for v in lab.popular(frame)][:limit]
            body = json.dumps({"time_frame": frame, "videos": videos}, ensure_ascii=False).encode()
            self._send(200, "application/json; charset=utf-8", body)
        elif path == "/watch":
            vid = (query.get("v") or [""])[0]
            video = lab.scenario.video(vid)
            if video is None:
                return self._not_found(f"no video {vid!r}")
            self._send(200, "text/html; charset=utf-8", self._watch_page(video))
        elif m := re.fullmatch(r"/media/([\w-]+)(/next)?", path):
            self._next_hop(m.group(1), "/next" if m.group(2) else "")
        else:
            self._not_found()

    def _watch_page(self, video: VideoSpec) -> bytes:
        lab = self.server.lab
        config = {"video_id": video.id, "title": video.title, "media_url": lab.media_url(video.id),
                  "duration_s": video.media.duration_s, "delivery": video.delivery}
        blob = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
        blob = blob.replace("&", "\\u0026")
        related = "".join(f'<li><a href="/watch?v={html.escape(r)}">{html.escape(lab.scenario.video(r).title)}</a></li>'
                          for r in video.related)
        body = (f"<h1>{html.escape(video.title)}</h1>\n"
                f"<video controls src=\"{html.escape(lab.media_url(video.id))}\"></video>\n"
                f"<script type=\"application/json\" id=\"player-config\">{blob}</script>\n"
                f"<h2>Related</h2><ul class=\"related\">{related}</ul>")
        return _page(video.title, body)

    def _next_hop(self, vid: str, suffix: str) -> None:
        lab = self.server.lab
        chain = lab.redirect_chain(vid)
        here = f"/media/{vid}{suffix}"
        for i, hop in enumerate(chain[:-1]):
            if urlsplit(hop).netloc == self.headers.get("Host", "") and urlsplit(hop).path == here:
                nxt = chain[i + 1]
                # the platform sends a relative Location when it redirects to itself
                if urlsplit(nxt).netloc == urlsplit(hop).netloc:
                    nxt = urlsplit(nxt).path
                return self._redirect(nxt)
        self._not_found(f"no media {vid!r}")


class RedirectorHandler(_Handler):
    """A redirector host: sends the request on to the next hop of the video's chain."""

    def route(self, url: SplitResult) -> None:
        m = re.fullmatch(r"/r/([\w-]+)", url.path)
        if not m:
            return self._not_found()
        lab = self.server.lab
        chain = lab.redirect_chain(m.group(1))
        me = f"{self.headers.get('Host', '')}{url.path}"
        for i, hop in enumerate(chain[:-1]):
            parts = urlsplit(hop)
            if f"{parts.netloc}{parts.path}" == me:
                return self._redirect(chain[i + 1], 307 if i % 2 else 302)
        self._not_found()


def part_path(video: VideoSpec, part: str) -> str:
    """The URL path of one file of a pair on its cache server: ``/v/ID.video.mp4`` or ``/v/ID.audio.m4a``."""
    return f"/v/{video.id}.{part}.{EXTENSIONS[pair_specs(video.media)[part].container]}"


class CacheHandler(_Handler):
    """A cache server: serves media files under its profile (pacing, delays, pauses and faults) and, with
    ``rules = "youtube"``, YouTube's rules (pytomo/lab/rules.py) on one kept-alive connection."""

    def setup(self) -> None:
        super().setup()
        self.requests_on_connection = 0  # the media requests on it (the truth log's count)
        # the client's TLS hello, peeked at before the handshake and judged by tls_fingerprint (clienthello.py)
        self.hello = judge(self.profile.tls_fingerprint, peek(self.connection)) if self.server.tls else {}

    @property
    def profile(self) -> ServerProfile:
        """The profile of this cache server (the lab gives every cache server one)."""
        profile = self.server.profile
        assert profile is not None, "a cache server without a profile"
        return profile

    def _request_truth(self) -> dict:
        """The truth fields of this request as it arrived: connection, its count on it, User-Agent, rules."""
        self.requests_on_connection += 1
        tls = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else None
        return {"connection": self.connection_id, "connection_requests": self.requests_on_connection,
                "user_agent": self.headers.get("User-Agent"), "rules": self.profile.rules,
                "protocol": self.request_version, "tls_version": tls, "sni": received_sni(self.connection),
                **self.hello}

    def route(self, url: SplitResult) -> None:
        seg = re.fullmatch(r"/s/([\w-]+)/([\w./-]+)", url.path)
        if seg:
            return self._segment(seg.group(1), seg.group(2))
        m = re.fullmatch(r"/v/([\w-]+?)(?:\.(video|audio))?\.(mp4|webm|flv|m4a)", url.path)
        lab = self.server.lab
        profile = self.profile
        video = lab.scenario.video(m.group(1)) if m else None
        if m is None or video is None or video.server != profile.name:
            return self._not_found()
        part = m.group(2)
        if part is not None and (video.id not in self.server.parts or url.path != part_path(video, part)):
            return self._not_found()
        media = self.server.parts[video.id][part] if part else lab.media[video.id]
        if profile.fault == "redirect_loop":
            n = int((parse_qs(url.query).get("loop") or ["0"])[0] or 0)
            return self._redirect(f"{url.path}?loop={n + 1}")
        started = datetime.now(UTC)
        record = lab.truth_record(video, profile)
        record.update(method=self.command, started_at=started.isoformat(), bytes_sent=0, **self._request_truth())
        if part:
            record.update(part=part, container=media.spec.container, bitrate_bps=media.bitrate_bps,
                          duration_s=media.duration_s, size_bytes=media.size_bytes)
        try:
            if self._refuses_client(record) or (profile.rules and not self._obeys_rules(video, record)):
                return
            self._serve(media, profile, record)
        finally:
            record["ended_at"] = datetime.now(UTC).isoformat()
            if self.command == "GET" or record.get("refused"):  # a refused HEAD, too: the rules' word on it
                lab.truth.add(record)

    def _refuses_client(self, record: dict) -> bool:
        """True when a 403 has been sent to a client whose TLS hello the server's tls_fingerprint refuses."""
        if not self.hello.get("tls_client_refused"):
            return False
        record.update(status=403, refused="tls_client", range=self.headers.get("Range"))
        self._send(403, "text/plain; charset=utf-8", b"403 Forbidden: tls_client\n")
        return True

    def _obeys_rules(self, video: VideoSpec, record: dict) -> bool:
        """True when the request may be served under the server's rules; else a 403 has been sent."""
        record["available_at_s"] = self.server.available.get(video.id)
        why = refusal(video.id, self.headers.get("User-Agent"), record["available_at_s"], time.time(),
                      method=self.command, range_header=self.headers.get("Range"),
                      max_range_bytes=self.profile.max_range_bytes)
        if why is None:
            return True
        record.update(status=403, refused=why, range=self.headers.get("Range"))
        self._send(403, "text/plain; charset=utf-8", f"403 Forbidden: {why}\n".encode())
        return False

    def _segment(self, video_id: str, relative: str) -> None:
        """A manifest or segment of an HLS or DASH presentation, under the server's profile."""
        lab = self.server.lab
        profile = self.profile
        video = lab.scenario.video(video_id)
        seg = lab.segmented.get(video_id)
        path = seg.path(relative) if seg and video and video.server == profile.name else None
        if path is None or ".." in relative.split("/"):
            return self._not_found()
        record = lab.truth_record(video, profile)
        record.update(method=self.command, started_at=datetime.now(UTC).isoformat(), bytes_sent=0,
                      segment=relative, size_bytes=seg.sizes[relative], **self._request_truth())
        try:
            if self._refuses_client(record):
                return None
            if profile.fault in ("404", "403", "500"):
                record["status"] = int(profile.fault)
                return self._send(int(profile.fault), "text/plain", b"error\n")
            if self.command == "GET" and profile.ttfb_delay_s > 0:
                time.sleep(profile.ttfb_delay_s)
            size = seg.sizes[relative]
            start, end, status = 0, size - 1, 200
            rng = self.headers.get("Range")
            if rng:
                parsed = _parse_range(rng, size)
                if parsed is None:
                    record["status"] = 416
                    return self._send(416, "text/plain", b"bad range\n", {"Content-Range": f"bytes */{size}"})
                (start, end), status = parsed, 206
                record["range"] = f"bytes={start}-{end}"
            record["status"] = status
            self.send_response(status)
            self.send_header("Content-Type", MIME_TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command == "GET":
                with open(path, "rb") as fh:
                    _send_paced(self.connection, fh, start, end - start + 1, profile, record)
        finally:
            record["ended_at"] = datetime.now(UTC).isoformat()
            if self.command == "GET":
                lab.truth.add(record)

    def _serve(self, media: LabMedia, profile: ServerProfile, record: dict) -> None:
        if self._answered_by_fault(profile, record):
            return
        size = media.size_bytes
        rng = self.headers.get("Range")
        span = self._span(rng, size, record)
        if span is None:
            return
        start, end, status = span
        length = end - start + 1
        record["status"] = status
        record["pace_rate_bps"] = profile.rate_bps
        # with rules, the connection stays open after a whole answer (unless the client asked to close it)
        keep_alive = (profile.rules is not None and not self.close_connection
                      and profile.fault not in ("reset", "short_body"))
        self.send_response(status)
        self.send_header("Content-Type", media.mime_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Connection", "keep-alive" if keep_alive else "close")
        self.end_headers()
        self.close_connection = not keep_alive
        if self.command == "HEAD":
            return
        self._send_body(media, profile, start, length, record, keep_alive)

    def _answered_by_fault(self, profile: ServerProfile, record: dict) -> bool:
        """Answer an error status or a sign-in page when the profile's fault says so (True); else wait out the
        profile's time to first byte (False)."""
        if profile.fault in ("404", "403", "500"):
            record["status"] = int(profile.fault)
            self._send(int(profile.fault), "text/html; charset=utf-8",
                       _page(f"Error {profile.fault}", f"<h1>Error {profile.fault}</h1>"))
            return True
        if self.command == "GET" and profile.ttfb_delay_s > 0:
            time.sleep(profile.ttfb_delay_s)
        if profile.fault == "html":
            record["status"] = 200
            body = _page("Sign in", "<h1>Sign in to confirm you are not a robot</h1><form></form>")
            record["bytes_sent"] = 0 if self.command == "HEAD" else len(body)
            self._send(200, "text/html; charset=utf-8", body)
            return True
        return False

    def _span(self, rng: str | None, size: int, record: dict) -> tuple[int, int, int] | None:
        """First and last byte to send and the status (200, 206); None when the Range was refused (416 sent)."""
        if not rng:
            return 0, size - 1, 200
        parsed = _parse_range(rng, size)
        if parsed is None:
            record["status"] = 416
            self._send(416, "text/plain", b"bad range\n", {"Content-Range": f"bytes */{size}"})
            return None
        start, end = parsed
        record["range"] = f"bytes={start}-{end}"
        return start, end, 206

    def _send_body(self, media: LabMedia, profile: ServerProfile, start: int, length: int, record: dict,
                   keep_alive: bool) -> None:
        """The body, paced, cut short or reset as the profile says."""
        limit = length
        if profile.fault in ("reset", "short_body"):
            limit = min(length, profile.fault_after_bytes)
        with open(media.path, "rb") as fh:
            sent = _send_paced(self.connection, fh, start, limit, profile, record)
        if sent < length:
            self.close_connection = True
        if profile.fault == "reset" and sent == limit:
            # RST instead of FIN: linger on, timeout 0
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        if keep_alive:
            self.connection.settimeout(_KEEPALIVE_IDLE_S)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", value.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 else None
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start <= end < size else None


def _send_paced(sock: socket.socket, fh: BinaryIO, offset: int, length: int, profile: ServerProfile,
                record: dict) -> int:
    """Send ``length`` bytes of ``fh`` from ``offset`` under the profile's burst, rate and pauses."""
    sock.settimeout(30.0)
    rate_bps = profile.rate_bps or 0.0  # pacing (the divisions below) only ever runs with a rate
    pauses = list(profile.stalls)
    burst = profile.burst_bytes if rate_bps else length
    sent = 0
    pace_start = None  # wall time when paced sending began (shifted by pauses)
    paced = 0  # bytes sent under pacing
    quantum = max(1024, min(65536, int((rate_bps or 0) / 8 * _PACE_QUANTUM_S)))
    while sent < length:
        if pauses and pauses[0][0] <= sent:
            time.sleep(pauses.pop(0)[1])
            if pace_start is not None:
                pace_start = time.monotonic() - paced * 8 / rate_bps
            continue
        stop = min(length, pauses[0][0]) if pauses else length
        if sent < burst:
            n = min(stop, burst) - sent
            done = _sendfile(sock, fh, offset + sent, n)
            sent += done
            record["bytes_sent"] = sent
            if done < n:
                break
            continue
        if pace_start is None:
            pace_start = time.monotonic()
        n = min(quantum, stop - sent)
        due = pace_start + (paced + n) * 8 / rate_bps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fh.seek(offset + sent)
        sock.sendall(fh.read(n))
        sent += n
        paced += n
        record["bytes_sent"] = sent
    return sent


def _sendfile(sock: socket.socket, fh: BinaryIO, offset: int, count: int) -> int:
    done = 0
    while done < count:
        n = min(_UNPACED_CHUNK, count - done)
        done += sock.sendfile(fh, offset + done, n)
    return done
