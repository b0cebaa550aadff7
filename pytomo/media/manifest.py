"""HLS and DASH manifests read into one model: renditions, each a list of timed segment URLs or byte ranges."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload
from urllib.parse import urljoin

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from pytomo.errors import ManifestError
from pytomo.media.sidx import find_sidx
from pytomo.results import Presentation, Segment, Track

MAX_SEGMENTS = 100_000  # per track: a manifest that describes more is refused before anything is allocated
MAX_PLAYLISTS = 100  # HLS media playlists one master may make us fetch
TOTAL_SEGMENTS_FACTOR = 4  # the whole presentation (every track, timeline entry, SegmentURL) costs at most this many
# times ``max_segments``
URL_TEXT_BUDGET_CHARS = 64 << 20  # characters of segment URLs one presentation may make
MAX_URL_CHARS = 8192  # one URL, BaseURL or template
MAX_DURATION_S = 366 * 86400  # any duration in a manifest: no presentation (or segment) lasts more than a year
_MAX_INT = 2**63 - 1
_MAX_SIDX_DEPTH = 4

FetchRange = Callable[[str, int, int], bytes]


def sniff(url: str, content_type: str | None, head: bytes) -> str | None:
    """``hls`` or ``dash`` when the URL, type or first bytes say so, else None."""
    ctype = (content_type or "").lower()
    start = head.lstrip()[:256]
    if "mpegurl" in ctype or start.startswith(b"#EXTM3U") or re.search(r"\.m3u8($|\?)", url):
        return "hls"
    if "dash+xml" in ctype or b"<MPD" in start or re.search(r"\.mpd($|\?)", url):
        return "dash"
    return None


# ---------------------------------------------------------------- values and budgets

_DIGITS = re.compile(r"[0-9]{1,19}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")


def _bad(where: str, name: str, value: object, what: str) -> ManifestError:
    if isinstance(value, str) and len(value) > 80:
        value = value[:80] + "..."
    return ManifestError(f"{where} {name}={value!r} is not {what}")


@overload
def _uint(where: str, name: str, text: str, default: int | None = None, minimum: int = 0) -> int: ...
@overload
def _uint(where: str, name: str, text: str | None, default: int, minimum: int = 0) -> int: ...
@overload
def _uint(where: str, name: str, text: str | None, default: None = None, minimum: int = 0) -> int | None: ...
def _uint(where: str, name: str, text: str | None, default: int | None = None, minimum: int = 0) -> int | None:
    """An unsigned integer attribute (``default`` when absent); anything else is a ManifestError naming it."""
    if text is None:
        return default
    text = text.strip()
    if not _DIGITS.fullmatch(text) or not minimum <= int(text) <= _MAX_INT:
        raise _bad(where, name, text, f"an integer from {minimum} to 2^63-1")
    return int(text)


def _number(where: str, name: str, text: str, minimum: float = 0.0, maximum: float = math.inf) -> float:
    text = text.strip()
    if len(text) > 64 or not _DECIMAL.fullmatch(text):
        raise _bad(where, name, text, "a decimal number")
    value = float(text)
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise _bad(where, name, text, f"a number from {minimum:g} to {maximum:g}")
    return value


def _frame_rate(where: str, text: str | None) -> float | None:
    if not text:
        return None
    num, _, den = text.strip().partition("/")
    n = _number(where, "frameRate", num, maximum=1e6)
    d = _number(where, "frameRate", den, maximum=1e6) if den else 1.0
    if d == 0:
        raise _bad(where, "frameRate", text, "a frame rate (zero denominator)")
    return n / d


def _url(where: str, name: str, base: str, ref: str) -> str:
    """``ref`` resolved against ``base``; a URL that cannot be read or is too long is a ManifestError naming it."""
    if len(ref) > MAX_URL_CHARS:
        raise _bad(where, name, ref, f"a URL of at most {MAX_URL_CHARS} characters")
    try:
        out = urljoin(base, ref)
    except ValueError as exc:
        raise _bad(where, name, ref, f"a URL ({exc})") from None
    if len(out) > MAX_URL_CHARS:
        raise _bad(where, name, out, f"a URL of at most {MAX_URL_CHARS} characters")
    return out


class _Budget:
    """The segments one track may list, and the work and URL text the whole presentation may cost."""

    def __init__(self, max_segments: int) -> None:
        self.max_segments = max_segments
        self.total = TOTAL_SEGMENTS_FACTOR * max_segments
        self.used = 0
        self.chars = 0
        self.live = False  # a dynamic MPD: what runs up to the live edge is left to pytomo/engine/mpd_live.py

    def track(self, where: str, count: int) -> None:
        """Refuse a track of ``count`` segments before they are made; each costs one unit of the total."""
        if count > self.max_segments:
            raise ManifestError(f"{where} describes {count} segments, more than the {self.max_segments} allowed "
                                "per track")

    def charge(self, where: str, units: int = 1, chars: int = 0) -> None:
        self.used += units
        self.chars += chars
        if self.used > self.total:
            raise ManifestError(f"{where}: the manifest describes more than {self.total} segments and entries in all "
                                f"({TOTAL_SEGMENTS_FACTOR} x {self.max_segments})")
        if self.chars > URL_TEXT_BUDGET_CHARS:
            raise ManifestError(f"{where}: the manifest's segment URLs add up to more than {URL_TEXT_BUDGET_CHARS} "
                                "characters")


# ---------------------------------------------------------------- HLS

_ATTR = re.compile(r'\s*+([A-Za-z0-9_-]++)\s*+=\s*+("[^"]*+"|[^",]*+)\s*+(?:,|$)')  # possessive: no backtracking


def _attributes(where: str, text: str) -> dict[str, str]:
    """An HLS attribute list, read in one forward pass; a malformed list is a ManifestError naming the tag."""
    out: dict[str, str] = {}
    text = text.rstrip()
    pos, n = 0, len(text)
    while pos < n:
        m = _ATTR.match(text, pos)
        if not m or m.end() == pos:
            raise _bad(where, "attribute list", text[pos:], "NAME=value pairs separated by commas")
        value = m.group(2)
        out[m.group(1).upper()] = value[1:-1] if value.startswith('"') else value.rstrip()
        pos = m.end()
    return out


def _byte_range(where: str, text: str, previous_end: int | None) -> tuple[int, int]:
    """``length[@offset]`` as first and last byte; without an offset, the range follows ``previous_end``."""
    m = re.fullmatch(r"\s*([0-9]{1,19})(?:@([0-9]{1,19}))?\s*", text)
    if not m or int(m.group(1)) == 0:
        raise _bad(where, "BYTERANGE", text, "length[@offset] with a positive length")
    length = int(m.group(1))
    if m.group(2) is not None:
        first = int(m.group(2))
    elif previous_end is not None:
        first = previous_end + 1
    else:
        raise _bad(where, "BYTERANGE", text, "valid here: no offset and no previous range of the same URI")
    if first + length - 1 > _MAX_INT:
        raise _bad(where, "BYTERANGE", text, "a range ending before byte 2^63")
    return first, first + length - 1


@dataclass(frozen=True)
class MediaPlaylist:
    """One load of an HLS media playlist: its init, segments (numbered by media sequence) and the tags a live
    player follows (RFC 8216 4.3.3)."""

    url: str
    init_url: str | None
    init_range: tuple[int, int] | None
    segments: tuple[Segment, ...]
    target_duration_s: float | None = None  # EXT-X-TARGETDURATION
    media_sequence: int = 0  # EXT-X-MEDIA-SEQUENCE: the number of the first segment listed
    discontinuity_sequence: int = 0  # EXT-X-DISCONTINUITY-SEQUENCE
    ended: bool = False  # EXT-X-ENDLIST: no segment will be added
    playlist_type: str | None = None  # EXT-X-PLAYLIST-TYPE: VOD or EVENT
    start_offset_s: float | None = None  # EXT-X-START TIME-OFFSET (negative: from the end)
    start_precise: bool = False  # EXT-X-START PRECISE=YES

    @property
    def live(self) -> bool:
        """Still being made: no EXT-X-ENDLIST, and not of type VOD (which cannot change, RFC 8216 4.3.3.5)."""
        return not self.ended and self.playlist_type != "VOD"


_PLAYLIST_TYPES = ("VOD", "EVENT")
_MAX_DATE_CHARS = 64


def _program_date(text: str) -> float | None:
    """An EXT-X-PROGRAM-DATE-TIME (ISO 8601) as UNIX time, without a zone taken as UTC; None when it cannot be read
    (a date is only needed for the latency to the live edge, which is then NULL with its reason)."""
    text = text.strip()
    if len(text) > _MAX_DATE_CHARS:
        return None
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


class _MediaReader:
    """Reads an HLS media playlist line by line: the tags before each URI apply to its segment."""

    def __init__(self, url: str, budget: _Budget) -> None:
        self.url, self.budget = url, budget
        self.where = f"the HLS playlist {url}"
        self.init_url: str | None = None
        self.init_range: tuple[int, int] | None = None
        self.out: list[Segment] = []
        self.start_s = 0.0
        self.first_number = 0
        self.duration: float | None = None
        self.pending_range: str | None = None
        self.last: tuple[str, int] | None = None  # URI and last byte of the previous byte-range segment
        self.date: float | None = None  # the pending EXT-X-PROGRAM-DATE-TIME
        self.next_date: float | None = None  # the previous segment's date + its duration
        self.discontinuity = False
        self.fields: dict[str, object] = {}

    def tag(self, line: str) -> None:
        """One tag line (#EXT...)."""
        name, _, value = line.partition(":")
        handler = self._TAGS.get(name)
        if handler is not None:
            handler(self, value)
        elif name == "#EXT-X-STREAM-INF":
            raise ManifestError(f"the media playlist {self.url} is a master playlist")

    def _extinf(self, value: str) -> None:
        self.duration = _number("#EXTINF", "duration", value.split(",", 1)[0], maximum=MAX_DURATION_S)

    def _byterange(self, value: str) -> None:
        self.pending_range = value

    def _sequence(self, value: str) -> None:
        self.first_number = _uint("#EXT-X-MEDIA-SEQUENCE", "value", value)

    def _map(self, value: str) -> None:
        if self.init_url is None:
            self.init_url, self.init_range = _map(self.url, "#EXT-X-MAP:" + value)

    def _target(self, value: str) -> None:  # an integer by RFC 8216 4.3.3.1; a decimal one is read as written
        self.fields["target_duration_s"] = _number("#EXT-X-TARGETDURATION", "value", value, maximum=MAX_DURATION_S)

    def _discontinuity_sequence(self, value: str) -> None:
        self.fields["discontinuity_sequence"] = _uint("#EXT-X-DISCONTINUITY-SEQUENCE", "value", value)

    def _discontinuity(self, _value: str) -> None:
        self.discontinuity = True
        self.next_date = None  # a date after a discontinuity is not the previous one's continuation

    def _date(self, value: str) -> None:
        self.date = _program_date(value)
        if self.date is None:
            self.next_date = None  # an unreadable date: this segment's is not known, nor what follows from it

    def _endlist(self, _value: str) -> None:
        self.fields["ended"] = True

    def _type(self, value: str) -> None:
        kind = value.strip().upper()
        if kind not in _PLAYLIST_TYPES:
            raise _bad("#EXT-X-PLAYLIST-TYPE", "value", value, "VOD or EVENT")
        self.fields["playlist_type"] = kind

    def _start(self, value: str) -> None:
        attrs = _attributes("#EXT-X-START", value)
        if "TIME-OFFSET" not in attrs:
            raise ManifestError("#EXT-X-START has no TIME-OFFSET")
        self.fields["start_offset_s"] = _number("#EXT-X-START", "TIME-OFFSET", attrs["TIME-OFFSET"],
                                                minimum=-MAX_DURATION_S, maximum=MAX_DURATION_S)
        self.fields["start_precise"] = attrs.get("PRECISE", "NO").strip().upper() == "YES"

    _TAGS: dict[str, Callable[[_MediaReader, str], None]] = {
        "#EXTINF": _extinf, "#EXT-X-BYTERANGE": _byterange, "#EXT-X-MEDIA-SEQUENCE": _sequence, "#EXT-X-MAP": _map,
        "#EXT-X-TARGETDURATION": _target, "#EXT-X-DISCONTINUITY-SEQUENCE": _discontinuity_sequence,
        "#EXT-X-DISCONTINUITY": _discontinuity, "#EXT-X-PROGRAM-DATE-TIME": _date, "#EXT-X-ENDLIST": _endlist,
        "#EXT-X-PLAYLIST-TYPE": _type, "#EXT-X-START": _start,
    }

    def uri(self, line: str) -> None:
        """A segment's URI line: the segment, with the tags read since the previous one."""
        if self.duration is None:
            raise ManifestError(f"the HLS segment {line[:80]!r} has no #EXTINF")
        seg_url = _url("the HLS segment", "URI", self.url, line)
        byte_range, self.last = _segment_range(seg_url, self.pending_range, self.last)
        self.budget.track(self.where, len(self.out) + 1)
        self.budget.charge(self.where, 1, len(seg_url))
        date = self.date if self.date is not None else self.next_date
        number = self.first_number + len(self.out)
        self.out.append(Segment(seg_url, self.start_s, self.duration, number, byte_range, date, self.discontinuity))
        self.start_s += self.duration
        self.next_date = None if date is None else date + self.duration
        self.duration, self.pending_range, self.date, self.discontinuity = None, None, None, False

    def result(self) -> MediaPlaylist:
        if self.duration is not None:
            raise ManifestError(f"the last #EXTINF of {self.url} is not followed by a URI")
        return MediaPlaylist(self.url, self.init_url, self.init_range, tuple(self.out),
                             media_sequence=self.first_number, **self.fields)  # type: ignore[arg-type]


def _media_playlist(url: str, text: str, budget: _Budget) -> MediaPlaylist:
    """The init (URL and byte range), segments and live tags of an HLS media playlist."""
    reader = _MediaReader(url, budget)
    for raw in _lines(url, text):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXT"):
            reader.tag(line)
        elif not line.startswith("#"):
            reader.uri(line)
    return reader.result()


def parse_media_playlist(url: str, text: str, *, max_segments: int = MAX_SEGMENTS) -> MediaPlaylist:
    """One media playlist on its own (a live player's reload); it lists at most ``max_segments`` segments."""
    return _media_playlist(url, text, _Budget(max_segments))


def _map(url: str, line: str) -> tuple[str, tuple[int, int] | None]:
    """The init segment (URL and byte range) an #EXT-X-MAP line names."""
    attrs = _attributes("#EXT-X-MAP", line[len("#EXT-X-MAP:"):])
    if not attrs.get("URI"):
        raise ManifestError("#EXT-X-MAP has no URI")
    init_url = _url("#EXT-X-MAP", "URI", url, attrs["URI"])
    init_range = _byte_range("#EXT-X-MAP", attrs["BYTERANGE"], -1) if "BYTERANGE" in attrs else None
    return init_url, init_range


def _segment_range(seg_url: str, pending_range: str | None,
                   last: tuple[str, int] | None) -> tuple[tuple[int, int] | None, tuple[str, int] | None]:
    """The byte range of a segment (from the #EXT-X-BYTERANGE before it, if any) and the new ``last``: its URI and
    last byte, which a following range without an offset continues from."""
    if pending_range is None:
        return None, None
    prev = last[1] if last and last[0] == seg_url else None
    byte_range = _byte_range("#EXT-X-BYTERANGE", pending_range, prev)
    return byte_range, (seg_url, byte_range[1])


def _lines(url: str, text: str) -> list[str]:
    """The lines of a playlist, which must start with #EXTM3U (after a byte order mark)."""
    if not text.lstrip("\ufeff \t\r\n").startswith("#EXTM3U"):
        raise ManifestError(f"the HLS playlist {url} does not start with #EXTM3U")
    return text.lstrip("\ufeff").splitlines()


class _PlaylistLoader:
    """Loads the media playlists of one master, each once, at most ``max_playlists`` of them."""

    def __init__(self, master_url: str, fetch: Callable[[str], str], budget: _Budget, max_playlists: int) -> None:
        self.master_url = master_url
        self.master = master_url.split("#", 1)[0]
        self.fetch = fetch
        self.budget = budget
        self.max_playlists = max_playlists
        self.loaded: dict[str, MediaPlaylist] = {}

    def load(self, where: str, u: str) -> MediaPlaylist:
        if u.split("#", 1)[0] == self.master:
            raise ManifestError(f"{where} URI {u!r} is the master playlist itself")
        if u not in self.loaded:
            if len(self.loaded) >= self.max_playlists:
                raise ManifestError(f"the HLS master {self.master_url} lists more than {self.max_playlists} playlists")
            self.loaded[u] = _media_playlist(u, self.fetch(u), self.budget)
        return self.loaded[u]


def parse_hls(url: str, text: str, fetch: Callable[[str], str], *, max_segments: int = MAX_SEGMENTS,
              max_playlists: int = MAX_PLAYLISTS) -> Presentation:
    """A master (or media) playlist; ``fetch(url) -> text`` loads the media playlists (at most ``max_playlists``;
    a playlist pointing back to a master is refused); a track lists at most ``max_segments`` segments."""
    budget = _Budget(max_segments)
    if "#EXT-X-STREAM-INF:" not in text:
        pl = _media_playlist(url, text, budget)
        if not pl.segments:
            raise ManifestError("the HLS playlist has no segment")
        track = Track("muxed", "0", None, None, None, None, None, pl.init_url, pl.segments, pl.init_range,
                      *_live_fields(pl, None))
        return Presentation("hls", url, (track,), (), None if pl.live else track.duration_s, pl.live)
    loader = _PlaylistLoader(url, fetch, budget, max_playlists)
    audio, groups_with_audio, variants = _master(url, text, loader)
    master_start = _master_start(text)
    video = [_variant(i, attrs, v_url, loader, groups_with_audio, master_start)
             for i, (attrs, v_url) in enumerate(variants)]
    if not video:
        raise ManifestError("the HLS playlist has no variant")
    video.sort(key=lambda t: t.bandwidth_bps or 0)
    live = any(pl.live for pl in loader.loaded.values())
    return Presentation("hls", url, tuple(video), tuple(audio), None if live else max(t.duration_s for t in video),
                        live)


def _live_fields(pl: MediaPlaylist, master_start: float | None) -> tuple[str, float | None, float | None]:
    """A track's playlist URL, target duration and start offset (the media playlist's EXT-X-START, else the
    master's)."""
    return pl.url, pl.target_duration_s, pl.start_offset_s if pl.start_offset_s is not None else master_start


def _master_start(text: str) -> float | None:
    """The TIME-OFFSET of a master playlist's EXT-X-START, None without one."""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-START:"):
            attrs = _attributes("#EXT-X-START", line[len("#EXT-X-START:"):])
            if "TIME-OFFSET" in attrs:
                return _number("#EXT-X-START", "TIME-OFFSET", attrs["TIME-OFFSET"], minimum=-MAX_DURATION_S,
                               maximum=MAX_DURATION_S)
    return None


def _master(url: str, text: str,
            loader: _PlaylistLoader) -> tuple[list[Track], set[str], list[tuple[dict[str, str], str]]]:
    """Read a master playlist in order: its audio renditions (loaded as they come), the groups that have audio, and
    its variants (the attributes and URI of each #EXT-X-STREAM-INF, not loaded yet)."""
    audio: list[Track] = []
    groups_with_audio: set[str] = set()
    variants: list[tuple[dict[str, str], str]] = []
    audio_urls: set[str] = set()
    pending: dict[str, str] | None = None  # the attributes of a STREAM-INF waiting for its URI line
    for raw in _lines(url, text):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXT-X-MEDIA:"):
            attrs = _attributes("#EXT-X-MEDIA", line[len("#EXT-X-MEDIA:"):])
            if attrs.get("TYPE") == "AUDIO" and attrs.get("URI"):
                a_url = _url("#EXT-X-MEDIA", "URI", url, attrs["URI"])
                groups_with_audio.add(attrs.get("GROUP-ID", ""))
                if a_url in audio_urls:
                    continue
                audio_urls.add(a_url)
                pl = loader.load("#EXT-X-MEDIA", a_url)
                audio.append(Track("audio", attrs.get("NAME") or str(len(audio)), _hls_bandwidth(attrs, False),
                                   attrs.get("CODECS"), None, None, None, pl.init_url, pl.segments, pl.init_range,
                                   *_live_fields(pl, None)))
        elif line.startswith("#EXT-X-STREAM-INF:"):
            if pending is not None:
                raise ManifestError("#EXT-X-STREAM-INF is not followed by a URI")
            pending = _attributes("#EXT-X-STREAM-INF", line[len("#EXT-X-STREAM-INF:"):])
        elif not line.startswith("#") and pending is not None:
            variants.append((pending, _url("#EXT-X-STREAM-INF", "URI", url, line)))
            pending = None
    if pending is not None:
        raise ManifestError("#EXT-X-STREAM-INF is not followed by a URI")
    return audio, groups_with_audio, variants


def _variant(i: int, attrs: dict[str, str], v_url: str, loader: _PlaylistLoader, groups_with_audio: set[str],
             master_start: float | None = None) -> Track:
    """The track of the ``i``-th #EXT-X-STREAM-INF, its media playlist loaded."""
    bandwidth = _hls_bandwidth(attrs, True)
    width, height = _resolution(attrs)
    fps = (_number("#EXT-X-STREAM-INF", "FRAME-RATE", attrs["FRAME-RATE"], maximum=1e6)
           if "FRAME-RATE" in attrs else None)
    pl = loader.load("#EXT-X-STREAM-INF", v_url)
    if not pl.segments:
        raise ManifestError(f"the HLS playlist {v_url} has no segment")
    stream = "video" if attrs.get("AUDIO") in groups_with_audio and "AUDIO" in attrs else "muxed"
    return Track(stream, str(i), bandwidth, attrs.get("CODECS"), width, height, fps, pl.init_url, pl.segments,
                 pl.init_range, *_live_fields(pl, master_start))


def _resolution(attrs: dict[str, str]) -> tuple[int | None, int | None]:
    """Width and height of a STREAM-INF's RESOLUTION, (None, None) without one."""
    if "RESOLUTION" not in attrs:
        return None, None
    w, x, h = attrs["RESOLUTION"].strip().partition("x")
    if not x:
        raise _bad("#EXT-X-STREAM-INF", "RESOLUTION", attrs["RESOLUTION"], "WIDTHxHEIGHT")
    return _uint("#EXT-X-STREAM-INF", "RESOLUTION", w), _uint("#EXT-X-STREAM-INF", "RESOLUTION", h)


def _hls_bandwidth(attrs: dict[str, str], required: bool) -> float | None:
    if "BANDWIDTH" not in attrs:
        if required:
            raise ManifestError("#EXT-X-STREAM-INF has no BANDWIDTH")
        return None
    return float(_uint("#EXT-X-STREAM-INF", "BANDWIDTH", attrs["BANDWIDTH"]))


# ---------------------------------------------------------------- DASH

_DURATION = re.compile(r"(-)?P(?:([0-9.]+)Y)?(?:([0-9.]+)M)?(?:([0-9.]+)W)?(?:([0-9.]+)D)?"
                       r"(?:T(?:([0-9.]+)H)?(?:([0-9.]+)M)?(?:([0-9.]+)S)?)?")
_DURATION_UNITS_S = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def _iso_duration(where: str, name: str, text: str | None) -> float | None:
    """An xs:duration in seconds (at most MAX_DURATION_S), None when absent."""
    if text is None:
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or m.group(1) or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise _bad(where, name, text, "a non-negative ISO 8601 duration")
    total = 0.0
    for value, unit in zip(m.groups()[1:], _DURATION_UNITS_S):
        if value:
            total += _number(where, name, value, maximum=MAX_DURATION_S) * unit
    if total > MAX_DURATION_S:
        raise _bad(where, name, text, f"a duration of at most {MAX_DURATION_S} s")
    return total


_MARK = "\ue000"  # stands for a $Number$ or $Time$ field while a template is joined to its base
_FIELD = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth|)(%0?([0-9]*)d)?\$")


class _Template:
    """A SegmentTemplate pattern read once: literal text, and the $Number$ and $Time$ fields to fill per segment."""

    def __init__(self, where: str, name: str, pattern: str, rep_id: str, bandwidth: str) -> None:
        if len(pattern) > MAX_URL_CHARS:
            raise _bad(where, name, pattern, f"a template of at most {MAX_URL_CHARS} characters")
        self.parts: list[str | tuple[str, str]] = []
        pos = 0
        for m in _FIELD.finditer(pattern):
            self.parts.append(pattern[pos:m.start()])
            pos = m.end()
            field, fmt, width = m.group(1), m.group(2), m.group(3)
            if width and int(width) > 32:
                raise _bad(where, name, pattern, "a template with a field width of at most 32")
            if field == "":
                self.parts.append("$")
            elif field == "RepresentationID":
                self.parts.append(rep_id)
            elif field == "Bandwidth":
                if not bandwidth:
                    raise _bad(where, name, pattern, "usable: $Bandwidth$ without a bandwidth")
                self.parts.append(("%" + fmt[1:]) % int(bandwidth) if fmt else bandwidth)
            else:
                self.parts.append((field, "%" + fmt[1:] if fmt else "%d"))
        self.parts.append(pattern[pos:])

    def render(self, number: int | None = None, time: int | None = None) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = number if part[0] == "Number" else time
                out.append(f"${part[0]}$" if value is None else part[1] % value)
        return "".join(out)

    def joiner(self, where: str, base: str) -> Callable[[int, int], str]:
        """``(number, time) -> absolute URL``: joined to ``base`` once when the fields cannot change how the URL
        resolves (they are digits), else per segment."""
        fields = [p for p in self.parts if not isinstance(p, str)]
        skeleton = "".join(_MARK if not isinstance(p, str) else p for p in self.parts)
        if _MARK in "".join(p for p in self.parts if isinstance(p, str)):
            fields = []
        joined = _url(where, "media", base, skeleton)
        pieces = joined.split(_MARK)
        if not fields or len(pieces) != len(fields) + 1:
            return lambda n, t: _url(where, "media", base, self.render(n, t))

        def render(n: int, t: int) -> str:
            out = [pieces[0]]
            for (name, fmt), piece in zip(fields, pieces[1:]):
                out.append(fmt % (n if name == "Number" else t))
                out.append(piece)
            return "".join(out)
        return render


class _Children:
    """Children of elements by tag, indexed once per element so that no lookup re-scans a large parent."""

    def __init__(self) -> None:
        self._index: dict[int, dict[str, list[ET.Element]]] = {}

    def all(self, el: ET.Element, tag: str) -> list[ET.Element]:
        index = self._index.get(id(el))
        if index is None:
            index = self._index[id(el)] = {}
            for child in el:
                index.setdefault(child.tag, []).append(child)
        return index.get(tag, [])

    def first(self, el: ET.Element, tag: str) -> ET.Element | None:
        found = self.all(el, tag)
        return found[0] if found else None


def _strip_namespaces(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def _base(kids: _Children, url: str, el: ET.Element) -> str:
    b = kids.first(el, "BaseURL")
    if b is None or not b.text or not b.text.strip():
        return url
    return _url(el.tag, "BaseURL", url, b.text.strip())


def _kind(aset: ET.Element, rep: ET.Element, aset_is_text: bool) -> str | None:
    """audio, video, or None for what a player of audio and video leaves out (text, images, unknown types)."""
    content = (aset.get("contentType") or rep.get("contentType") or "").lower()
    mime = (rep.get("mimeType") or aset.get("mimeType") or "").lower()
    codecs = (rep.get("codecs") or aset.get("codecs") or "").lower()
    if content in ("audio", "video"):
        return content
    if content:
        return None
    major = mime.split("/")[0]
    if major in ("audio", "video"):
        return major
    if major in ("image", "text") or codecs.startswith(("stpp", "wvtt", "tx3g")):
        return None
    if aset_is_text:
        return None
    if codecs.startswith(("mp4a", "ac-3", "ec-3", "opus", "vorbis", "flac", "dtsc")) or rep.get("audioSamplingRate"):
        return "audio"
    if mime and major != "application":
        return None
    return "video"


class _Levels:
    """One kind of segment information (SegmentTemplate, SegmentList, SegmentBase) across Period, set and
    Representation: attributes inherited downwards, children taken from the lowest level that has them."""

    def __init__(self, kids: _Children, elements: list[ET.Element], where: str) -> None:
        self.kids = kids
        self.elements = elements
        self.where = where
        self.attrs: dict[str, str] = {}
        for el in elements:
            self.attrs.update(el.attrib)

    def child(self, name: str) -> ET.Element | None:
        for el in reversed(self.elements):
            found = self.kids.first(el, name)
            if found is not None:
                return found
        return None

    def children(self, name: str) -> list[ET.Element]:
        for el in reversed(self.elements):
            found = self.kids.all(el, name)
            if found:
                return found
        return []

    @overload
    def uint(self, name: str, default: int, minimum: int = 0) -> int: ...
    @overload
    def uint(self, name: str, default: None, minimum: int = 0) -> int | None: ...
    def uint(self, name: str, default: int | None, minimum: int = 0) -> int | None:
        return _uint(self.where, name, self.attrs.get(name), default, minimum)


def _range_attr(where: str, name: str, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]{1,19})-([0-9]{1,19})\s*", text)
    if not m or int(m.group(1)) > int(m.group(2)) or int(m.group(2)) > _MAX_INT:
        raise _bad(where, name, text, "a byte range first-last")
    return int(m.group(1)), int(m.group(2))


def _timeline(info: _Levels, timeline: ET.Element, period_s: float | None, pto: int, scale: int,
              budget: _Budget) -> list[tuple[int, int]]:
    """(time, duration) of every segment of a SegmentTimeline, in the timescale."""
    where = f"{info.where} SegmentTimeline S"
    entries = info.kids.all(timeline, "S")
    budget.track(info.where, len(entries))
    out: list[tuple[int, int]] = []
    t = 0
    for i, s_el in enumerate(entries):
        t = _uint(where, "t", s_el.get("t"), t)
        d = _uint(where, "d", s_el.get("d"), None, 1)
        if d is None:
            raise ManifestError(f"{where} has no d")
        r_text = (s_el.get("r") or "0").strip()
        if r_text.startswith("-") and _DIGITS.fullmatch(r_text[1:]):
            next_t = entries[i + 1].get("t") if i + 1 < len(entries) else None
            if next_t is not None:
                end = _uint(where, "t", next_t, 0)
            elif period_s is not None:
                end = pto + round(period_s * scale)
            elif budget.live:  # up to the live edge, which the clock says (pytomo/engine/mpd_live.py)
                end = t + d
            else:
                raise ManifestError(f"{where} r={r_text} repeats up to an unknown period end")
            count = max(0, -(-(end - t) // d))
        else:
            count = _uint(where, "r", r_text, 0) + 1
        budget.track(info.where, len(out) + count)
        budget.charge(info.where, max(1, count))
        for _ in range(count):
            out.append((t, d))
            t += d
    return out


def _sidx_segments(url: str, first: int, last: int, fetch_range: FetchRange, pto: int, budget: _Budget,
                   depth: int = 0) -> list[tuple[float, float, tuple[int, int]]]:
    """(start, duration, byte range) of the subsegments a sidx in ``url`` bytes ``first``-``last`` indexes."""
    if depth > _MAX_SIDX_DEPTH:
        raise ManifestError(f"the segment index of {url} nests sidx boxes more than {_MAX_SIDX_DEPTH} deep")
    data = fetch_range(url, first, last)
    if len(data) > last - first + 1:  # a server that ignored the range sent the whole file
        first = 0
    offset, sidx = find_sidx(data)
    out: list[tuple[float, float, tuple[int, int]]] = []
    starts, durations = sidx.starts_s(), sidx.durations_s()
    where = f"the segment index of {url}"
    for ref, rng, start, dur in zip(sidx.references, sidx.ranges(first + offset), starts, durations):
        budget.charge(where)
        if ref.reference_type == 1:
            out.extend(_sidx_segments(url, rng[0], rng[1], fetch_range, pto, budget, depth + 1))
        else:
            out.append((start - pto / sidx.timescale, dur, rng))
        budget.track(where, len(out))
    return out


_SEGMENT_INFO = ("SegmentTemplate", "SegmentList", "SegmentBase")


def _representation(kids: _Children, base: str, levels: list[ET.Element], rep_id: str, bandwidth: str,
                    period_s: float | None, fetch_range: FetchRange | None,
                    budget: _Budget) -> tuple[str | None, tuple[int, int] | None, list[Segment]]:
    """Init URL and range, and segments, of one Representation from its segment information."""
    where = f"Representation {rep_id!r}"
    kind = next((k for el in reversed(levels) for k in _SEGMENT_INFO if kids.first(el, k) is not None), None)
    if kind is None:  # a single-segment representation: the BaseURL is the whole media
        if period_s is None:
            raise ManifestError(f"{where} has no segment information and the period has no duration")
        budget.charge(where, 1, len(base))
        return None, None, [Segment(base, 0.0, period_s, 1)]
    info = _Levels(kids, [found for el in levels if (found := kids.first(el, kind)) is not None], f"{where} {kind}")
    scale = info.uint("timescale", 1, 1)
    pto = info.uint("presentationTimeOffset", 0)
    init_el = info.child("Initialization")
    init_url, init_range = _initialization(info, base, init_el)
    if kind == "SegmentBase":
        return _segment_base(info, base, where, init_el is None, init_url, init_range, fetch_range, pto, budget)
    start_number = info.uint("startNumber", 1)
    timeline = info.child("SegmentTimeline")
    times: list[tuple[int, int]] | None = None
    if timeline is not None:
        times = _timeline(info, timeline, period_s, pto, scale, budget)
    if kind == "SegmentList":
        return init_url, init_range, _segment_list(info, base, times, period_s, pto, scale, start_number, budget)
    init_pattern = info.attrs.get("initialization")
    if init_pattern:
        init_url = _url(info.where, "initialization", base,
                        _Template(info.where, "initialization", init_pattern, rep_id, bandwidth).render())
    media = info.attrs.get("media")
    if not media:
        raise ManifestError(f"{info.where} has no media attribute")
    render = _Template(info.where, "media", media, rep_id, bandwidth).joiner(info.where, base)
    return init_url, init_range, _template_segments(info, render, times, period_s, pto, scale, start_number, budget)


def _initialization(info: _Levels, base: str, init_el: ET.Element | None) -> tuple[str | None, tuple[int, int] | None]:
    """URL and byte range of the Initialization element, if there is one."""
    if init_el is None:
        return None, None
    source = init_el.get("sourceURL")
    init_url = _url(f"{info.where} Initialization", "sourceURL", base, source) if source else base
    return init_url, _range_attr(f"{info.where} Initialization", "range", init_el.get("range"))


def _segment_base(info: _Levels, base: str, where: str, no_init_element: bool, init_url: str | None,
                  init_range: tuple[int, int] | None, fetch_range: FetchRange | None, pto: int,
                  budget: _Budget) -> tuple[str | None, tuple[int, int] | None, list[Segment]]:
    """Init and segments of a SegmentBase: the subsegments its sidx (fetched by byte range) lists."""
    index_range = _range_attr(info.where, "indexRange", info.attrs.get("indexRange"))
    if index_range is None:
        raise ManifestError(f"{info.where} has no indexRange")
    if fetch_range is None:
        raise ManifestError(f"{info.where} needs its segment index fetched by byte range")
    if no_init_element and index_range[0] > 0:  # no Initialization: the init is what precedes the index
        init_url, init_range = base, (0, index_range[0] - 1)
    refs = _sidx_segments(base, index_range[0], index_range[1], fetch_range, pto, budget)
    budget.charge(where, 0, len(base) * len(refs))
    return init_url, init_range, [Segment(base, s, d, i + 1, rng) for i, (s, d, rng) in enumerate(refs)]


def _segment_list(info: _Levels, base: str, times: list[tuple[int, int]] | None, period_s: float | None, pto: int,
                  scale: int, start_number: int, budget: _Budget) -> list[Segment]:
    """The segments of a SegmentList: its SegmentURLs, timed by the SegmentTimeline (``times``) or the duration."""
    urls = info.children("SegmentURL")
    budget.track(info.where, len(urls))
    budget.charge(info.where, len(urls))
    from_duration = times is None
    if times is None:
        times = _list_times(info, len(urls), period_s, pto, scale)
    segs = []
    for i, (u, (t, d)) in enumerate(zip(urls, times)):
        ref = u.get("media")
        media = _url(f"{info.where} SegmentURL", "media", base, ref) if ref else base
        budget.charge(info.where, 0, len(media))
        rng = _range_attr(f"{info.where} SegmentURL", "mediaRange", u.get("mediaRange"))
        segs.append(Segment(media, (t - pto) / scale, d / scale, start_number + i, rng))
    if segs and period_s is not None and from_duration:
        last = segs[-1]
        if last.start_s < period_s < last.start_s + last.duration_s:
            segs[-1] = Segment(last.url, last.start_s, period_s - last.start_s, last.number, last.byte_range)
    return segs


def _list_times(info: _Levels, count: int, period_s: float | None, pto: int, scale: int) -> list[tuple[int, int]]:
    """(time, duration) of the ``count`` SegmentURLs of a SegmentList without a SegmentTimeline."""
    duration = info.uint("duration", None, 1)
    if duration is None:
        if count != 1 or period_s is None:
            raise ManifestError(f"{info.where} has neither a SegmentTimeline nor a duration")
        return [(pto, round(period_s * scale))]
    return [(pto + i * duration, duration) for i in range(count)]


def _template_segments(info: _Levels, render: Callable[[int, int], str], times: list[tuple[int, int]] | None,
                       period_s: float | None, pto: int, scale: int, start_number: int,
                       budget: _Budget) -> list[Segment]:
    """The segments of a SegmentTemplate: timed by the SegmentTimeline (``times``), else by its duration over the
    period (the last one cut at the period's end)."""
    if times is not None:
        return [_template_segment(info, render, budget, start_number + i, t, (t - pto) / scale, d / scale)
                for i, (t, d) in enumerate(times)]
    duration = info.uint("duration", None, 1)
    if duration is None:
        raise ManifestError(f"{info.where} has neither a SegmentTimeline nor a duration")
    if period_s is None and budget.live:  # numbered from the clock (pytomo/engine/mpd_live.py)
        return []
    if period_s is None:
        raise ManifestError(f"{info.where} has a duration but the period's length is unknown")
    seg_s = duration / scale
    count = math.ceil(period_s / seg_s - 1e-9)
    budget.track(info.where, count)
    budget.charge(info.where, count)
    return [_template_segment(info, render, budget, start_number + i, pto + i * duration, i * seg_s,
                              min(seg_s, period_s - i * seg_s))
            for i in range(count)]


def _template_segment(info: _Levels, render: Callable[[int, int], str], budget: _Budget, number: int, time: int,
                      start_s: float, duration_s: float) -> Segment:
    seg_url = render(number, time)
    if len(seg_url) > MAX_URL_CHARS:
        raise _bad(info.where, "media", seg_url, f"a URL of at most {MAX_URL_CHARS} characters")
    budget.charge(info.where, 0, len(seg_url))
    return Segment(seg_url, start_s, duration_s, number)


def _xml(text: str) -> ET.Element:
    """The MPD's root element; a DTD (entities: billion laughs, external entities) is refused, never expanded."""
    try:
        return SafeET.fromstring(text.lstrip("\ufeff"), forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ManifestError(f"the DASH manifest declares a DTD or entities, which MPDs never need: {exc!r}") from exc
    except (ET.ParseError, UnicodeError, ValueError) as exc:
        raise ManifestError(f"the DASH manifest is not valid XML: {exc}") from exc


def parse_dash(url: str, text: str, fetch_range: FetchRange | None = None, *,
               max_segments: int = MAX_SEGMENTS) -> Presentation:
    """The first Period of an MPD, with SegmentTemplate ($Number$ or $Time$, duration or SegmentTimeline),
    SegmentList or SegmentBase; ``fetch_range(url, first, last) -> bytes`` loads a SegmentBase's sidx; a track
    lists at most ``max_segments`` segments."""
    budget = _Budget(max_segments)
    kids = _Children()
    root = _xml(text)
    _strip_namespaces(root)
    if root.tag != "MPD":
        raise ManifestError(f"the DASH manifest's root is {str(root.tag)[:80]}, not MPD")
    budget.live = is_dynamic(root)
    total = _iso_duration("MPD", "mediaPresentationDuration", root.get("mediaPresentationDuration"))
    period = kids.first(root, "Period")
    if period is None:
        raise ManifestError("the DASH manifest has no Period")
    period_s = _iso_duration("Period", "duration", period.get("duration"))
    if period_s is None and total is not None:
        period_s = max(0.0, total - (_iso_duration("Period", "start", period.get("start")) or 0.0))
    period_base = _base(kids, _base(kids, url, root), period)
    video: list[Track] = []
    audio: list[Track] = []
    for aset in kids.all(period, "AdaptationSet"):
        aset_base = _base(kids, period_base, aset)
        aset_is_text = any(r.get("value") in ("subtitle", "caption") for r in kids.all(aset, "Role"))
        for rep in kids.all(aset, "Representation"):
            budget.charge("the DASH manifest")
            kind = _kind(aset, rep, aset_is_text)
            if kind is None:
                continue
            rep_id = rep.get("id") or str(len(video) + len(audio))
            where = f"Representation {rep_id[:80]!r}"
            bw = rep.get("bandwidth")
            bandwidth = _uint(where, "bandwidth", bw)
            init_url, init_range, segs = _representation(kids, _base(kids, aset_base, rep), [period, aset, rep],
                                                         rep_id, str(bandwidth) if bw else "", period_s,
                                                         fetch_range, budget)
            track = Track(kind, rep_id, float(bandwidth) if bandwidth is not None else None,
                          rep.get("codecs") or aset.get("codecs"),
                          _uint(where, "width", rep.get("width") or aset.get("width")),
                          _uint(where, "height", rep.get("height") or aset.get("height")),
                          _frame_rate(where, rep.get("frameRate") or aset.get("frameRate")),
                          init_url, tuple(segs), init_range)
            (audio if kind == "audio" else video).append(track)
    if not video:
        raise ManifestError("the DASH manifest has no video representation")
    video.sort(key=lambda t: t.bandwidth_bps or 0)
    audio.sort(key=lambda t: t.bandwidth_bps or 0)
    if budget.live:
        return Presentation("dash", url, tuple(video), tuple(audio), None, True)
    return Presentation("dash", url, tuple(video), tuple(audio), total if total is not None else period_s)


def is_dynamic(root: ET.Element) -> bool:
    """An MPD of type dynamic (ISO/IEC 23009-1 5.3.1.2): a live presentation, its segments available by the clock."""
    return (root.get("type") or "static").strip() == "dynamic"
