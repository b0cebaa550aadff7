"""Collector ingest rate: runs of about 1 MB uploaded by 20 concurrent volunteers to a collector on loopback.

    .venv/bin/python bench/collector_bench.py [--runs 200] [--clients 20] [--size-mb 1]

Makes one lab crawl, pads copies of its database to the size asked (throughput samples), each with its own run
UUID and its times shifted by its number of hours (so that each is a run of its own: the collector refuses a copy of
a stored run's videos at the same times as a duplicate), starts ``start_server.py --collect`` in a subprocess and
uploads them all with the upload client (gzip, bearer token) from ``--clients`` threads, each a volunteer with its
own folder of runs and its outbox; prints uploads ingested per second (target: at least 20 on 2 cores), with the
load average before and after and the CPU time per upload of the collector and of the clients (which share the
bench's cores here, unlike volunteers').
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytomo.upload.client import Answer, Uploader  # noqa: E402
from pytomo.upload.outbox import Outbox  # noqa: E402


def template(work: Path) -> Path:
    """One lab crawl's database."""
    done = subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-t", "all_time", "-P",
                           "3", "-D", "1", "-n", "1", "-S", "0", "--database-dir", str(work / "template")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"the lab crawl failed: {done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def shifted(text: str | None, hours: int) -> str | None:
    """A stored UTC time (``2026-12-07T04:17:27.960900Z``) ``hours`` later, in the same form."""
    if not text:
        return text
    when = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(hours=hours)
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def padded(src: Path, dst: Path, size_mb: float, number: int = 0) -> None:
    """A copy of ``src`` of about ``size_mb`` MB (more throughput samples), with a run UUID of its own and its UTC
    times ``number`` hours later."""
    shutil.copy(src, dst)
    conn = sqlite3.connect(dst, isolation_level=None)
    conn.execute("UPDATE run SET run_uuid = ?", (str(uuid.uuid4()),))
    conn.create_function("shifted", 1, lambda text: shifted(text, number), deterministic=True)
    for table, columns in (("run", ("started_at", "ended_at")), ("videos", ("started_at",)),
                           ("downloads", ("started_at",))):
        conn.execute(f"UPDATE {table} SET " + ", ".join(f"{c} = shifted({c})" for c in columns))
    did, start = conn.execute("SELECT download_id, max(bin_index) FROM throughput_samples GROUP BY download_id "
                              "LIMIT 1").fetchone()
    rows = int(size_mb * 1024 * 1024 / 40)  # about 40 bytes a sample on disk
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO throughput_samples (download_id, bin_index, t_start_s, bytes) VALUES (?,?,?,?)",
                     ((did, start + i + 1, (start + i + 1) * 0.1, 12500 + i % 977) for i in range(rows)))
    conn.execute("COMMIT")
    conn.execute("VACUUM")
    conn.close()


def cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process, and of its children still running (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0, 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own, sum(sum(cpu_s(int(child))) for child in children)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--size-mb", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=None, help="the collector's --workers (default: its own)")
    p.add_argument("--template", type=Path, help="a lab run database to copy (default: a lab crawl now)")
    ns = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pytomo-collector-bench-"))
    try:
        src = ns.template or template(work)
        runs = work / "runs"
        folders = [runs / f"volunteer-{c:02d}" for c in range(ns.clients)]  # each client's runs and its outbox
        for folder in folders:
            folder.mkdir(parents=True)
        paths = [folders[i % ns.clients] / f"bench-{i:04d}.pytomo_database.db" for i in range(ns.runs)]
        for number, path in enumerate(paths):
            padded(src, path, ns.size_mb, number)
        sizes = [p.stat().st_size for p in paths]
        tokens = work / "tokens"
        token = subprocess.run([sys.executable, "-m", "pytomo", "tokens", "add", "bench", "--tokens", str(tokens)],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
        workers = [] if ns.workers is None else ["--workers", str(ns.workers)]
        log = work / "collector.log"
        with open(log, "wb") as err:
            server = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "--collect",
                                       str(work / "collect"), "--tokens", str(tokens), *workers, "0"], cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            line = server.stdout.readline() if server.stdout else ""
            base = line.split()[-1].removesuffix("api/v1/runs")
            uploader = Uploader(base, token)

            def volunteer(folder: Path) -> list[Answer]:
                """One client: its runs one after the other, its outbox in its folder (as pytomo upload does)."""
                outbox = Outbox(folder)
                return [uploader.upload(path, outbox) for path in paths if path.parent == folder]

            load = os.getloadavg()[0]
            server_cpu, client_cpu = sum(cpu_s(server.pid)), time.process_time()
            serving_cpu = cpu_s(server.pid)[0]
            start = time.perf_counter()
            with ThreadPoolExecutor(ns.clients) as pool:
                answers = [a for done in pool.map(volunteer, folders) for a in done]
            elapsed = time.perf_counter() - start
            server_cpu, client_cpu = sum(cpu_s(server.pid)) - server_cpu, time.process_time() - client_cpu
            serving_cpu = cpu_s(server.pid)[0] - serving_cpu
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = sum(a.status == 201 for a in answers)
        logged = log.read_text(encoding="utf-8", errors="replace").count(" outcome=stored ")
        rate = stored / elapsed
        print(f"{stored} runs of {sum(sizes) / len(sizes) / 1e6:.2f} MB (mean) ingested in {elapsed:.2f} s by "
              f"{ns.clients} clients on {os.cpu_count()} cores: {rate:.1f} runs/s (target >= 20): "
              f"{'met' if rate >= 20 else 'NOT met'}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} "
              f"after; {logged} 'stored' lines in the collector's log")
        print(f"CPU per upload: collector {server_cpu / len(paths) * 1000:.0f} ms (serving process "
              f"{serving_cpu / len(paths) * 1000:.0f} ms, the rest its workers), clients "
              f"{client_cpu / len(paths) * 1000:.0f} ms (gzip, SHA-256, HTTP, outbox)")
        return 0 if stored == ns.runs else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
