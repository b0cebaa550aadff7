"""A linear HTML tokenizer for plugins: the title, links, ``<video>``/``<source>`` sources and JSON script blocks."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

# Why not the standard html.parser: it re-scans an unfinished construct at every '<' (2 MB of "<!--" takes
# about 25 minutes). Why not an HTML5 tree builder (lexbor through selectolax, html5lib): its "in scope" checks
# walk the stack of open elements, so nested elements are quadratic (40,000 nested <div>: 4.5 s with lexbor).
# A tokenizer is all a scan needs: every step below moves forward and nothing is scanned twice, so the work is
# linear in the page; a construct left open at the end (comment, quoted value, tag) ends the page, as in HTML5.

_TAG_NAME = re.compile(r"[^\s/>]*")
_SPACE = re.compile(r"[\s/]*")  # between attributes; a stray '/' counts as space, as in HTML5
_ATTR_NAME = re.compile(r"[^\s/>][^\s/>=]*")
_EQUALS = re.compile(r"\s*=\s*")
_UNQUOTED = re.compile(r"[^\s>]*")
_RAW_TEXT = frozenset(("script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes"))
_RAW_END = {name: re.compile(rf"</{name}[\s/>]", re.IGNORECASE) for name in _RAW_TEXT}
_BIG_CHARREF = re.compile(r"&#(?:[xX]0*[0-9a-fA-F]{7,}|0*[0-9]{8,});?")  # beyond U+10FFFF: U+FFFD, never int()


def unescape(text: str) -> str:
    """Character references decoded as HTML5 does, in linear time (a 5,000-digit reference is U+FFFD)."""
    if "&" not in text:
        return text
    return html.unescape(_BIG_CHARREF.sub("\ufffd", text))


class PageScan:
    """What a page holds: the title, ``<a href>`` links, ``<video>``/``<source>`` sources, JSON script blocks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.title: str | None = None
        self.links: list[str] = []
        self.sources: list[tuple[str, str | None]] = []  # (absolute URL, type attribute)
        self.json_blocks: dict[str, str] = {}

    def _url(self, ref: str | None) -> str | None:
        """``ref`` made absolute, or None when it cannot be read (``http://[::1``): no link, no source."""
        try:
            return urljoin(self.base_url, unescape(ref or "").strip()) if ref else None
        except ValueError:
            return None

    def _start(self, tag: str, attrs: dict[str, str | None]) -> None:
        if tag == "a" and (href := self._url(attrs.get("href"))):
            self.links.append(href)
        elif tag in ("video", "source") and (src := self._url(attrs.get("src"))):
            kind = attrs.get("type")
            self.sources.append((src, unescape(kind) if kind is not None else None))

    def _raw(self, tag: str, attrs: dict[str, str | None], text: str) -> None:
        if tag == "title" and self.title is None:
            self.title = unescape(text).strip() or None
        elif tag == "script" and (attrs.get("type") or "").strip().lower().endswith("json"):
            self.json_blocks[unescape(attrs.get("id") or "")] = text


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where ``pattern``, which cannot fail at ``pos`` (it matches the empty string or the character there), ends."""
    match = pattern.match(text, pos)
    assert match is not None, pattern.pattern
    return match.end()


def _attributes(text: str, pos: int) -> tuple[dict[str, str | None], int] | None:
    """The attributes of a tag from ``pos`` and the position after its '>', or None when the page ends first."""
    attrs: dict[str, str | None] = {}
    n = len(text)
    while True:
        pos = _match_end(_SPACE, text, pos)
        if pos >= n:
            return None
        if text[pos] == ">":
            return attrs, pos + 1
        name_end = _match_end(_ATTR_NAME, text, pos)
        name = text[pos:name_end].lower()
        pos = name_end
        value: str | None = None
        eq = _EQUALS.match(text, pos)
        if eq:
            pos = eq.end()
            if pos >= n:
                return None
            quote = text[pos]
            if quote in "\"'":
                close = text.find(quote, pos + 1)
                if close < 0:
                    return None
                value, pos = text[pos + 1:close], close + 1
            else:
                end = _match_end(_UNQUOTED, text, pos)
                value, pos = text[pos:end], end
        attrs.setdefault(name, value)  # HTML5 keeps the first of duplicate attributes


def _is_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _after_comment(text: str, lt: int) -> int | None:
    """The position after the comment opened at ``lt``, or None when it runs to the end of the page."""
    if text.startswith(("<!-->", "<!--->"), lt):  # abruptly closed empty comments
        return text.index(">", lt + 4) + 1
    end = text.find("-->", lt + 4)
    return end + 3 if end >= 0 else None  # an unclosed comment runs to the end of the page


def _after_tag(page: PageScan, text: str, lt: int) -> int | None:
    """Read the start or end tag at ``lt`` into ``page``; the position to go on from, or None when the page ends."""
    closing = text[lt + 1] == "/"
    name_start = lt + 2 if closing else lt + 1
    name_end = _match_end(_TAG_NAME, text, name_start)
    tag = text[name_start:name_end].lower()
    parsed = _attributes(text, name_end)
    if parsed is None:
        return None  # a tag left open at the end is dropped
    attrs, pos = parsed
    if closing:
        return pos
    if tag in _RAW_TEXT:
        return _after_raw_text(page, tag, attrs, text, pos)
    page._start(tag, attrs)
    return pos


def _after_raw_text(page: PageScan, tag: str, attrs: dict[str, str | None], text: str, pos: int) -> int | None:
    """Read the text of a raw-text element (script, title...) from ``pos``; where its end tag starts, or None."""
    m = _RAW_END[tag].search(text, pos)
    body_end = m.start() if m else len(text)
    page._raw(tag, attrs, text[pos:body_end])
    if m is None:
        return None
    return body_end  # its end tag is read as a tag on the next turn


def scan(html_text: str, base_url: str) -> PageScan:
    """Tokenize a page in one forward pass and return what was found."""
    page = PageScan(base_url)
    text, n, pos = html_text, len(html_text), 0
    while True:
        lt = text.find("<", pos)
        if lt < 0 or lt + 1 >= n:
            return page
        nxt = text[lt + 1]
        after: int | None
        if text.startswith("<!--", lt):
            after = _after_comment(text, lt)
        elif nxt in "!?" or (nxt == "/" and lt + 2 < n and not _is_letter(text[lt + 2])):
            end = text.find(">", lt + 2)  # doctype, CDATA, processing instruction, bogus comment
            after = end + 1 if end >= 0 else None
        elif nxt == "/" or _is_letter(nxt):
            after = _after_tag(page, text, lt)
        else:
            after = lt + 1  # a '<' that starts nothing is text
        if after is None:
            return page
        pos = after
