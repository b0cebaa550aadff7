"""Rebuilds the RRD files of a run database, of our layout or of the 2015 one, from scratch."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from pytomo.errors import StorageError
from pytomo.figures import graphs, shared
from pytomo.readers.open import open_readonly
from pytomo.readers.points import Point, read_points
from pytomo.rrd.store import RrdStore, rrd_dir_for

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    """What a rebuild read and wrote."""

    database: Path
    folder: Path
    layout: str
    points: int = 0
    skipped: int = 0  # out of time order (for instance the hour repeated when summer time ends)
    bad_times: int = 0  # rows whose ID is not a time
    files: list[str] = field(default_factory=list)
    zone: str | None = "UTC"  # the zone of the times (None: local times of an unknown zone), as in range.json


def not_recorded(layout: str, points: list[Point]) -> tuple[str, ...]:
    """The data sources a database of ``layout`` does not record: for the 2015 layout, those it has no column for
    (:func:`pytomo.figures.shared`) and those none of its rows holds (a column the 2013 tables lack, or one the tool
    never filled); ours records every one (a figure it could not measure is NULL with its reason)."""
    if layout != "2015":
        return ()
    return tuple(g.ds for f, g in graphs()
                 if not shared(f, g) or all(p.values.get(g.ds) is None for p in points))


def rebuild(db_path: Path, *, tz: str | None = None, folder: Path | None = None) -> RebuildReport:
    """Write the RRD files of ``db_path`` into ``folder`` (default: beside it), replacing those there.

    The files are written into a temporary folder first and swapped in whole, so a reader never sees a half-built
    set. IDs of a 2015 table are wall times of the zone ``tz`` (IANA name); None: of an unknown zone, kept as
    floating seconds and labelled "local, zone unknown". Ours are UTC, shown in the run's own zone.
    """
    db_path = Path(db_path)
    final = Path(folder) if folder else rrd_dir_for(db_path)
    conn = open_readonly(db_path)
    try:
        read = read_points(conn, tz=tz)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the crawled rows of {db_path}: {exc}") from exc
    finally:
        conn.close()
    tmp = final.with_name(f"{final.name}.rebuild-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    store = RrdStore(tmp, zone=read.zone, source="2015" if read.layout == "2015" else "ours",
                     not_recorded=not_recorded(read.layout, read.points))
    try:
        for p in read.points:
            store.add(p)
        store.close()
        tmp.mkdir(parents=True, exist_ok=True)
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = RebuildReport(db_path, final, read.layout, store.points, store.skipped, read.bad_times,
                           sorted(p.name for p in final.glob("*.rrd")), read.zone)
    log.info("rebuilt %s: %d points, %d skipped, %d files", final, report.points, report.skipped, len(report.files))
    return report
