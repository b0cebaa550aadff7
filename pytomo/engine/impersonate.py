"""Which browser a platform format's requests present (yt-dlp's impersonation), and the retries after a 403.

yt-dlp 2026.10.26 asks Dailymotion's CDN for a master playlist three ways in turn, each after the previous one
failed: with randomized headers and no impersonation, then impersonating Chrome, then Firefox, the last two with
``require_impersonation=True`` (``yt_dlp/extractor/dailymotion.py``,
``_extract_dailymotion_m3u8_formats_and_subtitles``).
A format may also carry an ``impersonate`` field (``yt_dlp/extractor/common.py``), which yt-dlp's own downloader
passes on as the request's ``impersonate`` extension (``yt_dlp/downloader/http.py``, ``_get_impersonate_target`` in
``downloader/common.py``); ``True`` means any target, and yt-dlp's curl_cffi handler then prefers the newest Chrome
(``yt_dlp/networking/_curlcffi.py``, the order of ``_SUPPORTED_IMPERSONATE_TARGET_MAP``).

``Presenting`` holds one format's state: the target its requests present now (None: libcurl's own handshake) and
every refusal. A platform request answered 403 is asked again with the next target in yt-dlp's order; the target
that was accepted stays for the format's later requests (its manifest, playlists, segments, ranges).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from requests.structures import CaseInsensitiveDict

from pytomo.engine.curl import CurlAnswer, CurlTransport, CurlTransportError, read_chunk
from pytomo.errors import BlockedClient
from pytomo.results import ConnectionUse, Transfer

BROWSERS = ("chrome", "firefox")  # yt-dlp's retry order after a plain request (dailymotion.py)
ORDER: tuple[str | None, ...] = (None, *BROWSERS)
RETRY_STATUSES = (403,)  # what a CDN answers a client whose handshake it refuses
_TRIED_MAX = 20
_FIRST_BYTE_LIMIT = 64 * 1024
_FAMILIES = ("chrome", "firefox", "safari", "edge", "tor")  # curl_cffi's browser families (its BrowserTypeLiteral)


def target_of(field: object) -> str | None:
    """The curl_cffi target for a format's ``impersonate`` field: ``True`` (any: yt-dlp's curl_cffi handler picks
    the newest Chrome) gives ``chrome``; ``"firefox"``, ``"chrome:windows-10"`` or a list give their first client;
    anything else None."""
    if field is True or field == "":
        return "chrome"
    first = field[0] if isinstance(field, (list, tuple)) and field else field
    if isinstance(first, str):
        client = first.split(":", 1)[0].strip().lower()
        return client if client in _FAMILIES else None
    return None


class Presenting:
    """One platform format's impersonation: the target its requests present now, and what was tried.

    ``first``: the target to start with (the format's ``impersonate``, or the one yt-dlp's own manifest request
    succeeded with); the next ones follow yt-dlp's order after it. ``possible``: False when libcurl is not used
    (``--http 1.1``): every request goes as it is, and a refusal says so.
    """

    def __init__(self, first: str | None = None, *, possible: bool = True) -> None:
        start = ORDER.index(first) if first in ORDER else 0
        self.order: tuple[str | None, ...] = ((first,) if first not in ORDER else ()) + ORDER[start:]
        self.possible = possible
        self._index = 0
        # (target presented, or "none"; the status it got), a repeat of the last one left out
        self.tried: list[tuple[str, int | None]] = []
        self._lock = threading.Lock()  # audio and video streams share one format's state

    @property
    def target(self) -> str | None:
        """The target the next request presents (None: libcurl's own handshake, or requests)."""
        return self.order[self._index] if self.possible else None

    def answered(self, status: int | None, presented: str | None) -> bool:
        """Note a request's answer (``presented``: the exact target, e.g. ``chrome152``); True when it was refused
        and is to be asked again with the next target."""
        with self._lock:
            entry = (presented or "none", status)
            if (not self.tried or self.tried[-1] != entry) and len(self.tried) < _TRIED_MAX:  # not every segment
                self.tried.append(entry)
            if status not in RETRY_STATUSES or not self.possible:
                return False
            asked = self.order[self._index]
            if presented is not None and asked is not None and not presented.startswith(asked):
                return False  # another request moved on meanwhile
            if self._index + 1 >= len(self.order):
                return False
            self._index += 1
            return True

    def refusals(self) -> str:
        """What was tried, e.g. ``403 with none, chrome152, firefox155``; "" when nothing was refused."""
        refused = [name for name, status in self.tried if status in RETRY_STATUSES]
        seen = list(dict.fromkeys(refused))
        if not seen:
            return ""
        text = f"{RETRY_STATUSES[0]} with {', '.join(seen)}"
        return text if self.possible else text + " (no impersonation: --http 1.1 does not use libcurl)"

    def record(self) -> dict:
        """The JSON-ready account for the video's extractor record."""
        return {"first": self.order[0] if self.possible else None, "presented": self.target,
                "tried": [[name, status] for name, status in self.tried]}


def as_browser(presenting: Presenting | None, fetch: Callable[[str | None], Transfer]) -> Transfer:
    """``fetch(target)`` as ``presenting`` says, asked again as the next browser after a 403; the last transfer."""
    while True:
        tr = fetch(presenting.target if presenting is not None else None)
        if presenting is None or not presenting.answered(tr.status, tr.impersonate):
            return tr


def blocked(presenting: Presenting | None, *, stage: str, status: int | None, url: str) -> BlockedClient:
    """The blocked_client error of a refused platform request, with what was tried when impersonation was."""
    tried = presenting.refusals() if presenting is not None else ""
    message = f"the media host refused the client: HTTP {status} from {url}" + (f" ({tried})" if tried else "")
    return BlockedClient(message, stage=stage, status=status, url=url)


@dataclass
class FirstByte:
    """A platform format's first-byte answer over libcurl, in the shape the redirect walk reads from ``requests``."""

    status_code: int
    headers: CaseInsensitiveDict
    http_version: str | None
    impersonate: str | None
    connection: ConnectionUse | None
    http_stream_id: int | None = None  # the HTTP/2 or HTTP/3 stream libcurl opened; None over HTTP/1.x

    @property
    def is_redirect(self) -> bool:
        """A redirect status with a Location, as ``requests.Response.is_redirect`` says."""
        return "Location" in self.headers and self.status_code in (301, 302, 303, 307, 308)


def first_byte(transport: CurlTransport, url: str, address: str, headers: dict[str, str], presenting: Presenting,
               *, timeout_s: float, deadline_s: float) -> FirstByte:
    """GET byte 0 of ``url`` over libcurl as ``presenting`` says, asked again as the next browser after a 403; the
    last answer. A failure without an answer is ``requests.ConnectionError`` (its cause: libcurl's error)."""
    while True:
        answer = transport.request(url, address, headers={**headers, "Range": "bytes=0-0"}, timeout_s=timeout_s,
                                   deadline_s=deadline_s, impersonate=presenting.target)
        try:
            _drain(answer, deadline_s)
        finally:
            if answer.sock is not None:
                answer.sock.close()
        if answer.error is not None:
            raise requests.ConnectionError(str(answer.error)) from answer.error
        head = FirstByte(answer.status_code, answer.headers, answer.http_version, answer.impersonate,
                         answer.connection, answer.http_stream_id)
        if not presenting.answered(head.status_code, head.impersonate):
            return head


def _drain(answer: CurlAnswer, deadline_s: float) -> None:
    """Read a first-byte answer's body to its end (at most 64 KiB: a server that ignored the range is cut)."""
    if answer.error is not None:
        return
    got = 0
    end = time.monotonic() + deadline_s
    while True:
        try:
            item = read_chunk(answer, end - time.monotonic())
        except CurlTransportError as exc:
            answer.error = exc
            return
        if item is None or not item[0]:
            if item is None:
                answer.cancel()
            return
        got += len(item[0])
        if got > _FIRST_BYTE_LIMIT:
            answer.cancel()
            return
