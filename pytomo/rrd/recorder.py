"""Keeps the RRD files of a running crawl (a Sink): one update per stored video; a failure is logged, never raised."""

from __future__ import annotations

import logging
from pathlib import Path

from pytomo.errors import NotConfigured
from pytomo.readers.open import open_readonly
from pytomo.readers.points import points_from_measurement, run_zone
from pytomo.results import Sink, VideoMeasurement
from pytomo.rrd.store import RrdStore, rrd_dir_for, rrdtool_module

log = logging.getLogger(__name__)

MAX_FAILURES = 5  # after this many failed videos in a row the recorder turns itself off


def _zone_of(db_path: Path) -> str:
    """The run's own zone (``run.timezone``), else UTC: what the graphs' time axes are drawn in."""
    try:
        conn = open_readonly(db_path)
    except Exception:  # intended catch-all: a zone the recorder cannot read only changes the axis, as UTC
        return "UTC"
    try:
        return run_zone(conn)
    finally:
        conn.close()


class RrdRecorder(Sink):
    """Feeds each stored video to the RRD files beside the run database."""

    def __init__(self, db_path: Path) -> None:
        self.folder = rrd_dir_for(Path(db_path))
        self.store = RrdStore(self.folder, zone=_zone_of(Path(db_path)))
        self.failures = 0
        self.enabled = True
        try:
            rrdtool_module()
        except NotConfigured as exc:
            log.warning("Disabled RRD files: %s", exc)
            self.enabled = False

    def add(self, m: VideoMeasurement) -> None:
        """Update the files with the video's downloads; log and go on when that fails."""
        if not self.enabled:
            return
        try:
            for point in points_from_measurement(m):
                if not self.store.add(point):
                    log.warning("RRD: %s skipped, its time is before the last update", m.page_url)
            self.failures = 0
        except Exception as exc:  # intended catch-all: the crawl goes on whatever happens to the graphs (logged
            # with its traceback the first time)
            self.failures += 1
            log.warning("RRD: cannot record %s: %s", m.page_url, exc, exc_info=self.failures == 1)
            if self.failures >= MAX_FAILURES:
                log.warning("Disabled RRD files after %d failures in a row; rebuild them with "
                            "'./start_server.py --rebuild-rrd -f DB'", self.failures)
                self.enabled = False

    def close(self, status: str, stop_reason: str | None = None) -> None:
        """The run is over: complete the files' last intervals so the last videos reach every archive."""
        if not self.enabled:
            return
        try:
            self.store.close()
        except Exception as exc:  # intended catch-all, as in add
            log.warning("RRD: cannot close the files in %s: %s; rebuild them with "
                        "'./start_server.py --rebuild-rrd -f DB'", self.folder, exc)
