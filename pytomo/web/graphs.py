"""Graphs of one data source drawn by rrdtool on request, cached on disk until the RRD file changes."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from pytomo.rrd.metrics import BY_NAME
from pytomo.rrd.store import RRD_LOCK, STEP_S, first_point_s, rrdtool_module

log = logging.getLogger(__name__)

_MONTH_S = 31 * 86400
SPANS_S: dict[str, int | None] = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": _MONTH_S, "all": None}
MIN_SPAN_S = 30
WIDTH_PX, HEIGHT_PX = 640, 150
PLAIN_UNITS = {"ms", "s", "%", "ratio", "stalls", "code"}  # numbers drawn as they are, no SI prefix
FORMATS = {"png": ("PNG", "image/png"), "svg": ("SVG", "image/svg+xml")}
STYLE_VERSION = "1"  # part of the cache key: change it when the drawing changes
MAX_CACHED_FILES = 2000


def _escape_path(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


def time_range(rrd: Path, span: str) -> tuple[int, int]:
    """``(start, end)`` of a span, ending at the newest point of the file (so a finished run still shows)."""
    rrdtool = rrdtool_module()
    with RRD_LOCK:
        last = int(rrdtool.last(str(rrd)))
    end = (last // STEP_S + 1) * STEP_S
    length = SPANS_S[span]
    if length is None:
        first = first_point_s(rrd.parent)
        start = int(first) - STEP_S if first is not None else end - _MONTH_S
        start -= (end - start) // 20  # a margin before the first point
        start = min(start, end - MIN_SPAN_S)
    else:
        start = end - length
    return start, end


def graph_args(rrd: Path, metric: str, span: str, fmt: str) -> list[str]:
    """The ``rrdtool graph`` arguments: the average as a line over its min-max band, with a legend."""
    m = BY_NAME[metric]
    start, end = time_range(rrd, span)
    p = _escape_path(rrd)
    scale = repr(m.scale)
    number = "%.3lf" if m.unit in PLAIN_UNITS else "%.3lf%s"
    g = m.graph
    band = ["CDEF:band=hi,lo,-", "AREA:lo", "AREA:band#F5C6BF:min to max:STACK"] if {"MIN", "MAX"} <= set(
        g.consolidations) else []
    return [
        "--imgformat", FORMATS[fmt][0], "--start", str(start), "--end", str(end),
        "--width", str(WIDTH_PX), "--height", str(HEIGHT_PX), "--title", m.label, "--vertical-label", m.unit,
        *(["--logarithmic"] if g.log_axis else ["--lower-limit", "0"]), "--alt-autoscale-max", "--slope-mode",
        *(["--units-exponent", "0"] if m.unit in PLAIN_UNITS else []),
        "--color", "BACK#FFFFFF", "--color", "CANVAS#FFFFFF", "--color", "SHADEA#FFFFFF", "--color", "SHADEB#FFFFFF",
        f"DEF:raw={p}:{metric}:AVERAGE", f"DEF:rawlo={p}:{metric}:MIN", f"DEF:rawhi={p}:{metric}:MAX",
        f"CDEF:avg=raw,{scale},*", f"CDEF:lo=rawlo,{scale},*", f"CDEF:hi=rawhi,{scale},*", *band,
        "LINE2:avg#B03A2E:average",
        f"GPRINT:avg:AVERAGE:mean {number}", f"GPRINT:lo:MIN:min {number}", f"GPRINT:hi:MAX:max {number}\\n",
    ]


class GraphCache:
    """Rendered graphs on disk, keyed by everything they depend on (file, its size and mtime, metric, span)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writes = 0

    def _key(self, rrd: Path, metric: str, span: str, fmt: str) -> str:
        st = rrd.stat()
        first = first_point_s(rrd.parent)
        text = f"{STYLE_VERSION}|{rrd.resolve()}|{st.st_mtime_ns}|{st.st_size}|{first}|{metric}|{span}|{fmt}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, rrd: Path, metric: str, span: str, fmt: str) -> tuple[bytes, str]:
        """The image and its ETag, drawn now or read from the cache."""
        key = self._key(rrd, metric, span, fmt)
        path = self.folder / f"{key}.{fmt}"
        try:
            return path.read_bytes(), key
        except OSError:
            pass
        args = graph_args(rrd, metric, span, fmt)
        rrdtool = rrdtool_module()
        with RRD_LOCK:
            image = rrdtool.graphv("-", *args)["image"]
        self._store(path, image)
        return image, key

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
