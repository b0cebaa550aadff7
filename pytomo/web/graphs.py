"""Graphs of one data source drawn by rrdtool on request, cached on disk until the RRD file changes."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytomo.rrd.metrics import BY_NAME, SI_UNITS, Metric, si_prefix
from pytomo.rrd.store import (
    ARCHIVES,
    MEASURED_DS,
    REBUILD_HINT,
    RRD_LOCK,
    STEP_S,
    OutdatedRrd,
    RangeInfo,
    RrdError,
    check_layout,
    counts_file,
    last_point_s,
    range_info,
    rrdtool_module,
)
from pytomo.zones import UNKNOWN_LABEL

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "SPANS_S", "GraphCache", "OutdatedRrd", "Videos", "frame", "graph_args", "notice_args",
           "span_is_empty", "span_videos"]

_MONTH_S = 31 * 86400
SPANS_S: dict[str, int | None] = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": _MONTH_S, "all": None}
MIN_SPAN_S = 30
WIDTH_PX, HEIGHT_PX = 640, 150
MIN_BIN_PX = 1  # an archive interval is never narrower than a pixel: rrdtool never merges two of them
FORMATS = {"png": ("PNG", "image/png"), "svg": ("SVG", "image/svg+xml")}  # what the server serves
IMAGE_FORMATS = {"png": "PNG", "svg": "SVG", "pdf": "PDF"}  # what rrdtool draws (PDF keeps its text: tests read it)
STYLE_VERSION = "p3"  # part of the cache key: change it when the drawing changes
MAX_CACHED_FILES = 2000
EMPTY_TEXT = "no video in this span"
NOT_RECORDED_TEXT = "not recorded: this database (2015 layout) has no such figure"
GRID_LINES = 5  # a linear axis has about this many steps of 1, 2 or 5 times a power of ten, each labelled
LINE_COLOUR, BAND_COLOUR, REFERENCE_COLOUR = "#B03A2E", "#F5C6BF", "#1F5FAF"
ZONEINFO = Path("/usr/share/zoneinfo")


@dataclass(frozen=True)
class Frame:
    """What a graph shows: its span, the archive interval it draws, and the zone of its time axis."""

    start_s: int
    end_s: int
    step_s: int  # one archive interval: each is the mean (min, max) of the videos in it, unknown without one
    zone: str  # the TZ the axis is drawn in (floating times are drawn as UTC)
    label: str  # the zone as the graph names it: UTC, Europe/Paris, or "local, zone unknown"


def _escape_path(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


def _escape_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def time_range(rrd: Path, span: str) -> tuple[int, int]:
    """``(start, end)`` of a span, ending at the newest point of the file (so a finished run still shows)."""
    end = (last_point_s(rrd) // STEP_S + 1) * STEP_S
    length = SPANS_S[span]
    if length is None:
        first = range_info(rrd.parent).first_s
        start = int(first) - STEP_S if first is not None else end - _MONTH_S
        start -= (end - start) // 20  # a margin before the first point
        start = min(start, end - MIN_SPAN_S)
    else:
        start = end - length
    return start, end


def resolution_s(start_s: int, end_s: int) -> int:
    """The finest archive interval at least ``MIN_BIN_PX`` wide whose archive covers the span (else the coarsest)."""
    span_s = end_s - start_s
    for steps, rows in ARCHIVES:
        res_s = steps * STEP_S
        if res_s * WIDTH_PX >= MIN_BIN_PX * span_s and res_s * rows >= span_s:
            return res_s
    return ARCHIVES[-1][0] * STEP_S


def zone_of(rrd: Path, tz: str | None = None) -> tuple[str, str]:
    """``(TZ to draw in, label)``: the zone recorded with the files; for local times of an unknown zone (floating
    seconds, drawn as UTC) the server's ``--tz`` names them, else they are "local, zone unknown"."""
    zone = range_info(rrd.parent).zone
    if zone is not None:
        return zone, zone
    return "UTC", tz or UNKNOWN_LABEL


def frame(rrd: Path, span: str, tz: str | None = None) -> Frame:
    """The frame of a graph of ``rrd`` over ``span``; ``tz``: the server's zone of 2015 local times."""
    start, end = time_range(rrd, span)
    return Frame(start, end, resolution_s(start, end), *zone_of(rrd, tz))


@dataclass(frozen=True)
class Videos:
    """What the drawn intervals of one data source hold, per video: how many videos were measured, how many have a
    value, and the mean, smallest and largest of those values (times the graph's scale)."""

    measured: int = 0
    known: int = 0
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    step_s: int | None = None  # the interval rrdtool gave (a closed file keeps no 1 s archive: it gives minutes)


def _count(mean: float | None, step_s: int) -> int:
    """Videos in one interval of a counts file: its mean (videos per second) times its length."""
    return 0 if mean is None else round(mean * step_s)


def span_videos(rrd: Path, metric: str, f: Frame) -> Videos:
    """The videos of the frame's intervals (the archive it draws, over its span) for one data source.

    Each interval holds the mean, min and max of its videos and, in the counts file, how many there are, so the mean
    over the span is per video (an interval of 1 video weighs 1, one of 10 weighs 10), not per interval."""
    rrdtool = rrdtool_module()
    window = ("-r", str(f.step_s), "-s", str(f.start_s), "-e", str(f.end_s))
    with RRD_LOCK:
        (start, _end, step), names, means = rrdtool.fetch(str(rrd), "AVERAGE", *window)
        _t, _n, lows = rrdtool.fetch(str(rrd), "MIN", *window)
        _t, _n, highs = rrdtool.fetch(str(rrd), "MAX", *window)
        (c_start, _c_end, c_step), c_names, counts = rrdtool.fetch(str(counts_file(rrd)), "AVERAGE", *window)
    if (c_start, c_step) != (start, step) or len(counts) != len(means):
        raise RrdError(f"{counts_file(rrd)} does not match {rrd.name}: rebuild them with '{REBUILD_HINT}'")
    i, j, every = names.index(metric), c_names.index(metric), c_names.index(MEASURED_DS)
    measured = sum(_count(c[every], step) for c in counts)
    total, known = 0.0, 0
    for mean, c in zip(means, counts, strict=True):
        n = _count(c[j], step)
        if mean[i] is not None and n:
            total, known = total + mean[i] * n, known + n
    scale = BY_NAME[metric].scale
    low = min((r[i] for r in lows if r[i] is not None), default=None)
    high = max((r[i] for r in highs if r[i] is not None), default=None)
    return Videos(measured, known, scale * total / known if known else None,
                  None if low is None else scale * low, None if high is None else scale * high, step)


def span_is_empty(rrd: Path, metric: str, f: Frame) -> bool:
    """True when no video of the frame's intervals has a value of ``metric``."""
    return span_videos(rrd, metric, f).known == 0


def _tz_env(zone: str) -> str:
    """The TZ value of an IANA zone: its name when the system has it, else the file of the tzdata package."""
    if zone == "UTC" or (ZONEINFO / zone).is_file():
        return zone
    spec = importlib.util.find_spec("tzdata")
    if spec is None or spec.origin is None:  # pragma: no cover - tzdata is a dependency
        return zone
    return ":" + str(Path(spec.origin).parent / "zoneinfo" / zone)


@contextmanager
def drawing_zone(zone: str) -> Iterator[None]:
    """The process's TZ set to ``zone`` (rrdtool draws time axes in it), then restored; hold RRD_LOCK."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = _tz_env(zone)
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def _videos(n: int) -> str:
    return f"{n:,} video{'' if n == 1 else 's'}"


def _interval(step_s: int) -> str:
    """An archive interval in words: 1 s, 5 min, 6 h."""
    for unit_s, unit in ((3600, "h"), (60, "min")):
        if step_s >= unit_s and step_s % unit_s == 0:
            return f"{step_s // unit_s} {unit}"
    return f"{step_s} s"


def legend_lines(m: Metric, v: Videos | None, info: RangeInfo) -> list[str]:
    """What the legend says of the span's videos: "not recorded" (a 2015-layout database has no such figure), "no
    video in this span", or the mean, min and max per video and how many videos the graph leaves out, and why."""
    if m.name in info.not_recorded:
        return [NOT_RECORDED_TEXT]
    if v is None:
        return []
    if not v.measured:
        return [EMPTY_TEXT]
    why = "no value recorded" if info.source == "2015" else m.graph.left_out or "no value"
    if not v.known:
        return [f"none of the {_videos(v.measured)} in this span has a value: {why}"]
    if m.graph.share:
        part = round((v.mean or 0.0) / m.scale * v.known)
        values = f"{m.label}: {part:,} of {_videos(v.known)} ({m.shown(v.mean)})"
    else:
        values = f"per video: mean {m.shown(v.mean)}, min {m.shown(v.low)}, max {m.shown(v.high)}"
    left = v.measured - v.known
    counted = f"{v.known:,} of {_videos(v.measured)}; {left:,} left out: {why}" if left else (
        f"{_videos(v.measured)}, none left out")
    return [values, counted]


def axis_args(m: Metric, v: Videos | None) -> list[str]:
    """The vertical axis: logarithmic (SI labels: 1 M, 10 M) with the reference value in view, or linear from 0 to
    a round value above the span's largest video, every line labelled, with as many decimals as its step needs so
    that no two labels are the same (0.02, 0.04, not 0.0, 0.0); bit/s and bytes with an SI prefix (0.5 M, 1.0 M)."""
    g = m.graph
    if g.log_axis:
        args = ["--logarithmic", "--units=si"]
        if g.reference is not None:  # the line stays in view: the axis spans at least half to twice its value
            args += ["--lower-limit", repr(g.reference[0] / 2), "--upper-limit", repr(g.reference[0] * 2)]
        elif v is None or v.high is None:  # nothing to draw: three decades rather than rrdtool's 1 u to 1
            args += ["--lower-limit", "1", "--upper-limit", "1000", "--rigid"]
        return args
    top = 100.0 if g.share else v.high if v is not None and v.high is not None and v.high > 0 else 1.0
    raw = top / GRID_LINES
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(k * magnitude for k in (1, 2, 5, 10) if k * magnitude >= raw * (1 - 1e-9))
    upper = math.ceil(top / step - 1e-9) * step
    args = ["--lower-limit", "0", "--upper-limit", repr(upper), "--rigid", "--y-grid", f"{step!r}:1"]
    if m.unit in SI_UNITS:  # rrdtool labels the steps of 0.2, 0.5, 1, 2, 5, ... of the prefix's unit itself
        return [*args, "--units-exponent", str(round(math.log10(si_prefix(upper)[0])))]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    widest = max(len(f"{x:.{decimals}f}") for x in (0.0, upper))
    return [*args, "--units-exponent", "0", "--units-length", str(widest + 1), "--left-axis-format", f"%.{decimals}lf"]


def graph_args(rrd: Path, metric: str, span: str, fmt: str, *, tz: str | None = None,
               videos: Videos | None = None) -> list[str]:
    """The ``rrdtool graph`` arguments: per archive interval, the mean of its videos as a line over their min-max
    band, nothing where no video fell; the axis (:func:`axis_args`), a line at the reference value of a ratio; the
    legend (:func:`legend_lines`, from ``videos``, the span's videos) and the axis's zone."""
    m = BY_NAME[metric]
    f = frame(rrd, span, tz)
    info = range_info(rrd.parent)
    p = _escape_path(rrd)
    scale = repr(m.scale)
    g = m.graph
    lines = legend_lines(m, videos, info)
    drawn = videos is not None and videos.known > 0 and m.name not in info.not_recorded
    each = f"mean of the videos of each {_interval(videos.step_s if videos and videos.step_s else f.step_s)} interval"
    band = ["CDEF:band=hi,lo,-", "AREA:lo", f"AREA:band{BAND_COLOUR}:{'their min to max' if drawn else ''}:STACK"
            ] if {"MIN", "MAX"} <= set(g.consolidations) else []
    line = [f"LINE2:avg{LINE_COLOUR}" + (f":{_escape_text(each)}\\n" if drawn else "")]
    reference = [f"HRULE:{g.reference[0]!r}{REFERENCE_COLOUR}:{_escape_text(f'{g.reference[0]:g}: {g.reference[1]}')}"
                 "\\n:dashes"] if g.reference is not None else []
    return [
        "--imgformat", IMAGE_FORMATS[fmt], "--start", str(f.start_s), "--end", str(f.end_s), "--step", str(f.step_s),
        "--width", str(WIDTH_PX), "--height", str(HEIGHT_PX), "--title", m.label, "--vertical-label", m.unit,
        *axis_args(m, videos),
        "--color", "BACK#FFFFFF", "--color", "CANVAS#FFFFFF", "--color", "SHADEA#FFFFFF", "--color", "SHADEB#FFFFFF",
        f"DEF:raw={p}:{metric}:AVERAGE", f"DEF:rawlo={p}:{metric}:MIN", f"DEF:rawhi={p}:{metric}:MAX",
        f"CDEF:avg=raw,{scale},*", f"CDEF:lo=rawlo,{scale},*", f"CDEF:hi=rawhi,{scale},*", *band, *line, *reference,
        *(f"COMMENT:{_escape_text(text)}\\n" for text in lines),
        f"COMMENT:time axis\\: {_escape_text(f.label)}\\n",
    ]


def draw(rrd: Path, metric: str, span: str, fmt: str, tz: str | None = None) -> dict:
    """rrdtool's ``graphv`` of one graph (``image``, ``legend[i]``, ...), its time axis drawn in its zone."""
    f = frame(rrd, span, tz)
    args = graph_args(rrd, metric, span, fmt, tz=tz, videos=span_videos(rrd, metric, f))
    rrdtool = rrdtool_module()
    with RRD_LOCK, drawing_zone(f.zone):
        return dict(rrdtool.graphv("-", *args))


def notice_args(rrd: Path, metric: str, fmt: str, text: str) -> list[str]:
    """The ``rrdtool graph`` arguments of an image that only says ``text`` (in place of a graph)."""
    return ["--imgformat", IMAGE_FORMATS[fmt], "--width", str(WIDTH_PX), "--height", str(HEIGHT_PX),
            "--title", BY_NAME[metric].label, "--color", "BACK#FFFFFF", "--color", "CANVAS#FFFFFF",
            f"DEF:raw={_escape_path(rrd)}:{metric}:AVERAGE", "LINE1:raw",  # no colour: nothing drawn
            *(f"COMMENT:{_escape_text(line)}\\n" for line in _wrap(text))]


def _wrap(text: str, width: int = 90) -> list[str]:
    lines: list[str] = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


class GraphCache:
    """Rendered graphs on disk, keyed by everything they depend on (file, its size and mtime, metric, span, zone)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writes = 0

    def _key(self, *parts: object) -> str:
        text = "|".join(str(p) for p in (STYLE_VERSION, *parts))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _file_key(self, rrd: Path) -> tuple[object, ...]:
        st = rrd.stat()
        try:
            range_mtime = (rrd.parent / "range.json").stat().st_mtime_ns
        except OSError:
            range_mtime = 0
        return rrd.resolve(), st.st_mtime_ns, st.st_size, range_mtime

    def get(self, rrd: Path, metric: str, span: str, fmt: str, tz: str | None = None) -> tuple[bytes, str]:
        """The image and its ETag, drawn now or read from the cache; ``tz``: the server's zone of 2015 local times.

        OutdatedRrd when the files are of the older layout (see :meth:`notice`)."""
        check_layout(rrd.parent)
        key = self._key(*self._file_key(rrd), metric, span, fmt, tz)
        path = self.folder / f"{key}.{fmt}"
        try:
            return path.read_bytes(), key
        except OSError:
            pass
        image = draw(rrd, metric, span, fmt, tz)["image"]
        self._store(path, image)
        return image, key

    def notice(self, rrd: Path, metric: str, fmt: str, text: str) -> tuple[bytes, str]:
        """An image saying ``text`` (why there is no graph, such as OutdatedRrd's message) and its ETag."""
        key = self._key(*self._file_key(rrd), metric, fmt, "notice", text)
        rrdtool = rrdtool_module()
        with RRD_LOCK:
            return rrdtool.graphv("-", *notice_args(rrd, metric, fmt, text))["image"], key

    def _store(self, path: Path, image: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(image)
            os.replace(tmp, path)
        except OSError as exc:  # a cache that cannot be written only costs time
            log.warning("graph cache: cannot write %s: %s", path, exc)
            return
        self.writes += 1
        if self.writes % 100 == 0:
            self.prune()

    def prune(self) -> None:
        """Keep the newest ``MAX_CACHED_FILES`` images."""
        try:
            files = sorted(self.folder.glob("*.*"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in files[MAX_CACHED_FILES:]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("graph cache: cannot prune %s: %s", self.folder, exc)
