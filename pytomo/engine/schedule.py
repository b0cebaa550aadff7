"""When the next measurement may start: random loop spacing (as ndt7 clients do) and the pause after bot checks."""

from __future__ import annotations

import random
from dataclasses import dataclass

SLOWDOWN_KINDS = ("bot_check", "rate_limited")  # outcomes after which the crawl slows down (2015: das_captcha)


@dataclass
class LoopSpacing:
    """Start-to-start intervals drawn from an exponential distribution of mean ``mean_s``, clamped to
    ``[min_s, max_s]`` (ndt7 clients: mean 6 h clamped to [0.1, 2.5] times the mean), so volunteers do not
    synchronise. ``mean_s`` = 0 disables it.
    """

    mean_s: float
    min_s: float
    max_s: float
    rng: random.Random

    @property
    def enabled(self) -> bool:
        """True when intervals are drawn."""
        return self.mean_s > 0

    def next_interval_s(self) -> float:
        """One interval, in seconds."""
        return min(self.max_s, max(self.min_s, self.rng.expovariate(1.0 / self.mean_s)))

    def wait_s(self, started_s: float, now_s: float) -> float:
        """Seconds to wait before the next start when the previous one started at ``started_s`` (same clock)."""
        return max(0.0, self.next_interval_s() - (now_s - started_s))


def bot_check_pause_s(streak: int, first_s: float, max_s: float) -> float:
    """The pause after the ``streak``-th bot check in a row: ``first_s``, doubled each time, capped at ``max_s``."""
    if streak < 1:
        return 0.0
    return min(max_s, first_s * 2.0 ** min(streak - 1, 60))
