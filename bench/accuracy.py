"""Accuracy: measured against true throughput, RTT and stalls, crawling the lab as a volunteer would."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, table
from pytomo.engine.playout import PlayoutParams, simulate
from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.media.index import MediaIndexer

RATES_MBPS = (0.5, 2, 10, 50, 200)
DELAYS_MS = (0, 10, 50)
WINDOW_S = 5.0


def _path_available() -> str | None:
    """None when the lab can build its delay path here, else why not."""
    try:
        from pytomo.lab.netpath import unavailable_reason
    except ImportError:
        return "the lab has no network path module"
    return unavailable_reason()


def _crawl(tmp: Path, scenario: str, window_s: float, pings: int = 5) -> tuple[sqlite3.Connection, list[dict]]:
    path = tmp / "scenario.toml"
    path.write_text(scenario)
    truth = tmp / "truth.jsonl"
    out = subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-t", "all_time",
                          "-P", "50", "-D", str(window_s), "-n", str(pings), "-S", "0", "--database-dir", str(tmp),
                          "--lab-scenario", str(path), "--lab-truth", str(truth)], cwd=ROOT, capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "crawl failed")
    conn = sqlite3.connect(out.stdout.strip().splitlines()[-1])
    conn.row_factory = sqlite3.Row
    return conn, [json.loads(line) for line in truth.read_text().splitlines()]


def _server(name: str, ip: str, rate_bps: float, delay_ms: float) -> str:
    if delay_ms:
        return (f'[[servers]]\nname = "{name}"\nip = "{ip}"\npath_delay_ms = {delay_ms}\n'
                f"path_rate_bps = {int(rate_bps)}\n")
    return f'[[servers]]\nname = "{name}"\nip = "{ip}"\nrate_bps = {int(rate_bps)}\n'


def throughput_and_rtt(tmp: Path) -> tuple[str, list[str]]:
    """Rates x delays: measured throughput and RTT against the lab's settings."""
    why_not = _path_available()
    delays = DELAYS_MS if why_not is None else (0,)
    servers, videos, cases = [], [], []
    for i, rate in enumerate(RATES_MBPS):
        for j, delay in enumerate(delays):
            name = f"c{i}-{j}"
            servers.append(_server(name, f"127.77.1.{i * 10 + j + 1}", rate * 1e6, delay))
            # media long enough that the window, not the file, ends the transfer
            bitrate = 1_000_000
            duration = max(30.0, rate * 1e6 * (WINDOW_S + 2) / bitrate)
            videos.append(f'[[videos]]\nid = "{name}"\nserver = "{name}"\ncontainer = "mp4"\nhops = 0\n'
                          f"duration_s = {duration}\nbitrate_bps = {bitrate}\n")
            cases.append((name, rate, delay))
    scenario = '[scenario]\nname = "bench-accuracy"\n' + "\n".join(servers + videos)
    conn, _truth = _crawl(tmp, scenario, WINDOW_S)
    rows, missed = [], []
    for name, rate, delay in cases:
        d = conn.execute("SELECT d.* FROM downloads d JOIN videos v ON v.id = d.video_row_id WHERE v.video_id = ?",
                         (name,)).fetchone()
        thp = d["avg_throughput_bps"] / 1e6 if d and d["avg_throughput_bps"] else None
        err = None if thp is None else (thp - rate) / rate
        rtts = conn.execute("SELECT s.method, avg(s.rtt_ms) AS avg_ms FROM rtt_samples s JOIN videos v"
                            " ON v.id = s.video_row_id WHERE v.video_id = ? GROUP BY s.method", (name,)).fetchall()
        true_rtt = 2 * delay
        rtt_cells = []
        for r in rtts:
            bound = 1 + 0.05 * true_rtt
            ok = r["avg_ms"] is not None and abs(r["avg_ms"] - true_rtt) <= bound
            rtt_cells.append(f"{r['method']} {r['avg_ms']:.2f}" + ("" if ok or delay == 0 else " (miss)"))
            if delay and not ok:
                missed.append(f"RTT by {r['method']} at {delay} ms: {r['avg_ms']:.2f} ms vs {true_rtt} ms")
        if err is None or abs(err) > 0.02:
            missed.append(f"throughput at {rate} Mbit/s, {delay} ms: "
                          + ("not measured" if err is None else f"error {err:+.1%}"))
        rows.append([rate, delay, "-" if thp is None else f"{thp:.3f}", "-" if err is None else f"{err:+.2%}",
                     true_rtt if delay else "loopback", "; ".join(rtt_cells)])
    note = "" if why_not is None else f"\n\nDelays other than 0 were not run: {why_not}.\n"
    text = (f"## Accuracy: throughput and RTT\n\nOne crawl of a lab with one cache server per case, window "
            f"{WINDOW_S:g} s, 5 RTT probes per method. Targets: throughput error ≤ 2 %; RTT error ≤ 1 ms + 5 %.\n\n"
            + table(["rate Mbit/s", "one-way delay ms", "measured Mbit/s", "error", "true RTT ms",
                     "measured RTT ms by method"], rows) + note + "\n")
    return text, missed


def oracle_stalls(rate_bps: float, pauses: list[tuple[int, float]], ttfb_s: float, media_path: Path,
                  window_s: float) -> tuple[int, float]:
    """Stalls a perfect network would give: ideal arrivals from the lab's settings, the file's own index."""
    index = MediaIndexer()
    data = media_path.read_bytes()
    index.feed(data)
    timeline = index.timeline()
    events, t, sent, step = [], ttfb_s, 0, 0.001
    per_step = rate_bps / 8 * step
    todo = sorted(pauses)
    while t < ttfb_s + window_s and sent < len(data):
        if todo and sent >= todo[0][0]:
            t += todo.pop(0)[1]
            continue
        limit = todo[0][0] if todo else len(data)
        sent = min(limit, int(sent + per_step))
        t += step
        events.append((t, sent, timeline.time_at(sent)))
    result = simulate(events, ttfb_s + window_s, PlayoutParams(), timeline.duration_s)
    return result.stall_count, result.stall_total_s


def stalls(tmp: Path) -> tuple[str, list[str]]:
    """Scripted pauses: stall count and total stall time against the oracle."""
    cases = [(2_000_000, [(300_000, 2.5)]), (4_000_000, [(400_000, 4.0)]),
             (3_000_000, [(300_000, 3.0), (900_000, 3.0)]), (8_000_000, [(1_500_000, 4.0)])]
    window = 12.0
    servers, videos = [], []
    for i, (rate, pauses) in enumerate(cases):
        servers.append(f'[[servers]]\nname = "s{i}"\nip = "127.77.2.{i + 1}"\nrate_bps = {rate}\n'
                       f"stalls = {[list(p) for p in pauses]}\n")
        videos.append(f'[[videos]]\nid = "s{i}"\nserver = "s{i}"\ncontainer = "mp4"\nhops = 0\n')
    conn, truth = _crawl(tmp, '[scenario]\nname = "bench-stalls"\n' + "\n".join(servers + videos), window, 1)
    media = ensure_media(MediaSpec("mp4"))
    rows, missed = [], []
    for i, (rate, pauses) in enumerate(cases):
        d = conn.execute("SELECT d.* FROM downloads d JOIN videos v ON v.id = d.video_row_id WHERE v.video_id = ?",
                         (f"s{i}",)).fetchone()
        count, total = oracle_stalls(rate, pauses, d["ttfb_s"], media.path, window)
        ok_count = d["stall_count"] == count
        ok_total = abs(d["stall_total_s"] - total) <= 0.1 + 0.05 * total
        label = ", ".join(f"{p:g} s after {b:,} B" for b, p in pauses)
        if not ok_count:
            missed.append(f"stall count {d['stall_count']} vs {count} ({rate / 1e6:g} Mbit/s, {label})")
        if not ok_total:
            missed.append(f"stall time {d['stall_total_s']:.3f} s vs {total:.3f} s ({rate / 1e6:g} Mbit/s, {label})")
        rows.append([rate / 1e6, label, d["stall_count"], count, f"{d['stall_total_s']:.3f}", f"{total:.3f}",
                     f"{d['stall_total_s'] - total:+.3f}"])
    del truth
    text = ("## Accuracy: stalls\n\nScripted pauses (the server stops for a while after some bytes), 1 Mbit/s "
            f"MP4, window {window:g} s, default thresholds. The oracle plays the ideal arrivals implied by the "
            "lab's settings (rate, pause, the measured time to first byte) through the same player over the file's "
            "own index: it checks the network measurement and its timing, not the player model (which is tested "
            "on hand-written traces). Targets: count exact, total within 100 ms + 5 %.\n\n"
            + table(["rate Mbit/s", "pauses", "stalls", "oracle", "stall s", "oracle s", "error s"], rows) + "\n")
    return text, missed


def run() -> tuple[str, list[str]]:
    """Both accuracy sections."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        t1, m1 = throughput_and_rtt(Path(a))
        t2, m2 = stalls(Path(b))
    return t1 + "\n" + t2, m1 + m2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    section, missed = run()
    print(section)
    print("missed:", missed or "none")
