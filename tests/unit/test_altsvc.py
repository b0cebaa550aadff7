"""HTTP/3 alternative services: learned from Alt-Svc on the origin's own port, broken for Chromium's delays."""

from __future__ import annotations

from pytomo.engine.altsvc import BROKEN_DELAY_S, BROKEN_MAX_SHIFT, AltServices


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_h3_on_the_origins_own_port_is_learned():
    alt = AltServices()
    alt.learn("a.test", 443, 'h3=":8443"; ma=86400')
    alt.learn("b.test", 443, 'h2=":443", h3-29=":443"')
    alt.learn("c.test", 443, 'h2=":443", h3=":443"; ma=60')
    assert not alt.try_h3("a.test", 443) and not alt.try_h3("b.test", 443) and alt.try_h3("c.test", 443)


def test_a_broken_origin_is_left_to_tcp_for_chromiums_delay_doubled_after_each_failure():
    clock = Clock()
    alt = AltServices(clock)
    alt.learn("c.test", 443, 'h3=":443"')
    delays = []
    for _ in range(BROKEN_MAX_SHIFT + 2):
        delays.append(alt.mark_broken("c.test", 443))
        clock.now += delays[-1] - 1
        assert not alt.try_h3("c.test", 443)
        clock.now += 1
        assert alt.try_h3("c.test", 443)
    assert delays[:3] == [BROKEN_DELAY_S, 2 * BROKEN_DELAY_S, 4 * BROKEN_DELAY_S]
    assert delays[-1] == delays[-2] == BROKEN_DELAY_S * 2 ** BROKEN_MAX_SHIFT
