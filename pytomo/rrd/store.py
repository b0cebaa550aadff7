"""The RRD files of one run: where they live, their layout (step, heartbeat, archives) and their updates."""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytomo.errors import NotConfigured, PytomoError
from pytomo.figures import graphs
from pytomo.readers.observations import file_label
from pytomo.readers.points import Point

log = logging.getLogger(__name__)

LAYOUT = 4  # 1: a video's value held until the next one (heartbeat 900 s); 2: each video covers its own second;
# 3: the throughputs' data sources named and stored as their figures (avg_throughput_bps in bit/s, not meas_thp_kbps);
# 4: each file has its counts file (how many videos each interval holds) and range.json says what was not recorded
STEP_S = 1  # a point is written at the end of the second it falls in, so its primary point is complete at once
HEARTBEAT_S = 1  # a value never stands for more than its own second: the second before a video is written unknown
# (primary points per row, rows): 1 s for 30 min, 1 min for 1 day, 5 min for 1 week, 30 min for 31 days,
# 6 h for a year; each as AVERAGE, MIN and MAX (about 5 MB a file).
ARCHIVES: tuple[tuple[int, int], ...] = ((1, 1800), (60, 1440), (300, 2016), (1800, 1488), (21600, 1464))
COARSEST_S = max(steps for steps, _rows in ARCHIVES) * STEP_S
# An interval of an archive is known as soon as one of its seconds holds a video (rrdtool allows xff < 1): one
# video in 6 hours is 21599 unknown seconds of 21600, below XFF * 21600; an interval without video stays unknown.
XFF = 0.99999
MAX_PUSH_S = 60  # a point in a second already written moves to the next free second, at most this far
MAX_SERVER_FILES = 50  # beyond this many cache servers in one run, points go to the service file only
RRD_DIR_SUFFIX = ".rrd"
COUNTS_DIR = "counts"  # <folder>/counts/<file>: per second, how many videos each data source of <file> holds
MEASURED_DS = "measured"  # in a counts file: every measured video (point), whatever it holds
# A count is 0 at every second without a video (known, not unknown), so its interval's mean times the interval is
# the number of videos in it: its heartbeat spans any gap between two videos.
COUNTS_HEARTBEAT_S = 400 * 86400
# {"layout": LAYOUT, "first_s": time of the first point (where the span "all" starts), "zone": the zone of the
# times (IANA name, or null: local times of an unknown zone kept as "floating" seconds), "source": the layout of the
# database the points come from ("ours" or "2015"), "not_recorded": the data sources that database does not record,
# "last_s": {file: its last point}, written when the files are closed}
RANGE_FILE = "range.json"
REBUILD_HINT = "./start_server.py --rebuild-rrd -f DB"

RRD_LOCK = threading.Lock()  # librrd keeps per-call state in globals: one call at a time in this process


class RrdError(PytomoError):
    """An RRD file could not be created, updated or read."""


class OutdatedRrd(RrdError):
    """The RRD files are of an older layout (see ``LAYOUT``): they must be rebuilt."""


def rrdtool_module() -> Any:
    """The rrdtool binding, or NotConfigured when it is missing."""
    try:
        import rrdtool
    except ImportError as exc:  # pragma: no cover - rrdtool is a dependency
        raise NotConfigured(f"the rrdtool binding is not installed ({exc})") from exc
    return rrdtool


def rrd_dir_for(db_path: Path) -> Path:
    """``<dir>/<name without .db>.rrd/``: the RRD folder of a run database."""
    name = db_path.name[:-3] if db_path.name.endswith(".db") else db_path.name
    return db_path.with_name(name + RRD_DIR_SUFFIX)


def service_file(folder: Path, service: str) -> Path:
    """The file of every point of one service."""
    return folder / f"service-{file_label(service)}.rrd"


def server_file(folder: Path, address: str) -> Path:
    """The file of the points of one cache server."""
    return folder / f"server-{file_label(address)}.rrd"


def counts_file(rrd: Path) -> Path:
    """The counts file of an RRD file: per second, 1 for each data source holding a video then, else 0."""
    return rrd.parent / COUNTS_DIR / rrd.name


def count_names() -> list[str]:
    """The data sources of a counts file: one per graph (videos with a value), then every measured video."""
    return [g.ds for _f, g in graphs()] + [MEASURED_DS]


def consolidations() -> tuple[str, ...]:
    """The consolidation functions the graphs ask for, each archived at every resolution."""
    wanted = {cf for _f, g in graphs() for cf in g.consolidations}
    return tuple(cf for cf in ("AVERAGE", "MIN", "MAX", "LAST") if cf in wanted)


def create_args(start_s: int) -> list[str]:
    """The ``rrdtool create`` arguments after the file name: one data source per declared graph."""
    args = ["--start", str(start_s), "--step", str(STEP_S)]
    args += [f"DS:{g.ds}:{g.ds_type}:{HEARTBEAT_S}:U:U" for _f, g in graphs()]
    args += [f"RRA:{cf}:{XFF}:{steps}:{rows}" for steps, rows in ARCHIVES for cf in consolidations()]
    return args


def counts_create_args(start_s: int) -> list[str]:
    """The ``rrdtool create`` arguments of a counts file: the same archives, averages only (about 1.7 MB)."""
    args = ["--start", str(start_s), "--step", str(STEP_S)]
    args += [f"DS:{name}:GAUGE:{COUNTS_HEARTBEAT_S}:0:U" for name in count_names()]
    args += [f"RRA:AVERAGE:{XFF}:{steps}:{rows}" for steps, rows in ARCHIVES]
    return args


def _value(v: float | None) -> str:
    return "U" if v is None else repr(float(v))


@dataclass(frozen=True)
class RangeInfo:
    """What ``range.json`` says of a folder's files."""

    layout: int = 1
    first_s: float | None = None
    zone: str | None = "UTC"  # None: local times of an unknown zone, kept as floating seconds
    last_s: dict[str, int] = field(default_factory=dict)
    source: str = "ours"  # the layout of the database the points come from: "ours" or "2015"
    not_recorded: tuple[str, ...] = ()  # data sources that database does not record (a 2015 one: start_s, ...)

    @property
    def outdated(self) -> bool:
        """True when the files are of an older layout and must be rebuilt."""
        return self.layout < LAYOUT


def range_info(folder: Path) -> RangeInfo:
    """The ``range.json`` of ``folder``; a missing or unreadable one is taken as the old layout."""
    try:
        data: Any = json.loads((folder / RANGE_FILE).read_text())
    except (OSError, ValueError):
        return RangeInfo()
    if not isinstance(data, dict):
        return RangeInfo()
    first, zone, last, layout = data.get("first_s"), data.get("zone"), data.get("last_s"), data.get("layout")
    layout = layout if isinstance(layout, int) else 1
    source, missing = data.get("source"), data.get("not_recorded")
    return RangeInfo(layout, float(first) if isinstance(first, (int, float)) else None,
                     zone if isinstance(zone, str) else None,
                     {k: int(v) for k, v in last.items() if isinstance(v, int)} if isinstance(last, dict) else {},
                     source if isinstance(source, str) else "ours",
                     tuple(n for n in missing if isinstance(n, str)) if isinstance(missing, list) else ())


def check_layout(folder: Path) -> RangeInfo:
    """The folder's range, or OutdatedRrd saying how to rebuild files of an older layout."""
    info = range_info(folder)
    if info.outdated:
        raise OutdatedRrd(f"the RRD files in {folder.name} are of an older layout (version {info.layout}, this "
                          f"Pytomo writes {LAYOUT}): rebuild them with '{REBUILD_HINT}'")
    return info


@dataclass
class RrdStore:
    """Writes points into the service and server files of one folder, and their counts files; times only go forward.

    ``zone`` is recorded in ``range.json``: the zone the times are shown in (None: local times of an unknown zone);
    so are ``source``, the layout of the database the points come from, and ``not_recorded``, the data sources
    that database does not record (its graphs say "not recorded" rather than "no video").
    """

    folder: Path
    zone: str | None = "UTC"
    source: str = "ours"
    not_recorded: tuple[str, ...] = ()
    last_s: dict[Path, int] = field(default_factory=dict)
    points: int = 0
    skipped: int = 0

    def _write_range(self, first_s: int, last_s: dict[str, int] | None = None) -> None:
        data: dict[str, Any] = {"layout": LAYOUT, "first_s": first_s, "zone": self.zone, "source": self.source,
                                "not_recorded": list(self.not_recorded)}
        if last_s is not None:
            data["last_s"] = last_s
        (self.folder / RANGE_FILE).write_text(json.dumps(data, sort_keys=True))

    def _create(self, path: Path, t: int) -> int:
        """Create ``path`` for a first point at ``t``; the time of its last update."""
        rrdtool = rrdtool_module()
        counts = counts_file(path)
        counts.parent.mkdir(parents=True, exist_ok=True)
        rrdtool.create(str(path), *create_args(t - 2 * STEP_S))
        # from the coarsest boundary before: every interval of every archive is whole, all its seconds counted
        rrdtool.create(str(counts), *counts_create_args((t - 2 * STEP_S) // COARSEST_S * COARSEST_S))
        if not (self.folder / RANGE_FILE).exists():
            self._write_range(t)
        return t - 2 * STEP_S

    def _prepare(self, path: Path, t_s: float) -> tuple[int, int] | None:
        """The second to update ``path`` at and its last update, creating the file if needed; None to skip an
        out-of-order point."""
        t = math.ceil(t_s)
        last = self.last_s.get(path)
        if last is None:
            last = int(rrdtool_module().last(str(path))) if path.exists() else self._create(path, t)
        if t <= last:
            if last - t >= MAX_PUSH_S:
                return None
            t = last + STEP_S  # rrdtool takes one update per second and file: the next free second
        return t, last

    def _update(self, path: Path, point: Point) -> bool:
        rrdtool = rrdtool_module()
        prepared = self._prepare(path, point.t_s)
        if prepared is None:
            return False
        t, last = prepared
        values = [point.values.get(g.ds) for _f, g in graphs()]
        counts = ":".join([*("0" if v is None else "1" for v in values), "1"])
        if last < t - STEP_S:  # the time since the last point is unknown, not this video's value; it holds no video
            rrdtool.update(str(path), f"{t - STEP_S}:{':'.join('U' for _ in graphs())}")
            rrdtool.update(str(counts_file(path)), f"{t - STEP_S}:{':'.join('0' for _ in count_names())}")
        rrdtool.update(str(path), f"{t}:{':'.join(_value(v) for v in values)}")
        rrdtool.update(str(counts_file(path)), f"{t}:{counts}")
        self.last_s[path] = t
        return True

    def add(self, point: Point) -> bool:
        """Update the service file and the server file with one point; False when it was out of order."""
        try:
            with RRD_LOCK:
                ok = self._update(service_file(self.folder, point.service), point)
                server = server_file(self.folder, point.server)
                if ok and (server in self.last_s or server.exists() or self._server_count() < MAX_SERVER_FILES):
                    self._update(server, point)
        except Exception as exc:  # librrd reports everything as rrdtool.OperationalError or ProgrammingError
            if isinstance(exc, PytomoError):
                raise
            raise RrdError(f"cannot update the RRD files in {self.folder}: {exc}") from exc
        if ok:
            self.points += 1
        else:
            self.skipped += 1
        return ok

    def close(self) -> None:
        """Complete every archive's last interval (an unknown update up to the next 6 h boundary) and record each
        file's last point in ``range.json``: without it the last videos of a run would never reach the coarser
        archives. Nothing can be added to the files afterwards."""
        if not self.last_s:
            return
        rrdtool = rrdtool_module()
        unknown = ":".join("U" for _ in graphs())
        none = ":".join("0" for _ in count_names())
        try:
            with RRD_LOCK:
                for path, last in self.last_s.items():
                    end = -(-last // COARSEST_S) * COARSEST_S
                    if end > last:
                        rrdtool.update(str(path), f"{end}:{unknown}")
                        rrdtool.update(str(counts_file(path)), f"{end}:{none}")
                first = range_info(self.folder).first_s
                self._write_range(int(first) if first is not None else min(self.last_s.values()),
                                  {p.name: t for p, t in sorted(self.last_s.items())})
        except Exception as exc:  # as in add
            raise RrdError(f"cannot close the RRD files in {self.folder}: {exc}") from exc

    def _server_count(self) -> int:
        return sum(1 for p in self.folder.glob("server-*.rrd")) if self.folder.exists() else 0


def first_point_s(folder: Path) -> float | None:
    """Time of the first point written into ``folder``, or None."""
    return range_info(folder).first_s


def last_point_s(rrd: Path) -> int:
    """Time of the last point of one file: as recorded when the files were closed, else its last update."""
    recorded = range_info(rrd.parent).last_s.get(rrd.name)
    if recorded is not None:
        return recorded
    with RRD_LOCK:
        return int(rrdtool_module().last(str(rrd)))
