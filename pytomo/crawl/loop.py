"""The crawl: seeds, rounds of related videos, limits, pacing, every video handed to the sinks, and the summary."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from pytomo.engine.pipeline import Pipeline
from pytomo.engine.schedule import SLOWDOWN_KINDS, LoopSpacing, bot_check_pause_s
from pytomo.errors import StorageError, UnsupportedURL
from pytomo.results import CrawlSummary, Sink, VideoMeasurement, utc_now
from pytomo.services import for_url
from pytomo.services.base import Service, ServiceContext
from pytomo.services.outcomes import SLOWDOWN_KINDS as PLATFORM_SLOWDOWN_KINDS
from pytomo.settings import Settings

log = logging.getLogger(__name__)
# outcomes after which the crawl pauses longer and longer: bot checks, rate limits, and an IP block
SLOW_KINDS = tuple(dict.fromkeys((*SLOWDOWN_KINDS, *PLATFORM_SLOWDOWN_KINDS)))


class Crawler:
    """Runs rounds over the seeds (and, with ``related``, their related videos) until a limit or Ctrl-C."""

    def __init__(self, settings: Settings, ctx: ServiceContext, service: Service, pipeline: Pipeline,
                 sinks: Sequence[Sink], stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic, wait: Callable[[float], bool] | None = None) -> None:
        self.settings = settings
        self.ctx = ctx
        self.service = service
        self.pipeline = pipeline
        self.sinks = tuple(sinks)  # the database first: when it cannot store, the others do not see the video
        self.stop = stop
        self.rng = random.Random(settings.random_seed)
        self._instances: dict[type[Service], Service] = {type(service): service}
        # pacing (pytomo/engine/schedule.py): ``wait(seconds)`` returns True when the crawl was stopped meanwhile
        self.clock = clock
        self.wait = wait or stop.wait
        self.spacing = LoopSpacing(settings.loop_mean_interval_s, settings.loop_min_interval_s,
                                   settings.loop_max_interval_s,
                                   random.Random(None if settings.random_seed is None else settings.random_seed + 1))
        self.bot_checks = 0  # bot checks in a row
        self.waits_s: deque[float] = deque(maxlen=1000)  # the latest pauses taken, for the tests
        self._pause_s = 0.0  # the pause due before the next measurement

    def _service_for(self, url: str) -> Service | None:
        cls = for_url(url, type(self.service))
        if cls is None:
            return None
        if cls not in self._instances:
            self._instances[cls] = cls(self.ctx)
        return self._instances[cls]

    def run(self, seeds: list[tuple[str, str]]) -> CrawlSummary:
        """Crawl ``(page_url, seed_source)`` pairs; each video goes to the sinks as soon as it is measured."""
        s = self.settings
        summary = CrawlSummary()
        measured: set[str] = set()
        inputs = list(dict.fromkeys(seeds))
        self._pause_s = 0.0  # taken before the next measurement, so that none follows the last one
        for round_no in range(s.max_rounds):
            summary.rounds = round_no + 1
            following = self._round(inputs, round_no, summary, measured)
            if following is None:
                return summary
            if s.loop:
                continue
            inputs = [(u, src) for u, src in dict.fromkeys(following) if u not in measured]
            if not inputs:
                summary.stop_reason = "no more videos to crawl"
                return summary
        summary.stop_reason = f"reached {s.max_rounds} rounds (-r)"
        return summary

    def _round(self, inputs: list[tuple[str, str]], round_no: int, summary: CrawlSummary,
               measured: set[str]) -> list[tuple[str, str]] | None:
        """Measure one round's videos; the related videos they list, or None when the crawl stops here
        (``summary.stop_reason`` says why)."""
        s = self.settings
        following: list[tuple[str, str]] = []
        for url, source in inputs:
            if self.stop.is_set():
                summary.stop_reason = "interrupted"
                return None
            if not s.loop and url in measured:
                continue
            if not s.loop and summary.measured >= s.max_crawled_urls:
                summary.stop_reason = f"reached {s.max_crawled_urls} measured videos (-u)"
                return None
            if self._pause(summary):
                return None
            started_s = self.clock()
            m = self._measure(url, round_no, source)
            summary.videos.append(m)
            if not self._store(m, summary):
                return None
            measured.add(url)
            if m.status == "interrupted":
                summary.stop_reason = "interrupted"
                return None
            if s.related and not s.loop:
                following += self._related(m, measured)
            self._pause_s = self._pause_after(m, started_s)
            if m.error_kind in SLOW_KINDS:
                summary.slowdowns[m.error_kind] = summary.slowdowns.get(m.error_kind, 0) + 1
        return following

    def _pause(self, summary: CrawlSummary) -> bool:
        """Take the pause due before the next measurement; True when the crawl was stopped meanwhile."""
        pause_s = self._pause_s
        if pause_s <= 0:
            return False
        self.waits_s.append(pause_s)
        if self.bot_checks:  # a pause the platform's push-back made longer
            summary.longest_pause_s = max(summary.longest_pause_s, pause_s)
        if self.wait(pause_s):
            summary.stop_reason = "interrupted"
            return True
        return False

    def _store(self, m: VideoMeasurement, summary: CrawlSummary) -> bool:
        """Hand the video to every sink; False (the summary says why) when the database cannot store any more."""
        try:
            for sink in self.sinks:
                sink.add(m)
        except StorageError as exc:  # nothing more can be stored: stop, with what is stored intact
            summary.stop_reason, summary.error = "failed", str(exc)
            return False
        return True

    def _measure(self, url: str, round_no: int, source: str) -> VideoMeasurement:
        service = self._service_for(url)
        if service is None:
            m = VideoMeasurement(page_url=url, round=round_no, seed_source=source, service_label="Unknown",
                                 started_at=utc_now())
            err = UnsupportedURL(url=url)
            m.status, m.error_stage, m.error_kind, m.error_message = "error", err.stage, err.kind, str(err)
            m.ended_at = utc_now()
            return m
        return self.pipeline.measure(service, url, round_no=round_no, seed_source=source)

    def _pause_after(self, m: VideoMeasurement, started_s: float) -> float:
        """Seconds to wait before the next video: -S, or the loop's random spacing; longer after bot checks."""
        s = self.settings
        if s.loop and self.spacing.enabled:
            pause = self.spacing.wait_s(started_s, self.clock())
            log.info("loop: next measurement in %.0f s (random spacing, mean %.0f s)", pause, s.loop_mean_interval_s)
        else:
            pause = s.delay_between_requests_s
        if m.error_kind in SLOW_KINDS:
            self.bot_checks += 1
            slow = bot_check_pause_s(self.bot_checks, s.bot_check_pause_s, s.bot_check_max_pause_s)
            log.warning("%s answered %s (%d in a row): pausing %.0f s before the next video", m.service_label,
                        m.error_kind, self.bot_checks, max(pause, slow))
            return max(pause, slow)
        self.bot_checks = 0
        return pause

    def _related(self, m: VideoMeasurement, measured: set[str]) -> list[tuple[str, str]]:
        candidates = [u for u in dict.fromkeys(m.related) if u not in measured][: self.settings.max_per_page]
        picked = self.rng.sample(candidates, min(self.settings.max_per_url, len(candidates)))
        how = (m.extractor or {}).get("related_source")
        source = f"related:{m.video_id or m.page_url}" + (f":{how}" if how else "")
        return [(u, source) for u in picked]
