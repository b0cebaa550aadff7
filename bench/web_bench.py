"""Web server speed on a run database: page and graph times, then wrk with 50 connections beside static references."""

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
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import table  # noqa: E402
from bench.web_make_db import make_database  # noqa: E402
from pytomo.rrd.metrics import METRICS  # noqa: E402
from pytomo.rrd.rebuild import rebuild  # noqa: E402

PAGES = ["", "?span=hour", "?span=all", "overview/plays.svg", "overview/ratio.svg", "overview/rtt.svg", "graphs/main",
         "graphs/qoe", "graphs/qos", "graphs/characteristics", "graphs/all", "videos", "videos?page=150",
         "videos?sort=throughput", "servers", "archive", "history", "history/start.svg", "api/v1/verdict",
         "api/v1/videos", "metrics"]
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


WRK_SCRIPT = ROOT / "bench" / "wrk" / "rotate.lua"
TCP_COUNTERS = ("ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "TCPReqQFullDoCookies")


def ensure_wrk() -> str | None:
    """The ``wrk`` binary, installed with apt-get when missing and we are root; None (and one line saying how)."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"], env=env,
                       stdout=subprocess.DEVNULL, check=False)
        found = shutil.which("wrk")
    if found is None:
        print("web_bench.py: wrk is needed for the concurrent runs: install it with `sudo apt-get install -y wrk`",
              file=sys.stderr)
    return found


def tcp_counters() -> dict[str, int]:
    """The kernel's listen-queue counters (``/proc/net/netstat``, TcpExt): overflows and SYN drops."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table_ = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=False))
            return {k: table_.get(k, 0) for k in TCP_COUNTERS}
    return {}


def load(wrk: str, urls: list[str], clients: int, seconds: float, work: Path) -> dict:
    """wrk with ``clients`` keep-alive connections for ``seconds``, cycling through ``urls`` (one server)."""
    base = re.match(r"https?://[^/]+", urls[0]).group(0)
    listing = work / f"paths-{abs(hash(tuple(urls)))}.txt"
    listing.write_text("".join(u[len(base):] + "\n" for u in urls))
    cmd = [wrk, "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds:g}s", "--timeout", "30s",
           "-s", str(WRK_SCRIPT), base + "/", "--", str(listing)]
    before = tcp_counters()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = tcp_counters()
    match = re.search(r"^WRK_JSON (.*)$", done.stdout, re.M)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    w = json.loads(match.group(1))
    errors = {k: w[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {"clients": clients, "seconds": seconds, "requests": w["requests"], "errors": sum(errors.values()),
            "error_kinds": errors, "per_s": w["requests"] / (w["duration_us"] / 1e6),
            "p50_ms": w["p50_us"] / 1000, "p95_ms": w["p95_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "max_ms": w["max_us"] / 1000, "mean_ms": w["mean_us"] / 1000,
            "tcp": {k: after[k] - before.get(k, 0) for k in after}}


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
    user = "user root; " if os.geteuid() == 0 else ""  # as root, workers would be nobody: 403 on a 0700 folder
    conf.write_text(f"daemon off; {user}worker_processes 1; pid {work / 'nginx.pid'};\n"
                    f"error_log {work / 'error.log'};\n"
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
    drops = sum(v for k, v in c["tcp"].items() if k != "TCPReqQFullDoCookies")
    return [name, c["requests"], f"{c['per_s']:.0f}", f"{c['p50_ms']:.1f}", f"{c['p95_ms']:.1f}",
            f"{c['p99_ms']:.1f}", f"{c['max_ms']:.0f}", c["errors"], drops]


def main() -> None:
    """Command line: ``web_bench.py [--videos N] [--clients N] [--seconds S] [--dir DIR]``."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--videos", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each concurrent run (default 20)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    args = p.parse_args()
    wrk = ensure_wrk()
    if wrk is None:
        sys.exit(2)
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
        concurrent["pytomo"] = load(wrk, urls, args.clients, args.seconds, work)
        concurrent["pytomo /favicon.ico"] = load(wrk, [base + "favicon.ico"], args.clients, args.seconds, work)
        names = static_copies(urls, work / "static")
        nginx = _start_nginx(work / "static", work / "nginx")
        if nginx:
            try:
                concurrent["nginx, same bytes"] = load(wrk, [nginx[1] + n for n in names], args.clients,
                                                       args.seconds, work)
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
    print(f"\nwrk, {args.clients} keep-alive connections, {args.seconds:g} s each, {len(urls)} URLs in turn:\n")
    print(table(["served", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "SYN/listen drops"],
                [_row(k, v) for k, v in concurrent.items()]))
    ours = concurrent["pytomo"]
    verdict = "met" if ours["p95_ms"] < 200 and not ours["errors"] else "NOT met"
    print(f"\np95 at {args.clients} clients: {ours['p95_ms']:.1f} ms (target < 200 ms, no error: {verdict})")
    ratios = {}
    for name, ref in concurrent.items():
        if name != "pytomo" and ref["errors"]:
            print(f"warning: {name} had {ref['errors']} errors {ref['error_kinds']}: its figures do not count")
        if name != "pytomo":
            ratios[name] = {k: ours[k] / max(ref[k], 1e-6) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
            ratios[name]["per_s"] = ours["per_s"] / max(ref["per_s"], 1e-6)
            r = ratios[name]
            print(f"pytomo / {name}: p50 ×{r['p50_ms']:.1f}, p95 ×{r['p95_ms']:.1f}, p99 ×{r['p99_ms']:.1f}, "
                  f"max ×{r['max_ms']:.1f}, req/s ×{r['per_s']:.2f}")
    out = ROOT / "bench" / "reports" / "web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"videos": args.videos, "rebuild_s": rebuild_s, "pages": pages, "median_page_ms": overall,
                               "graphs": graphs, "concurrent": concurrent, "ratios": ratios}, indent=2))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
