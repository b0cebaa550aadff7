"""Playable media time as a step function of the bytes received, and how it is built from per-track samples."""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

SOURCES = ("mp4-sample-table", "mp4-fragments", "webm-blocks", "flv-tags", "mpegts-pes", "average-bitrate")

_AVERAGE_STEP_S = 0.1  # resolution of the linear fallback
_AVERAGE_MAX_POINTS = 100_000
_REORDER_WINDOW = 256  # the reorder depth of a track is measured over its last samples listed
REORDER_PRIOR = 2  # frames a codec with B-frames may reorder before its listing shows it (x264's B-pyramid)
_HOLE_INTERVALS = 1.5  # a gap in presentation order wider than this many frame intervals awaits a sample
TRACK_WAIT_S = 5.0  # a declared track with no sample yet holds playback at 0 until the others list this much


@dataclass(frozen=True)
class MediaTimeline:
    """Playable media time as a step function of the bytes received from the start of the file."""

    source: str  # one of SOURCES
    offsets_bytes: tuple[int, ...]  # ascending; once offsets_bytes[i] bytes have been received ...
    times_s: tuple[float, ...]  # ... media [0, times_s[i]) is playable; non-decreasing
    duration_s: float | None  # the file's media duration when the container declares it
    indexed_end_s: float | None = None  # latest presentation end over the tracks of the samples listed

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown timeline source {self.source!r}")
        if len(self.offsets_bytes) != len(self.times_s):
            raise ValueError("offsets_bytes and times_s differ in length")

    def time_at(self, received_bytes: int) -> float:
        """Seconds of media playable once ``received_bytes`` bytes from the start have arrived."""
        i = bisect_right(self.offsets_bytes, received_bytes)
        return self.times_s[i - 1] if i else 0.0

    def bytes_for(self, media_s: float) -> int | None:
        """The smallest byte count that makes [0, media_s) playable; None if no byte count does."""
        if media_s <= 0:
            return 0
        i = bisect_left(self.times_s, media_s)
        return self.offsets_bytes[i] if i < len(self.offsets_bytes) else None

    @property
    def end_s(self) -> float:
        """Media playable once every listed byte has arrived."""
        return self.times_s[-1] if self.times_s else 0.0

    @classmethod
    def from_average_bitrate(cls, bitrate_bps: float, total_bytes: int | None, duration_s: float | None,
                             header_bytes: int = 0) -> MediaTimeline:
        """Fallback without an index: media time grows linearly at ``bitrate_bps`` after ``header_bytes``.

        The end is ``duration_s`` when given, else where ``total_bytes`` runs out; one of them is required.
        Steps are 0.1 s apart (coarser for very long media), each reached at the byte count the average
        bitrate needs for it, so the step function never runs ahead of the linear one.
        """
        if not bitrate_bps > 0:
            raise ValueError("bitrate_bps must be positive")
        if duration_s is None:
            if total_bytes is None:
                raise ValueError("the average-bitrate timeline needs total_bytes or duration_s")
            duration_s = max(0, total_bytes - header_bytes) * 8 / bitrate_bps
        step_s = max(_AVERAGE_STEP_S, duration_s / _AVERAGE_MAX_POINTS)
        count = math.ceil(duration_s / step_s) if duration_s > 0 else 0
        offsets: list[int] = []
        times: list[float] = []
        for k in range(1, count + 1):
            t = min(round(k * step_s, 9), duration_s)
            offset = header_bytes + math.ceil(round(t * bitrate_bps / 8, 6))
            if total_bytes is not None:
                offset = min(offset, total_bytes)
            if offsets and offsets[-1] == offset:
                times[-1] = t
            else:
                offsets.append(offset)
                times.append(t)
        return cls("average-bitrate", tuple(offsets), tuple(times), duration_s)


class TrackSamples:
    """The samples of one audio or video track in decode order, as the container's index lists them.

    Times are in ticks of ``timescale`` per second. ``pts`` is the presentation start of each sample and
    ``dts`` its decode time; a duration of None is filled in later from the decode-time gap to the track's
    next sample (the previous gap for the last one).
    """

    __slots__ = ("kind", "timescale", "end_bytes", "pts", "dts", "durations", "reorder_min")

    def __init__(self, kind: str, timescale: float) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"track kind must be audio or video, not {kind!r}")
        if not timescale > 0:
            raise ValueError("timescale must be positive")
        self.kind = kind
        self.timescale = timescale
        self.end_bytes: list[int] = []
        self.pts: list[float] = []
        self.dts: list[float] = []
        self.durations: list[float | None] = []
        self.reorder_min = 0  # frames its codec may reorder before the listing shows it (B-frames: REORDER_PRIOR)

    def __len__(self) -> int:
        return len(self.end_bytes)

    def add(self, end_byte: int, pts: float, duration: float | None = None, dts: float | None = None) -> None:
        """One sample whose last byte is just before ``end_byte`` in the file."""
        self.end_bytes.append(end_byte)
        self.pts.append(pts)
        self.dts.append(pts if dts is None else dts)
        self.durations.append(duration)

    def filled_durations(self, last_end: float | None = None) -> list[float]:
        """How long each sample is presented (ticks).

        A video frame is shown until the next one in presentation order, so its duration is that gap whenever
        there is a next frame (a nominal frame duration would leave a hole where frames were dropped). An audio
        sample keeps the duration its container lists. Any other sample takes the gap to the next presentation
        start, else the previous gap; ``last_end`` (ticks), when known, ends the final sample in presentation
        order if that one has no duration.
        """
        durations = list(self.durations)
        video = self.kind == "video"
        if not video and all(d is not None for d in durations):
            return durations  # type: ignore[return-value]
        order = sorted(range(len(durations)), key=self.pts.__getitem__)
        gap = 0.0
        for rank, i in enumerate(order):
            if rank + 1 < len(order):
                following = self.pts[order[rank + 1]]
                if following > self.pts[i]:
                    gap = following - self.pts[i]
                    if video:
                        durations[i] = gap
            elif last_end is not None and last_end > self.pts[i] and durations[i] is None:
                durations[i] = last_end - self.pts[i]
            if durations[i] is None:
                durations[i] = gap
        return durations  # type: ignore[return-value]


def _reorder_depth(pts: Sequence[float]) -> int:
    """The most samples decoded before one and presented after it, over the last samples listed."""
    seen: list[float] = []
    depth = 0
    for p in pts[-_REORDER_WINDOW:]:
        depth = max(depth, len(seen) - bisect_right(seen, p))
        insort(seen, p)
    return depth


def _frame_interval(track: TrackSamples) -> float:
    """A sample's interval over the last ones listed: the shortest gap between presentation starts or between
    decode times, or the shortest duration the container lists."""
    recent = sorted(set(track.pts[-_REORDER_WINDOW:]))
    decode = track.dts[-_REORDER_WINDOW:]
    gaps = [b - a for a, b in zip(recent, recent[1:])]
    gaps += [b - a for a, b in zip(decode, decode[1:]) if b > a]
    gaps += [d for d in track.durations[-_REORDER_WINDOW:] if d]
    return min(gaps, default=math.inf)


def unlisted_floor(track: TrackSamples, durations: Sequence[float]) -> float:
    """The earliest presentation start (ticks) a sample not yet listed may have, the listing being cut short.

    With a reorder depth R (the deepest seen, at least the track's ``reorder_min``, as the first frames cannot show
    it yet), at most R samples decoded before any other are presented after it, so every sample presented up to
    the (R+1)-th latest start listed has been listed. From there, the listed samples run on without a hole while
    each starts within 1.5 intervals of the previous one; the first sample missing is presented where the last of
    them ends (a video frame lasts one interval there, not up to the next listed frame).
    """
    pts = track.pts
    depth = max(_reorder_depth(pts), track.reorder_min)
    top = heapq.nlargest(depth + 1, range(len(pts)), key=pts.__getitem__)
    interval = _frame_interval(track)
    last = top[-1]
    for i in reversed(top[:-1]):
        if pts[i] - pts[last] > _HOLE_INTERVALS * interval:
            break
        last = i
    step = durations[last] if track.kind == "audio" else min(durations[last], interval)
    return pts[last] + step


def _track_steps(track: TrackSamples, last_end: float | None, origin_s: float,
                 open_ended: bool = False) -> Iterator[tuple[int, float]]:
    """(bytes needed, playable seconds) after each sample of one track, in decode order.

    Once the first k samples in decode order are complete, [0, t) is playable for t = the latest presentation
    end among them, capped by the earliest presentation start of the samples still missing (with reordered
    frames a later-decoded one may be shown first). Presentation time is counted from ``origin_s``, the start
    common to all tracks, so a track that starts late keeps its offset. ``open_ended``: samples not listed yet
    may follow, and cap every step where they may be presented (:func:`unlisted_floor`).
    """
    n = len(track)
    scale = 1.0 / track.timescale
    starts = [p * scale - origin_s for p in track.pts]
    durations = track.filled_durations(last_end)
    suffix_min = [math.inf] * (n + 1)
    if open_ended:
        suffix_min[n] = unlisted_floor(track, durations) * scale - origin_s
    for i in range(n - 1, -1, -1):
        suffix_min[i] = min(suffix_min[i + 1], starts[i])
    need = 0
    covered = 0.0
    for k in range(n):
        need = max(need, track.end_bytes[k])
        covered = max(covered, starts[k] + durations[k] * scale)
        yield need, max(0.0, min(covered, suffix_min[k + 1]))


def _awaited(tracks: Sequence[TrackSamples]) -> bool:
    """Whether a declared track has no sample yet while it may still come: a player waits for it (as ffmpeg does,
    up to its analysis duration of 5 s) rather than start without it."""
    listed = [t for t in tracks if len(t)]
    if len(listed) == len(tracks):
        return False
    return all((max(t.pts) - min(t.pts)) / t.timescale < TRACK_WAIT_S for t in listed)


def _tagged(index: int, track: TrackSamples, last_end_s: float | None, origin_s: float,
            open_ended: bool) -> Iterator[tuple[int, int, float]]:
    last_end = None if last_end_s is None else last_end_s * track.timescale
    for need, t in _track_steps(track, last_end, origin_s, open_ended):
        yield need, index, t


def build_timeline(source: str, tracks: Iterable[TrackSamples], duration_s: float | None,
                   last_end_s: float | None = None, origin_s: float | None = None,
                   open_ended: bool = False) -> MediaTimeline:
    """Merge the tracks: at each byte count, playable time is the minimum over the tracks that list samples.

    Times count from ``origin_s`` (seconds in the container's time base; default: the earliest presentation
    start over the tracks, where a player starts). ``last_end_s`` is the presentation end of the whole file
    (seconds, in the container's time base) when the parser knows it has seen every sample; it then ends the
    final sample of each track lacking a duration. ``open_ended``: the listing may go on (a file cut short, whose
    index lists samples as they arrive), so samples not listed yet may be presented before listed ones, and a
    track with no sample yet may still get some (:func:`_awaited`).
    """
    tracks = list(tracks)
    listed: Sequence[TrackSamples] = [t for t in tracks if len(t)]
    if open_ended and _awaited(tracks):
        listed = []
    if origin_s is None:
        origin_s = min((min(t.pts) / t.timescale for t in listed), default=0.0)
    streams = [_tagged(index, track, last_end_s, origin_s, open_ended) for index, track in enumerate(listed)]
    current = [0.0] * len(listed)
    offsets: list[int] = []
    times: list[float] = []
    latest = 0.0
    for need, index, t in heapq.merge(*streams):
        current[index] = t
        latest = max(latest, t)
        value = min(current)
        if offsets and offsets[-1] == need:
            times[-1] = value
        elif value > (times[-1] if times else 0.0):
            offsets.append(need)
            times.append(value)
    return MediaTimeline(source, tuple(offsets), tuple(times), duration_s, latest if listed else None)
