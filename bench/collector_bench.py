"""Collector ingest rate: runs of about 1 MB uploaded by 20 concurrent volunteers to a collector on loopback.

    .venv/bin/python bench/collector_bench.py [--runs 200] [--clients 20] [--size-mb 1]

Makes one lab crawl, pads copies of its database to the size asked (throughput samples), each with its own run
UUID, starts ``start_server.py --collect`` in a subprocess and uploads them all with the upload client (gzip,
bearer token) from ``--clients`` threads; prints uploads ingested per second (target: at least 20 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytomo.upload.client import Uploader  # noqa: E402
from pytomo.upload.outbox import Outbox  # noqa: E402


def template(work: Path) -> Path:
    """One lab crawl's database."""
    done = subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-t", "all_time", "-P",
                           "3", "-D", "1", "-n", "1", "-S", "0", "--database-dir", str(work / "template")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"the lab crawl failed: {done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def padded(src: Path, dst: Path, size_mb: float) -> None:
    """A copy of ``src`` of about ``size_mb`` MB (more throughput samples), with a run UUID of its own."""
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst, isolation_level=None)
    conn.execute("UPDATE run SET run_uuid = ?", (str(uuid.uuid4()),))
    did, start = conn.execute("SELECT download_id, max(bin_index) FROM throughput_samples GROUP BY download_id "
                              "LIMIT 1").fetchone()
    rows = int(size_mb * 1024 * 1024 / 40)  # about 40 bytes a sample on disk
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO throughput_samples (download_id, bin_index, t_start_s, bytes) VALUES (?,?,?,?)",
                     ((did, start + i + 1, (start + i + 1) * 0.1, 12500 + i % 977) for i in range(rows)))
    conn.execute("COMMIT")
    conn.execute("VACUUM")
    conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--size-mb", type=float, default=1.0)
    ns = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pytomo-collector-bench-"))
    try:
        src = template(work)
        runs = work / "runs"
        runs.mkdir()
        paths = [runs / f"bench-{i:04d}.pytomo_database.db" for i in range(ns.runs)]
        for path in paths:
            padded(src, path, ns.size_mb)
        sizes = [p.stat().st_size for p in paths]
        tokens = work / "tokens"
        token = subprocess.run([sys.executable, "-m", "pytomo", "tokens", "add", "bench", "--tokens", str(tokens)],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
        server = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "--collect", str(work / "collect"),
                                   "--tokens", str(tokens), "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline() if server.stdout else ""
            base = line.split()[-1].removesuffix("api/v1/runs")
            uploader = Uploader(base, token)
            outbox = Outbox(runs)
            start = time.perf_counter()
            with ThreadPoolExecutor(ns.clients) as pool:
                answers = list(pool.map(lambda path: uploader.upload(path, outbox), paths))
            elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = sum(a.status == 201 for a in answers)
        rate = stored / elapsed
        print(f"{stored} runs of {sum(sizes) / len(sizes) / 1e6:.2f} MB (mean) ingested in {elapsed:.2f} s by "
              f"{ns.clients} clients on {os.cpu_count()} cores: {rate:.1f} runs/s (target >= 20): "
              f"{'met' if rate >= 20 else 'NOT met'}")
        return 0 if stored == ns.runs else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
