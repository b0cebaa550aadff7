"""The RRD files of one run: where they live, their layout (step, heartbeat, archives) and their updates."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pytomo.errors import NotConfigured, PytomoError
from pytomo.figures import graphs
from pytomo.rrd.points import Point

log = logging.getLogger(__name__)

STEP_S = 1  # a point is written at the end of the second it falls in, so its primary point is complete at once
HEARTBEAT_S = 900  # a video's value stands for the time since the previous one, up to 15 minutes
XFF = 0.5
# (primary points per row, rows): 1 s for 30 min, 1 min for 1 day, 5 min for 1 week, 30 min for 31 days,
# 6 h for a year; each as AVERAGE, MIN and MAX (about 5 MB a file).
ARCHIVES: tuple[tuple[int, int], ...] = ((1, 1800), (60, 1440), (300, 2016), (1800, 1488), (21600, 1464))
MAX_PUSH_S = 60  # a point in a second already written moves to the next free second, at most this far
MAX_SERVER_FILES = 50  # beyond this many cache servers in one run, points go to the service file only
RRD_DIR_SUFFIX = ".rrd"
RANGE_FILE = "range.json"  # {"first_s": time of the first point}: where the span "all" of the graphs starts

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
RRD_LOCK = threading.Lock()  # librrd keeps per-call state in globals: one call at a time in this process


class RrdError(PytomoError):
    """An RRD file could not be created, updated or read."""


def rrdtool_module():
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


def file_label(key: str) -> str:
    """A service label or an address made safe as a file name part (``:`` of IPv6 becomes ``-``)."""
    return _SAFE.sub("-", key).strip("-.") or "unknown"


def service_file(folder: Path, service: str) -> Path:
    """The file of every point of one service."""
    return folder / f"service-{file_label(service)}.rrd"


def server_file(folder: Path, address: str) -> Path:
    """The file of the points of one cache server."""
    return folder / f"server-{file_label(address)}.rrd"


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


def _value(v: float | None) -> str:
    return "U" if v is None else repr(float(v))


@dataclass
class RrdStore:
    """Writes points into the service and server files of one folder; times only go forward."""

    folder: Path
    last_s: dict[Path, int] = field(default_factory=dict)
    points: int = 0
    skipped: int = 0

    def _prepare(self, path: Path, t_s: float) -> int | None:
        """The second to update ``path`` at, creating the file if needed; None to skip an out-of-order point."""
        rrdtool = rrdtool_module()
        t = math.ceil(t_s)
        last = self.last_s.get(path)
        if last is None:
            if path.exists():
                last = int(rrdtool.last(str(path)))
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                rrdtool.create(str(path), *create_args(t - STEP_S))
                if not (self.folder / RANGE_FILE).exists():
                    (self.folder / RANGE_FILE).write_text(json.dumps({"first_s": t}))
                last = t - STEP_S
        if t <= last:
            if last - t >= MAX_PUSH_S:
                return None
            t = last + STEP_S  # rrdtool takes one update per second and file: the next free second
        return t

    def _update(self, path: Path, point: Point) -> bool:
        rrdtool = rrdtool_module()
        t = self._prepare(path, point.t_s)
        if t is None:
            return False
        values = ":".join(_value(point.values.get(g.ds)) for _f, g in graphs())
        rrdtool.update(str(path), f"{t}:{values}")
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

    def _server_count(self) -> int:
        return sum(1 for p in self.folder.glob("server-*.rrd")) if self.folder.exists() else 0


def first_point_s(folder: Path) -> float | None:
    """Time of the first point written into ``folder``, or None."""
    try:
        value = json.loads((folder / RANGE_FILE).read_text()).get("first_s")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None
