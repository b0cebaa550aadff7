"""Graphs of one data source drawn by rrdtool on request, cached on disk until the RRD file changes."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytomo.rrd.metrics import BY_NAME
from pytomo.rrd.store import (
    ARCHIVES,
    RRD_LOCK,
    STEP_S,
    OutdatedRrd,
    check_layout,
    last_point_s,
    range_info,
    rrdtool_module,
)
from pytomo.zones import UNKNOWN_LABEL

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "SPANS_S", "GraphCache", "OutdatedRrd", "frame", "graph_args", "notice_args", "span_is_empty"]

_MONTH_S = 31 * 86400
SPANS_S: dict[str, int | None] = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": _MONTH_S, "all": None}
MIN_SPAN_S = 30
WIDTH_PX, HEIGHT_PX = 640, 150
MIN_BIN_PX = 1  # an archive interval is never narrower than a pixel: rrdtool never merges two of them
PLAIN_UNITS = {"ms", "s", "%", "ratio", "stalls", "code"}  # numbers drawn as they are, no SI prefix
FORMATS = {"png": ("PNG", "image/png"), "svg": ("SVG", "image/svg+xml")}
STYLE_VERSION = "p2"  # part of the cache key: change it when the drawing changes
MAX_CACHED_FILES = 2000
EMPTY_TEXT = "no video in this span"
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


def span_is_empty(rrd: Path, metric: str, f: Frame) -> bool:
    """True when rrdtool has no known value of ``metric`` in the frame (the archive it draws, over its span)."""
    rrdtool = rrdtool_module()
    with RRD_LOCK:
        _times, names, rows = rrdtool.fetch(str(rrd), "AVERAGE", "-r", str(f.step_s), "-s", str(f.start_s),
                                            "-e", str(f.end_s))
    i = names.index(metric)
    return all(row[i] is None for row in rows)


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


def _legend(number: str, empty: bool, label: str) -> list[str]:
    """The legend: mean, min and max of the span, or the words saying it has no video; then the axis's zone."""
    zone = f"COMMENT:time axis\\: {_escape_text(label)}\\n"
    if empty:
        return ["LINE2:avg#B03A2E", f"COMMENT:{EMPTY_TEXT}\\n", zone]
    return ["LINE2:avg#B03A2E:average", f"GPRINT:avg:AVERAGE:mean {number}", f"GPRINT:lo:MIN:min {number}",
            f"GPRINT:hi:MAX:max {number}\\n", zone]


def graph_args(rrd: Path, metric: str, span: str, fmt: str, *, tz: str | None = None,
               empty: bool = False) -> list[str]:
    """The ``rrdtool graph`` arguments: per archive interval, the mean of its videos as a line over their min-max
    band, nothing where no video fell; a legend (or "no video in this span" when ``empty``) and the axis's zone."""
    m = BY_NAME[metric]
    f = frame(rrd, span, tz)
    p = _escape_path(rrd)
    scale = repr(m.scale)
    number = "%.3lf" if m.unit in PLAIN_UNITS else "%.3lf%s"
    g = m.graph
    band = ["CDEF:band=hi,lo,-", "AREA:lo", f"AREA:band#F5C6BF:{'' if empty else 'min to max'}:STACK"] if {
        "MIN", "MAX"} <= set(g.consolidations) else []
    return [
        "--imgformat", FORMATS[fmt][0], "--start", str(f.start_s), "--end", str(f.end_s), "--step", str(f.step_s),
        "--width", str(WIDTH_PX), "--height", str(HEIGHT_PX), "--title", m.label, "--vertical-label", m.unit,
        *(["--logarithmic"] if g.log_axis else ["--lower-limit", "0"]),
        *(["--upper-limit", "100", "--rigid"] if m.unit == "%" else ["--alt-autoscale-max"]),
        *(["--units-exponent", "0"] if m.unit in PLAIN_UNITS else []),
        "--color", "BACK#FFFFFF", "--color", "CANVAS#FFFFFF", "--color", "SHADEA#FFFFFF", "--color", "SHADEB#FFFFFF",
        f"DEF:raw={p}:{metric}:AVERAGE", f"DEF:rawlo={p}:{metric}:MIN", f"DEF:rawhi={p}:{metric}:MAX",
        f"CDEF:avg=raw,{scale},*", f"CDEF:lo=rawlo,{scale},*", f"CDEF:hi=rawhi,{scale},*", *band,
        *_legend(number, empty, f.label),
    ]


def draw(rrd: Path, metric: str, span: str, fmt: str, tz: str | None = None) -> dict:
    """rrdtool's ``graphv`` of one graph (``image``, ``legend[i]``, ...), its time axis drawn in its zone."""
    f = frame(rrd, span, tz)
    args = graph_args(rrd, metric, span, fmt, tz=tz, empty=span_is_empty(rrd, metric, f))
    rrdtool = rrdtool_module()
    with RRD_LOCK, drawing_zone(f.zone):
        return dict(rrdtool.graphv("-", *args))


def notice_args(rrd: Path, metric: str, fmt: str, text: str) -> list[str]:
    """The ``rrdtool graph`` arguments of an image that only says ``text`` (in place of a graph)."""
    return ["--imgformat", FORMATS[fmt][0], "--width", str(WIDTH_PX), "--height", str(HEIGHT_PX),
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
