"""HLS and DASH manifests read into one model: renditions, each a list of timed segment URLs."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin

import m3u8

from pytomo.errors import MediaError

_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


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


def _segments(base: str, playlist: m3u8.M3U8) -> tuple[str | None, tuple[Segment, ...]]:
    init = None
    if playlist.segment_map:
        init = urljoin(base, playlist.segment_map[0].uri)
    out, start = [], 0.0
    for i, seg in enumerate(playlist.segments):
        out.append(Segment(urljoin(base, seg.uri), start, float(seg.duration), i))
        start += float(seg.duration)
    return init, tuple(out)


def parse_hls(url: str, text: str, fetch) -> Presentation:
    """A master (or media) playlist; ``fetch(url) -> text`` loads the media playlists."""
    master = m3u8.loads(text, uri=url)
    if not master.is_variant:
        init, segs = _segments(url, master)
        track = Track("muxed", "0", None, None, None, None, None, init, segs)
        return Presentation("hls", url, (track,), (), track.duration_s)
    audio: list[Track] = []
    groups_with_audio = set()
    for media in master.media:
        if media.type == "AUDIO" and media.uri:
            a_url = urljoin(url, media.uri)
            init, segs = _segments(a_url, m3u8.loads(fetch(a_url), uri=a_url))
            audio.append(Track("audio", media.name or str(len(audio)), None, None, None, None, None, init, segs))
            groups_with_audio.add(media.group_id)
    video: list[Track] = []
    for i, var in enumerate(master.playlists):
        info = var.stream_info
        v_url = urljoin(url, var.uri)
        init, segs = _segments(v_url, m3u8.loads(fetch(v_url), uri=v_url))
        width, height = info.resolution if info.resolution else (None, None)
        stream = "video" if info.audio in groups_with_audio else "muxed"
        video.append(Track(stream, str(i), float(info.bandwidth) if info.bandwidth else None, info.codecs,
                           width, height, info.frame_rate, init, segs))
    if not video:
        raise MediaError("the HLS playlist has no variant")
    video.sort(key=lambda t: t.bandwidth_bps or 0)
    return Presentation("hls", url, tuple(video), tuple(audio), max(t.duration_s for t in video))


def _iso_duration(text: str | None) -> float | None:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", (text or "").strip())
    if not m:
        return None
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def _template(pattern: str, rep_id: str, number: int | None = None, time: int | None = None,
              bandwidth: str = "") -> str:
    def sub(m: re.Match) -> str:
        name, fmt = m.group(1), m.group(2)
        value = {"RepresentationID": rep_id, "Number": number, "Time": time, "Bandwidth": bandwidth}.get(name)
        if name == "" or value is None:
            return "$"
        return (fmt % value) if fmt else str(value)
    return re.sub(r"\$(RepresentationID|Number|Time|Bandwidth|)(%0\d+d)?\$", sub, pattern)


def parse_dash(url: str, text: str) -> Presentation:
    """An MPD with SegmentTemplate (with a duration or a SegmentTimeline) in its first Period."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise MediaError(f"the DASH manifest is not valid XML: {exc}") from exc
    total = _iso_duration(root.get("mediaPresentationDuration"))
    period = root.find("d:Period", _NS)
    if period is None:
        raise MediaError("the DASH manifest has no Period")
    base = url
    for el in (root, period):
        b = el.find("d:BaseURL", _NS)
        if b is not None and b.text:
            base = urljoin(base, b.text.strip())
    video: list[Track] = []
    audio: list[Track] = []
    for aset in period.findall("d:AdaptationSet", _NS):
        kind = aset.get("contentType") or (aset.get("mimeType") or "").split("/")[0]
        for rep in aset.findall("d:Representation", _NS):
            kind = kind or (rep.get("mimeType") or "").split("/")[0]
            tmpl = rep.find("d:SegmentTemplate", _NS)
            if tmpl is None:
                tmpl = aset.find("d:SegmentTemplate", _NS)
            if tmpl is None:
                raise MediaError("only DASH manifests with a SegmentTemplate are supported")
            rep_id = rep.get("id") or str(len(video) + len(audio))
            bw = rep.get("bandwidth") or ""
            scale = float(tmpl.get("timescale", "1"))
            first = int(tmpl.get("startNumber", "1"))
            media = tmpl.get("media") or ""
            segs: list[Segment] = []
            timeline = tmpl.find("d:SegmentTimeline", _NS)
            if timeline is not None:
                t, n = 0, first
                for s_el in timeline.findall("d:S", _NS):
                    t = int(s_el.get("t", t))
                    d = int(s_el.get("d"))
                    for _ in range(int(s_el.get("r", "0")) + 1):
                        segs.append(Segment(urljoin(base, _template(media, rep_id, n, t, bw)), t / scale, d / scale, n))
                        t, n = t + d, n + 1
            else:
                seg_d = float(tmpl.get("duration", "0")) / scale
                if seg_d <= 0 or total is None:
                    raise MediaError("the DASH SegmentTemplate has neither a timeline nor a duration")
                count = math.ceil(total / seg_d - 1e-9)
                for i in range(count):
                    dur = min(seg_d, total - i * seg_d)
                    segs.append(Segment(urljoin(base, _template(media, rep_id, first + i, None, bw)), i * seg_d, dur,
                                        first + i))
            init = tmpl.get("initialization")
            rate = aset.get("frameRate") or rep.get("frameRate")
            fps = None
            if rate:
                num, _, den = rate.partition("/")
                fps = float(num) / float(den or 1)
            track = Track("audio" if kind == "audio" else "video", rep_id, float(bw) if bw else None,
                          rep.get("codecs") or aset.get("codecs"), _int(rep.get("width")), _int(rep.get("height")),
                          fps, urljoin(base, _template(init, rep_id, bandwidth=bw)) if init else None, tuple(segs))
            (audio if kind == "audio" else video).append(track)
    if not video:
        raise MediaError("the DASH manifest has no video representation")
    video.sort(key=lambda t: t.bandwidth_bps or 0)
    audio.sort(key=lambda t: t.bandwidth_bps or 0)
    return Presentation("dash", url, tuple(video), tuple(audio), total)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
