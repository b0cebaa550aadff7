"""SVG charts of a span cut into intervals: plays and stalls, medians with their p10-p90 band, RTT spread and loss."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from pytomo.readers.verdict import Bin
from pytomo.web.svg import nice_step, tick_text
from pytomo.zones import Clock

WIDTH_PX, HEIGHT_PX = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 44, 40
SMOOTH, STALLED, NOT_STARTED = "#2E8B57", "#C0392B", "#7F8C8D"
LINE, BAND = "#1F618D", "#AED6F1"
LOSS_COLOURS = ((0.0, "#2E8B57"), (0.05, "#1F618D"), (0.10, "#8E44AD"), (0.25, "#C0392B"))  # Smokeping-like steps
EMPTY = "no video in this span"
NOT_MEASURED = "not measured for the videos of this span"


@dataclass
class Frame:
    """The plotting area of one chart: time on x (in the clock's zone), a linear or log y."""

    start_s: float
    end_s: float
    y_min: float
    y_max: float
    log: bool = False

    def x(self, t_s: float) -> float:
        """Pixel x of a time."""
        w = WIDTH_PX - LEFT - RIGHT
        return LEFT + (t_s - self.start_s) / max(self.end_s - self.start_s, 1e-9) * w

    def y(self, v: float) -> float:
        """Pixel y of a value."""
        h = HEIGHT_PX - TOP - BOTTOM
        if self.log:
            lo, hi, v = math.log10(self.y_min), math.log10(self.y_max), math.log10(max(v, self.y_min))
        else:
            lo, hi = self.y_min, self.y_max
        return TOP + h - (v - lo) / max(hi - lo, 1e-12) * h


def _y_ticks(f: Frame) -> list[float]:
    if f.log:
        out = []
        steps = (1, 2, 5) if f.y_max / f.y_min <= 1000 else (1,)
        for e in range(math.floor(math.log10(f.y_min)), math.ceil(math.log10(f.y_max)) + 1):
            out += [m * 10 ** e for m in steps if f.y_min <= m * 10 ** e <= f.y_max]
        return out
    step = nice_step(f.y_max - f.y_min, 4)
    return [f.y_min + i * step for i in range(int((f.y_max - f.y_min) / step + 1e-9) + 1)]


_TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
                 7 * 86400, 14 * 86400)


def _x_ticks(f: Frame, clock: Clock) -> list[tuple[float, str]]:
    length = f.end_s - f.start_s
    step = next((s for s in _TIME_STEPS_S if length / s <= 6), _TIME_STEPS_S[-1])
    offset = clock.offset_s(f.start_s)
    t = math.ceil((f.start_s + offset) / step) * step - offset
    fmt = ("%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 and length <= 86400
           else "%m-%d %H:%M" if step < 86400 else "%Y-%m-%d")
    out = []
    while t <= f.end_s:
        out.append((t, datetime.fromtimestamp(t, clock.tz()).strftime(fmt)))
        t += step
    return out


def _frame_svg(title: str, y_label: str, f: Frame, clock: Clock, legend: Sequence[tuple[str, str]]) -> list[str]:
    w, h = WIDTH_PX - LEFT - RIGHT, HEIGHT_PX - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{HEIGHT_PX}" '
           f'viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" font-family="sans-serif" font-size="11" role="img">',
           f'<title>{escape(title)}</title>', f'<rect width="{WIDTH_PX}" height="{HEIGHT_PX}" fill="#fff"/>',
           f'<text x="{WIDTH_PX / 2}" y="15" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for v in _y_ticks(f):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{f.y(v):.1f}" y2="{f.y(v):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 4}" y="{f.y(v) + 4:.1f}" text-anchor="end">{tick_text(v)}</text>')
    for t, text in _x_ticks(f, clock):
        out.append(f'<line x1="{f.x(t):.1f}" x2="{f.x(t):.1f}" y1="{TOP + h}" y2="{TOP + h + 4}" stroke="#888"/>'
                   f'<text x="{f.x(t):.1f}" y="{TOP + h + 15}" text-anchor="middle">{escape(text)}</text>')
    out.append(f'<text x="{LEFT + w / 2}" y="{HEIGHT_PX - 4}" text-anchor="middle">time ({escape(clock.label)})</text>')
    out.append(f'<text x="13" y="{TOP + h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 13 {TOP + h / 2})">{escape(y_label)}</text>')
    x: float = LEFT  # every series gets its label: placed one after the other, each as wide as its text
    for text, colour in legend:
        out.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="33">{escape(text)}</text>')
        x += 14 + 6.2 * len(text) + 14
    return out


def _close(out: list[str], bins: Sequence[Bin], f: Frame, has_data: bool) -> str:
    w, h = WIDTH_PX - LEFT - RIGHT, HEIGHT_PX - TOP - BOTTOM
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    if not has_data:
        text = NOT_MEASURED if any(b.spread["videos"] for b in bins) else EMPTY
        out.append(f'<text x="{LEFT + w / 2}" y="{TOP + h / 2}" text-anchor="middle" fill="#555" '
                   f'class="empty">{text}</text>')
    for b in bins:  # the numbers behind every interval, for readers and tests (no scripts run on these pages)
        attrs = " ".join(f'data-{k.replace("_", "-")}="{_data(v)}"' for k, v in b.spread.items())
        out.append(f'<g class="bin" data-start="{b.start_s:.3f}" data-end="{b.end_s:.3f}" {attrs}/>')
    out.append("</svg>")
    return "\n".join(out)


def _data(v: object) -> str:
    return "" if v is None else repr(v)


def plays(bins: Sequence[Bin], clock: Clock, title: str) -> str:
    """Videos played per interval, stacked: without a stall, stalled, not started."""
    top = max((b.spread["played"] for b in bins), default=0)
    f = Frame(bins[0].start_s, bins[-1].end_s, 0.0, max(1.0, top * 1.1)) if bins else Frame(0, 1, 0, 1)
    out = _frame_svg(title, "videos played", f, clock,
                     (("without a stall", SMOOTH), ("stalled", STALLED), ("did not start", NOT_STARTED)))
    for b in bins:
        s = b.spread
        x0, x1 = f.x(b.start_s), f.x(b.end_s)
        below = 0
        for count, colour in ((s["smooth"], SMOOTH), (s["stalled"], STALLED),
                              (s["played"] - s["smooth"] - s["stalled"], NOT_STARTED)):
            if count > 0:
                y0, y1 = f.y(below), f.y(below + count)
                out.append(f'<rect x="{x0 + 0.5:.1f}" y="{y1:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                           f'height="{y0 - y1:.1f}" fill="{colour}"/>')
                below += count
    return _close(out, bins, f, any(b.spread["played"] for b in bins))


def band(bins: Sequence[Bin], clock: Clock, title: str, y_label: str, keys: tuple[str, str, str], *,
         log: bool = False, reference: float | None = None,
         legend: tuple[str, str] = ("median", "p10 to p90"), marks: Callable[[Frame], list[str]] | None = None) -> str:
    """A median line over its p10-p90 band per interval (``keys``: low, median, high); intervals without a value
    are gaps."""
    lo_k, mid_k, hi_k = keys
    values = [v for b in bins for v in (b.spread[lo_k], b.spread[mid_k], b.spread[hi_k]) if v is not None]
    positive = [v for v in values if v > 0]
    if log and positive:
        f = Frame(bins[0].start_s, bins[-1].end_s, min(positive + [reference or 1.0]) / 1.3,
                  max(positive + [reference or 1.0]) * 1.3, log=True)
    else:
        f = Frame(bins[0].start_s if bins else 0, bins[-1].end_s if bins else 1, 0.0,
                  (max(values + [reference or 0.0]) * 1.1 or 1.0) if values else 1.0)
    out = _frame_svg(title, y_label, f, clock, ((legend[0], LINE), (legend[1], BAND)))
    if reference is not None:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH_PX - RIGHT}" y1="{f.y(reference):.1f}" y2="{f.y(reference):.1f}" '
                   f'stroke="#C0392B" stroke-dasharray="4 3"/>')
    for b in bins:
        lo, mid, hi = b.spread[lo_k], b.spread[mid_k], b.spread[hi_k]
        if mid is None:
            continue
        x0, x1 = f.x(b.start_s), f.x(b.end_s)
        if lo is not None and hi is not None:
            out.append(f'<rect x="{x0:.1f}" y="{f.y(hi):.1f}" width="{max(x1 - x0, 1):.1f}" '
                       f'height="{max(f.y(lo) - f.y(hi), 1):.1f}" fill="{BAND}"/>')
        out.append(f'<line x1="{x0:.1f}" x2="{max(x1, x0 + 1):.1f}" y1="{f.y(mid):.1f}" y2="{f.y(mid):.1f}" '
                   f'stroke="{LINE}" stroke-width="2"/>')
    out += marks(f) if marks else []
    return _close(out, bins, f, any(b.spread[mid_k] is not None for b in bins))


def loss_colour(share: float) -> str:
    """The colour of a loss share, by Smokeping-like steps."""
    return next(c for limit, c in reversed(LOSS_COLOURS) if share >= limit)


def rtt(bins: Sequence[Bin], clock: Clock, title: str) -> str:
    """Smokeping-style RTT: the min-max band and the median per interval, a bar on top coloured by probe loss."""

    def loss_bars(f: Frame) -> list[str]:
        out = []
        for b in bins:
            loss = b.spread["loss_share"]
            if loss:
                x0, x1 = f.x(b.start_s), f.x(b.end_s)
                out.append(f'<rect x="{x0:.1f}" y="{TOP - 6}" width="{max(x1 - x0, 2):.1f}" height="5" '
                           f'fill="{loss_colour(loss)}"><title>{100 * loss:.1f} % loss</title></rect>')
        return out

    return band(bins, clock, title, "ms", ("rtt_min_ms", "rtt_median_ms", "rtt_max_ms"),
                legend=("median", "min to max"), marks=loss_bars)


CHARTS: dict[str, tuple[str, Callable[[Sequence[Bin], Clock], str]]] = {
    "plays": ("Videos played and stalled", lambda b, c: plays(b, c, "Videos played per interval")),
    "start": ("Time to start", lambda b, c: band(b, c, "Time to start playback", "s",
                                                 ("start_p10_s", "start_median_s", "start_p90_s"))),
    "ratio": ("Throughput ÷ encoding rate", lambda b, c: band(
        b, c, "Throughput ÷ encoding rate (log axis; dashed: 1)", "ratio", ("ratio_p10", "ratio_median", "ratio_p90"),
        log=True, reference=1.0)),
    "rtt": ("RTT and loss", lambda b, c: rtt(b, c, "RTT to the cache servers (bar on top: probe loss)")),
}
