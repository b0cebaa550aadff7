"""The operator's view over a span: the aggregates the figures declare (pytomo/figures.py), per-interval bins and
the verdict."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytomo.figures import Aggregate, Threshold, aggregates
from pytomo.readers.observations import RTT, RTT_MAX, START, Obs, file_label
from pytomo.units import NO_VALUE, SI_UNITS, in_unit

SPAN_LENGTH_S: dict[str, int | None] = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400,
                                        "all": None}
SPAN_PHRASE = {"hour": "in the run's last hour", "day": "in the run's last day", "week": "in the run's last week",
               "month": "in the run's last month", "all": "over the whole run"}
BIN_WIDTHS_S = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BINS = 48
LEVELS = ("none", "good", "warn", "bad")  # worst last


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _played(obs: Sequence[Obs]) -> list[Obs]:
    return [o for o in obs if o.played]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


RATIO, LIVE_LATENCY = "downloads.throughput_to_encoding_ratio", "downloads.live_latency_end_s"


def _values(obs: Sequence[Obs], key: str) -> list[float]:
    return [v for o in obs if (v := o.value(key)) is not None]


def _starts(obs: Sequence[Obs]) -> list[float]:
    return _values(_played(obs), START)


def _ratios(obs: Sequence[Obs]) -> list[float]:
    return _values(_played(obs), RATIO)


def _live(obs: Sequence[Obs]) -> list[Obs]:
    return [o for o in obs if o.live]


def _loss(obs: Sequence[Obs]) -> float | None:
    sent = sum(o.probes_sent for o in obs)
    return sum(o.probes_lost for o in obs) / sent if sent else None


def compute(figure: str, a: Aggregate, obs: Sequence[Obs]) -> float | None:
    """The aggregate ``a`` of the figure ``figure`` (``table.column``) over a set of videos."""
    chosen = [o for o in obs if (o.played or not a.played_only) and (o.live or not a.live_only)]
    if a.statistic == "count":
        return float(sum((o.value(figure) or 0) > 0 for o in chosen))
    if a.statistic == "median":
        return _median(_values(chosen, figure))
    if a.statistic == "share_zero":
        known = [o for o in _played(obs) if o.started is not None]  # an imported run recorded no playout
        return _share(sum(o.started is True and o.value(figure) == 0 for o in known), len(known))
    if a.statistic == "loss":
        return _loss(chosen)
    raise ValueError(f"unknown statistic {a.statistic!r} of the aggregate {a.key!r}")


def declared() -> list[Aggregate]:
    """Every aggregate the figures declare, in the verdict's order."""
    return [a for _f, a in aggregates()]


def by_key() -> dict[str, Aggregate]:
    """Every declared aggregate by its key."""
    return {a.key: a for a in declared()}


def figures_of(obs: Sequence[Obs]) -> dict[str, float | None]:
    """Every declared aggregate of a set of videos."""
    return {a.key: compute(f.key, a, obs) for f, a in aggregates()}


def spread_of(obs: Sequence[Obs]) -> dict[str, Any]:
    """What the graphs draw of one interval: counts, medians with their p10-p90 band, RTT min-median-max, loss."""
    starts, ratios, rtts = _starts(obs), _ratios(obs), _values(obs, RTT)
    played = _played(obs)
    return {
        "videos": len(obs), "played": len(played), "stalled": sum(o.stalled for o in played),
        "smooth": sum(o.smooth for o in played), "not_started": sum(o.not_started for o in played),
        "playout_unknown": sum(o.started is None for o in played),
        "errors": sum(not o.ok for o in obs), "failed_share": _share(sum(not o.ok for o in obs), len(obs)),
        "servers": len({o.server for o in obs if o.server}),
        "start_p10_s": quantile(starts, 0.1), "start_median_s": _median(starts), "start_p90_s": quantile(starts, 0.9),
        "ratio_p10": quantile(ratios, 0.1), "ratio_median": _median(ratios), "ratio_p90": quantile(ratios, 0.9),
        "rtt_min_ms": min(rtts, default=None), "rtt_median_ms": _median(rtts),
        "rtt_max_ms": max(_values(obs, RTT_MAX), default=None),
        "probes_sent": sum(o.probes_sent for o in obs), "probes_lost": sum(o.probes_lost for o in obs),
        "loss_share": _loss(obs), "live": len(_live(obs)), "live_latency_known": len(_values(_live(obs), LIVE_LATENCY)),
    }


@dataclass(frozen=True)
class Window:
    """A span of a run: from ``start_s`` to ``end_s`` inclusive, ending at the newest video and starting no earlier
    than the first."""

    name: str
    start_s: float
    end_s: float

    @property
    def phrase(self) -> str:
        """``in the run's last hour``, ``over the whole run``."""
        return SPAN_PHRASE[self.name]


def window(obs: Sequence[Obs], span: str) -> Window | None:
    """The span ``span`` of these (time-ordered) videos, ending at the newest; None when there is none."""
    if not obs:
        return None
    end = obs[-1].t_s
    length = SPAN_LENGTH_S[span]
    return Window(span, obs[0].t_s if length is None else max(end - length, obs[0].t_s), end)


def within(obs: Sequence[Obs], start_s: float, end_s: float, *, closed: bool = True) -> Sequence[Obs]:
    """The videos with ``start_s <= t_s <= end_s`` (``< end_s`` when not ``closed``), by bisection."""
    times = [o.t_s for o in obs]
    lo = bisect.bisect_left(times, start_s)
    hi = bisect.bisect_right(times, end_s) if closed else bisect.bisect_left(times, end_s)
    return obs[lo:hi]


def bin_width_s(length_s: float) -> int:
    """The smallest round width giving at most ``MAX_BINS`` intervals."""
    return next((w for w in BIN_WIDTHS_S if length_s / w <= MAX_BINS), BIN_WIDTHS_S[-1] * math.ceil(
        length_s / BIN_WIDTHS_S[-1] / MAX_BINS))


@dataclass(frozen=True)
class Bin:
    """One interval of a graph: its bounds and what its videos give."""

    start_s: float
    end_s: float
    spread: dict[str, Any]


def bins(obs: Sequence[Obs], win: Window) -> list[Bin]:
    """The span cut into round intervals (the first and last clipped to the span); they add up to the span."""
    width = bin_width_s(max(win.end_s - win.start_s, 1.0))
    edges = [win.start_s]
    edge = (math.floor(win.start_s / width) + 1) * width
    while edge < win.end_s:
        edges.append(float(edge))
        edge += width
    edges.append(win.end_s)
    times = [o.t_s for o in obs]
    out = []
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
        last = i == len(edges) - 2
        lo = bisect.bisect_left(times, a)
        hi = bisect.bisect_right(times, b) if last else bisect.bisect_left(times, b)
        out.append(Bin(a, b, spread_of(obs[lo:hi])))
    return out


@dataclass
class Row:
    """One line of the verdict: a service or a cache server over the span."""

    kind: str  # "service" or "server"
    key: str  # its graph source: service-<label>, server-<address>
    name: str  # as shown: the service's label, or the server's host and address
    ident: str  # the service's label or the server's address
    host: str | None
    values: dict[str, float | None]
    counts: dict[str, int]
    levels: dict[str, str] = field(default_factory=dict)
    sentence: str = ""
    failures: dict[str, int] = field(default_factory=dict)  # ``stage/kind`` -> videos that failed so, most first

    @property
    def level(self) -> str:
        """The worst level of its figures."""
        return max(self.levels.values(), key=LEVELS.index, default="none")


FAILED = Threshold(0.0, 0.10, False, "a video that failed is a viewer who saw nothing: any failure is a warning; "
                   "more than one in ten (our choice) marks the service or server bad")
"""The level of a row's share of videos that failed (``failed_share``: not ok over videos)."""


def failure_text(failures: dict[str, int]) -> str:
    """``redirects/http_status 2, download/reset 1``: the failures of a row by stage and kind, most first."""
    return ", ".join(f"{kind} {n}" for kind, n in failures.items())


def _sentence(row: Row, phrase: str) -> str:
    c = row.counts
    failed = (f"failed in {c['errors']} of {c['videos']} videos ({failure_text(row.failures)})"
              if c["errors"] else "")
    if not c["played"]:
        return (f"Videos on {row.name} {failed} {phrase}." if failed else
                f"No video played on {row.name} {phrase}.")
    parts = [failed] if failed else []
    if c["stalled"]:
        parts.append(f"stalled in {c['stalled']} of {c['played'] - c['playout_unknown']} plays")
    known = c["played"] - c["playout_unknown"]  # a run imported from 2015 or 2013 data recorded no playout of ours
    if c["not_started"]:
        parts.append(f"did not start in {c['not_started']} of {known} plays")
    if len(parts) == (1 if failed else 0):
        parts.append(f"played without a stall in {c['smooth']} of {known} plays" if known else
                     f"played {c['played']} times, playout not recorded")
    text = f"Videos on {row.name} {' and '.join(parts)} {phrase}"
    worse = [f"{f.label} {shown(row.values[f.key], f.unit)}" for f in declared()
             if f.key != "smooth_share" and row.levels.get(f.key) in ("warn", "bad")]
    return text + ("; " + ", ".join(worse) if worse else "") + "."


def shown(value: float | None, unit: str) -> str:
    """An aggregate as the verdict, summary and alerts write it: a throughput in bit/s with an SI prefix and three
    significant digits as everywhere on the site ("1.06 Gbit/s", :func:`pytomo.units.in_unit`), a share in %, a
    ratio with two decimals, videos as a count."""
    if value is None:
        return NO_VALUE
    if unit == "share":
        return f"{100 * value:.1f} %"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in SI_UNITS:
        return in_unit(value, unit)
    if unit == "videos":
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 10 else f"{value:.2g} ms"
    return f"{value:.2f} {unit}"


def live_text(value: float | None, live: int, known: int) -> str:
    """The latency to the live edge as the summary shows it: the median and how many live videos it comes from."""
    videos = f"{live} live video{'s' if live != 1 else ''}"
    if not known:
        return f"{shown(None, 's')} ({videos}, none with a latency)"
    return f"{shown(value, 's')} ({known} of {videos})" if known < live else f"{shown(value, 's')} ({videos})"


def summary_lines(figures: dict[str, float | None], spread: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's lines: each declared figure with its value as shown; a live figure only when the span has a
    live video, with how many."""
    lines = []
    for f in declared():
        if not f.live_only:
            lines.append((f.label, shown(figures[f.key], f.unit)))
        elif spread.get("live"):
            lines.append((f.label, live_text(figures[f.key], spread["live"], spread.get("live_latency_known", 0))))
    return lines


def _row(kind: str, ident: str, obs: Sequence[Obs], phrase: str) -> Row:
    values = figures_of(obs)
    spread = spread_of(obs)
    counts = {k: int(spread[k]) for k in ("videos", "played", "stalled", "smooth", "not_started", "playout_unknown",
                                          "errors", "live", "live_latency_known")}
    host = next((o.host for o in obs if o.host), None) if kind == "server" else None
    name = ident if kind == "service" else f"{host} ({ident})" if host and ident not in host else ident
    levels = {f.key: f.threshold.level(values[f.key]) for f in declared() if f.threshold}
    levels["failed_share"] = FAILED.level(spread["failed_share"])
    failures: dict[str, int] = {}
    for o in obs:
        if o.error:
            failures[o.error] = failures.get(o.error, 0) + 1
    row = Row(kind, f"{kind}-{file_label(ident)}", name, ident, host, values, counts, levels,
              failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))))
    row.sentence = _sentence(row, phrase)
    return row


def verdict(obs: Sequence[Obs], win: Window) -> list[Row]:
    """One row per service then per cache server over the window, each group worst first."""
    chosen = within(obs, win.start_s, win.end_s)
    services: dict[str, list[Obs]] = {}
    servers: dict[str, list[Obs]] = {}
    for o in chosen:
        services.setdefault(o.service, []).append(o)
        if o.server:
            servers.setdefault(o.server, []).append(o)
    rows = [_row("service", k, g, win.phrase) for k, g in services.items()]
    rows.sort(key=lambda r: (-LEVELS.index(r.level), r.name))
    by_server = [_row("server", k, g, win.phrase) for k, g in servers.items()]
    by_server.sort(key=lambda r: (-LEVELS.index(r.level), r.name))
    return rows + by_server


def selected(obs: Sequence[Obs], src: str | None) -> list[Obs]:
    """The videos of one graph source (``service-…``, ``server-…``), or all of them."""
    if src is None:
        return list(obs)
    kind, _, label = src.partition("-")
    if kind == "service":
        return [o for o in obs if file_label(o.service) == label]
    return [o for o in obs if o.server and file_label(o.server) == label]
