"""Small SVG charts of one video's series (throughput bins, buffer level and stalls, RTT samples)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from pytomo.rrd.metrics import in_unit, si_prefix

WIDTH_PX, HEIGHT_PX = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 34
COLOURS = ("#B03A2E", "#1F618D", "#117A65", "#7D3C98", "#B9770E", "#5D6D7E")


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    raw = span / ticks if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def tick_text(v: float) -> str:
    """A tick's number: whole from 100 up, else 3 significant digits."""
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def legend_places(names: Sequence[str], char_px: float = 6.5, gap_px: float = 14) -> list[tuple[float, int]]:
    """Where each series' label goes, ``(x, row)``: one after the other, as wide as its text, on as many rows as
    needed, so that every series is labelled."""
    out, x, row = [], float(LEFT), 0
    for name in names:
        width = char_px * len(name)
        if x > LEFT and x + width > WIDTH_PX - RIGHT:
            x, row = float(LEFT), row + 1
        out.append((x, row))
        x += width + gap_px
    return out


NO_DATA = "no data"
REFERENCE = "#9A6200"  # dark amber: 5:1 on white


def chart(title: str, x_label: str, y_label: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *,
          bands: Sequence[tuple[float, float]] = (), dots: bool = False, x_max: float | None = None,
          references: Sequence[tuple[str, float]] = (), steps: float | None = None) -> str:
    """An SVG document: one polyline (or dots) per named series, grey bands for intervals (stalls), and a dashed
    line, labelled, at each of ``references`` (``(label, y)``, e.g. the encoding rate; inside the y axis). With
    ``steps`` (a bin's width) each point ``(x, y)`` stands for ``y`` from ``x`` to ``x + steps``. A series of one
    point is a dot; without any value the chart says "no data" over axes from 0 to 1."""
    names = [name for name, _pts in series] + [label for label, _y in references]
    legend = legend_places(names)
    top = TOP + 13 * max(0, max((row for _x, row in legend), default=0))
    xs = [x + (steps or 0.0) for _n, pts in series for x, y in pts if y is not None] + [a + b for a, b in bands]
    ys = [y for _n, pts in series for _x, y in pts if y is not None]
    has_data = bool(ys)
    x1 = max([x_max or 0.0, *xs])
    x1 = x1 if x1 > 0 else 1.0  # nothing past 0 (no sample, or one at 0): the axis still runs from 0 to 1
    y1 = max([*ys, *(y for _l, y in references), 0.0]) * 1.08 or 1.0
    w, h = WIDTH_PX - LEFT - RIGHT, HEIGHT_PX - top - BOTTOM

    def px(x: float) -> float:
        return LEFT + x / x1 * w

    def py(y: float) -> float:
        return top + h - y / y1 * h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{HEIGHT_PX}" '
           f'viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" font-family="sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<rect width="{WIDTH_PX}" height="{HEIGHT_PX}" fill="#fff"/>',
           f'<text x="{WIDTH_PX / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for a, b in bands:
        out.append(f'<rect x="{px(a):.1f}" y="{top}" width="{max(px(a + b) - px(a), 1):.1f}" height="{h}" '
                   f'fill="#ddd"/>')
    step = nice_step(y1)
    v = 0.0
    while v <= y1:
        out.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{tick_text(v)}</text>')
        v += step
    step = nice_step(x1)
    v = 0.0
    while v <= x1 + step * 1e-9:
        out.append(f'<text x="{px(v):.1f}" y="{top + h + 14}" text-anchor="middle">{tick_text(v)}</text>')
        v += step
    out.append(f'<rect x="{LEFT}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{LEFT + w / 2}" y="{HEIGHT_PX - 4}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="12" y="{top + h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 12 {top + h / 2})">{escape(y_label)}</text>')
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        valid = [(x, y) for x, y in pts if y is not None]
        if dots or len(valid) == 1 and not steps:
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in valid]
        elif valid:
            corners = [c for x, y in valid for c in ((x, y), (x + steps, y))] if steps else valid
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in corners)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        lx, row = legend[i]
        out.append(f'<text x="{lx:.1f}" y="{TOP - 6 + 13 * row}" fill="{colour}">{escape(name)}</text>')
    for (label, y), (lx, row) in zip(references, legend[len(series):], strict=True):
        out.append(f'<g class="reference" data-value="{y!r}"><line x1="{LEFT}" x2="{LEFT + w}" y1="{py(y):.1f}" '
                   f'y2="{py(y):.1f}" stroke="{REFERENCE}" stroke-width="1.5" stroke-dasharray="6 3"/>'
                   f'<text x="{lx:.1f}" y="{TOP - 6 + 13 * row}" fill="{REFERENCE}">{escape(label)}</text></g>')
    if not has_data:
        out.append(f'<text x="{LEFT + w / 2}" y="{top + h / 2}" text-anchor="middle" fill="#555" '
                   f'class="empty">{NO_DATA}</text>')
    out.append("</svg>")
    return "\n".join(out)


def throughput(series_bps: Sequence[tuple[float, float]], encoding_rate_bps: float | None = None,
               bin_s: float | None = None) -> str:
    """A download's throughput chart: ``(t_start_s, bit/s)`` per bin of ``bin_s`` seconds drawn as steps, on an
    axis in bit/s with the SI prefix of its largest value (the figures' unit, written by
    :func:`pytomo.rrd.metrics.in_unit`), and the media's encoding rate as a labelled dashed line when it is known."""
    rate = encoding_rate_bps if encoding_rate_bps and encoding_rate_bps > 0 else None
    factor, prefix = si_prefix(max([abs(y) for _x, y in series_bps] + [rate or 0.0]))
    refs = [(f"encoding rate {in_unit(rate, 'bit/s')}", rate / factor)] if rate else []
    bins = f"{1000 * bin_s:.0f} ms bins" if bin_s else "bins"
    return chart(f"Throughput ({bins})", "seconds since the request", f"{prefix}bit/s",
                 [("throughput", [(x, y / factor) for x, y in series_bps])], references=refs, steps=bin_s)
