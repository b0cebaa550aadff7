"""HTTP/3 alternative services as Chrome keeps them: learned from Alt-Svc, marked broken for a while when QUIC fails."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

_ALT_H3 = re.compile(r'(?:^|,)\s*h3="[^":]*:(\d+)"')  # an Alt-Svc entry for HTTP/3 on a port (RFC 7838, RFC 9114)
# Chromium's net/http/broken_alternative_services.cc: a broken alternative service is left alone for 300 s, twice as
# long after each further failure, the doubling stopped after 9 of them (about 2 days)
BROKEN_DELAY_S = 300.0
BROKEN_MAX_SHIFT = 9

Origin = tuple[str, int]  # host, port


class AltServices:
    """Origins that advertised HTTP/3 on their own port, and those whose QUIC failed (broken until a deadline)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.h3: set[Origin] = set()
        self.broken: dict[Origin, tuple[float, int]] = {}  # until (clock), times broken
        self._clock = clock
        self._lock = threading.Lock()

    def learn(self, host: str, port: int, alt_svc: str | None) -> None:
        """Remember an origin whose answer (``Alt-Svc``) advertised ``h3`` on its own port."""
        alt = _ALT_H3.search(alt_svc or "")
        if alt and int(alt.group(1)) == port:
            with self._lock:
                self.h3.add((host, port))

    def try_h3(self, host: str, port: int) -> bool:
        """True when the origin advertised HTTP/3 and is not marked broken now."""
        with self._lock:
            if (host, port) not in self.h3:
                return False
            until = self.broken.get((host, port), (0.0, 0))[0]
            return self._clock() >= until

    def mark_broken(self, host: str, port: int) -> float:
        """QUIC to the origin failed: no HTTP/3 there for BROKEN_DELAY_S, doubled for each earlier failure; the
        delay in seconds."""
        with self._lock:
            count = self.broken.get((host, port), (0.0, 0))[1]
            delay_s = BROKEN_DELAY_S * (1 << min(count, BROKEN_MAX_SHIFT))
            self.broken[(host, port)] = (self._clock() + delay_s, count + 1)
            return delay_s
