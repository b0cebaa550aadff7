"""Web server speed on a 10,000-video run database: page and graph times, then 50 clients beside a static reference."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
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
VIDEOS = [10_000]  # the database's size, set by main(): video ids and the deep page are drawn within it
SPANS = ("hour", "day", "week", "month", "all")


def _pages() -> list[str]:
    deep = f"videos?page={max(1, min(150, VIDEOS[0] // 67))}"
    return [deep if p == "videos?page=150" else p for p in PAGES]


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
    for page in _pages():
        cold = _time_ms(s, base + page)
        warm = [_time_ms(s, base + page) for _ in range(repeat)]
        out[page or "/"] = {"first_ms": cold, "median_ms": statistics.median(warm)}
    videos = [_time_ms(s, f"{base}video/{rng.randint(1, VIDEOS[0])}") for _ in range(repeat)]
    out["video/<id>"] = {"first_ms": videos[0], "median_ms": statistics.median(videos)}
    svgs = [_time_ms(s, f"{base}video/{rng.randint(1, VIDEOS[0])}/throughput.svg") for _ in range(repeat)]
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


def mix(base: str, rng: random.Random) -> list[str]:
    """The URLs the clients loop over: every page, graphs of 8 metrics at every span, 50 video pages."""
    urls = [base + p for p in _pages()] + [f"{base}graph/{m.name}.png?span={s}" for m in METRICS[:8] for s in SPANS]
    return urls + [f"{base}video/{rng.randint(1, VIDEOS[0])}" for _ in range(50)]


def load(urls: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads, each requesting the ``urls`` in turn (keep-alive) for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        s = requests.Session()
        i = k
        mine, bad = [], []
        start.wait()
        while time.monotonic() < stop_at[0]:
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

    stop_at = [0.0]
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=100)
    return {"clients": clients, "seconds": seconds, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:5], "per_s": len(latencies) / seconds, "p50_ms": q[49], "p95_ms": q[94],
            "max_ms": max(latencies)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_nginx(root: Path, work: Path) -> tuple[subprocess.Popen, str] | None:
    """nginx (one worker, as the server has one process) serving ``root`` on a loopback port; None without nginx."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        return None
    port = _free_port()
    work.mkdir(parents=True, exist_ok=True)
    temps = " ".join(f"{k}_temp_path {work / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = work / "nginx.conf"
    conf.write_text(f"daemon off; worker_processes 1; pid {work / 'nginx.pid'}; error_log {work / 'error.log'};\n"
                    f"events {{ worker_connections 1024; }}\n"
                    f"http {{ access_log off; {temps} default_type text/html;\n"
                    f"  server {{ listen 127.0.0.1:{port} backlog=128; root {root}; }} }}\n")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None:
                return None
            time.sleep(0.05)
    proc.kill()
    return None


def static_copies(urls: list[str], root: Path) -> list[str]:
    """Each answer of ``urls`` saved as a file (``r<i>``): the reference serves the same bytes, statically."""
    root.mkdir(parents=True, exist_ok=True)
    s = requests.Session()
    names = []
    for i, url in enumerate(urls):
        (root / f"r{i}").write_bytes(s.get(url, timeout=30).content)
        names.append(f"r{i}")
    return names


def _row(name: str, c: dict) -> list:
    return [name, c["clients"], c["seconds"], c["requests"], f"{c['per_s']:.0f}", f"{c['p50_ms']:.1f}",
            f"{c['p95_ms']:.1f}", f"{c['max_ms']:.0f}", c["errors"]]


def main() -> None:
    """Command line: ``web_bench.py [--videos N] [--clients N] [--seconds S] [--dir DIR]``."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--videos", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each concurrent run (default 20)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = p.parse_args()
    VIDEOS[0] = args.videos
    work = args.dir or Path(tempfile.mkdtemp(prefix="pytomo-web-bench-"))
    rng = random.Random(42)
    t = time.perf_counter()
    db = make_database(work / "db", args.videos)
    made_s = time.perf_counter() - t
    t = time.perf_counter()
    report = rebuild(db)
    rebuild_s = time.perf_counter() - t
    proc, base = _start_server(db.parent, work / "cache")
    concurrent: dict[str, dict] = {}
    try:
        pages = measure_pages(base, rng, args.repeat)
        graphs = measure_graphs(base)
        urls = mix(base, rng)
        concurrent["pytomo"] = load(urls, args.clients, args.seconds)
        concurrent["pytomo /favicon.ico"] = load([base + "favicon.ico"], args.clients, args.seconds)
        names = static_copies(urls, work / "static")
        nginx = _start_nginx(work / "static", work / "nginx")
        if nginx:
            try:
                concurrent["nginx, same bytes"] = load([nginx[1] + n for n in names], args.clients, args.seconds)
            finally:
                nginx[0].terminate()
                nginx[0].wait(timeout=10)
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
    print("\n" + table(["served", "clients", "seconds", "requests", "req/s", "p50 ms", "p95 ms", "max ms", "errors"],
                       [_row(k, v) for k, v in concurrent.items()]))
    ours = concurrent["pytomo"]
    verdict = "met" if ours["p95_ms"] < 200 and not ours["errors"] else "NOT met"
    print(f"\np95 at {args.clients} clients: {ours['p95_ms']:.1f} ms (target < 200 ms, no error: {verdict})")
    ratios = {}
    for name, ref in concurrent.items():
        if name != "pytomo":
            ratios[name] = {k: ours[k] / max(ref[k], 1e-6) for k in ("p50_ms", "p95_ms", "max_ms")}
            ratios[name]["per_s"] = ours["per_s"] / max(ref["per_s"], 1e-6)
            print(f"pytomo / {name}: p50 ×{ratios[name]['p50_ms']:.1f}, p95 ×{ratios[name]['p95_ms']:.1f}, "
                  f"max ×{ratios[name]['max_ms']:.1f}, req/s ×{ratios[name]['per_s']:.2f}")
    out = ROOT / "bench" / "reports" / "web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"videos": args.videos, "rebuild_s": rebuild_s, "pages": pages, "median_page_ms": overall,
                               "graphs": graphs, "concurrent": concurrent, "ratios": ratios}, indent=2))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
