"""HLS and DASH manifests read into one model: renditions, each a list of timed segment URLs or byte ranges."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from pytomo.errors import ManifestError
from pytomo.media.sidx import find_sidx

MAX_SEGMENTS = 100_000  # per track: a manifest that describes more is refused before anything is allocated
_MAX_SIDX_DEPTH = 4

FetchRange = Callable[[str, int, int], bytes]


@dataclass(frozen=True)
class Segment:
    """One media segment: where it is and which media time it covers."""

    url: str
    start_s: float
    duration_s: float
    number: int
    byte_range: tuple[int, int] | None = None  # first and last byte (inclusive) within ``url``; None: all of it


@dataclass(frozen=True)
class Track:
    """One rendition of one stream (video, audio, or muxed audio+video)."""

    stream: str  # video, audio, muxed
    rendition_id: str
    bandwidth_bps: float | None
    codecs: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    init_url: str | None
    segments: tuple[Segment, ...]
    init_range: tuple[int, int] | None = None  # first and last byte (inclusive) of the init within ``init_url``

    @property
    def duration_s(self) -> float:
        """Media time covered by all segments."""
        return sum(s.duration_s for s in self.segments)


@dataclass(frozen=True)
class Presentation:
    """What a manifest offers: video (or muxed) renditions by increasing bandwidth, and audio renditions."""

    protocol: str  # hls, dash
    url: str
    video: tuple[Track, ...]
    audio: tuple[Track, ...]
    duration_s: float | None


def sniff(url: str, content_type: str | None, head: bytes) -> str | None:
    """``hls`` or ``dash`` when the URL, type or first bytes say so, else None."""
    ctype = (content_type or "").lower()
    start = head.lstrip()[:256]
    if "mpegurl" in ctype or start.startswith(b"#EXTM3U") or re.search(r"\.m3u8($|\?)", url):
        return "hls"
    if "dash+xml" in ctype or b"<MPD" in start or re.search(r"\.mpd($|\?)", url):
        return "dash"
    return None


# ---------------------------------------------------------------- values

def _bad(where: str, name: str, value: object, what: str) -> ManifestError:
    return ManifestError(f"{where} {name}={value!r} is not {what}")


def _uint(where: str, name: str, text: str | None, default: int | None = None, minimum: int = 0) -> int | None:
    """An unsigned integer attribute (``default`` when absent); anything else is a ManifestError naming it."""
    if text is None:
        return default
    text = text.strip()
    if not text.isdigit() or int(text) < minimum:
        raise _bad(where, name, text, f"an integer of at least {minimum}")
    return int(text)


def _number(where: str, name: str, text: str, minimum: float = 0.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(where, name, text, "a number") from None
    if not math.isfinite(value) or value < minimum:
        raise _bad(where, name, text, f"a finite number of at least {minimum:g}")
    return value


def _frame_rate(where: str, text: str | None) -> float | None:
    if not text:
        return None
    num, _, den = text.strip().partition("/")
    n = _number(where, "frameRate", num)
    d = _number(where, "frameRate", den) if den else 1.0
    if d == 0:
        raise _bad(where, "frameRate", text, "a frame rate (zero denominator)")
    return n / d


def _check_count(where: str, count: int) -> None:
    if count > MAX_SEGMENTS:
        raise ManifestError(f"{where} describes {count} segments, more than the {MAX_SEGMENTS} allowed per track")


# ---------------------------------------------------------------- HLS

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')


def _attributes(text: str) -> dict[str, str]:
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _ATTR.findall(text)}


def _byte_range(where: str, text: str, previous_end: int | None) -> tuple[int, int]:
    """``length[@offset]`` as first and last byte; without an offset, the range follows ``previous_end``."""
    m = re.fullmatch(r"\s*(\d+)(?:@(\d+))?\s*", text)
    if not m or int(m.group(1)) == 0:
        raise _bad(where, "BYTERANGE", text, "length[@offset] with a positive length")
    length = int(m.group(1))
    if m.group(2) is not None:
        first = int(m.group(2))
    elif previous_end is not None:
        first = previous_end + 1
    else:
        raise _bad(where, "BYTERANGE", text, "valid here: no offset and no previous range of the same URI")
    return first, first + length - 1


def _media_playlist(url: str, text: str) -> tuple[str | None, tuple[int, int] | None, tuple[Segment, ...]]:
    """The init (URL and byte range) and segments of an HLS media playlist."""
    init_url: str | None = None
    init_range: tuple[int, int] | None = None
    out: list[Segment] = []
    start_s, first_number = 0.0, 0
    duration: float | None = None
    pending_range: str | None = None
    last: tuple[str, int] | None = None  # URI and last byte of the previous byte-range segment
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#EXTINF:"):
            value = line[len("#EXTINF:"):].split(",", 1)[0]
            duration = _number("#EXTINF", "duration", value.strip())
        elif line.startswith("#EXT-X-BYTERANGE:"):
            pending_range = line[len("#EXT-X-BYTERANGE:"):]
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            first_number = _uint("#EXT-X-MEDIA-SEQUENCE", "value", line.split(":", 1)[1]) or 0
        elif line.startswith("#EXT-X-MAP:"):
            if init_url is None:
                attrs = _attributes(line[len("#EXT-X-MAP:"):])
                if not attrs.get("URI"):
                    raise ManifestError("#EXT-X-MAP has no URI")
                init_url = urljoin(url, attrs["URI"])
                if "BYTERANGE" in attrs:
                    init_range = _byte_range("#EXT-X-MAP", attrs["BYTERANGE"], -1)
        elif line.startswith("#EXT-X-STREAM-INF:"):
            raise ManifestError(f"the media playlist {url} is a master playlist")
        elif not line.startswith("#"):
            if duration is None:
                raise ManifestError(f"the HLS segment {line!r} has no #EXTINF")
            seg_url = urljoin(url, line)
            byte_range = None
            if pending_range is not None:
                prev = last[1] if last and last[0] == seg_url else None
                byte_range = _byte_range("#EXT-X-BYTERANGE", pending_range, prev)
                last = (seg_url, byte_range[1])
            else:
                last = None
            _check_count(f"the HLS playlist {url}", len(out) + 1)
            out.append(Segment(seg_url, start_s, duration, first_number + len(out), byte_range))
            start_s += duration
            duration, pending_range = None, None
    return init_url, init_range, tuple(out)


def parse_hls(url: str, text: str, fetch: Callable[[str], str]) -> Presentation:
    """A master (or media) playlist; ``fetch(url) -> text`` loads the media playlists."""
    if "#EXT-X-STREAM-INF:" not in text:
        init, init_range, segs = _media_playlist(url, text)
        if not segs:
            raise ManifestError("the HLS playlist has no segment")
        track = Track("muxed", "0", None, None, None, None, None, init, segs, init_range)
        return Presentation("hls", url, (track,), (), track.duration_s)
    audio: list[Track] = []
    groups_with_audio: set[str] = set()
    loaded: dict[str, tuple[str | None, tuple[int, int] | None, tuple[Segment, ...]]] = {}

    def load(u: str):
        if u not in loaded:
            loaded[u] = _media_playlist(u, fetch(u))
        return loaded[u]

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    variants: list[tuple[dict[str, str], str]] = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-MEDIA:"):
            attrs = _attributes(line[len("#EXT-X-MEDIA:"):])
            if attrs.get("TYPE") == "AUDIO" and attrs.get("URI"):
                a_url = urljoin(url, attrs["URI"])
                if any(t.init_url == a_url or (t.segments and t.segments[0].url == a_url) for t in audio):
                    continue
                init, init_range, segs = load(a_url)
                audio.append(Track("audio", attrs.get("NAME") or str(len(audio)), _hls_bandwidth(attrs, False),
                                   attrs.get("CODECS"), None, None, None, init, segs, init_range))
                groups_with_audio.add(attrs.get("GROUP-ID", ""))
        elif line.startswith("#EXT-X-STREAM-INF:"):
            uri = next((u for u in lines[i + 1:] if not u.startswith("#")), None)
            if uri is None:
                raise ManifestError("#EXT-X-STREAM-INF is not followed by a URI")
            variants.append((_attributes(line[len("#EXT-X-STREAM-INF:"):]), uri))
    video: list[Track] = []
    for i, (attrs, uri) in enumerate(variants):
        bandwidth = _hls_bandwidth(attrs, True)
        width = height = None
        if "RESOLUTION" in attrs:
            m = re.fullmatch(r"(\d+)x(\d+)", attrs["RESOLUTION"].strip())
            if not m:
                raise _bad("#EXT-X-STREAM-INF", "RESOLUTION", attrs["RESOLUTION"], "WIDTHxHEIGHT")
            width, height = int(m.group(1)), int(m.group(2))
        fps = _number("#EXT-X-STREAM-INF", "FRAME-RATE", attrs["FRAME-RATE"]) if "FRAME-RATE" in attrs else None
        init, init_range, segs = load(urljoin(url, uri))
        stream = "video" if attrs.get("AUDIO") in groups_with_audio and "AUDIO" in attrs else "muxed"
        video.append(Track(stream, str(i), bandwidth, attrs.get("CODECS"), width, height, fps, init, segs,
                           init_range))
    if not video:
        raise ManifestError("the HLS playlist has no variant")
    video.sort(key=lambda t: t.bandwidth_bps or 0)
    return Presentation("hls", url, tuple(video), tuple(audio), max(t.duration_s for t in video))


def _hls_bandwidth(attrs: dict[str, str], required: bool) -> float | None:
    if "BANDWIDTH" not in attrs:
        if required:
            raise ManifestError("#EXT-X-STREAM-INF has no BANDWIDTH")
        return None
    return float(_uint("#EXT-X-STREAM-INF", "BANDWIDTH", attrs["BANDWIDTH"]))


# ---------------------------------------------------------------- DASH

_DURATION = re.compile(r"(-)?P(?:([\d.]+)Y)?(?:([\d.]+)M)?(?:([\d.]+)W)?(?:([\d.]+)D)?"
                       r"(?:T(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?)?")
_DURATION_UNITS_S = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def _iso_duration(where: str, name: str, text: str | None) -> float | None:
    """An xs:duration in seconds, None when absent."""
    if text is None:
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or m.group(1) or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise _bad(where, name, text, "a non-negative ISO 8601 duration")
    total = 0.0
    for value, unit in zip(m.groups()[1:], _DURATION_UNITS_S):
        if value:
            total += _number(where, name, value) * unit
    return total


def _template(pattern: str, rep_id: str, number: int | None = None, time: int | None = None,
              bandwidth: str = "") -> str:
    def sub(m: re.Match) -> str:
        name, fmt = m.group(1), m.group(2)
        if name == "":
            return "$"
        value = {"RepresentationID": rep_id, "Number": number, "Time": time, "Bandwidth": bandwidth}.get(name)
        if value is None:
            return m.group(0)
        if fmt and name != "RepresentationID":
            return ("%" + fmt[1:]) % int(value)
        return str(value)
    return re.sub(r"\$(RepresentationID|Number|Time|Bandwidth|)(%0?\d*d)?\$", sub, pattern)


def _strip_namespaces(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def _base(url: str, el: ET.Element) -> str:
    b = el.find("BaseURL")
    return urljoin(url, b.text.strip()) if b is not None and b.text and b.text.strip() else url


def _kind(aset: ET.Element, rep: ET.Element) -> str | None:
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
    if any(r.get("value") in ("subtitle", "caption") for r in aset.findall("Role")):
        return None
    if codecs.startswith(("mp4a", "ac-3", "ec-3", "opus", "vorbis", "flac", "dtsc")) or rep.get("audioSamplingRate"):
        return "audio"
    if mime and major != "application":
        return None
    return "video"


class _Levels:
    """One kind of segment information (SegmentTemplate, SegmentList, SegmentBase) across Period, set and
    Representation: attributes inherited downwards, children taken from the lowest level that has them."""

    def __init__(self, elements: list[ET.Element], where: str) -> None:
        self.elements = elements
        self.where = where
        self.attrs: dict[str, str] = {}
        for el in elements:
            self.attrs.update(el.attrib)

    def child(self, name: str) -> ET.Element | None:
        for el in reversed(self.elements):
            found = el.find(name)
            if found is not None:
                return found
        return None

    def uint(self, name: str, default: int | None, minimum: int = 0) -> int | None:
        return _uint(self.where, name, self.attrs.get(name), default, minimum)


def _range_attr(where: str, name: str, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)-(\d+)\s*", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise _bad(where, name, text, "a byte range first-last")
    return int(m.group(1)), int(m.group(2))


def _timeline(info: _Levels, timeline: ET.Element, period_s: float | None, pto: int,
              scale: int) -> list[tuple[int, int]]:
    """(time, duration) of every segment of a SegmentTimeline, in the timescale."""
    where = f"{info.where} SegmentTimeline S"
    entries = timeline.findall("S")
    out: list[tuple[int, int]] = []
    t = 0
    for i, s_el in enumerate(entries):
        t = _uint(where, "t", s_el.get("t"), t)
        d = _uint(where, "d", s_el.get("d"), None, 1)
        if d is None:
            raise ManifestError(f"{where} has no d")
        r_text = (s_el.get("r") or "0").strip()
        if r_text == "-1" or (r_text.startswith("-") and r_text[1:].isdigit()):
            next_t = entries[i + 1].get("t") if i + 1 < len(entries) else None
            if next_t is not None:
                end = _uint(where, "t", next_t, 0)
            elif period_s is not None:
                end = pto + round(period_s * scale)
            else:
                raise ManifestError(f"{where} r={r_text} repeats up to an unknown period end")
            count = max(0, math.ceil((end - t) / d))
        else:
            count = _uint(where, "r", r_text, 0) + 1
        _check_count(info.where, len(out) + count)
        for _ in range(count):
            out.append((t, d))
            t += d
    return out


def _sidx_segments(url: str, first: int, last: int, fetch_range: FetchRange, pto: int,
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
    for ref, rng, start, dur in zip(sidx.references, sidx.ranges(first + offset), starts, durations):
        if ref.reference_type == 1:
            out.extend(_sidx_segments(url, rng[0], rng[1], fetch_range, pto, depth + 1))
        else:
            out.append((start - pto / sidx.timescale, dur, rng))
        _check_count(f"the segment index of {url}", len(out))
    return out


def _representation(base: str, levels: list[ET.Element], rep: ET.Element, rep_id: str, bandwidth: str,
                    period_s: float | None,
                    fetch_range: FetchRange | None) -> tuple[str | None, tuple[int, int] | None, list[Segment]]:
    """Init URL and range, and segments, of one Representation from its segment information."""
    where = f"Representation {rep_id!r}"
    kind = next((k for el in reversed(levels) for k in ("SegmentTemplate", "SegmentList", "SegmentBase")
                 if el.find(k) is not None), None)
    if kind is None:  # a single-segment representation: the BaseURL is the whole media
        if period_s is None:
            raise ManifestError(f"{where} has no segment information and the period has no duration")
        return None, None, [Segment(base, 0.0, period_s, 1)]
    info = _Levels([el.find(kind) for el in levels if el.find(kind) is not None], f"{where} {kind}")
    scale = info.uint("timescale", 1, 1)
    pto = info.uint("presentationTimeOffset", 0)
    init_url, init_range = None, None
    init_el = info.child("Initialization")
    if init_el is not None:
        init_url = urljoin(base, init_el.get("sourceURL") or "") if init_el.get("sourceURL") else base
        init_range = _range_attr(f"{info.where} Initialization", "range", init_el.get("range"))
    if kind == "SegmentBase":
        index_range = _range_attr(info.where, "indexRange", info.attrs.get("indexRange"))
        if index_range is None:
            raise ManifestError(f"{info.where} has no indexRange")
        if fetch_range is None:
            raise ManifestError(f"{info.where} needs its segment index fetched by byte range")
        if init_el is None and index_range[0] > 0:  # no Initialization: the init is what precedes the index
            init_url, init_range = base, (0, index_range[0] - 1)
        refs = _sidx_segments(base, index_range[0], index_range[1], fetch_range, pto)
        return init_url, init_range, [Segment(base, s, d, i + 1, rng) for i, (s, d, rng) in enumerate(refs)]
    start_number = info.uint("startNumber", 1)
    timeline = info.child("SegmentTimeline")
    times: list[tuple[int, int]] | None = None
    if timeline is not None:
        times = _timeline(info, timeline, period_s, pto, scale)
    if kind == "SegmentList":
        urls = next((found for el in reversed(info.elements) if (found := el.findall("SegmentURL"))), [])
        _check_count(info.where, len(urls))
        if times is None:
            duration = info.uint("duration", None, 1)
            if duration is None:
                if len(urls) != 1 or period_s is None:
                    raise ManifestError(f"{info.where} has neither a SegmentTimeline nor a duration")
                times = [(pto, round(period_s * scale))]
            else:
                times = [(pto + i * duration, duration) for i in range(len(urls))]
        segs = []
        for i, (u, (t, d)) in enumerate(zip(urls, times)):
            media = urljoin(base, u.get("media")) if u.get("media") else base
            rng = _range_attr(f"{info.where} SegmentURL", "mediaRange", u.get("mediaRange"))
            segs.append(Segment(media, (t - pto) / scale, d / scale, start_number + i, rng))
        if segs and period_s is not None and times is not None and timeline is None:
            last = segs[-1]
            if last.start_s < period_s < last.start_s + last.duration_s:
                segs[-1] = Segment(last.url, last.start_s, period_s - last.start_s, last.number, last.byte_range)
        return init_url, init_range, segs
    # SegmentTemplate
    init_pattern = info.attrs.get("initialization")
    if init_pattern:
        init_url = urljoin(base, _template(init_pattern, rep_id, bandwidth=bandwidth))
    media = info.attrs.get("media")
    if not media:
        raise ManifestError(f"{info.where} has no media attribute")
    segs = []
    if times is not None:
        for i, (t, d) in enumerate(times):
            n = start_number + i
            segs.append(Segment(urljoin(base, _template(media, rep_id, n, t, bandwidth)), (t - pto) / scale,
                                d / scale, n))
        return init_url, init_range, segs
    duration = info.uint("duration", None, 1)
    if duration is None:
        raise ManifestError(f"{info.where} has neither a SegmentTimeline nor a duration")
    if period_s is None:
        raise ManifestError(f"{info.where} has a duration but the period's length is unknown")
    seg_s = duration / scale
    count = math.ceil(period_s / seg_s - 1e-9)
    _check_count(info.where, count)
    for i in range(count):
        n = start_number + i
        segs.append(Segment(urljoin(base, _template(media, rep_id, n, pto + i * duration, bandwidth)), i * seg_s,
                            min(seg_s, period_s - i * seg_s), n))
    return init_url, init_range, segs


def parse_dash(url: str, text: str, fetch_range: FetchRange | None = None) -> Presentation:
    """The first Period of an MPD, with SegmentTemplate ($Number$ or $Time$, duration or SegmentTimeline),
    SegmentList or SegmentBase; ``fetch_range(url, first, last) -> bytes`` loads a SegmentBase's sidx."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManifestError(f"the DASH manifest is not valid XML: {exc}") from exc
    _strip_namespaces(root)
    if root.tag != "MPD":
        raise ManifestError(f"the DASH manifest's root is {root.tag}, not MPD")
    total = _iso_duration("MPD", "mediaPresentationDuration", root.get("mediaPresentationDuration"))
    period = root.find("Period")
    if period is None:
        raise ManifestError("the DASH manifest has no Period")
    period_s = _iso_duration("Period", "duration", period.get("duration"))
    if period_s is None and total is not None:
        period_s = max(0.0, total - (_iso_duration("Period", "start", period.get("start")) or 0.0))
    period_base = _base(_base(url, root), period)
    video: list[Track] = []
    audio: list[Track] = []
    for aset in period.findall("AdaptationSet"):
        aset_base = _base(period_base, aset)
        for rep in aset.findall("Representation"):
            kind = _kind(aset, rep)
            if kind is None:
                continue
            rep_id = rep.get("id") or str(len(video) + len(audio))
            where = f"Representation {rep_id!r}"
            bw = rep.get("bandwidth")
            bandwidth = _uint(where, "bandwidth", bw)
            init_url, init_range, segs = _representation(_base(aset_base, rep), [period, aset, rep], rep, rep_id,
                                                         bw or "", period_s, fetch_range)
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
    return Presentation("dash", url, tuple(video), tuple(audio), total if total is not None else period_s)
