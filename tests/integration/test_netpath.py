"""The lab's network path (namespaces, TUN devices, delay line) measured by the crawler's own probes and download.

Ground truth is what the path was told (one-way delay, rate and loss) and the delay line's own record of what it did:
how late it released packets at most, and the bytes it delivered as time went (on a loaded machine, less than told).
These tests need root, /dev/net/tun and ``ip netns``; elsewhere they are skipped with the reason (CI runs as root, so
there they run).
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytomo.engine.download import download
from pytomo.engine.http import HttpClient
from pytomo.engine.ping import ICMP_METHODS, probe_rtt
from pytomo.errors import LabError
from pytomo.lab import netns
from pytomo.lab.netpath import LINK_PREFIX, NETNS_PREFIX, NetPath, PathSpec, clean_stale, unavailable_reason
from pytomo.lab.runtime import Lab
from pytomo.lab.scenario import load_scenario
from pytomo.lab.truth import path_stats_file, read_truth
from tests.conftest import ROOT, connect, database_of, run_crawler

DELAY_SCENARIO = ROOT / "pytomo" / "lab" / "scenarios" / "delay.toml"
WHY_NOT = unavailable_reason()
needs_path = pytest.mark.skipif(WHY_NOT is not None, reason=f"the lab's network path cannot be built here: {WHY_NOT}")
TCP_HEADERS_BYTES = 52  # IPv4 20 + TCP 20 + timestamps 12
HOLD_A_PATH = ("import time; from pytomo.lab.netpath import NetPath, PathSpec; "
               "p = NetPath([PathSpec('a', delay_ms=1)]).start(); "
               "print(p.netns, p.root_link, p.lab_link, flush=True); time.sleep(60)")


def rtt_bound_ms(true_ms: float) -> float:
    """The accepted error: 1 ms + 5 %."""
    return 1.0 + 0.05 * true_ms


def rtt_within(rtt_ms: float, true_ms: float, late: dict) -> bool:
    """Within the accepted error of ``true_ms``, the delay line's own lateness (its record, per direction) added above:
    a loaded machine releases packets late, and the line says by how much at most."""
    late_ms = sum(q["late_max_s"] for q in late.values()) * 1e3
    return -rtt_bound_ms(true_ms) <= rtt_ms - true_ms <= rtt_bound_ms(true_ms) + late_ms


def delivered_payload_bps(queue: dict, start: float, end: float) -> float:
    """The TCP payload rate the delay line itself delivered between two monotonic times (its timeline, interpolated)."""
    points = queue["timeline"]

    def at(t: float) -> tuple[float, float]:
        times = [p[0] for p in points]
        k = bisect.bisect_left(times, t)
        if k == 0:
            return points[0][1], points[0][2]
        if k == len(points):
            return points[-1][1], points[-1][2]
        (t0, b0, n0, *_), (t1, b1, n1, *_) = points[k - 1], points[k]
        f = (t - t0) / (t1 - t0)
        return b0 + f * (b1 - b0), n0 + f * (n1 - n0)

    (b0, n0), (b1, n1) = at(start), at(end)
    return ((b1 - b0) - (n1 - n0) * TCP_HEADERS_BYTES) * 8 / (end - start)


def goodput_bps(rate_bps: float, mtu_bytes: int = 1500) -> float:
    """TCP payload rate of a saturated path whose rate counts IP bytes."""
    return rate_bps * (mtu_bytes - TCP_HEADERS_BYTES) / mtu_bytes


@pytest.fixture(scope="module")
def lab():
    with Lab(load_scenario(DELAY_SCENARIO)) as running:
        yield running


@pytest.mark.root
@needs_path
@pytest.mark.parametrize("method", [*ICMP_METHODS, "tcp-connect"])
def test_rtt_of_a_50_ms_path_is_100_ms_by_every_method_that_runs(lab, method):
    profile = lab.scenario.server("cache-50ms")
    port = lab.caches[profile.name].port
    results = probe_rtt(profile.ip, 5, interval_s=0.05, tcp_port=port if method == "tcp-connect" else None,
                        methods=() if method == "tcp-connect" else (method,))
    result = results[0]
    if not result.samples:
        pytest.skip(f"{method} cannot run here: {result.error}")
    rtts = [s.rtt_ms for s in result.samples]
    assert len(rtts) == 5 and None not in rtts, result
    late_ms = {d: q["late_max_s"] * 1e3 for d, q in lab.path.stats()["links"][profile.ip].items()}
    assert all(abs(r - 100.0) <= rtt_bound_ms(100.0) for r in rtts), (method, rtts, "path late by at most", late_ms)


@pytest.mark.root
@needs_path
@pytest.mark.parametrize("server", ["cache-50ms-2m", "cache-50ms-10m"])
def test_download_throughput_is_the_path_rate(lab, server):
    profile = lab.scenario.server(server)
    video = next(v for v in lab.scenario.videos if v.server == server)
    http = HttpClient(lambda host: [profile.ip])
    t0 = time.perf_counter()  # CLOCK_MONOTONIC, the delay line's clock; download() starts its own within a ms
    try:
        tr = download(http, lab.cache_url(video), profile.ip, window_s=7.0)
    finally:
        http.close()
    assert tr.ended_by == "window", tr.error
    # 5 s of steady state: from 2 s after the first byte (slow start and its recovery are over) to the end
    start_s = tr.first_byte_s + 2.0
    i = max(k for k, t in enumerate(tr.event_t_s) if t <= start_s)
    span_s = tr.event_t_s[-1] - tr.event_t_s[i]
    steady_bps = (tr.event_bytes[-1] - tr.event_bytes[i]) * 8 / span_s
    assert span_s > 4.8
    rate = profile.path_rate_bps
    # the truth is what the delay line delivered in that span: the set rate, or less when the machine kept it late
    line_bps = delivered_payload_bps(lab.path.stats()["links"][profile.ip]["down"], t0 + tr.event_t_s[i],
                                     t0 + tr.event_t_s[-1])
    assert abs(steady_bps - line_bps) <= 0.03 * line_bps, (steady_bps, line_bps, rate)
    assert line_bps <= goodput_bps(rate) * 1.01, (line_bps, rate)
    assert steady_bps <= rate * 1.05, (steady_bps, rate)
    assert tr.avg_throughput_bps <= goodput_bps(rate) * 1.02  # the whole window, slow start included


@pytest.mark.root
@needs_path
def test_truth_records_carry_the_path(lab):
    profile = lab.scenario.server("cache-50ms-2m")
    video = next(v for v in lab.scenario.videos if v.server == profile.name)
    record = lab.truth_record(video, profile)
    assert record["cache_ip"] == profile.ip and profile.ip.startswith("198.1")
    assert record["path_delay_ms"] == 50.0 and record["path_rate_bps"] == 2e6 and record["path_loss"] == 0.0
    assert record["path_mtu_bytes"] == 1500 and record["path_queue_bytes"] > 0
    assert any(profile.ip in line for line in lab.describe())


@pytest.mark.root
@needs_path
def test_loss_drops_that_share_of_pings_and_the_line_counts_them():
    with NetPath([PathSpec("lossy", delay_ms=2.0, loss=0.2)], seed=7) as path:
        result = probe_rtt(path.address("lossy"), 100, timeout_s=0.2, interval_s=0.005, methods=("icmp-raw",))[0]
        lost = sum(s.rtt_ms is None for s in result.samples)
        stats = path.stats()["links"][path.address("lossy")]
    assert len(result.samples) == 100
    assert 8 <= lost <= 32  # 20 expected; 3 standard deviations either side
    assert stats["down"]["lost"] == lost and stats["up"]["lost"] == 0, (lost, stats)


@pytest.mark.root
@needs_path
def test_stop_leaves_nothing_and_leftovers_of_killed_runs_are_removed():
    path = NetPath([PathSpec("a", delay_ms=1.0)]).start()
    names = (path.netns, path.root_link, path.lab_link)
    assert path.netns in netns.netns_names() and path.root_link in netns.link_names()
    path.stop()
    path.stop()  # idempotent
    assert not set(names) & {*netns.netns_names(), *netns.link_names()}
    dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    stale = f"{NETNS_PREFIX}{dead_pid}-7"
    netns.add_netns(stale)
    try:
        assert stale in clean_stale()
    finally:
        netns.delete_netns(stale)
    assert stale not in netns.netns_names()


@pytest.mark.root
@needs_path
def test_a_killed_run_leaves_only_a_namespace_that_the_next_run_removes():
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_PATH], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    names: list[str] = []
    try:
        names = holder.stdout.readline().split()
        assert len(names) == 3, names
        holder.kill()  # SIGKILL: no cleanup of its own
        holder.wait(10)
        deadline = time.monotonic() + 5
        while names[1] in netns.link_names() and time.monotonic() < deadline:  # the delay line sees EOF and exits
            time.sleep(0.05)
        assert names[1] not in netns.link_names() and names[0] in netns.netns_names()
        assert names[0] in clean_stale()
        assert names[0] not in netns.netns_names()
    finally:
        holder.kill()
        holder.stdout.close()
        holder.wait(10)
        if names and names[0] in netns.netns_names():
            netns.delete_netns(names[0])


@pytest.mark.root
@needs_path
def test_a_crawl_of_the_delay_scenario_sees_the_path(tmp_path):
    truth_path = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "lab", "--lab-scenario", str(DELAY_SCENARIO), "-b", "-t", "all_time", "-P", "2",
                        "-D", "3", "-n", "3", "-S", "0", "--database-dir", str(tmp_path), "--lab-truth",
                        str(truth_path)], timeout_s=120)
    conn = connect(database_of(proc))
    truth = [t for t in read_truth(truth_path) if t["method"] == "GET" and t["range"] is None]
    path_stats = json.loads(path_stats_file(truth_path).read_text())
    assert {t["video_id"] for t in truth} == {"delay-50ms", "delay-2m"}
    for t in truth:
        assert t["path_delay_ms"] == 50.0 and t["cache_ip"].startswith("198.1")
        samples = conn.execute("SELECT method, rtt_ms FROM rtt_samples WHERE address = ?", (t["cache_ip"],)).fetchall()
        assert {r["method"] for r in samples} >= {"tcp-connect"} and len(samples) >= 6
        late = path_stats["links"][t["cache_ip"]]
        assert all(r["rtt_ms"] is not None and rtt_within(r["rtt_ms"], 100.0, late) for r in samples), (samples, late)
    two = next(t for t in truth if t["video_id"] == "delay-2m")
    row = conn.execute("SELECT avg_throughput_bps FROM downloads WHERE address = ?", (two["cache_ip"],)).fetchone()
    assert abs(row["avg_throughput_bps"] - goodput_bps(2e6)) <= 0.05 * goodput_bps(2e6)
    # the crawler has exited: nothing of a dead process may be left
    assert not [n for n in [*netns.netns_names(), *netns.link_names()]
                if n.startswith((NETNS_PREFIX, LINK_PREFIX)) and str(os.getpid()) not in n]


def test_without_root_the_lab_says_why_in_one_line(monkeypatch):
    monkeypatch.setattr("pytomo.lab.runtime.unavailable_reason", lambda: "it needs root (running as uid 1000)")
    with pytest.raises(LabError) as err:
        Lab(load_scenario(DELAY_SCENARIO)).start()
    text = str(err.value)
    assert "\n" not in text and "needs root" in text and "network_path = false" in text


def test_without_root_the_crawler_exits_1_with_that_line(tmp_path):
    refuse = ("import sys, pytomo.lab.netns as n; n.missing_support = lambda: 'it needs root (running as uid 1000)'; "
              "from pytomo.cli import crawl_main; sys.exit(crawl_main())")
    proc = subprocess.run([sys.executable, "-c", refuse, "-s", "lab", "--lab-scenario", str(DELAY_SCENARIO), "-b",
                           "--database-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0] and "network_path = false" in lines[0], lines

