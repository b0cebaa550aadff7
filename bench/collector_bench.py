"""Collector ingest rate: runs of about 1 MB uploaded by 20 concurrent volunteers to a collector on loopback.

    .venv/bin/python bench/collector_bench.py [--runs 200] [--clients 20] [--size-mb 1]

Makes one lab crawl, pads copies of its database to the size asked (throughput samples), each with its own run
UUID and its times shifted by its number of hours (so that each is a run of its own: the collector refuses a copy of
a stored run's videos at the same times as a duplicate), and uploads them all to ``start_server.py --collect``
(in a subprocess, a fresh folder each time) from ``--clients`` threads, each a volunteer with its own folder of
runs, twice:

1. bodies made before the clock (gzip and the run's facts, as the volunteers' own machines make them), sent by the
   upload client's ``send`` (its headers, retries and backoff): the collector's own ingest rate;
2. the upload client whole (``Uploader.upload``: facts, SHA-256, gzip, outbox, HTTP), on the same cores as the
   collector, which volunteers' uploads never are.

Each prints runs ingested per second (target: at least 20 on 2 cores), the load average before and after, and the
CPU time per upload of the collector (its serving process and its workers) and of the clients.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytomo.readers.facts import run_facts  # noqa: E402
from pytomo.upload.client import Answer, Uploader  # noqa: E402


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


class Phase:
    """One collector in a fresh folder, fed by ``clients`` threads; its rate and CPU time."""

    def __init__(self, work: Path, name: str, token: str, tokens: Path, workers: list[str]) -> None:
        self.name = name
        self.log = work / f"{name}.log"
        with open(self.log, "wb") as err:
            self.server = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "--collect",
                                            str(work / name), "--tokens", str(tokens), *workers, "0"], cwd=ROOT,
                                           stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.server.stdout.readline() if self.server.stdout else ""
        self.uploader = Uploader(line.split()[-1].removesuffix("api/v1/runs"), token)

    def report(self, what: str, size: float, clients: int, stored: int, rate: float, cpu: str) -> int:
        """Print the phase's lines; the number of runs stored."""
        print(f"{what}: {stored} runs of {size:.2f} MB (mean) ingested by {clients} clients on {os.cpu_count()} "
              f"cores at {rate:.1f} runs/s (target >= 20: {'met' if rate >= 20 else 'NOT met'}); load average "
              f"{self.load:.2f} before, {os.getloadavg()[0]:.2f} after", flush=True)
        print(f"  {cpu}", flush=True)
        return stored

    def run(self, clients: int, folders: list[Path], upload: Callable[[Path], Answer]) -> tuple[int, float, str]:
        """Each folder's runs uploaded one after the other by its own client: (stored, runs/s, a line on CPU)."""
        try:
            self.load = os.getloadavg()[0]
            server_cpu, serving_cpu, client_cpu = sum(cpu_s(self.server.pid)), cpu_s(self.server.pid)[0], \
                time.process_time()
            start = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                answers = [a for done in pool.map(lambda f: [upload(p) for p in sorted(f.glob("*.db"))], folders)
                           for a in done]
            elapsed = time.perf_counter() - start
            server_cpu, serving_cpu = sum(cpu_s(self.server.pid)) - server_cpu, cpu_s(self.server.pid)[0] - serving_cpu
            client_cpu = time.process_time() - client_cpu
        finally:
            self.server.terminate()
            self.server.wait(timeout=30)
        n = len(answers)
        stored = sum(a.status == 201 for a in answers)
        logged = self.log.read_text(encoding="utf-8", errors="replace").count(" outcome=stored ")
        cpu = (f"CPU per upload: collector {server_cpu / n * 1000:.0f} ms (serving process {serving_cpu / n * 1000:.0f}"
               f" ms, the rest its workers), clients {client_cpu / n * 1000:.0f} ms; {logged} 'stored' log lines")
        return stored, stored / elapsed, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--size-mb", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=None, help="the collector's --workers (default: its own)")
    p.add_argument("--template", type=Path, help="a lab run database to copy (default: a lab crawl now)")
    p.add_argument("--only", choices=("prepared", "whole"), help="run one of the two phases")
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
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        tokens = work / "tokens"
        token = subprocess.run([sys.executable, "-m", "pytomo", "tokens", "add", "bench", "--tokens", str(tokens)],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
        workers = [] if ns.workers is None else ["--workers", str(ns.workers)]
        ok = []
        if ns.only in (None, "prepared"):  # 1. gzip and the run's facts made before the clock, as volunteers' are
            prepared = {path: (run_facts(path), gzip.compress(path.read_bytes(), compresslevel=6, mtime=0))
                        for path in paths}
            phase = Phase(work, "prepared", token, tokens, workers)
            ok.append(phase.report("bodies made before the clock, as on the volunteers' machines", size, ns.clients,
                                   *phase.run(ns.clients, folders, lambda path: phase.uploader.send(*prepared[path]))))
        if ns.only in (None, "whole"):  # 2. the upload client whole, on the collector's cores
            phase = Phase(work, "whole", token, tokens, workers)
            ok.append(phase.report("the upload client whole on the same cores (gzip, SHA-256, outbox)", size,
                                   ns.clients, *phase.run(ns.clients, folders, phase.uploader.upload)))
        return 0 if all(n == ns.runs for n in ok) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
