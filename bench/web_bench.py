"""Web server speed on a 10,000-video run database: page and graph times, then concurrent clients for 30 s."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import table  # noqa: E402
from bench.web_make_db import make_database  # noqa: E402
from pytomo.rrd.metrics import METRICS  # noqa: E402
from pytomo.rrd.rebuild import rebuild  # noqa: E402

PAGES = ["", "graphs/qoe", "graphs/qos", "graphs/characteristics", "graphs/all", "videos", "videos?page=150",
         "servers", "archive"]
SPANS = ("hour", "day", "week", "month", "all")


def _start_server(folder: Path, cache: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTOMO_CACHE_DIR=str(cache))
    proc = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "-d", str(folder), "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    match = re.match(r"serving (\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, match.group(1)


def _time_ms(session: requests.Session, url: str) -> float:
    t = time.perf_counter()
    r = session.get(url, timeout=30)
    elapsed = (time.perf_counter() - t) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {r.status_code}")
    return elapsed


def measure_pages(base: str, rng: random.Random, repeat: int) -> dict[str, dict[str, float]]:
    """First (cold) and median times of each page, plus video pages picked at random."""
    s = requests.Session()
    out = {}
    for page in PAGES:
        cold = _time_ms(s, base + page)
        warm = [_time_ms(s, base + page) for _ in range(repeat)]
        out[page or "/"] = {"first_ms": cold, "median_ms": statistics.median(warm)}
    videos = [_time_ms(s, f"{base}video/{rng.randint(1, 10_000)}") for _ in range(repeat)]
    out["video/<id>"] = {"first_ms": videos[0], "median_ms": statistics.median(videos)}
    svgs = [_time_ms(s, f"{base}video/{rng.randint(1, 10_000)}/throughput.svg") for _ in range(repeat)]
    out["video/<id>/throughput.svg"] = {"first_ms": svgs[0], "median_ms": statistics.median(svgs)}
    return out


def measure_graphs(base: str) -> dict[str, float]:
    """rrdtool graphs: every metric and span drawn once (cache cold), then served from the cache."""
    s = requests.Session()
    urls = [f"{base}graph/{m.name}.png?span={span}" for m in METRICS for span in SPANS]
    cold = [_time_ms(s, u) for u in urls]
    warm = [_time_ms(s, u) for u in urls]
    return {"graphs": len(urls), "drawn_median_ms": statistics.median(cold), "drawn_max_ms": max(cold),
            "cached_median_ms": statistics.median(warm)}


def load(base: str, clients: int, seconds: float, rng: random.Random) -> dict[str, float]:
    """``clients`` threads, each requesting pages, graphs and video pages in turn for ``seconds``."""
    urls = [base + p for p in PAGES] + [f"{base}graph/{m.name}.png?span={s}" for m in METRICS[:8] for s in SPANS]
    urls += [f"{base}video/{rng.randint(1, 10_000)}" for _ in range(50)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        s = requests.Session()
        i = k
        mine, bad = [], []
        while time.monotonic() < stop_at:
            url = urls[i % len(urls)]
            i += 7
            t = time.perf_counter()
            try:
                r = s.get(url, timeout=30)
                if r.status_code != 200:
                    bad.append(f"{url}: {r.status_code}")
            except requests.RequestException as exc:
                bad.append(f"{url}: {exc}")
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=100)
    return {"clients": clients, "seconds": seconds, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:5], "per_s": len(latencies) / seconds, "p50_ms": q[49], "p95_ms": q[94]}


def main() -> None:
    """Command line: ``web_bench.py [--videos N] [--clients N] [--seconds S] [--dir DIR]``."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--videos", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = p.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="pytomo-web-bench-"))
    rng = random.Random(42)
    t = time.perf_counter()
    db = make_database(work / "db", args.videos)
    made_s = time.perf_counter() - t
    t = time.perf_counter()
    report = rebuild(db)
    rebuild_s = time.perf_counter() - t
    proc, base = _start_server(db.parent, work / "cache")
    try:
        pages = measure_pages(base, rng, args.repeat)
        graphs = measure_graphs(base)
        concurrent = load(base, args.clients, args.seconds, rng)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    overall = statistics.median(v["median_ms"] for v in pages.values())
    print(f"database: {args.videos} videos written in {made_s:.1f} s; RRD rebuild: {report.points} points, "
          f"{len(report.files)} files in {rebuild_s:.1f} s\n")
    print(table(["page", "first ms", "median ms"],
                [[k, f"{v['first_ms']:.1f}", f"{v['median_ms']:.1f}"] for k, v in pages.items()]))
    print(f"\nmedian page time: {overall:.1f} ms (target < 100 ms)\n")
    print(table(["graphs", "drawn median ms", "drawn max ms", "cached median ms"],
                [[graphs["graphs"], f"{graphs['drawn_median_ms']:.1f}", f"{graphs['drawn_max_ms']:.1f}",
                  f"{graphs['cached_median_ms']:.1f}"]]))
    print("\n" + table(["clients", "seconds", "requests", "req/s", "p50 ms", "p95 ms", "errors"],
                       [[concurrent["clients"], concurrent["seconds"], concurrent["requests"],
                         f"{concurrent['per_s']:.0f}", f"{concurrent['p50_ms']:.1f}", f"{concurrent['p95_ms']:.1f}",
                         concurrent["errors"]]]))
    out = ROOT / "bench" / "reports" / "web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"videos": args.videos, "rebuild_s": rebuild_s, "pages": pages, "median_page_ms": overall,
                               "graphs": graphs, "concurrent": concurrent}, indent=2))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
