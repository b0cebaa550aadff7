"""The operator's figures over a span, each defined once, their thresholds, per-interval bins and the verdict."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytomo.readers.observations import Obs
from pytomo.rrd.store import file_label

SPAN_LENGTH_S: dict[str, int | None] = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400,
                                        "all": None}
SPAN_PHRASE = {"hour": "in the run's last hour", "day": "in the run's last day", "week": "in the run's last week",
               "month": "in the run's last month", "all": "over the whole run"}
BIN_WIDTHS_S = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BINS = 48
LEVELS = ("none", "good", "warn", "bad")  # worst last


@dataclass(frozen=True)
class Threshold:
    """Where a figure turns from good to warning (``good``) and from warning to bad (``bad``), and why."""

    good: float
    bad: float
    higher_is_better: bool
    source: str

    def level(self, value: float | None) -> str:
        """``good``, ``warn``, ``bad``, or ``none`` when there is no value."""
        if value is None:
            return "none"
        if self.higher_is_better:
            return "good" if value >= self.good else "warn" if value >= self.bad else "bad"
        return "good" if value <= self.good else "warn" if value <= self.bad else "bad"


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


def _starts(obs: Sequence[Obs]) -> list[float]:
    return [o.start_s for o in obs if o.played and o.start_s is not None]


def _ratios(obs: Sequence[Obs]) -> list[float]:
    return [o.ratio for o in obs if o.played and o.ratio is not None]


def _rtts(obs: Sequence[Obs]) -> list[float]:
    return [o.rtt_ms for o in obs if o.rtt_ms is not None]


def _live(obs: Sequence[Obs]) -> list[Obs]:
    return [o for o in obs if o.live]


def _live_latencies(obs: Sequence[Obs]) -> list[float]:
    return [o.live_latency_s for o in obs if o.live and o.live_latency_s is not None]


def _loss(obs: Sequence[Obs]) -> float | None:
    sent = sum(o.probes_sent for o in obs)
    return sum(o.probes_lost for o in obs) / sent if sent else None


@dataclass(frozen=True)
class SpanFigure:
    """One figure of the verdict: its key (JSON, /metrics), label, unit, definition and threshold."""

    key: str
    label: str
    unit: str  # "videos", "share", "s", "ratio", "ms"
    definition: str
    compute: Callable[[Sequence[Obs]], float | None]
    threshold: Threshold | None = None
    metric: str = ""  # its /metrics name after ``pytomo_``, in Prometheus base units
    metric_scale: float = 1.0  # multiplies the value into those units
    live_only: bool = False  # a figure of live streams: shown only where the span has a live video


FIGURES: tuple[SpanFigure, ...] = (
    SpanFigure("played", "videos played", "videos", "videos whose first download received bytes",
               lambda obs: float(len(_played(obs))), metric="videos_played"),
    SpanFigure("smooth_share", "played without a stall", "share",
               "videos played whose playback started within the window and never stalled, over videos played",
               lambda obs: _share(sum(o.smooth for o in obs), len(_played(obs))),
               Threshold(0.95, 0.80, True, "P.1203's stalling term: one stall already costs a session much of its "
                         "score (ITU-T P.1203.3, 8.1.2); Conviva's State of Streaming reports about 1 % of "
                         "plays with rebuffering on good networks"), "played_without_stall_ratio"),
    SpanFigure("start_median_s", "median time to start", "s",
               "median of the request -> playback start time of the videos that started",
               lambda obs: _median(_starts(obs)),
               Threshold(2.0, 5.0, False, "viewers begin to abandon after 2 s and each further second loses about "
                         "6 % more (Krishnan and Sitaraman, IMC 2012)"), "time_to_start_median_seconds"),
    SpanFigure("ratio_median", "median throughput ÷ encoding rate", "ratio",
               "median over played videos of their throughput over the media's encoding rate",
               lambda obs: _median(_ratios(obs)),
               Threshold(1.25, 1.0, True, "below 1 the media arrives slower than it plays and the buffer drains; "
                         "dash.js keeps 10 % headroom (bandwidthSafetyFactor 0.9), we ask for 25 %"),
               "throughput_to_encoding_median_ratio"),
    SpanFigure("throughput_median_bps", "median throughput", "bit/s",
               "median over played videos of their measured throughput (2015: AvgThroughput)",
               lambda obs: _median([o.throughput_bps for o in obs if o.played and o.throughput_bps is not None]),
               metric="throughput_median_bits_per_second"),
    SpanFigure("rtt_median_ms", "median RTT", "ms",
               "median of the videos' RTT to their cache server (each the median of its ICMP echoes, else TCP "
               "connects; 2015: PingAvg)", lambda obs: _median(_rtts(obs)),
               Threshold(50.0, 150.0, False, "a cache in the viewer's country is usually within 50 ms; 150 ms is "
                         "ITU-T G.114's limit for interactive use and slows every TCP ramp-up"),
               "rtt_median_seconds", 0.001),
    SpanFigure("loss_share", "probe loss", "share", "RTT probes without an answer over probes sent",
               _loss, Threshold(0.01, 0.05, False, "Smokeping colours any loss; ITU-T Y.1541 classes 0-1 ask for "
                                "at most 0.1 % packet loss, and ping loss above 5 % is a broken path"),
               "probe_loss_ratio"),
    SpanFigure("live_latency_median_s", "latency to the live edge (live streams)", "s",
               "median over the videos whose first download followed a live stream (HLS or DASH) of its latency to "
               "the live edge when the window closed (downloads.live_latency_end_s: the wall clock minus the "
               "program date of the media playing); no value without a live video",
               lambda obs: _median(_live_latencies(obs)),
               Threshold(30.0, 60.0, False, "RFC 8216 (6.3.3) has a client start no less than three target "
                         "durations from the end of the playlist; with the 6 s segments Apple's HLS authoring "
                         "specification recommends, that and the segment being made put a standard player about 24 s "
                         "behind the live edge, so up to 30 s is good; beyond 60 s (our choice: over twice that) "
                         "stalls have piled up delay, since a live player that stalls falls behind by as much. "
                         "Low-latency HLS and DASH aim at a few seconds and would need limits of their own"),
               "live_latency_median_seconds", live_only=True),
)
BY_KEY = {f.key: f for f in FIGURES}


def figures_of(obs: Sequence[Obs]) -> dict[str, float | None]:
    """Every declared figure of a set of videos."""
    return {f.key: f.compute(obs) for f in FIGURES}


def spread_of(obs: Sequence[Obs]) -> dict[str, Any]:
    """What the graphs draw of one interval: counts, medians with their p10-p90 band, RTT min-median-max, loss."""
    starts, ratios, rtts = _starts(obs), _ratios(obs), _rtts(obs)
    played = _played(obs)
    return {
        "videos": len(obs), "played": len(played), "stalled": sum(o.stalled for o in played),
        "smooth": sum(o.smooth for o in played), "not_started": sum(not o.started for o in played),
        "errors": sum(not o.ok for o in obs), "servers": len({o.server for o in obs if o.server}),
        "start_p10_s": quantile(starts, 0.1), "start_median_s": _median(starts), "start_p90_s": quantile(starts, 0.9),
        "ratio_p10": quantile(ratios, 0.1), "ratio_median": _median(ratios), "ratio_p90": quantile(ratios, 0.9),
        "rtt_min_ms": min((o.rtt_min_ms for o in obs if o.rtt_min_ms is not None), default=None),
        "rtt_median_ms": _median(rtts),
        "rtt_max_ms": max((o.rtt_max_ms for o in obs if o.rtt_max_ms is not None), default=None),
        "probes_sent": sum(o.probes_sent for o in obs), "probes_lost": sum(o.probes_lost for o in obs),
        "loss_share": _loss(obs), "live": len(_live(obs)), "live_latency_known": len(_live_latencies(obs)),
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

    @property
    def level(self) -> str:
        """The worst level of its figures."""
        return max(self.levels.values(), key=LEVELS.index, default="none")


def _sentence(row: Row, phrase: str) -> str:
    c = row.counts
    if not c["played"]:
        return f"No video played on {row.name} {phrase}."
    parts = []
    if c["stalled"]:
        parts.append(f"stalled in {c['stalled']} of {c['played']} plays")
    if c["not_started"]:
        parts.append(f"did not start in {c['not_started']} of {c['played']} plays")
    if not parts:
        parts.append(f"played without a stall in {c['smooth']} of {c['played']} plays")
    text = f"Videos on {row.name} {' and '.join(parts)} {phrase}"
    worse = [f"{f.label} {shown(row.values[f.key], f.unit)}" for f in FIGURES
             if f.key != "smooth_share" and row.levels.get(f.key) in ("warn", "bad")]
    return text + ("; " + ", ".join(worse) if worse else "") + "."


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "share":
        return f"{100 * value:.1f} %"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "bit/s":
        return f"{value / 1e6:.2f} Mbit/s"
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
    for f in FIGURES:
        if not f.live_only:
            lines.append((f.label, shown(figures[f.key], f.unit)))
        elif spread.get("live"):
            lines.append((f.label, live_text(figures[f.key], spread["live"], spread.get("live_latency_known", 0))))
    return lines


def _row(kind: str, ident: str, obs: Sequence[Obs], phrase: str) -> Row:
    values = figures_of(obs)
    spread = spread_of(obs)
    counts = {k: int(spread[k]) for k in ("videos", "played", "stalled", "smooth", "not_started", "errors", "live",
                                          "live_latency_known")}
    host = next((o.host for o in obs if o.host), None) if kind == "server" else None
    name = ident if kind == "service" else f"{host} ({ident})" if host and ident not in host else ident
    row = Row(kind, f"{kind}-{file_label(ident)}", name, ident, host, values, counts,
              {f.key: f.threshold.level(values[f.key]) for f in FIGURES if f.threshold})
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
