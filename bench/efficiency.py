"""Efficiency: the crawler's downloader against curl on the same unshaped lab URL, alternated, in one run."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import lab_process, table
from pytomo.engine.download import download
from pytomo.engine.http import HttpClient
from pytomo.lab.media import MediaSpec, ensure_media
from pytomo.media.index import MediaIndexer

SCENARIO = """
[scenario]
name = "bench-efficiency"
description = "one unshaped cache server with a large file"
[[servers]]
name = "cache-bench"
ip = "127.77.1.1"
[[videos]]
id = "big"
title = "big"
server = "cache-bench"
container = "mp4"
duration_s = {duration}
bitrate_bps = {bitrate}
hops = 0
"""
TARGET_RATIO = 0.8
TARGET_BPS = 8e9  # 1 GB/s


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(repeats: int = 5, duration_s: float = 60.0, bitrate_bps: int = 60_000_000) -> tuple[str, list[str]]:
    """Markdown section and the list of missed targets."""
    media = ensure_media(MediaSpec("mp4", duration_s=duration_s, bitrate_bps=bitrate_bps))
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "s.toml"
        scenario.write_text(SCENARIO.format(duration=duration_s, bitrate=bitrate_bps))
        with lab_process(scenario) as lab:
            host, port, ip = lab["caches"]["cache-bench"]
            url = f"http://{host}:{port}/v/big.mp4"
            client = HttpClient(lambda h: [ip])
            ours, indexed, curls = [], [], []
            for _ in range(repeats):
                indexer = MediaIndexer()
                cpu0, t0 = _cpu_self(), time.perf_counter()
                tr = download(client, url, ip, window_s=600, head_limit_bytes=2 << 20, on_data=indexer.feed)
                wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
                assert tr.bytes_total == media.size_bytes and indexer.timeline() is not None, tr.error
                indexed.append((tr.bytes_total * 8 / wall, cpu / (tr.bytes_total / 1e9)))
                cpu0, t0 = _cpu_self(), time.perf_counter()
                tr = download(client, url, ip, window_s=600, head_limit_bytes=0)
                wall, cpu = time.perf_counter() - t0, _cpu_self() - cpu0
                assert tr.bytes_total == media.size_bytes, tr.error
                ours.append((tr.bytes_total * 8 / wall, cpu / (tr.bytes_total / 1e9)))
                cpu0, t0 = _cpu_children(), time.perf_counter()
                done = subprocess.run(["curl", "-s", "-o", os.devnull, "--resolve", f"{host}:{port}:{ip}",
                                       "-w", "%{size_download}", url], capture_output=True, text=True, check=True)
                wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
                size = int(done.stdout)
                assert size == media.size_bytes
                curls.append((size * 8 / wall, cpu / (size / 1e9)))
    ours_bps = statistics.median(b for b, _ in ours)
    curl_bps = statistics.median(b for b, _ in curls)
    ratio = ours_bps / curl_bps
    def med(values) -> float:
        return statistics.median(values)

    rows = [["crawler (requests, read1 1 MiB)", f"{ours_bps / 8e9:.2f}", f"{med(c for _, c in ours):.2f}"],
            ["crawler with the media index fed, as in a crawl",
             f"{med(b for b, _ in indexed) / 8e9:.2f}", f"{med(c for _, c in indexed):.2f}"],
            ["curl", f"{curl_bps / 8e9:.2f}", f"{med(c for _, c in curls):.2f}"]]
    missed = []
    if ratio < TARGET_RATIO:
        missed.append(f"downloader at {ratio:.2f} of curl's throughput (target {TARGET_RATIO})")
    if ours_bps < TARGET_BPS:
        missed.append(f"downloader at {ours_bps / 8e9:.2f} GB/s unshaped on loopback (target 1 GB/s)")
    text = (f"## Efficiency\n\nAn unshaped download of a {media.size_bytes / 1e6:.0f} MB file from a lab cache server "
            f"(its own process), by the crawler's downloader and by curl on the same URL, alternated {repeats} times; "
            f"medians. Throughput ratio crawler/curl: **{ratio:.2f}** (target ≥ {TARGET_RATIO}).\n\n"
            + table(["downloader", "GB/s", "CPU s per GB"], rows) + "\n")
    return text, missed


if __name__ == "__main__":
    section, missed = run()
    print(section)
    print("missed:", missed or "none")
