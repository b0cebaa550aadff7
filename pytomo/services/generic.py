"""The ``generic`` service: a direct media URL, an HLS or DASH manifest, or an HTML page with ``<video>``."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urljoin, urlsplit

from pytomo.errors import HttpStatusError, PageError
from pytomo.media.manifest import sniff
from pytomo.results import MediaDescriptor, MediaStream
from pytomo.services.base import Service
from pytomo.services.htmlscan import scan

_MEDIA_TYPES = ("video/", "audio/", "application/octet-stream", "application/mp4")
_MAX_PAGE_REDIRECTS = 10


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<video", b"<div"))


class GenericService(Service):
    """Any http(s) URL: media is measured directly; a page is searched for ``<video>``/``<source>``."""

    NAME = "generic"
    LABEL = "Generic"
    URL_PATTERNS = (r"^https?://[^/\s]+(?:/\S*)?$",)
    TESTS = (("http://127.0.0.1:8000/clip.mp4", ""),)

    @classmethod
    def video_id(cls, url: str) -> str | None:
        """The last path segment, as the only id a bare URL has."""
        path = urlsplit(url).path
        return unquote(posixpath.basename(path)) or urlsplit(url).hostname

    def _resolve(self, page_url: str) -> MediaDescriptor:
        url = page_url
        for _ in range(_MAX_PAGE_REDIRECTS + 1):
            resp = self.ctx.http.request("GET", url, stream=True)
            try:
                if resp.is_redirect and resp.headers.get("Location"):
                    url = urljoin(url, resp.headers["Location"])
                    continue
                if resp.status_code >= 400:
                    raise HttpStatusError(stage="resolve_page", status=resp.status_code, url=url)
                ctype = resp.headers.get("Content-Type", "").lower()
                head = resp.raw.read(512, decode_content=True) or b""
                protocol = sniff(url, ctype, head)
                if protocol:
                    name = self.video_id(page_url)
                    return MediaDescriptor(page_url=page_url, video_id=name or "", title=name,
                                           streams=(MediaStream(url=url, kind=protocol),))
                if ctype.startswith(_MEDIA_TYPES) or (not ctype.startswith("text/") and not _looks_like_html(head)):
                    return self._direct(page_url)
                limit = self.ctx.settings.page_limit_bytes
                body = head[:limit]
                if len(head) < limit:
                    body += resp.raw.read(limit - len(head), decode_content=True) or b""
                longer = len(head) > limit or bool(resp.raw.read(1, decode_content=True))
            finally:
                resp.close()
            page = scan(body.decode(resp.encoding or "utf-8", errors="replace"), url)
            if not page.sources and longer:
                raise PageError(f"no <video> or <source> element in the first {limit} bytes of the page, "
                                "and the page is longer (page_limit_bytes)", kind="page_too_large")
            if not page.sources:
                raise PageError("the page has no <video> or <source> element", kind="no_video")
            streams = tuple(MediaStream(url=src, container=(kind or "").split("/")[-1] or None)
                            for src, kind in page.sources)
            return MediaDescriptor(page_url=page_url, video_id=self.video_id(page_url) or "", title=page.title,
                                   streams=streams)
        raise PageError(f"more than {_MAX_PAGE_REDIRECTS} redirects for the page", kind="hop_limit")

    def _direct(self, url: str) -> MediaDescriptor:
        return MediaDescriptor(page_url=url, video_id=self.video_id(url) or "", title=self.video_id(url),
                               streams=(MediaStream(url=url),))
