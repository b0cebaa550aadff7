"""Small HTML scanning helpers for plugins (links, video sources, title), on the standard HTML parser."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin


class PageScan(HTMLParser):
    """Collects the title, ``<a href>`` links, ``<video>``/``<source>`` sources and JSON script blocks."""

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.title: str | None = None
        self.links: list[str] = []
        self.sources: list[tuple[str, str | None]] = []  # (absolute URL, type attribute)
        self.json_blocks: dict[str, str] = {}
        self._in_title = False
        self._script_id: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "title" and self.title is None:
            self._in_title, self._text = True, []
        elif tag == "a" and a.get("href"):
            self.links.append(urljoin(self.base_url, a["href"]))
        elif tag in ("video", "source") and a.get("src"):
            self.sources.append((urljoin(self.base_url, a["src"]), a.get("type")))
        elif tag == "script" and (a.get("type") or "").endswith("json"):
            self._script_id, self._text = a.get("id") or "", []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self.title = "".join(self._text).strip() or None
            self._in_title = False
        elif tag == "script" and self._script_id is not None:
            self.json_blocks[self._script_id] = "".join(self._text)
            self._script_id = None

    def handle_data(self, data: str) -> None:
        if self._in_title or self._script_id is not None:
            self._text.append(data)


def scan(html_text: str, base_url: str) -> PageScan:
    """Parse a page and return what was found."""
    s = PageScan(base_url)
    s.feed(html_text)
    s.close()
    return s
