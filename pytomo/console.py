"""What the crawler prints: one progress line per video (a Sink) on a terminal, and the closing summary table."""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pytomo.results import CrawlSummary, Sink, VideoMeasurement

log = logging.getLogger("pytomo.run")  # the progress lines in the log file, as the run wrote them
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str | None, width: int | None = None) -> str:
    """Text from the platforms made safe for a terminal (no control characters), optionally cut."""
    out = _CONTROL.sub("?", text or "")
    if width is not None and len(out) > width:
        out = out[: width - 1] + "…"
    return out


def _mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.2f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def video_line(m: VideoMeasurement, n: int) -> str:
    """One progress line: video, cache host and address, throughput, start time, stalls or the error."""
    name = clean(m.video_id or m.page_url, 28)
    d = m.main_download
    if d is None:
        return f"[{n}] {name}: {m.status} at {m.error_stage}: {clean(m.error_message, 100)}"
    t, p = d.transfer, d.playout
    host = clean(m.hops[-1].host if m.hops else "?", 40)
    parts = [f"[{n}] {name}", f"{host} ({t.address})", f"{_mbps(t.avg_throughput_bps)} Mbit/s"]
    if p is not None:
        start = "no start" if p.time_to_start_s is None else f"start {p.time_to_start_s:.2f} s"
        parts.append(f"{start}, {p.stall_count} stall(s) {p.stall_total_s:.2f} s")
    if m.status != "ok":
        parts.append(f"{m.status} at {m.error_stage}: {clean(m.error_message, 80)}")
    return "  ".join(parts)


class ConsoleSink(Sink):
    """One progress line per video: in the log, and on standard error when it is a terminal."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.count = 0
        self.out = out if out is not None else sys.stderr
        self.tty = self.out.isatty()

    def add(self, video: VideoMeasurement) -> None:
        """Log (and print on a terminal) the video's line."""
        self.count += 1
        line = video_line(video, self.count)
        log.info("%s", line)
        if self.tty:
            print(line, file=self.out, flush=True)


def summary_table(summary: CrawlSummary, out: TextIO) -> None:
    """The closing table, one row per video."""
    header = ("video", "status", "cache address", "Mbit/s", "enc Mbit/s", "start s", "stalls", "stall s",
              "RTT ms")
    rows = []
    for m in summary.videos:
        d = m.main_download
        t = d.transfer if d else None
        p = d.playout if d else None
        rtt = [r.min_ms for r in m.rtt if r.min_ms is not None and t is not None and r.address == t.address]
        rows.append((
            clean(m.video_id or m.page_url, 28),
            m.status if m.status == "ok" else f"{m.status}:{m.error_stage}/{m.error_kind}",
            t.address if t else "-",
            _mbps(t.avg_throughput_bps) if t else "-",
            _mbps(d.encoding_rate_bps) if d else "-",
            _s(p.time_to_start_s) if p else "-",
            str(p.stall_count) if p else "-",
            _s(p.stall_total_s) if p else "-",
            f"{min(rtt):.3f}" if rtt else "-",
        ))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        out.write("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    out.write(f"{len(summary.videos)} videos, {summary.measured} measured, {summary.rounds} round(s); "
              f"stopped: {summary.stop_reason}\n")
    if summary.slowdowns:
        what = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in summary.slowdowns.items())
        out.write(f"the platform pushed back: {what}; the crawl slowed down (longest pause "
                  f"{summary.longest_pause_s:.0f} s)\n")
