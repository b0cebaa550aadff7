"""Measures one video: page -> redirects (with DNS per hop) -> RTT -> download -> media -> playout."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, Protocol
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from pytomo.engine.analysis import analyse, analyse_segments, play_profiles
from pytomo.engine.curl import curl_failure
from pytomo.engine.download import fetch_range
from pytomo.engine.hops import ask as ask_over_curl
from pytomo.engine.http import (
    TLS_ERROR_KINDS,
    HttpClient,
    connection_use,
    host_and_port,
    http_version_of,
    tls_failure,
)
from pytomo.engine.impersonate import FirstByte, Presenting, blocked, first_byte
from pytomo.engine.pages import through_transport
from pytomo.engine.pair import play_pair
from pytomo.engine.ping import probe_rtt
from pytomo.engine.player import SegmentPlayer
from pytomo.engine.profiles import profiles
from pytomo.engine.progressive import fetch_progressive
from pytomo.engine.resolve import DnsProbe, addresses
from pytomo.engine.vantage import Vantage
from pytomo.errors import (
    BLOCKED_STATUSES,
    DownloadError,
    ForbiddenAddress,
    HttpStatusError,
    MeasurementError,
    MediaError,
    RedirectError,
    ResolveFailed,
)
from pytomo.media.index import MediaIndexer
from pytomo.media.manifest import sniff
from pytomo.results import (
    ConnectionUse,
    DownloadAnalysis,
    Hop,
    MediaDescriptor,
    MediaStream,
    PlayoutParams,
    RttResult,
    Transfer,
    VideoMeasurement,
    utc_now,
)
from pytomo.settings import Settings

log = logging.getLogger(__name__)


class PageResolver(Protocol):
    """What the pipeline needs of a service plugin (pytomo/services/base.py Service): its label, the video id in a
    page URL, and the page resolved into media URLs (raising a MeasurementError when it cannot be)."""

    LABEL: ClassVar[str]

    def video_id(self, url: str) -> str | None:
        """The video id in ``url``, or None."""
        ...

    def resolve(self, page_url: str) -> MediaDescriptor:
        """The media streams of a page."""
        ...


def _staggered(delay_s: float, address: str, count: int, port: int, timeout_s: float,
               interval_s: float) -> list[RttResult]:
    """TCP-connect probes half an interval after the ICMP ones, so that on a slow link neither queues the other."""
    time.sleep(delay_s)
    return probe_rtt(address, count, methods=(), tcp_port=port, timeout_s=timeout_s, interval_s=interval_s)


def _unreachable(host: str, address: str, exc: requests.RequestException) -> RedirectError:
    """The error of a hop that got no answer: a TLS failure of its kind, a timeout, or no connection."""
    cause = exc.__cause__
    curl = curl_failure(cause) if cause is not None else None  # libcurl's: a hop over the media's transport
    tls = tls_failure(exc) or (curl if curl is not None and curl[0] in TLS_ERROR_KINDS else None)
    if tls is not None:
        return RedirectError(f"{host} ({address}): {tls[1]}", kind=tls[0])
    kind = "timeout" if isinstance(exc, requests.Timeout) or (curl is not None and curl[0] == "timeout") else "connect"
    return RedirectError(f"cannot reach {host} ({address}): {exc.__class__.__name__}: {exc}", kind=kind)


class Interrupted(Exception):
    """Raised between stages when the user asked the crawl to stop."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class Pipeline:
    """Runs the measurement stages for one page URL; expected failures become the video's stored outcome."""

    def __init__(self, settings: Settings, http: HttpClient, dns: DnsProbe, primary_resolvers: set[str],
                 stop: threading.Event, vantage: Vantage | None = None) -> None:
        self.settings = settings
        self.vantage = vantage or Vantage()  # AS and country of each download's address (--ip-db)
        self.http = http
        self.dns = dns
        self.primary = primary_resolvers
        self.stop = stop
        self.params = PlayoutParams(settings.initial_buffer_s, settings.min_buffer_s, settings.restart_buffer_s)
        self.profiles = profiles(settings)  # --player: each plays every download

    def _check(self, stage: str) -> None:
        if self.stop.is_set():
            raise Interrupted(stage)

    def measure(self, service: PageResolver, page_url: str, *, round_no: int = 0,
                seed_source: str = "input") -> VideoMeasurement:
        """Measure one video; never raises for a measurement failure."""
        m = VideoMeasurement(page_url=page_url, round=round_no, seed_source=seed_source,
                             service_label=service.LABEL, started_at=utc_now())
        m.video_id = service.video_id(page_url)
        try:
            self._run(service, m)
        except Interrupted as exc:
            m.status, m.error_stage, m.error_kind = "interrupted", exc.stage, "interrupted"
            m.error_message = f"stopped by the user before the {exc.stage} stage"
        except MeasurementError as exc:
            m.status, m.error_stage, m.error_kind, m.error_message = "error", exc.stage, exc.kind, str(exc)
            extractor = exc.fields.get("extractor")  # a plugin's PageError carries its extractor record (a dict)
            m.extractor = m.extractor or (extractor if isinstance(extractor, dict) else None)
        except Exception as exc:  # a bug: keep the video's record, say what happened, go on
            log.exception("unexpected failure measuring %s", page_url)
            m.status, m.error_stage, m.error_kind = "error", "internal", "bug"
            m.error_message = f"{exc.__class__.__name__}: {exc}"
        for d in m.downloads:
            d.origin = self.vantage.lookup(d.transfer.address)
        m.ended_at = utc_now()
        return m

    def _run(self, service: PageResolver, m: VideoMeasurement) -> None:
        t0 = time.perf_counter()
        self._check("resolve_page")
        with self.dns.recording() if self.dns is not None else contextlib.nullcontext([]) as page_dns:
            try:
                desc = service.resolve(m.page_url)
            except MeasurementError:
                m.dns.extend(page_dns)  # what the failed page fetch resolved, kept with its outcome
                raise
        m.video_id, m.title, m.duration_s, m.related = desc.video_id, desc.title, desc.duration_s, list(desc.related)
        m.extractor = desc.extra.get("extractor")
        stream = desc.streams[0]
        audio = next((x for x in desc.streams[1:] if x.kind == "audio"), None) if stream.kind == "video" else None
        self._wait_until_available(stream, m)
        presenting = self._presenting(stream)
        try:
            self._measure_media(m, stream, audio, presenting, t0)
        finally:
            if presenting is not None and presenting.tried:  # which browser each answer saw, refusals first
                m.extractor = {**(m.extractor or {}), "impersonation": presenting.record()}

    def _measure_media(self, m: VideoMeasurement, stream: MediaStream, audio: MediaStream | None,
                       presenting: Presenting | None, t0: float) -> None:
        """The redirect walk, RTT, the download(s) from every address, and the video's outcome from them."""
        self._check("redirects")
        final_url = self._follow(stream.url, m, dict(stream.http_headers), presenting)
        m.cache_server_delay_s = time.perf_counter() - t0
        self._check("rtt")
        self._probe_rtt(m)
        self._check("download")
        final_host = m.hops[-1].host
        delivery = stream.kind if stream.kind in ("hls", "dash") else sniff(final_url, None, b"")
        for address in self._download_addresses(final_host, m, _signed_family(stream.url)):
            self._check("download")
            if delivery:
                m.downloads.append(self._play_segments(final_url, address, delivery, stream, presenting))
            elif audio is not None:
                m.downloads.extend(self._download_pair(final_url, address, stream, audio, m, presenting))
            else:
                m.downloads.append(self._download(final_url, address, stream, presenting))
        driving = self.profiles[0].name if delivery else None
        for d in m.downloads:
            play_profiles(d, self.profiles, driving)
        main = m.downloads[0]
        self._raise_for(main, final_url, platform=bool(stream.http_headers), presenting=presenting)
        if audio is not None and len(m.downloads) > 1:
            self._raise_for(m.downloads[1], audio.url, platform=True)

    def _presenting(self, stream: MediaStream) -> Presenting | None:
        """A platform format's impersonation (its requests over libcurl present a browser as yt-dlp's would)."""
        if not stream.http_headers:
            return None
        return Presenting(stream.impersonate, possible=self.http.transport is not None)

    def _raise_for(self, main: DownloadAnalysis, url: str, *, platform: bool,
                   presenting: Presenting | None = None) -> None:
        """The video's outcome from one download: an error of its stage and kind, or nothing when it measured."""
        t = main.transfer
        if t.error_kind == "http_status" and platform and t.status in BLOCKED_STATUSES:
            raise blocked(presenting, stage="download", status=t.status, url=url)
        if t.error_kind == "http_status":
            raise HttpStatusError(stage="download", status=t.status, url=url)
        if t.ended_by == "interrupted":
            raise Interrupted("download")
        if t.ended_by == "error":
            raise DownloadError(t.error, kind=t.error_kind or "transfer")
        if t.bytes_total == 0 and main.delivery == "progressive":
            raise DownloadError(f"the server sent no media bytes (the transfer ended by {t.ended_by})",
                                kind="empty_body")
        if t.body_overrun:  # what was measured is not the file the server sent
            raise DownloadError(f"the server sent more than the {t.content_length_bytes} bytes its Content-Length "
                                "announced", kind="length_mismatch")
        if main.parser_failure is not None:  # media/parser_crash, _timeout, _memory; the download is kept
            raise main.parser_failure
        if main.not_media:
            raise MediaError(main.media_problem, kind=main.media_problem_kind or "not_media")

    def _lookup(self, host: str, m: VideoMeasurement) -> list[str]:
        known = [a for a in m.dns if a.host == host]
        if not known:
            known = self.dns.lookup(host)
            m.dns.extend(known)
        primary = addresses(a for a in known if a.resolver in self.primary or a.resolver in ("literal", "getaddrinfo"))
        return primary or addresses(known)

    def _wait_until_available(self, stream: MediaStream, m: VideoMeasurement) -> None:
        """Wait for a format's ``available_at`` (a pre-roll ad plays meanwhile), as a player does; record the wait."""
        if stream.available_at_s is None:
            return
        wait_s = stream.available_at_s - time.time()
        m.available_wait_s = max(0.0, wait_s)
        if wait_s > self.settings.stage_deadline_s:
            raise DownloadError(f"the format is only available in {wait_s:.0f} s, more than the "
                                f"{self.settings.stage_deadline_s:g} s a stage may take", kind="not_yet_available")
        if wait_s > 0 and self.stop.wait(wait_s):
            raise Interrupted("redirects")

    def _follow(self, url: str, m: VideoMeasurement, headers: dict[str, str] | None = None,
                presenting: Presenting | None = None) -> str:
        """Walk the redirect chain hop by hop; return the media URL.

        Each hop is asked with HEAD; an error answer to HEAD (405 and 501, but also 403 or 404 from servers that
        sign or route GET only) is asked again with GET, whose answer is the one recorded. A platform's format
        (``headers``: its http_headers) is asked as its player asks: a GET with those headers for its first byte,
        never a HEAD; the kept-alive connection then carries the download. Over HTTPS with libcurl, that GET
        presents the browser ``presenting`` says, asked again as the next one after a 403 (the hop keeps the last).
        """
        deadline = time.perf_counter() + self.settings.stage_deadline_s
        for index in range(self.settings.redirect_max_hops + 1):
            self._check("redirects")
            if time.perf_counter() > deadline:
                raise RedirectError(f"the redirect chain took longer than {self.settings.stage_deadline_s:g} s "
                                    f"({index} hops)", kind="deadline")
            try:
                host, _port = host_and_port(url)
            except ValueError as exc:
                raise RedirectError(f"bad URL in the redirect chain: {url!r}", kind="bad_url") from exc
            found = self._lookup(host, m)
            if not found:
                raise ResolveFailed(host=host)
            address = found[0]
            started, t = utc_now(), time.perf_counter()
            try:
                resp, conn = self._ask(url, address, headers, presenting)
            except ForbiddenAddress as exc:
                m.hops.append(Hop(index, url, host, address, None, None, 0.0, started, error=str(exc)))
                raise
            except requests.RequestException as exc:
                m.hops.append(Hop(index, url, host, address, None, None, time.perf_counter() - t, started,
                                  error=str(exc)))
                raise _unreachable(host, address, exc) from exc
            location = resp.headers.get("Location")
            version, target, stream_id = ((resp.http_version, resp.impersonate, resp.http_stream_id)
                                          if isinstance(resp, FirstByte) else (http_version_of(resp), None, None))
            m.hops.append(Hop(index, url, host, address, resp.status_code, location, time.perf_counter() - t,
                              started, connection=conn, http_version=version, impersonate=target,
                              http_stream_id=stream_id))
            if resp.is_redirect and location:
                url = urljoin(url, location)
                continue
            if resp.status_code >= 400 and headers and resp.status_code in BLOCKED_STATUSES:
                raise blocked(presenting, stage="redirects", status=resp.status_code, url=url)
            if resp.status_code >= 400:
                raise HttpStatusError(stage="redirects", status=resp.status_code, url=url)
            return url
        raise RedirectError(f"more than {self.settings.redirect_max_hops} redirects", kind="hop_limit")

    def _ask(self, url: str, address: str, headers: dict[str, str] | None,
             presenting: Presenting | None = None) -> tuple[requests.Response | FirstByte, ConnectionUse | None]:
        """One hop's request and how it used its connection: HEAD (asked again with GET after an error answer), or
        the format's first byte. A HEAD's connection goes back to the pool for the next request to the same server.
        Over HTTPS with libcurl (``--http`` 2, 3, auto) the hop goes through the media's transport, on the
        connection and protocol the download then uses; plain HTTP, ``--http 1.1`` and ``--http-proxy`` (libcurl is
        pinned, not proxied; a platform's first byte excepted) keep ``requests``."""
        transport, s = self.http.transport, self.settings
        if transport is not None and url.startswith("https:"):
            if headers and presenting is not None:
                self.http.policy.check(address, host_and_port(url)[0], url)
                head = first_byte(transport, url, address, headers, presenting, timeout_s=s.http_timeout_s,
                                  deadline_s=s.request_deadline_s)
                return head, head.connection
            if not headers and through_transport(self.http):
                self.http.policy.check(address, host_and_port(url)[0], url)
                head = ask_over_curl(transport, url, address, self.http.cookie_headers(url, {}),
                                     timeout_s=s.http_timeout_s, deadline_s=s.request_deadline_s)
                return head, head.connection
        if headers:
            return self._first_byte(url, address, headers)
        resp = self.http.request("HEAD", url, address=address, stream=True)
        conn = connection_use(resp)
        resp.raw.read(decode_content=False)  # a HEAD answer has no body: this ends it and keeps the connection
        resp.raw.release_conn()
        if resp.status_code >= 400:
            resp = self.http.request("GET", url, address=address, stream=True)
            conn = connection_use(resp)
            resp.close()
        return resp, conn

    def _first_byte(self, url: str, address: str,
                    headers: dict[str, str]) -> tuple[requests.Response, ConnectionUse | None]:
        """GET the first byte with the format's headers; the connection stays in the pool when the answer is whole."""
        resp = self.http.request("GET", url, address=address, stream=True, headers={**headers, "Range": "bytes=0-0"})
        conn = connection_use(resp)
        try:
            body, longer = self.http.read_body(resp, 64 * 1024, self.settings.request_deadline_s)
        except Exception:
            resp.close()
            raise
        if longer:  # the server ignored the range: do not read the file here
            resp.close()
        else:
            resp.raw.release_conn()
        return resp, conn

    def _probe_rtt(self, m: VideoMeasurement) -> None:
        """ICMP and TCP-connect probes to every distinct address of the chain, all at once (bounded threads)."""
        jobs: list[tuple[str, int]] = []
        for hop in m.hops:
            _host, port = host_and_port(hop.url)
            for address in addresses(a for a in m.dns if a.host == hop.host):
                if address not in {a for a, _p in jobs}:
                    jobs.append((address, port))
        if not jobs:
            return
        self._check("rtt")
        s = self.settings
        with ThreadPoolExecutor(max_workers=min(16, 2 * len(jobs)), thread_name_prefix="rtt") as pool:
            futures = []
            for address, port in jobs:
                futures.append(pool.submit(probe_rtt, address, s.ping_count, timeout_s=s.ping_timeout_s,
                                           interval_s=s.ping_interval_s))
                futures.append(pool.submit(_staggered, s.ping_interval_s / 2, address, s.ping_count, port,
                                           s.ping_timeout_s, s.ping_interval_s))
            for f in futures:
                m.rtt.extend(f.result())

    def _download_addresses(self, host: str, m: VideoMeasurement, family: int | None = None) -> list[str]:
        """The first primary address (of the family the URL was signed for, when it says), plus extra ones."""
        primary = self._lookup(host, m)
        if family is not None:
            same = [a for a in primary if (6 if ":" in a else 4) == family]
            if m.extractor is not None:
                m.extractor = {**m.extractor, "signed_ip_family": family, "download_family_matches": bool(same)}
            primary = same or primary
        chosen = primary[:1]
        if self.settings.download_extra_dns:
            chosen += [a for a in addresses(x for x in m.dns if x.host == host) if a not in primary]
        return chosen

    def _play_segments(self, url: str, address: str, protocol: str, stream: MediaStream,
                       presenting: Presenting | None = None) -> DownloadAnalysis:
        player = SegmentPlayer(self.http, address, self.settings, self.profiles[0], should_stop=self.stop.is_set,
                               headers=dict(stream.http_headers), presenting=presenting)
        return analyse_segments(player.play(url, protocol), self.params)

    def _download_pair(self, url: str, address: str, video: MediaStream, audio: MediaStream,
                       m: VideoMeasurement, presenting: Presenting | None = None) -> list[DownloadAnalysis]:
        """The video and audio of a pair fetched at once, each on its own connection, and played together.

        The audio URL's own redirect chain is walked too (its DNS answers join the video's; its hops are listed
        in the extractor record, the hops table keeping the measured video's chain).
        """
        scratch = VideoMeasurement(page_url=m.page_url, round=m.round, seed_source=m.seed_source,
                                   service_label=m.service_label, started_at=utc_now())
        scratch.dns = m.dns
        audio_presenting = self._presenting(audio)
        audio_url = self._follow(audio.url, scratch, dict(audio.http_headers), audio_presenting)
        m.extractor = {**(m.extractor or {}), "audio_chain": [h.url for h in scratch.hops]}
        audio_host, _port = host_and_port(audio_url)
        audio_address = self._download_addresses(audio_host, m, _signed_family(audio.url))[0]
        audio = dataclasses.replace(audio, url=audio_url)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pair") as pool:
            v = pool.submit(self._timed_download, url, address, video, t0, presenting)
            a = pool.submit(self._timed_download, audio.url, audio_address, audio, t0, audio_presenting)
            (v_analysis, v_start_s), (a_analysis, a_start_s) = v.result(), a.result()
        play_pair(v_analysis, a_analysis, a_start_s - v_start_s, self.params)
        return [v_analysis, a_analysis]

    def _timed_download(self, url: str, address: str, stream: MediaStream, t0: float,
                        presenting: Presenting | None = None) -> tuple[DownloadAnalysis, float]:
        start_s = time.perf_counter() - t0
        return self._download(url, address, stream, presenting), start_s

    def _download(self, url: str, address: str, stream: MediaStream | None = None,
                  presenting: Presenting | None = None) -> DownloadAnalysis:
        s = self.settings
        indexer = MediaIndexer(box_limit_bytes=s.media_box_limit_bytes)
        headers = dict(stream.http_headers) if stream else {}

        def on_headers(tr: Transfer) -> None:  # impossible box sizes are judged against the file's own length
            indexer.file_size_bytes = tr.content_length_bytes if not tr.content_encoding else None

        transfer, ranges = fetch_progressive(
            self.http, url, address, window_s=s.window_s, bin_s=s.throughput_bin_s,
            head_limit_bytes=s.media_head_bytes, on_data=indexer.feed, should_stop=self.stop.is_set,
            timeout_s=s.http_timeout_s, on_headers=on_headers, headers=headers,
            chunk_bytes=stream.chunk_bytes if stream else None,
            stream=stream.kind if stream else "progressive", presenting=presenting)
        tail = None
        need = indexer.tail_request() if transfer.bytes_total else None
        if need is not None and not self.stop.is_set():
            offset, length = need
            tail_tr = fetch_range(self.http, url, address, offset, length, timeout_s=s.http_timeout_s,
                                  headers=headers, impersonate=presenting.target if presenting else None)
            transfer.tail_connection = tail_tr.connection
            if tail_tr.complete and tail_tr.head:
                data = tail_tr.head
                indexer.feed_tail(offset, data)
                tail = (offset, data)
                transfer.tail, transfer.tail_range = data, (offset, offset + len(data) - 1)
            else:
                why = tail_tr.error or f"the transfer ended by {tail_tr.ended_by}"
                transfer.tail_error = f"cannot fetch the index at the end of the file: {why}"
        analysis = analyse(transfer, indexer, self.params, tail)
        analysis.segments = list(ranges)
        return analysis


def _signed_family(url: str) -> int | None:
    """The address family a platform signed the URL for (its ``ip=`` parameter), or None."""
    values = parse_qs(urlsplit(url).query).get("ip") or []
    if not values:
        return None
    try:
        return ipaddress.ip_address(values[0]).version
    except ValueError:
        return None
