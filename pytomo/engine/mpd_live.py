"""A dynamic MPD's live timing: which segments are available at a given wall-clock time (ISO/IEC 23009-1 5.3.9.5).

A segment whose media ends at ``end_s`` in its Period is available from availabilityStartTime + Period@start +
``end_s`` (no availabilityTimeOffset is applied) until timeShiftBufferDepth after that; SegmentTemplate segments are
numbered from @startNumber by @duration, or timed by a SegmentTimeline (an ``r="-1"`` repeats up to the next ``S`` or
the live edge). Each segment's ``program_date_s`` is the wall-clock time its first sample was made: availabilityStart
+ Period@start + its start (so the live player's latency is the wall clock minus it, as for HLS's program dates).
UTCTiming is read and kept; only its ``urn:mpeg:dash:utc:direct:2014`` value is used (a clock offset): no time
server is asked.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from pytomo.errors import ManifestError
from pytomo.media.manifest import (
    MAX_DURATION_S,
    _base,
    _Children,
    _iso_duration,
    _kind,
    _Levels,
    _program_date,
    _strip_namespaces,
    _Template,
    _uint,
    _xml,
    is_dynamic,
)
from pytomo.results import Segment

UTC_DIRECT = "urn:mpeg:dash:utc:direct:2014"
_MAX_TIMELINE_ENTRIES = 10_000


@dataclass(frozen=True)
class LiveRep:
    """One Representation's SegmentTemplate, as a live player numbers and times it."""

    rep_id: str
    render: Callable[[int, int], str]  # (number, time) -> URL
    scale: int
    pto: int
    start_number: int
    duration: int | None  # @duration in the timescale; None: a SegmentTimeline
    timeline: tuple[tuple[int, int, int], ...] = ()  # (t, d, r) of each S, r = -1 for "up to the next or the edge"

    @property
    def segment_s(self) -> float | None:
        """The nominal segment duration (@duration, else the longest timeline entry)."""
        if self.duration is not None:
            return self.duration / self.scale
        return max((d for _t, d, _r in self.timeline), default=0) / self.scale or None


@dataclass(frozen=True)
class LiveMpd:
    """What a live player reads from one load of a dynamic MPD."""

    url: str
    dynamic: bool
    availability_start_s: float | None  # UNIX time
    publish_s: float | None
    time_shift_s: float | None  # timeShiftBufferDepth; None: unbounded
    suggested_delay_s: float | None
    min_update_s: float | None  # minimumUpdatePeriod; None: the MPD does not change
    period_start_s: float
    utc_timing: tuple[tuple[str, str], ...]  # (schemeIdUri, value) of each UTCTiming
    clock_offset_s: float  # the direct UTCTiming's time minus the local clock when read; 0 without one
    reps: dict[str, LiveRep]


def _date(where: str, text: str | None) -> float | None:
    if text is None:
        return None
    when = _program_date(text)
    if when is None:
        raise ManifestError(f"the MPD's {where}={text[:80]!r} is not an ISO 8601 date")
    return when


def _timeline_entries(kids: _Children, info: _Levels, timeline: ET.Element) -> tuple[tuple[int, int, int], ...]:
    where = f"{info.where} SegmentTimeline S"
    entries = kids.all(timeline, "S")
    if len(entries) > _MAX_TIMELINE_ENTRIES:
        raise ManifestError(f"{where}: more than {_MAX_TIMELINE_ENTRIES} entries")
    out = []
    t = 0
    for s_el in entries:
        t = _uint(where, "t", s_el.get("t"), t)
        d = _uint(where, "d", s_el.get("d"), 1, 1)
        r_text = (s_el.get("r") or "0").strip()
        r = -1 if r_text.startswith("-") else _uint(where, "r", r_text, 0)
        out.append((t, d, r))
        t += d * (r + 1) if r >= 0 else d
    return tuple(out)


def _rep(kids: _Children, base: str, levels: list[ET.Element], rep_id: str, bandwidth: str) -> LiveRep | None:
    """The live timing of one Representation's SegmentTemplate; None without one."""
    found = [el for lvl in levels if (el := kids.first(lvl, "SegmentTemplate")) is not None]
    if not found:
        return None
    info = _Levels(kids, found, f"Representation {rep_id[:80]!r} SegmentTemplate")
    media = info.attrs.get("media")
    if not media:
        raise ManifestError(f"{info.where} has no media attribute")
    render = _Template(info.where, "media", media, rep_id, bandwidth).joiner(info.where, base)
    timeline = info.child("SegmentTimeline")
    entries = _timeline_entries(kids, info, timeline) if timeline is not None else ()
    duration = None if timeline is not None else info.uint("duration", None, 1)
    if timeline is None and duration is None:
        raise ManifestError(f"{info.where} has neither a SegmentTimeline nor a duration")
    return LiveRep(rep_id, render, info.uint("timescale", 1, 1), info.uint("presentationTimeOffset", 0),
                   info.uint("startNumber", 1), duration, entries)


def read_live_mpd(url: str, text: str, now_s: float | None = None) -> LiveMpd:
    """The live timing of an MPD's first Period (its SegmentTemplate representations, by id)."""
    now_s = time.time() if now_s is None else now_s
    root = _xml(text)
    _strip_namespaces(root)
    if root.tag != "MPD":
        raise ManifestError(f"the DASH manifest's root is {str(root.tag)[:80]}, not MPD")
    kids = _Children()
    period = kids.first(root, "Period")
    if period is None:
        raise ManifestError("the DASH manifest has no Period")
    utc = tuple((el.get("schemeIdUri") or "", el.get("value") or "") for el in kids.all(root, "UTCTiming"))[:16]
    direct = next((_program_date(v) for scheme, v in utc if scheme == UTC_DIRECT), None)
    reps: dict[str, LiveRep] = {}
    period_base = _base(kids, _base(kids, url, root), period)
    for aset in kids.all(period, "AdaptationSet"):
        aset_base = _base(kids, period_base, aset)
        for rep in kids.all(aset, "Representation"):
            if _kind(aset, rep, False) is None:
                continue
            rep_id = rep.get("id") or str(len(reps))
            bw = rep.get("bandwidth")
            live_rep = _rep(kids, _base(kids, aset_base, rep), [period, aset, rep], rep_id,
                            str(_uint("Representation", "bandwidth", bw)) if bw else "")
            if live_rep is not None:
                reps[rep_id] = live_rep
    return LiveMpd(url, is_dynamic(root), _date("availabilityStartTime", root.get("availabilityStartTime")),
                   _date("publishTime", root.get("publishTime")),
                   _iso_duration("MPD", "timeShiftBufferDepth", root.get("timeShiftBufferDepth")),
                   _iso_duration("MPD", "suggestedPresentationDelay", root.get("suggestedPresentationDelay")),
                   _iso_duration("MPD", "minimumUpdatePeriod", root.get("minimumUpdatePeriod")),
                   _iso_duration("Period", "start", period.get("start")) or 0.0, utc,
                   0.0 if direct is None else direct - now_s, reps)


def _number_spans(rep: LiveRep, edge_s: float, oldest_s: float, limit: int) -> list[tuple[int, int, float, float]]:
    """(number, time, start, duration) of the $Number$ segments that end within [oldest_s, edge_s] of the period."""
    assert rep.duration is not None
    seg_s = rep.duration / rep.scale
    last = math.floor(edge_s / seg_s + 1e-9) - 1  # the last one whose end has passed
    first = max(0, math.ceil(oldest_s / seg_s - 1e-9) - 1, last - limit + 1)
    return [(rep.start_number + k, rep.pto + k * rep.duration, k * seg_s, seg_s) for k in range(first, last + 1)]


def _timeline_spans(rep: LiveRep, edge_s: float, oldest_s: float, limit: int) -> list[tuple[int, int, float, float]]:
    """(number, time, start, duration) of the SegmentTimeline segments that end within [oldest_s, edge_s] (the
    ``limit`` latest: the entries are walked from the last, so that no hostile repeat count costs more)."""
    edge_t, oldest_t = rep.pto + edge_s * rep.scale, rep.pto + oldest_s * rep.scale
    firsts, number = [], rep.start_number
    for i, (t, d, r) in enumerate(rep.timeline):  # each entry's first number and segment count
        end_t = t + d * (r + 1) if r >= 0 else (rep.timeline[i + 1][0] if i + 1 < len(rep.timeline) else
                                                max(t, math.floor(edge_t)))
        count = max(0, -(-(end_t - t) // d))
        firsts.append((number, count))
        number += count
    out: list[tuple[int, int, float, float]] = []
    for (t, d, _r), (number, count) in zip(reversed(rep.timeline), reversed(firsts)):
        last_k = min(count - 1, math.floor((edge_t - t) / d + 1e-9) - 1)
        first_k = max(0, math.ceil((oldest_t - t) / d - 1e-9) - 1, last_k - (limit - len(out)) + 1)
        for k in range(last_k, first_k - 1, -1):
            st = t + k * d
            out.append((number + k, st, (st - rep.pto) / rep.scale, d / rep.scale))
        if len(out) >= limit:
            break
    out.reverse()
    return out


def available(mpd: LiveMpd, rep: LiveRep, now_s: float, limit: int) -> list[Segment]:
    """The segments of ``rep`` available at UNIX time ``now_s`` (at most the ``limit`` latest), oldest first."""
    if mpd.availability_start_s is None:
        raise ManifestError("the dynamic MPD has no availabilityStartTime")
    zero = mpd.availability_start_s + mpd.period_start_s
    edge_s = min(now_s + mpd.clock_offset_s - zero, MAX_DURATION_S)
    oldest_s = edge_s - mpd.time_shift_s if mpd.time_shift_s is not None else 0.0
    spans = (_number_spans if rep.duration is not None else _timeline_spans)(rep, edge_s, max(0.0, oldest_s), limit)
    return [Segment(rep.render(n, t), start, dur, n, None, zero + start) for n, t, start, dur in spans]


def next_available_s(mpd: LiveMpd, rep: LiveRep, after: Segment | None) -> float | None:
    """When the segment after ``after`` becomes available (UNIX time, local clock); None when it cannot be said."""
    seg_s = rep.segment_s
    if mpd.availability_start_s is None or seg_s is None:
        return None
    zero = mpd.availability_start_s + mpd.period_start_s - mpd.clock_offset_s
    if after is None:
        return None
    return zero + after.start_s + after.duration_s + seg_s
