"""The ``lab`` service: the built-in emulated platform (watch pages, popular lists, redirecting media URLs)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from pytomo.errors import HttpStatusError, PageError
from pytomo.results import MediaDescriptor, MediaStream
from pytomo.services.base import Service
from pytomo.services.htmlscan import scan


class LabService(Service):
    """Watch pages ``http://www.lab.pytomo.test:PORT/watch?v=ID`` carrying a JSON player config."""

    NAME = "lab"
    LABEL = "Lab"
    URL_PATTERNS = (r"^https?://www\.lab\.pytomo\.test(?::\d+)?/watch\?(?:[^#]*&)?v=(?P<id>[\w-]+)",)
    TESTS = (("http://www.lab.pytomo.test:8080/watch?v=lab-unlimited", "lab-unlimited"),
             ("http://www.lab.pytomo.test/watch?feature=x&v=abc_1", "abc_1"))

    def _resolve(self, page_url: str) -> MediaDescriptor:
        s = self.ctx.settings
        resp, text = self.ctx.http.get_text(page_url, limit_bytes=s.page_limit_bytes, deadline_s=s.request_deadline_s)
        if resp.status_code != 200:
            raise HttpStatusError(stage="resolve_page", status=resp.status_code, url=page_url)
        page = scan(text, page_url)
        raw = page.json_blocks.get("player-config")
        if raw is None:
            raise PageError("the watch page has no player config")
        config = json.loads(raw)
        related = tuple(link for link in page.links if self.suitable(link))
        return MediaDescriptor(
            page_url=page_url, video_id=str(config["video_id"]), title=config.get("title"),
            streams=(MediaStream(url=config["media_url"], kind=config.get("delivery") or "progressive"),),
            duration_s=config.get("duration_s"),
            related=related)

    def _seeds(self, time_frame: str, max_results: int) -> list[str]:
        base = self.ctx.settings.lab_platform_url
        if not base:
            raise PageError("the lab is not running")
        url = f"{base}/api/popular?{urlencode({'time_frame': time_frame, 'limit': max_results})}"
        resp, text = self.ctx.http.get_text(url, deadline_s=self.ctx.settings.request_deadline_s)
        if resp.status_code != 200:
            raise HttpStatusError(stage="seeds", status=resp.status_code, url=url)
        return [v["url"] for v in json.loads(text)["videos"]]
