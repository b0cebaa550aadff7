"""Keeps the RRD files of a running crawl (a Sink): one update per stored video; a failure is logged, never raised."""

from __future__ import annotations

import logging
from pathlib import Path

from pytomo.errors import NotConfigured
from pytomo.results import Sink, VideoMeasurement
from pytomo.rrd.points import points_from_measurement
from pytomo.rrd.store import RrdStore, rrd_dir_for, rrdtool_module

log = logging.getLogger(__name__)

MAX_FAILURES = 5  # after this many failed videos in a row the recorder turns itself off


class RrdRecorder(Sink):
    """Feeds each stored video to the RRD files beside the run database."""

    def __init__(self, db_path: Path) -> None:
        self.folder = rrd_dir_for(Path(db_path))
        self.store = RrdStore(self.folder)
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
