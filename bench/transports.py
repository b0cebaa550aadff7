"""The crawler's transport for each protocol against curl on the same URL, in one run: throughput and CPU per GB.

Debian's Caddy serves one file of random bytes over HTTPS (h1, h2, h3) on loopback with a certificate of the lab's
CA. For HTTP/1.1 and HTTP/2 the reference is the `curl` command line (Debian's, `-o /dev/null`); Debian's curl has no
HTTP/3, so for HTTP/3 the reference is libcurl itself through curl_cffi with a write callback that drops the bytes
(what our transport is built on, without our work per chunk). The crawler's side is ``download()`` through
``HttpClient(http_protocol=...)``: HTTP/1.1 is `requests`, HTTP/2 and HTTP/3 libcurl (pytomo/engine/curl.py).

    .venv/bin/python bench/transports.py [--size-mb 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, table  # noqa: E402
from pytomo.engine.download import download  # noqa: E402
from pytomo.engine.http import HttpClient  # noqa: E402
from pytomo.lab.caddy import render_config  # noqa: E402
from pytomo.lab.scenario import ServerProfile  # noqa: E402
from pytomo.lab.served import Site, free_port  # noqa: E402
from pytomo.lab.tls import LabTLS  # noqa: E402

HOST, IP = "bench.lab.pytomo.test", "127.77.9.1"
PROTOCOLS = ("1.1", "2", "3")
CURL_FLAGS = {"1.1": "--http1.1", "2": "--http2"}


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _caddy(workdir: Path, size_bytes: int) -> tuple[subprocess.Popen, str, LabTLS]:
    """Caddy serving /v/bench.mp4 (random bytes) on IP; its process, the URL and the CA."""
    media = workdir / "media" / "bench.mp4"
    media.parent.mkdir(parents=True)
    with open(media, "wb") as fh:
        for _ in range(size_bytes // (1 << 20)):
            fh.write(os.urandom(1 << 20))
    tls = LabTLS(workdir / "tls")
    profile = ServerProfile(name="bench", host=HOST, ip=IP, software="caddy", tls=True)
    site = Site(profile, port=free_port(IP), progressive={"bench.mp4": media}, cert=tls.cert_files(HOST))
    root = workdir / "root" / "bench" / "v"
    root.mkdir(parents=True)
    (root / "bench.mp4").symlink_to(media)
    conf = workdir / "caddy.json"
    conf.write_text(json.dumps(render_config([site], workdir)))
    env = {**os.environ, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data")}
    proc = subprocess.Popen(["caddy", "run", "--config", str(conf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    return proc, f"https://{HOST}:{site.port}/v/bench.mp4", tls


def _ours(url: str, protocol: str, ca: str) -> dict:
    http = HttpClient(lambda host: [IP], ca_files=[ca], http_protocol=protocol)
    try:
        cpu, t = _cpu_self(), time.perf_counter()
        tr = download(http, url, IP, window_s=600.0, timeout_s=10.0)
        wall, cpu = time.perf_counter() - t, _cpu_self() - cpu
    finally:
        http.close()
    bins = [b for b in tr.bins_bytes[1:-1] if b]
    cv = statistics.pstdev(bins) / statistics.fmean(bins) if len(bins) > 2 else None
    return {"bytes": tr.bytes_total, "wall_s": wall, "cpu_s": cpu, "protocol": tr.http_version,
            "ended_by": tr.ended_by, "bins": len(tr.bins_bytes), "bins_cv": cv}


def _curl_cli(url: str, protocol: str, ca: str) -> dict:
    port = url.split(":")[2].split("/")[0]
    cpu, t = _cpu_children(), time.perf_counter()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", CURL_FLAGS[protocol], "--cacert", ca, "--resolve",
                          f"{HOST}:{port}:{IP}", "-w", "%{size_download} %{http_version}", url],
                         capture_output=True, text=True, check=True)
    wall, cpu = time.perf_counter() - t, _cpu_children() - cpu
    size, version = out.stdout.split()
    return {"bytes": int(size), "wall_s": wall, "cpu_s": cpu, "protocol": f"HTTP/{version}"}


def _libcurl(url: str, protocol: str, ca: str) -> dict:
    from curl_cffi import Curl, CurlHttpVersion, CurlInfo, CurlOpt

    port = url.split(":")[2].split("/")[0]
    got = [0]

    def drop(data: bytes) -> int:
        got[0] += len(data)
        return len(data)

    c = Curl()
    c.setopt(CurlOpt.URL, url)
    c.setopt(CurlOpt.RESOLVE, [f"{HOST}:{port}:{IP}"])
    c.setopt(CurlOpt.CAINFO, ca)
    c.setopt(CurlOpt.HTTP_VERSION, CurlHttpVersion.V3ONLY)
    c.setopt(CurlOpt.WRITEFUNCTION, drop)
    cpu, t = _cpu_self(), time.perf_counter()
    c.perform()
    wall, cpu = time.perf_counter() - t, _cpu_self() - cpu
    version = c.getinfo(CurlInfo.HTTP_VERSION)
    c.close()
    return {"bytes": got[0], "wall_s": wall, "cpu_s": cpu, "protocol": "HTTP/3" if version == 30 else str(version)}


def run(size_mb: int, repeats: int) -> dict:
    if shutil.which("caddy") is None or shutil.which("curl") is None:
        raise SystemExit("bench/transports.py needs caddy and curl: apt-get install caddy curl")
    workdir = Path(tempfile.mkdtemp(prefix="pytomo-bench-transports-"))
    proc, url, tls = _caddy(workdir, size_mb << 20)
    results: dict = {}
    try:
        for protocol in PROTOCOLS:
            reference = _libcurl if protocol == "3" else _curl_cli
            runs: dict[str, list[dict]] = {"ours": [], "reference": []}
            for _ in range(repeats):  # alternated, so that both see the same machine
                runs["ours"].append(_ours(url, protocol, str(tls.ca_file)))
                runs["reference"].append(reference(url, protocol, str(tls.ca_file)))
            results[protocol] = {k: v for k, v in runs.items()}
            results[protocol]["reference_name"] = "libcurl (curl_cffi)" if protocol == "3" else "curl CLI"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def summary(results: dict) -> str:
    rows = []
    for protocol, r in results.items():
        ours_mbps = statistics.median(x["bytes"] / x["wall_s"] for x in r["ours"]) * 8 / 1e6
        ref_mbps = statistics.median(x["bytes"] / x["wall_s"] for x in r["reference"]) * 8 / 1e6
        ours_cpu = statistics.median(x["cpu_s"] / (x["bytes"] / 1e9) for x in r["ours"])
        ref_cpu = statistics.median(x["cpu_s"] / (x["bytes"] / 1e9) for x in r["reference"])
        cvs = [x["bins_cv"] for x in r["ours"] if x["bins_cv"] is not None]
        wall_s = statistics.median(x["wall_s"] for x in r["ours"])
        rows.append([protocol, r["ours"][0]["protocol"], r["reference_name"], f"{ours_mbps:.0f}", f"{ref_mbps:.0f}",
                     f"{ours_mbps / ref_mbps:.2f}", f"{ours_cpu:.2f}", f"{ref_cpu:.2f}", f"{ours_cpu / ref_cpu:.2f}",
                     f"{statistics.median(cvs):.2f}" if cvs else "-", f"{wall_s:.2f}"])
    return table(["--http", "protocol", "reference", "ours Mbit/s", "ref Mbit/s", "ratio", "ours CPU s/GB",
                  "ref CPU s/GB", "CPU ratio", "100 ms bins CV", "ours s"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results = run(args.size_mb, args.repeats)
    print(summary(results))
    out = ROOT / "bench" / "reports"
    out.mkdir(exist_ok=True)
    (out / "transports.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
