"""Reference players in headless Chromium: dash.js, Shaka Player, hls.js or the native <video> on a lab stream.

The page (pytomo/lab/players/harness.html and harness.js) loads the chosen player from
pytomo/lab/players/node_modules (pinned in package.json, installed by quickstart.sh; never fetched at run time),
plays the stream muted at 1x and keeps the player's own account; playwright drives Chromium, and a DevTools
protocol session on the page's Network domain records every request.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pytomo.errors import LabError
from pytomo.paths import package_root
from pytomo.results.reference import PICTURE_STALL_S, PlayerAccount, StallInterval

PLAYERS = ("dashjs", "shaka", "hlsjs", "native")
LIBRARIES = {  # the dist file each page loads, under node_modules
    "dashjs": "dashjs/dist/modern/umd/dash.all.min.js",
    "shaka": "shaka-player/dist/shaka-player.compiled.js",
    "hlsjs": "hls.js/dist/hls.min.js",
}
RENDITIONS = ("auto", "lowest", "highest")  # or an index into the renditions sorted by bitrate, lowest first
SAMPLE_INTERVAL_S = 0.1
FIRST_REQUEST_TIMEOUT_S = 20.0
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
                  "--no-default-browser-check", "--disable-features=Translate,OptimizationHints,MediaRouter",
                  "--window-size=1000,700", "--no-proxy-server", "--autoplay-policy=no-user-gesture-required",
                  "--disable-web-security", "--disable-background-timer-throttling",
                  "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows")


class PlayerUnavailable(LabError):
    """The player's library or Chromium (or playwright) is not installed here."""


def players_dir() -> Path:
    """pytomo/lab/players: the harness page and the npm packages."""
    return package_root() / "lab" / "players"


def chromium_exe(chromium: str | None = None) -> str | None:
    """The Chromium to drive: ``chromium`` when given, else Debian's chromium on the PATH."""
    if chromium:
        return chromium if Path(chromium).is_file() else shutil.which(chromium)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def unavailable(player: str, chromium: str | None = None) -> str | None:
    """Why ``player`` cannot be played here (unknown, library or Chromium or playwright missing), else None."""
    if player not in PLAYERS:
        return f"unknown player {player!r} (one of {', '.join(PLAYERS)})"
    if player in LIBRARIES and not (players_dir() / "node_modules" / LIBRARIES[player]).is_file():
        return (f"{player} is not installed: run ./quickstart.sh check (or npm ci --prefix pytomo/lab/players); "
                f"{LIBRARIES[player]} is missing")
    if chromium_exe(chromium) is None:
        return f"chromium is not installed ({chromium or 'chromium'} not found): apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[test]'"
    return None


def _rendition(value: str | int) -> str:
    """The rendition asked for, checked: auto, lowest, highest or an index."""
    text = str(value)
    if text in RENDITIONS or (text.isdigit() and int(text) < 100):
        return text
    raise LabError(f"rendition must be auto, lowest, highest or an index (0: the lowest bitrate), not {value!r}")


def host_rules(host_map: dict[str, str]) -> str:
    """Chromium's --host-resolver-rules: every lab host to its address, nothing else resolved."""
    for host, ip in host_map.items():
        if not ip.startswith("127."):
            raise LabError(f"{host} maps to {ip}: the reference players only reach loopback addresses")
    rules = [f"MAP {host} {ip}" for host, ip in sorted(host_map.items())]
    return ",".join([*rules, "MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1"])


# the page server
class _PageHandler(BaseHTTPRequestHandler):
    """Serves the harness page, its script and the chosen player's dist file; nothing else."""

    server: _PageServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        files = {"/harness.js": (players_dir() / "harness.js", "text/javascript")}
        if self.server.library is not None:
            files["/lib/player.js"] = (players_dir() / "node_modules" / self.server.library, "text/javascript")
        if path == "/harness.html":
            script = '<script src="/lib/player.js"></script>' if self.server.library else ""
            body = (players_dir() / "harness.html").read_text(encoding="utf-8").replace("<!--PLAYER-->", script)
            self._send(body.encode(), "text/html; charset=utf-8")
        elif path in files:
            file, kind = files[path]
            self._send(file.read_bytes(), kind)
        else:
            self.send_error(404)

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Quiet."""


class _PageServer(ThreadingHTTPServer):
    """The harness page on 127.0.0.1, on a free port."""

    daemon_threads = True

    def __init__(self, library: str | None) -> None:
        self.library = library
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="reference-page", daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        """Stop serving."""
        self.shutdown()
        self.server_close()


# requests, from the DevTools protocol's Network domain
@dataclass
class _Request:
    """One request as the Network domain saw it; times in wall-clock ms."""

    url: str
    method: str
    range: str | None
    start_ms: float
    offset_ms: float  # wall ms = monotonic timestamp x 1000 + offset_ms
    response_ms: float | None = None
    end_ms: float | None = None
    status: int | None = None
    bytes: int = 0  # encoded body bytes received (Network.dataReceived)
    encoded_total: int | None = None  # Network.loadingFinished's encodedDataLength (headers included)
    error: str | None = None
    canceled: bool = False
    content_encoding: str | None = None


@dataclass
class _Network:
    """Every request of the page but the harness's own, by Network request id."""

    ignore: str  # URLs starting with this are the harness's own
    requests: dict[str, _Request] = field(default_factory=dict)
    done: list[_Request] = field(default_factory=list)  # requests that a redirect ended

    def attach(self, session: Any) -> None:
        """Listen to a CDP session's Network events."""
        session.on("Network.requestWillBeSent", self._sent)
        session.on("Network.responseReceived", self._response)
        session.on("Network.dataReceived", self._data)
        session.on("Network.loadingFinished", self._finished)
        session.on("Network.loadingFailed", self._failed)
        session.send("Network.enable")
        session.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def _sent(self, p: dict) -> None:
        url = p["request"]["url"]
        if url.startswith(self.ignore) or not url.startswith("http"):
            return
        old = self.requests.pop(p["requestId"], None)
        if old is not None and p.get("redirectResponse"):  # the same id goes on after a redirect
            old.status = p["redirectResponse"].get("status")
            old.end_ms = p["timestamp"] * 1000 + old.offset_ms
            self.done.append(old)
        headers = {k.lower(): v for k, v in p["request"].get("headers", {}).items()}
        wall = p["wallTime"] * 1000
        self.requests[p["requestId"]] = _Request(url=url, method=p["request"].get("method", "GET"),
                                                 range=headers.get("range"), start_ms=wall,
                                                 offset_ms=wall - p["timestamp"] * 1000)

    def _response(self, p: dict) -> None:
        req = self.requests.get(p["requestId"])
        if req is None:
            return
        resp = p["response"]
        req.status = resp.get("status")
        req.content_encoding = {k.lower(): v for k, v in resp.get("headers", {}).items()}.get("content-encoding")
        timing = resp.get("timing")
        if timing and timing.get("receiveHeadersEnd", -1) >= 0:
            req.response_ms = timing["requestTime"] * 1000 + timing["receiveHeadersEnd"] + req.offset_ms
        else:
            req.response_ms = p["timestamp"] * 1000 + req.offset_ms

    def _data(self, p: dict) -> None:
        req = self.requests.get(p["requestId"])
        if req is not None:
            req.bytes += int(p.get("encodedDataLength") or 0)

    def _finished(self, p: dict) -> None:
        req = self.requests.get(p["requestId"])
        if req is not None:
            req.end_ms = p["timestamp"] * 1000 + req.offset_ms
            req.encoded_total = int(p.get("encodedDataLength") or 0)

    def _failed(self, p: dict) -> None:
        req = self.requests.get(p["requestId"])
        if req is not None:
            req.end_ms = p["timestamp"] * 1000 + req.offset_ms
            req.error = p.get("errorText")
            req.canceled = bool(p.get("canceled"))

    @property
    def origin_ms(self) -> float | None:
        """Wall-clock ms of the first request."""
        starts = [r.start_ms for r in self.all()]
        return min(starts) if starts else None

    def all(self) -> list[_Request]:
        """Every request, in start order."""
        return sorted([*self.done, *self.requests.values()], key=lambda r: r.start_ms)


def _request_dict(req: _Request, origin_ms: float) -> dict[str, Any]:
    """A request with its times in seconds from the origin."""
    def rel(ms: float | None) -> float | None:
        return None if ms is None else round((ms - origin_ms) / 1000, 4)

    return {"url": req.url, "method": req.method, "range": req.range, "status": req.status,
            "start_s": rel(req.start_ms), "response_s": rel(req.response_ms), "end_s": rel(req.end_ms),
            "bytes": req.bytes, "finished": req.end_ms is not None and req.error is None,
            "error": req.error, "canceled": req.canceled, "content_encoding": req.content_encoding}


# playing
def play(player: str, url: str, *, window_s: float, host_map: dict[str, str], rendition: str | int = "auto",
         chromium: str | None = None) -> PlayerAccount:
    """Play ``url`` with ``player`` in headless Chromium for ``window_s`` seconds from its first request."""
    why = unavailable(player, chromium)
    if why:
        raise PlayerUnavailable(why)
    asked = _rendition(rendition)
    if window_s <= 0:
        raise LabError("the window must be positive")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    server = _PageServer(LIBRARIES.get(player))
    try:
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=chromium_exe(chromium), headless=True,
                                             args=[*CHROMIUM_FLAGS, f"--host-resolver-rules={host_rules(host_map)}"])
            except PlaywrightError as exc:
                raise PlayerUnavailable(f"chromium does not start under playwright: {exc}") from exc
            try:
                raw, network = _run_page(browser, server.base, player, url, asked, window_s)
            finally:
                browser.close()
            version = browser.version
    finally:
        server.close()
    return account(player, url, asked, window_s, f"Chromium {version}", raw, network)


def _run_page(browser: Any, base: str, player: str, url: str, rendition: str,
              window_s: float) -> tuple[dict, _Network]:
    """Load the harness page, wait out the window from the first request, and read the page's account."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport={"width": 900, "height": 560})
    page = context.new_page()
    network = _Network(ignore=base)
    network.attach(context.new_cdp_session(page))
    config = json.dumps({"player": player, "url": url, "rendition": rendition})
    try:
        raw = _wait_window(page, f"{base}/harness.html?config={quote(config)}", network, window_s)
    except PlaywrightError as exc:  # the renderer crashed, or Chromium went away
        raise LabError(f"the {player} page in Chromium stopped before the window's end: "
                       f"{str(exc).splitlines()[0]}") from exc
    context.close()
    return raw, network


def _wait_window(page: Any, address: str, network: _Network, window_s: float) -> dict:
    """Open the page, wait for the first request and ``window_s`` seconds more, and read the page's account."""
    page.goto(address, wait_until="commit")
    deadline = time.monotonic() + FIRST_REQUEST_TIMEOUT_S
    while network.origin_ms is None and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    if network.origin_ms is not None:
        end_ms = network.origin_ms + window_s * 1000
        while (left := end_ms - time.time() * 1000) > 0:
            page.wait_for_timeout(min(left, 200))
    return page.evaluate("() => { const a = window.__pytomo || {}; "
                         "return {samples: a.samples || [], events: a.events || [], renditions: a.renditions || [], "
                         "frames: a.frames || [], errors: a.errors || [], version: a.version || null, "
                         "source_buffers: (a.sourceBuffers || []).map(s => s.mime)}; }")


# the account and its derived figures
def account(player: str, url: str, rendition: str, window_s: float, browser: str, raw: dict,
            network: _Network) -> PlayerAccount:
    """The PlayerAccount of one play: raw records on the origin's clock, then the derived figures."""
    origin_ms = network.origin_ms
    unmeasured: dict[str, str] = {}
    if origin_ms is None:
        return _nothing(player, url, rendition, window_s, browser, raw)
    end_s = window_s

    def rel(ms: float | None) -> float | None:
        return None if ms is None else round((ms - origin_ms) / 1000, 4)

    samples = tuple(_sample(s, rel) for s in raw["samples"] if -SAMPLE_INTERVAL_S <= (rel(s["t_ms"]) or 0) <= end_s)
    events = tuple({**{k: v for k, v in e.items() if k != "t_ms"}, "t_s": rel(e["t_ms"])} for e in raw["events"]
                   if (rel(e["t_ms"]) or 0) <= end_s)
    renditions = tuple({**{k: v for k, v in r.items() if k != "t_ms"}, "t_s": rel(r["t_ms"])}
                       for r in raw["renditions"] if (rel(r["t_ms"]) or 0) <= end_s)
    frames = tuple((t, float(f[1])) for f in raw.get("frames") or () if (t := rel(f[0])) is not None and t <= end_s)
    requests = tuple(_request_dict(r, origin_ms) for r in network.all())
    start = time_to_start(frames, samples)
    if start is None:
        unmeasured["time_to_start_s"] = "no presented frame advanced within the window"
    by_events = stalls_by_events(events, start, end_s) if start is not None else None
    by_picture = stalls_by_picture(frames, samples, start, end_s) if start is not None else None
    for name in ("stalls_by_events", "stalls_by_picture", "stall_time_by_events_s", "stall_time_by_picture_s",
                 "played_s"):
        if start is None:
            unmeasured[name] = "playback did not start within the window"
    switches = rendition_switches(renditions)
    latency_start, latency_end = live_latency(samples, start)
    if latency_start is None:
        unmeasured["live_latency_start_s"] = unmeasured["live_latency_end_s"] = (
            "the library dated no playhead after the start (not live, or no program date)")
    if switches is None:
        unmeasured["rendition_switches"] = "neither the library nor the picture reported a rendition"
    return PlayerAccount(
        player=player, player_version=raw.get("version"), browser=browser, url=url, rendition=rendition,
        window_s=window_s, origin_epoch_s=origin_ms / 1000, samples=samples, frames=frames, events=events,
        requests=requests, renditions=renditions, errors=tuple(raw.get("errors") or ()), time_to_start_s=start,
        stalls_by_events=by_events, stalls_by_picture=by_picture,
        stall_time_by_events_s=_total(by_events), stall_time_by_picture_s=_total(by_picture),
        played_s=played_s(frames, samples, start), rendition_switches=switches,
        live_latency_start_s=latency_start, live_latency_end_s=latency_end,
        bytes_received=sum(r["bytes"] for r in requests), request_count=len(requests), unmeasured=unmeasured)


def _nothing(player: str, url: str, rendition: str, window_s: float, browser: str, raw: dict) -> PlayerAccount:
    """The account of a player that made no request at all."""
    why = "the player made no request within " f"{FIRST_REQUEST_TIMEOUT_S:g} s"
    names = ("time_to_start_s", "stalls_by_events", "stalls_by_picture", "stall_time_by_events_s",
             "stall_time_by_picture_s", "played_s", "rendition_switches", "bytes_received")
    return PlayerAccount(player=player, player_version=raw.get("version"), browser=browser, url=url,
                         rendition=rendition, window_s=window_s, origin_epoch_s=None, samples=(), frames=(), events=(),
                         requests=(), renditions=(), errors=tuple(raw.get("errors") or ()), time_to_start_s=None,
                         stalls_by_events=None, stalls_by_picture=None, stall_time_by_events_s=None,
                         stall_time_by_picture_s=None, played_s=None, rendition_switches=None, bytes_received=None,
                         request_count=0, unmeasured={n: why for n in names})


def _sample(s: dict, rel: Callable[[float | None], float | None]) -> dict[str, Any]:
    """A page sample on the origin's clock (t_s, frame_presented_s instead of wall-clock ms), and on a live stream
    the latency to the live edge: the wall clock minus the date the library gives the playhead."""
    out = {k: v for k, v in s.items() if k not in ("t_ms", "frame_presented_ms")}
    date_ms = s.get("live_date_ms")
    latency = None if date_ms is None else round((s["t_ms"] - date_ms) / 1000, 3)
    return {"t_s": rel(s["t_ms"]), **out, "frame_presented_s": rel(s.get("frame_presented_ms")), "latency_s": latency}


def live_latency(samples: Iterable[dict], start_s: float | None) -> tuple[float | None, float | None]:
    """The latency to the live edge when playback started (the first sample from then on) and at the window's
    end (the last sample), as the library dates its playhead; None before a start or on a stream not live."""
    dated = [s for s in samples if s.get("latency_s") is not None and start_s is not None and s["t_s"] >= start_s]
    if not dated:
        return None, None
    return dated[0]["latency_s"], dated[-1]["latency_s"]


def _total(stalls: tuple[StallInterval, ...] | None) -> float | None:
    return None if stalls is None else round(sum(s.duration_s for s in stalls), 3)


def time_to_start(frames: Iterable[tuple[float, float]], samples: Iterable[dict] = ()) -> float | None:
    """When the first frame was shown with the playhead advancing: the first frame that advanced past the first
    picture, presented at P with media time M, started at P - (M - the first picture's media time) (1x playback).

    Without frame callbacks, the first sample whose playhead advanced from the previous one as the clock does (a
    jump further than the clock went is a seek: a live player moving to its edge, not playback), by the same
    reckoning; a sample without a current frame (ready state under 2) shows nothing.
    """
    frames = list(frames)
    if frames:
        first_media = frames[0][1]
        for at, media in frames[1:]:
            if media > first_media:
                return round(max(0.0, at - (media - first_media)), 3)
        return None
    prev = None
    for s in samples:
        if prev is not None and not s["paused"] and s.get("ready_state", 2) >= 2 and \
                0 < s["current_time_s"] - prev["current_time_s"] <= s["t_s"] - prev["t_s"] + SAMPLE_INTERVAL_S:
            return round(max(0.0, s["t_s"] - (s["current_time_s"] - prev["current_time_s"])), 3)
        prev = s
    return None


def stalls_by_events(events: Iterable[dict], start_s: float, end_s: float) -> tuple[StallInterval, ...]:
    """The element's waiting -> playing intervals after playback started (the last one ongoing at the window's end)."""
    out: list[StallInterval] = []
    waiting: float | None = None
    for e in events:
        if e.get("source") != "element" or e["t_s"] is None or e["t_s"] < start_s:
            continue
        if e["name"] == "waiting" and waiting is None:
            waiting = e["t_s"]
        elif e["name"] in ("playing", "pause", "ended") and waiting is not None:
            out.append(StallInterval(waiting, e["t_s"]))
            waiting = None
    if waiting is not None:
        out.append(StallInterval(waiting, end_s, ongoing=True))
    return tuple(out)


def _held(samples: list[dict], start: float, end: float) -> bool:
    """True when a sample between ``start`` and ``end`` was paused or ended (a picture held on purpose)."""
    return any(s["paused"] or s["ended"] for s in samples if start <= s["t_s"] <= end)


def stalls_by_picture(frames: Iterable[tuple[float, float]], samples: Iterable[dict], start_s: float, end_s: float,
                      threshold_s: float = PICTURE_STALL_S) -> tuple[StallInterval, ...]:
    """Intervals after playback started, not paused nor ended, where the presented frame did not change for at
    least ``threshold_s``: from one frame's presentation to the next's (without frame callbacks: from the samples'
    decoded frame count, to 0.1 s).

    With separate audio and video, Chromium plays on with the audio while the video buffer is empty, freezing the
    picture, and fires ``waiting`` only about 3 s later: the picture says when the viewer saw a stall.
    """
    samples = [s for s in samples if s["t_s"] is not None]
    shown = [f for f in frames] or _frames_from_counts(samples)
    out: list[StallInterval] = []
    for (at, _m), (next_at, _n) in zip(shown, shown[1:]):
        if next_at - max(at, start_s) >= threshold_s and not _held(samples, at, next_at):
            out.append(StallInterval(round(max(at, start_s), 3), round(next_at, 3)))
    if shown and samples and not (samples[-1]["paused"] or samples[-1]["ended"]):
        last_at = max(shown[-1][0], start_s)
        if end_s - last_at >= threshold_s:
            out.append(StallInterval(round(last_at, 3), end_s, ongoing=True))
    return tuple(out)


def _frames_from_counts(samples: list[dict]) -> list[tuple[float, float]]:
    """(time, frame count) where the decoded frame count changed: a coarser picture without frame callbacks."""
    out: list[tuple[float, float]] = []
    for s in samples:
        count = s.get("total_video_frames")
        if count is not None and (not out or count != out[-1][1]):
            out.append((s["t_s"], float(count)))
    return out


def played_s(frames: Iterable[tuple[float, float]], samples: Iterable[dict], start_s: float | None) -> float | None:
    """Media played in the window: the playhead's last position minus the first picture's media time."""
    frames, samples = list(frames), list(samples)
    if start_s is None or not samples:
        return None
    first = frames[0][1] if frames else samples[0]["current_time_s"]
    return round(max(0.0, max(s["current_time_s"] for s in samples) - first), 3)


def rendition_switches(renditions: Iterable[dict]) -> int | None:
    """Switches of video rendition: the library's account when it gave one, else the picture's size."""
    renditions = list(renditions)
    library = [r for r in renditions if r.get("source") != "picture"]
    chosen = library or renditions
    if not chosen:
        return None
    keys = [(r.get("bitrate_bps"), r.get("height")) if library else (r.get("width"), r.get("height")) for r in chosen]
    distinct = [k for i, k in enumerate(keys) if i == 0 or k != keys[i - 1]]
    return len(distinct) - 1
