"""SVG charts of a span cut into intervals: plays and stalls, medians with their p10-p90 band, RTT spread and loss.

Each chart is one SVG document, served alone (``/overview/<name>.svg``) and drawn inline in the overview and the
history, where its intervals answer the pointer and the keyboard without a script: every interval is a group that
takes the focus (Tab) and holds its numbers as a ``<title>`` (the browser's tooltip, read by screen readers) and as
a box of text that SMIL ``<set>`` shows while the group has the focus or the pointer. Everything written from data
goes through ``html.escape``; styles are presentation attributes (the pages' CSP allows no inline style)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from pytomo.figures import RATIO, RTT, START, Aggregate
from pytomo.readers.verdict import Bin, shown
from pytomo.web.svg import nice_step, tick_text
from pytomo.zones import Clock

WIDTH_PX, HEIGHT_PX = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 44, 40
PLOT_H = HEIGHT_PX - TOP - BOTTOM
ROW_PX = 14  # one more row of legend
CHAR_PX = 6.2  # the width of a character at 11 px, for placing labels
# Plays: blue, hatched vermillion and light grey (Okabe and Ito's colours) differ in hue and lightness also under
# deuteranopia and protanopia; "stalled" is hatched besides, so that no colour alone tells it apart.
SMOOTH, STALLED, NOT_STARTED = "#0072B2", "#D55E00", "#D9D9D9"
HATCH = "#FFFFFF"
LINE, BAND = "#1F618D", "#AED6F1"
WARN_LINE, BAD_LINE = "#9A6200", "#B03A2E"
# Probe loss, Smokeping-like steps: (from this share, colour, words, bar height in px). The colours grow darker and
# the bar taller with the loss, so that neither colour vision nor colour alone is needed to read it.
LOSS_STEPS = ((0.0, "#A6DBA0", "green: under 5 %", 2), (0.05, "#4393C3", "blue: 5 to 10 %", 4),
              (0.10, "#542788", "purple: 10 to 25 %", 6), (0.25, "#D7301F", "red: 25 % or more", 8))
LOSS_COLOURS = tuple((limit, colour) for limit, colour, _words, _h in LOSS_STEPS)
EMPTY = "no video in this span"
NOT_MEASURED = "not measured for the videos of this span"


@dataclass
class Frame:
    """The plotting area of one chart: time on x (in the clock's zone), a linear or log y; ``top``: where the plot
    starts below the title and legend."""

    start_s: float
    end_s: float
    y_min: float
    y_max: float
    log: bool = False
    top: float = TOP
    counts: bool = False  # whole numbers on the axis

    def x(self, t_s: float) -> float:
        """Pixel x of a time."""
        w = WIDTH_PX - LEFT - RIGHT
        return LEFT + (t_s - self.start_s) / max(self.end_s - self.start_s, 1e-9) * w

    def y(self, v: float) -> float:
        """Pixel y of a value."""
        if self.log:
            lo, hi, v = math.log10(self.y_min), math.log10(self.y_max), math.log10(max(v, self.y_min))
        else:
            lo, hi = self.y_min, self.y_max
        return self.top + PLOT_H - (v - lo) / max(hi - lo, 1e-12) * PLOT_H

    def holds(self, v: float) -> bool:
        """True when ``v`` is on the y axis."""
        return self.y_min <= v <= self.y_max

    @property
    def height(self) -> float:
        """The whole chart's height."""
        return self.top + PLOT_H + BOTTOM


def _y_ticks(f: Frame) -> list[float]:
    if f.log:
        out = []
        steps = (1, 2, 5) if f.y_max / f.y_min <= 1000 else (1,)
        for e in range(math.floor(math.log10(f.y_min)), math.ceil(math.log10(f.y_max)) + 1):
            out += [m * 10 ** e for m in steps if f.y_min <= m * 10 ** e <= f.y_max]
        return out
    step = nice_step(f.y_max - f.y_min, 4)
    if f.counts:
        step = max(1.0, float(round(step)))  # 2.5 videos: 2
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


# A legend entry: its words and its swatch, an SVG fragment drawn in a 10 x 10 box at the origin.
Legend = tuple[str, str]


def _fill(colour: str) -> str:
    return f'<rect width="10" height="10" fill="{colour}" stroke="#555" stroke-width="0.5"/>'


def _stroke(colour: str, width: float = 2, dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="0" x2="10" y1="5" y2="5" stroke="{colour}" stroke-width="{width}"{dashed}/>'


def _legend_rows(legend: Sequence[Legend]) -> list[tuple[float, int]]:
    """Where each entry goes, ``(x, row)``: one after the other, as wide as its words, on as many rows as needed."""
    out, x, row = [], float(LEFT), 0
    for text, swatch in legend:
        width = (14 if swatch else 0) + CHAR_PX * len(text)
        if x > LEFT and x + width > WIDTH_PX - RIGHT:
            x, row = float(LEFT), row + 1
        out.append((x, row))
        x += width + 14
    return out


def _frame_svg(name: str, title: str, y_label: str, f: Frame, clock: Clock, legend: Sequence[Legend],
               defs: str = "") -> list[str]:
    """The chart's head: title, legend (its rows push the plot down), grid, axes and their labels."""
    places = _legend_rows(legend)
    f.top = TOP + ROW_PX * max((row for _x, row in places), default=0)
    w, h = WIDTH_PX - LEFT - RIGHT, PLOT_H
    desc = (f"Across: time ({clock.label}). Up: {y_label}. Each interval takes the focus (Tab) and shows its "
            "numbers while it has the focus or the pointer.")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{f.height:.0f}" '
           f'viewBox="0 0 {WIDTH_PX} {f.height:.0f}" font-family="sans-serif" font-size="11" class="chart" '
           f'role="group" aria-labelledby="chart_{name}_title">',
           f'<title id="chart_{name}_title">{escape(title)}</title>',
           f"<desc>{escape(desc)}</desc>",
           f"<defs>{defs}</defs>" if defs else "",
           f'<rect width="{WIDTH_PX}" height="{f.height:.0f}" fill="#fff"/>',
           f'<text x="{WIDTH_PX / 2}" y="15" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for v in _y_ticks(f):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{f.y(v):.1f}" y2="{f.y(v):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 4}" y="{f.y(v) + 4:.1f}" text-anchor="end">{tick_text(v)}</text>')
    for t, text in _x_ticks(f, clock):
        out.append(f'<line x1="{f.x(t):.1f}" x2="{f.x(t):.1f}" y1="{f.top + h}" y2="{f.top + h + 4}" stroke="#888"/>'
                   f'<text x="{f.x(t):.1f}" y="{f.top + h + 15}" text-anchor="middle">{escape(text)}</text>')
    out.append(f'<text x="{LEFT + w / 2}" y="{f.height - 4:.0f}" text-anchor="middle">'
               f'time ({escape(clock.label)})</text>')
    out.append(f'<text x="13" y="{f.top + h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 13 {f.top + h / 2})">{escape(y_label)}</text>')
    out.append('<g class="legend">')
    for (text, swatch), (x, row) in zip(legend, places, strict=True):
        y = 24 + ROW_PX * row
        if swatch:
            out.append(f'<g transform="translate({x:.1f} {y})">{swatch}</g>')
        out.append(f'<text x="{x + (14 if swatch else 0):.1f}" y="{y + 9}">{escape(text)}</text>')
    out.append("</g>")
    return out


def _when(b: Bin, clock: Clock) -> str:
    """An interval's bounds as the page writes times, the end's date left out when it is the start's."""
    start, end = clock.show(b.start_s), clock.show(b.end_s)
    return f"{start} to {end[11:] if end[:10] == start[:10] else end}"


def _tip(name: str, i: int, b: Bin, f: Frame, lines: Sequence[str], keys: Sequence[str]) -> str:
    """One interval as a group that takes the focus: its figures ``keys`` as ``data-*`` attributes, its numbers as
    a title and as a box shown (SMIL) with a shade over the interval while the group has the focus or the pointer,
    over a transparent area as tall as the plot that catches the pointer."""
    ident = f"chart_{name}_{i}"  # no '-' or '.': SMIL reads them in begin="id.event"
    on = f'begin="{ident}.focusin; {ident}.mouseover" end="{ident}.focusout; {ident}.mouseout"'
    x0, x1 = f.x(b.start_s), f.x(b.end_s)
    attrs = " ".join(f'data-{k.replace("_", "-")}="{_data(b.spread[k])}"' for k in keys)
    text = "\n".join(lines)
    box_w = 12 + CHAR_PX * max(len(line) for line in lines)
    box_h = 8 + ROW_PX * len(lines)
    bx = x1 + 4 if x1 + 4 + box_w <= WIDTH_PX - 2 else max(2.0, x0 - 4 - box_w)
    by = f.top + 4
    rows = "".join(f'<text x="{bx + 6:.1f}" y="{by + ROW_PX * (k + 1) - 2:.1f}">{escape(line)}</text>'
                   for k, line in enumerate(lines))
    return (f'<g class="bin" id="{ident}" tabindex="0" data-start="{b.start_s:.3f}" data-end="{b.end_s:.3f}" {attrs}>'
            f'<title>{escape(text)}</title>'
            f'<rect x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 1):.1f}" height="{PLOT_H}" fill="transparent"/>'
            f'<g visibility="hidden" pointer-events="none"><set attributeName="visibility" to="visible" {on}/>'
            f'<rect x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 1):.1f}" height="{PLOT_H}" fill="#000" '
            f'fill-opacity="0.08"/><rect x="{bx:.1f}" y="{by:.1f}" width="{box_w:.1f}" height="{box_h}" '
            f'fill="#fff" stroke="#333" rx="3"/>{rows}</g></g>')


COMMON_KEYS = ("videos", "played", "errors")  # every chart's data-* attributes hold these, then its own figures
PLAYS_KEYS = (*COMMON_KEYS, "smooth", "stalled", "not_started", "playout_unknown", "failed_share")
START_KEYS = (*COMMON_KEYS, "not_started", "start_p10_s", "start_median_s", "start_p90_s")
RATIO_KEYS = (*COMMON_KEYS, "ratio_p10", "ratio_median", "ratio_p90")
RTT_KEYS = (*COMMON_KEYS, "servers", "rtt_min_ms", "rtt_median_ms", "rtt_max_ms", "probes_sent", "probes_lost",
            "loss_share")


def _close(name: str, out: list[str], bins: Sequence[Bin], f: Frame, has_data: bool, clock: Clock,
           numbers: Callable[[Bin], list[str]], keys: Sequence[str]) -> str:
    w, h = WIDTH_PX - LEFT - RIGHT, PLOT_H
    out.append(f'<rect x="{LEFT}" y="{f.top}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    if not has_data:
        text = NOT_MEASURED if any(b.spread["videos"] for b in bins) else EMPTY
        out.append(f'<text x="{LEFT + w / 2}" y="{f.top + h / 2}" text-anchor="middle" fill="#555" '
                   f'class="empty">{text}</text>')
    for i, b in enumerate(bins):  # the numbers behind every interval: for people (focus, pointer) and for tests
        lines = [_when(b, clock)] + (numbers(b) if b.spread["videos"] else ["no video"])
        out.append(_tip(name, i, b, f, lines, keys))
    out.append("</svg>")
    return "\n".join(line for line in out if line)


def _data(v: object) -> str:
    return "" if v is None else repr(v)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _plays_numbers(b: Bin) -> list[str]:
    s = b.spread
    out = [f"{_count(s['played'], 'video')} played of {s['videos']}"
           + (f" ({s['errors']} failed)" if s["errors"] else "")]
    if s["played"]:
        unknown = _playout_unknown(s)
        out.append(f"without a stall {s['smooth']}, stalled {s['stalled']}, did not start {s['not_started']}"
                   + (f", playout not recorded {unknown}" if unknown else ""))
    return out


def _playout_unknown(s: dict) -> int:
    """Videos played whose playout was not recorded (a run imported from 2015 or 2013 data): in no bar."""
    return int(s.get("playout_unknown") or 0)


def plays(bins: Sequence[Bin], clock: Clock, title: str, name: str = "plays") -> str:
    """Videos played per interval, stacked: without a stall (solid blue), stalled (hatched orange), did not
    start (light grey)."""
    top = max((b.spread["played"] for b in bins), default=0)
    f = Frame(bins[0].start_s if bins else 0, bins[-1].end_s if bins else 1, 0.0, max(1.0, top * 1.1), counts=True)
    hatch = f"chart_{name}_hatch"
    defs = (f'<pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{STALLED}"/>'
            f'<line x1="0" x2="0" y1="0" y2="6" stroke="{HATCH}" stroke-width="2.5"/></pattern>')
    out = _frame_svg(name, title, "videos played", f, clock,
                     (("without a stall: solid blue", _fill(SMOOTH)),
                      ("stalled: hatched orange", _fill(f"url(#{hatch})")),
                      ("did not start: light grey", _fill(NOT_STARTED))), defs)
    for b in bins:
        s = b.spread
        x0, x1 = f.x(b.start_s), f.x(b.end_s)
        below = 0
        for count, colour, edge in ((s["smooth"], SMOOTH, "#fff"), (s["stalled"], f"url(#{hatch})", "#fff"),
                                    (s["not_started"], NOT_STARTED, "#767676")):
            if count > 0:  # the light grey is outlined: 3:1 against the white
                y0, y1 = f.y(below), f.y(below + count)
                out.append(f'<rect x="{x0 + 0.5:.1f}" y="{y1:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                           f'height="{y0 - y1:.1f}" fill="{colour}" stroke="{edge}" stroke-width="0.75"/>')
                below += count
    return _close(name, out, bins, f, any(b.spread["played"] for b in bins), clock, _plays_numbers, PLAYS_KEYS)


def _value(v: float, unit: str) -> str:
    """A threshold's value as its line's label writes it (``2 s``, ``150 ms``, ``1.25``)."""
    return tick_text(v) if unit == "ratio" else f"{tick_text(v)} {unit}"


def limits(agg: Aggregate) -> list[tuple[float, str, str]]:
    """The lines of an aggregate's declared threshold: ``(value, level, words)``, e.g. ``(2.0, "warn", "warning
    above 2 s")``."""
    t = agg.threshold
    if t is None:
        return []
    side = "below" if t.higher_is_better else "above"
    return [(t.good, "warn", f"warning {side} {_value(t.good, agg.unit)}"),
            (t.bad, "bad", f"bad {side} {_value(t.bad, agg.unit)}")]


def _threshold_lines(f: Frame, agg: Aggregate) -> list[str]:
    """A dashed line per threshold on the axis, labelled (the upper label above its line, the lower below); those
    above the axis named in one note at the plot's top right."""
    found = limits(agg)
    inside = sorted((x for x in found if f.holds(x[0])), key=lambda x: -x[0])  # the upper line first
    out: list[str] = []
    placed: list[tuple[float, float]] = []  # (baseline, left end) of the labels written
    for k, (v, level, words) in enumerate(inside):
        y = f.y(v)
        below = k > 0 and y + 12 <= f.top + PLOT_H - 2 or y - 14 < f.top  # the upper label above its line
        ty = y + 12 if below else y - 4
        right = float(WIDTH_PX - RIGHT - 4)
        for py, left in placed:  # two lines close together: this label goes left of the other
            if abs(py - ty) < 12:
                right = min(right, left - 12)
        placed.append((ty, right - CHAR_PX * len(words)))
        colour, dash = (WARN_LINE, "6 3") if level == "warn" else (BAD_LINE, "2 2")
        out.append(f'<g class="threshold" data-value="{v!r}" data-level="{level}">'
                   f'<line x1="{LEFT}" x2="{WIDTH_PX - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
                   f'stroke-width="1.5" stroke-dasharray="{dash}"/>'
                   f'<text x="{right:.1f}" y="{ty:.1f}" text-anchor="end" fill="{colour}" stroke="#fff" '
                   f'stroke-width="3" paint-order="stroke">{escape(words)}</text></g>')
    above = [x for x in found if x[0] > f.y_max]
    if above:
        words = "thresholds off the top: " + ", ".join(w for _v, _l, w in above)
        out.append(f'<text class="threshold-off" x="{WIDTH_PX - RIGHT - 4}" y="{f.top + 12}" text-anchor="end" '
                   f'fill="#555" stroke="#fff" stroke-width="3" paint-order="stroke" '
                   f'data-values="{" ".join(repr(v) for v, _l, _w in above)}">{escape(words)}</text>')
    return out


def band(bins: Sequence[Bin], clock: Clock, title: str, y_label: str, keys: tuple[str, str, str], *,
         log: bool = False, agg: Aggregate | None = None, name: str = "band",
         legend: tuple[str, str] = ("median", "p10 to p90"), marks: Callable[[Frame], list[str]] | None = None,
         more_legend: Sequence[Legend] = (), numbers: Callable[[Bin], list[str]] | None = None,
         data_keys: Sequence[str] = ()) -> str:
    """A median line over its p10-p90 band per interval (``keys``: low, median, high); intervals without a value
    are gaps. ``agg``: the aggregate whose declared threshold is drawn as lines (a log axis always holds them; a
    linear one when they are at most twice its largest value, the others named above the plot)."""
    lo_k, mid_k, hi_k = keys
    values = [v for b in bins for v in (b.spread[lo_k], b.spread[mid_k], b.spread[hi_k]) if v is not None]
    positive = [v for v in values if v > 0]
    lines = [v for v, _l, _w in limits(agg)] if agg else []
    start, end = (bins[0].start_s, bins[-1].end_s) if bins else (0.0, 1.0)
    if log and positive:
        f = Frame(start, end, min(positive + lines) / 1.3, max(positive + lines) * 1.3, log=True)
    else:
        top = max(values, default=0.0)
        shown_lines = [v for v in lines if top and v <= 2 * top]
        f = Frame(start, end, 0.0, (max([top, *shown_lines]) * 1.1 or 1.0) if values else 1.0)
    out = _frame_svg(name, title, y_label, f, clock,
                     ((legend[0], _stroke(LINE)), (legend[1], _fill(BAND)), *more_legend))
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
    out += _threshold_lines(f, agg) if agg else []
    out += marks(f) if marks else []

    def median_numbers(b: Bin) -> list[str]:
        unit = agg.unit if agg else ""
        s = b.spread
        if s[mid_k] is None:
            return [f"{_count(s['videos'], 'video')}, no value"]
        return [f"{legend[0]} {shown(s[mid_k], unit)}",
                f"{legend[1]} {shown(s[lo_k], unit)} to {shown(s[hi_k], unit)}"]

    return _close(name, out, bins, f, any(b.spread[mid_k] is not None for b in bins), clock,
                  numbers or median_numbers, keys=data_keys or (*COMMON_KEYS, *keys))


def loss_colour(share: float) -> str:
    """The colour of a loss share, by Smokeping-like steps."""
    return next(c for limit, c in reversed(LOSS_COLOURS) if share >= limit)


def loss_step(share: float) -> tuple[float, str, str, int]:
    """The step of a loss share: its lower limit, colour, words and bar height."""
    return next(s for s in reversed(LOSS_STEPS) if share >= s[0])


def _start_numbers(b: Bin) -> list[str]:
    s = b.spread
    started = s["played"] - s["not_started"] - _playout_unknown(s)
    if s["start_median_s"] is None:
        if not s["not_started"]:
            return [f"{_count(s['played'], 'video')} played, time to start not recorded"]
        return [f"{_count(s['played'], 'video')} played, none started"]
    return [f"median {shown(s['start_median_s'], 's')} of {_count(started, 'video')} that started",
            f"10th to 90th percentile {shown(s['start_p10_s'], 's')} to {shown(s['start_p90_s'], 's')}"]


def _ratio_numbers(b: Bin) -> list[str]:
    s = b.spread
    if s["ratio_median"] is None:
        return [f"{_count(s['played'], 'video')} played, no throughput ÷ encoding rate"]
    return [f"median {shown(s['ratio_median'], 'ratio')} ({_count(s['played'], 'video')} played)",
            f"10th to 90th percentile {shown(s['ratio_p10'], 'ratio')} to {shown(s['ratio_p90'], 'ratio')}"]


def _rtt_numbers(b: Bin) -> list[str]:
    s = b.spread
    out = [f"median {shown(s['rtt_median_ms'], 'ms')} of the videos' RTTs ({_count(s['videos'], 'video')})",
           f"smallest probe {shown(s['rtt_min_ms'], 'ms')}, largest {shown(s['rtt_max_ms'], 'ms')}"]
    if s["probes_sent"]:
        loss = s["loss_share"] or 0.0
        out.append(f"probe loss {shown(loss, 'share')} ({s['probes_lost']} of {s['probes_sent']} probes; "
                   f"{loss_step(loss)[2].split(':')[0]} bar)")
    else:
        out.append("no probe sent")
    return out


def rtt(bins: Sequence[Bin], clock: Clock, title: str, name: str = "rtt") -> str:
    """Smokeping-style RTT: the min-max band and the median per interval, a bar on top coloured by probe loss (and
    taller the more probes were lost), with its legend in words."""

    def loss_bars(f: Frame) -> list[str]:
        out = []
        for b in bins:
            if not b.spread["probes_sent"]:
                continue
            loss = b.spread["loss_share"] or 0.0
            _limit, colour, _words, height = loss_step(loss)
            x0, x1 = f.x(b.start_s), f.x(b.end_s)
            out.append(f'<rect class="loss" x="{x0:.1f}" y="{f.top - 1 - height}" width="{max(x1 - x0, 2):.1f}" '
                       f'height="{height}" fill="{colour}" data-loss="{loss!r}"/>')
        return out

    loss_legend = [("probe loss, bar on top:", "")] + [
        (words, f'<rect y="{10 - height}" width="10" height="{height}" fill="{colour}"/>')
        for _limit, colour, words, height in LOSS_STEPS]
    return band(bins, clock, title, "ms", ("rtt_min_ms", "rtt_median_ms", "rtt_max_ms"), agg=RTT, name=name,
                legend=("median", "min to max"), marks=loss_bars, more_legend=loss_legend, numbers=_rtt_numbers,
                data_keys=RTT_KEYS)


CHARTS: dict[str, tuple[str, Callable[[Sequence[Bin], Clock], str]]] = {
    "plays": ("Videos played and stalled", lambda b, c: plays(b, c, "Videos played per interval")),
    "start": ("Time to start", lambda b, c: band(b, c, "Time to start playback", "s",
                                                 ("start_p10_s", "start_median_s", "start_p90_s"), agg=START,
                                                 name="start", numbers=_start_numbers, data_keys=START_KEYS)),
    "ratio": ("Throughput ÷ encoding rate", lambda b, c: band(
        b, c, "Throughput ÷ encoding rate (log axis)", "ratio", ("ratio_p10", "ratio_median", "ratio_p90"),
        log=True, agg=RATIO, name="ratio", numbers=_ratio_numbers, data_keys=RATIO_KEYS)),
    "rtt": ("RTT and loss", lambda b, c: rtt(b, c, "RTT to the cache servers (bar on top: probe loss)")),
}


def by_label(label: str) -> str:
    """The name of the chart whose label is ``label``."""
    return next(name for name, (shown_as, _draw) in CHARTS.items() if shown_as == label)
