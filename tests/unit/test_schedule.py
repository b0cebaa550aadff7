"""Loop spacing (exponential, floor and cap) and the pause after bot checks, with a seeded RNG and a fake clock."""

from __future__ import annotations

import random
import statistics
import threading

import pytest

from pytomo import settings as settings_mod
from pytomo.crawl.loop import Crawler
from pytomo.engine.schedule import LoopSpacing, bot_check_pause_s
from pytomo.results import VideoMeasurement, utc_now
from pytomo.services.base import Service, ServiceContext


def test_intervals_are_exponential_within_floor_and_cap():
    spacing = LoopSpacing(600.0, 60.0, 1500.0, random.Random(7))
    draws = [spacing.next_interval_s() for _ in range(20000)]
    assert min(draws) == 60.0 and max(draws) == 1500.0
    # clamping: P(x < 60) = 1 - e^-0.1 and P(x > 1500) = e^-2.5 of an exponential of mean 600
    assert sum(d == 60.0 for d in draws) / len(draws) == pytest.approx(0.0952, abs=0.01)
    assert sum(d == 1500.0 for d in draws) / len(draws) == pytest.approx(0.0821, abs=0.01)
    inside = [d for d in draws if 60.0 < d < 1500.0]
    assert 500 < statistics.mean(inside) < 620  # truncated exponential, memoryless shape
    again = LoopSpacing(600.0, 60.0, 1500.0, random.Random(7))
    assert [again.next_interval_s() for _ in range(5)] == draws[:5]  # seeded: reproducible


def test_wait_counts_from_the_start_of_the_previous_measurement():
    spacing = LoopSpacing(100.0, 100.0, 100.0, random.Random(1))  # fixed 100 s
    assert spacing.wait_s(started_s=10.0, now_s=40.0) == 70.0
    assert spacing.wait_s(started_s=10.0, now_s=200.0) == 0.0
    assert not LoopSpacing(0.0, 0.0, 0.0, random.Random(1)).enabled


def test_bot_check_pause_doubles_up_to_its_cap():
    assert [bot_check_pause_s(n, 60, 300) for n in range(5)] == [0.0, 60, 120, 240, 300]


class _Fake(Service):
    """Outcome by URL: 'bot' answers a bot check, anything else is fine."""

    NAME = "fake"
    LABEL = "Fake"
    URL_PATTERNS = (r"^fake://",)


class _Pipeline:
    def __init__(self, clock: list[float], cost_s: float) -> None:
        self.clock, self.cost_s = clock, cost_s

    def measure(self, service, url, *, round_no=0, seed_source="input"):
        m = VideoMeasurement(page_url=url, round=round_no, seed_source=seed_source, service_label="Fake",
                             started_at=utc_now())
        self.clock[0] += self.cost_s
        if "bot" in url:
            m.status, m.error_stage, m.error_kind = "error", "resolve_page", "bot_check"
        return m


class _Db:
    def add(self, m):
        return None


def _crawler(clock: list[float], cost_s: float = 5.0, **overrides) -> Crawler:
    s = settings_mod.build({}, {"random_seed": 3, "delay_between_requests_s": 0.0, **overrides})
    ctx = ServiceContext(http=None, settings=s)

    def wait(seconds: float) -> bool:
        clock[0] += seconds
        return False

    return Crawler(s, ctx, _Fake(ctx), _Pipeline(clock, cost_s), [_Db()], threading.Event(),
                   clock=lambda: clock[0], wait=wait)


def test_loop_spacing_in_a_crawl_with_a_fake_clock():
    clock = [0.0]
    crawler = _crawler(clock, loop=True, max_rounds=4, loop_mean_interval_s=100.0, loop_min_interval_s=10.0,
                       loop_max_interval_s=250.0)
    summary = crawler.run([("fake://a", "input"), ("fake://b", "input")])
    assert len(summary.videos) == 8 and summary.stop_reason == "reached 4 rounds (-r)"
    assert len(crawler.waits_s) == 7  # before every measurement but the first: none after the last
    expected = LoopSpacing(100.0, 10.0, 250.0, random.Random(4))  # the crawler seeds spacing with random_seed + 1
    assert list(crawler.waits_s) == pytest.approx([max(0.0, expected.next_interval_s() - 5.0) for _ in range(7)])
    assert all(5.0 <= w + 5.0 <= 250.0 for w in crawler.waits_s)


def test_bot_checks_slow_the_crawl_down_until_a_page_answers(caplog):
    clock = [0.0]
    crawler = _crawler(clock, delay_between_requests_s=1.0, bot_check_pause_s=30.0, bot_check_max_pause_s=100.0)
    urls = ["fake://bot1", "fake://bot2", "fake://bot3", "fake://bot4", "fake://ok", "fake://bot5", "fake://end"]
    with caplog.at_level("WARNING"):
        crawler.run([(u, "input") for u in urls])
    assert list(crawler.waits_s) == [30.0, 60.0, 100.0, 100.0, 1.0, 30.0]
    assert "answered bot_check (3 in a row): pausing 100 s" in caplog.text
