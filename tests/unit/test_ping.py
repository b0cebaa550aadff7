"""RTT probes to loopback addresses; probe counts are checked on the wire and timings against known delays.

Samples are numbered 0..count-1 for every method (``ping``'s icmp_seq N becomes seq N-1).
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from icmplib import ICMPv4Socket, SocketPermissionError, TimeoutExceeded

from pytomo.engine import ping
from pytomo.engine.ping import ICMP_METHODS, PING_GROUP_RANGE, probe_rtt

FAST = {"timeout_s": 0.5, "interval_s": 0.02}
IS_ROOT = os.geteuid() == 0
HAVE_PING = shutil.which("ping") is not None
REPO_ROOT = Path(__file__).resolve().parents[2]


def dgram_allowed() -> bool:
    """Whether this machine lets our groups open unprivileged ICMP sockets (the kernel's own rule)."""
    try:
        low, high = (int(v) for v in Path(PING_GROUP_RANGE).read_text().split())
    except (OSError, ValueError):
        return False
    return any(low <= gid <= high for gid in {os.getegid(), *os.getgroups()})


RUNNABLE = {"icmp-dgram": dgram_allowed(), "icmp-raw": IS_ROOT, "system-ping": HAVE_PING}
FIRST_RUNNABLE = next((m for m in ICMP_METHODS if RUNNABLE[m]), None)


def check_clean_run(result, address, method, count):
    assert (result.address, result.method, result.error) == (address, method, None)
    assert [s.seq for s in result.samples] == list(range(count))
    assert all(s.method == method and s.address == address for s in result.samples)
    assert result.loss == 0.0
    assert all(0.0 < rtt < 50.0 for rtt in result.rtts_ms), result.rtts_ms


@pytest.mark.parametrize("address", ["127.0.0.1", "127.77.0.10"])
def test_default_methods_use_the_first_that_can_run_here(address):
    if FIRST_RUNNABLE is None:
        pytest.skip("no ICMP method can run on this machine")
    results = probe_rtt(address, 5, **FAST)
    assert len(results) == 1
    check_clean_run(results[0], address, FIRST_RUNNABLE, 5)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.77.0.10", "::1"])
@pytest.mark.parametrize("method", ICMP_METHODS)
def test_each_method_alone_works_or_says_why_not(method, address):
    [result] = probe_rtt(address, 5, methods=(method,), **FAST)
    if RUNNABLE[method]:
        check_clean_run(result, address, method, 5)
    else:
        assert (result.method, result.samples) == ("icmp", ())
        expected_reason = {"icmp-dgram": "ping_group_range", "icmp-raw": "CAP_NET_RAW",
                           "system-ping": "no ping program"}[method]
        assert expected_reason in result.error


class EchoReplySniffer:
    """Counts the ICMP echo replies coming from one address, as seen by a raw socket (root only)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: set[tuple[int, int]] = set()
        self._sock = ICMPv4Socket(privileged=True)  # packets queue from now on, before the thread runs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reply = self._sock.receive(None, 0.05)
            except TimeoutExceeded:
                continue
            if reply.type == 0 and reply.source == self.source:
                self.seen.add((reply.id, reply.sequence))

    def stop(self) -> int:
        time.sleep(0.1)
        self._stop.set()
        self._thread.join()
        self._sock.close()
        return len(self.seen)


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="the wire count needs a raw socket")
@pytest.mark.parametrize("method", [m for m in ICMP_METHODS if RUNNABLE[m]])
@pytest.mark.parametrize("count", [3, 7])
def test_count_sets_the_number_of_probes_on_the_wire(method, count):
    address = f"127.77.{random.randint(200, 250)}.{random.randint(1, 254)}"  # no other test or run pings it
    sniffer = EchoReplySniffer(address)
    [result] = probe_rtt(address, count, methods=(method,), **FAST)
    assert sniffer.stop() == count
    check_clean_run(result, address, method, count)


@pytest.mark.skipif(not IS_ROOT, reason="icmp-raw needs root")
def test_probes_are_sent_every_interval_s():
    [result] = probe_rtt("127.0.0.1", 4, timeout_s=0.5, interval_s=0.08, methods=("icmp-raw",))
    offsets_s = [(s.at - result.samples[0].at).total_seconds() for s in result.samples]
    assert [round(o / 0.08) for o in offsets_s] == [0, 1, 2, 3]  # probe k goes out at start + k * interval_s
    assert all(k * 0.08 - 0.002 <= o < k * 0.08 + 0.04 for k, o in enumerate(offsets_s)), offsets_s


# -- TCP connect ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_tcp_connect_to_a_listening_socket(family, host):
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(16)
        results = probe_rtt(host, 5, tcp_port=listener.getsockname()[1], methods=(), **FAST)
    assert [r.method for r in results] == ["tcp-connect"]
    check_clean_run(results[0], host, "tcp-connect", 5)


def test_tcp_connect_to_a_closed_port_is_all_lost_and_says_refused():
    with socket.socket() as reserved:  # bound but not listening: the kernel answers a SYN with a RST
        reserved.bind(("127.0.0.1", 0))
        [result] = probe_rtt("127.0.0.1", 3, tcp_port=reserved.getsockname()[1], methods=(), **FAST)
    assert [(s.seq, s.rtt_ms) for s in result.samples] == [(0, None), (1, None), (2, None)]
    assert result.loss == 1.0
    assert result.error == "connection refused (3 of 3 probes)"


@pytest.fixture
def full_listener():
    """A listener whose accept queue (backlog 0: one connection) is full, so further SYNs are dropped."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener


def test_tcp_connect_timeout_is_a_lost_sample(full_listener):
    started = time.perf_counter()
    [result] = probe_rtt("127.0.0.1", 2, timeout_s=0.2, interval_s=0.0, tcp_port=full_listener.getsockname()[1],
                         methods=())
    elapsed_s = time.perf_counter() - started
    assert [s.rtt_ms for s in result.samples] == [None, None]
    assert result.error == "timed out after 0.2 s (2 of 2 probes)"
    assert 0.4 <= elapsed_s < 0.7


def test_tcp_connect_time_includes_a_syn_retransmission(full_listener):
    """The first SYN is dropped; the queue is emptied after 0.3 s; the retransmitted SYN (initial RTO: 1 s) wins."""
    threading.Timer(0.3, lambda: full_listener.accept()[0].close()).start()
    [result] = probe_rtt("127.0.0.1", 1, timeout_s=3.0, tcp_port=full_listener.getsockname()[1], methods=())
    assert result.error is None
    assert 950.0 <= result.samples[0].rtt_ms < 1400.0


# -- counting and failure paths with stand-ins whose behaviour is known ---------------------------------


class LossySocket:
    """Stands in for icmplib's ICMPv4Socket: answers after 5 ms except the sequence numbers in LOST."""

    LOST = {1, 3}
    sent: list[int] = []

    def __init__(self, address=None, privileged=True):
        self.privileged = privileged

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def send(self, request):
        request._time = time.time()
        self.sent.append(request.sequence)

    def receive(self, request=None, timeout=2):
        if request.sequence in self.LOST:
            raise TimeoutExceeded(timeout)
        return _Reply(request.time + 0.005)


class _Reply:
    def __init__(self, at):
        self.time = at

    def raise_for_status(self):
        return None


def test_icmplib_lost_probes_keep_their_seq(monkeypatch):
    LossySocket.sent = []
    monkeypatch.setattr(ping, "ICMPv4Socket", LossySocket)
    [result] = probe_rtt("127.0.0.1", 5, methods=("icmp-raw",), **FAST)
    assert LossySocket.sent == [0, 1, 2, 3, 4]
    assert [s.seq for s in result.samples] == [0, 1, 2, 3, 4]
    assert [s.rtt_ms is None for s in result.samples] == [False, True, False, True, False]
    assert result.rtts_ms == pytest.approx([5.0, 5.0, 5.0], abs=1e-3)  # epoch floats: about 1e-4 ms
    assert result.loss == pytest.approx(0.4)


def test_socket_permission_error_skips_to_the_next_method(monkeypatch):
    class Refused:
        def __init__(self, address=None, privileged=True):
            raise SocketPermissionError(privileged)

    LossySocket.sent = []
    monkeypatch.setattr(ping, "ICMPv4Socket", Refused)
    monkeypatch.setenv("PATH", "/nonexistent")
    [result] = probe_rtt("127.0.0.1", 2, **FAST)
    assert (result.method, result.samples) == ("icmp", ())
    assert "icmp-dgram: unprivileged ICMP sockets are not allowed" in result.error
    assert "icmp-raw: raw ICMP sockets need root or CAP_NET_RAW" in result.error
    assert "system-ping: no ping program on PATH" in result.error


FAKE_PING_OUTPUT = """PING 127.77.0.10 (127.77.0.10) 56(84) bytes of data.
[1700000000.112500] 64 bytes from 127.77.0.10: icmp_seq=1 ttl=64 time=12.5 ms
[1700000000.400250] 64 bytes from 127.77.0.10: icmp_seq=3 ttl=64 time=0.250 ms
[1700000000.400300] 64 bytes from 127.77.0.10: icmp_seq=3 ttl=64 time=0.300 ms (DUP!)
From 127.77.0.10 icmp_seq=2 Destination Host Unreachable
[1700000002.000000] 64 bytes from 127.77.0.10: icmp_seq=4 ttl=64 time=1500 ms

--- 127.77.0.10 ping statistics ---
4 packets transmitted, 3 received, +1 duplicates, 25% packet loss, time 300ms
"""


def fake_ping(tmp_path, monkeypatch, output, status, stderr=""):
    """Puts a ``ping`` on PATH that records its arguments and prints output."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (tmp_path / "out.txt").write_text(output)
    (tmp_path / "err.txt").write_text(stderr)
    script = folder / "ping"
    cat = shutil.which("cat")
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/argv.txt\n{cat} {tmp_path}/out.txt\n"
                      f"{cat} {tmp_path}/err.txt >&2\nexit {status}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return tmp_path / "argv.txt"


def test_system_ping_reply_lines_give_the_samples(tmp_path, monkeypatch):
    argv_file = fake_ping(tmp_path, monkeypatch, FAKE_PING_OUTPUT, status=1)
    [result] = probe_rtt("127.77.0.10", 4, timeout_s=1.0, interval_s=0.1, methods=("system-ping",))
    argv = argv_file.read_text().split()
    assert argv[:-1] == ["-n", "-D", "-c", "4", "-i", "0.100", "-W", "1"] and argv[-1] == "127.77.0.10"
    assert result.method == "system-ping"
    # seq 0: 12.5 ms; seq 1: no reply line; seq 2: 0.25 ms (the DUP! ignored); seq 3: 1500 ms > timeout: lost
    assert [(s.seq, s.rtt_ms) for s in result.samples] == [(0, 12.5), (1, None), (2, 0.25), (3, None)]
    assert result.loss == 0.5
    assert result.samples[0].at.timestamp() == pytest.approx(1700000000.1)
    assert result.samples[2].at.timestamp() == pytest.approx(1700000000.4)
    assert result.samples[1].at.timestamp() == pytest.approx(1700000000.2)  # lost: estimated from the interval


def test_system_ping_that_cannot_run_is_skipped_with_its_message(tmp_path, monkeypatch):
    fake_ping(tmp_path, monkeypatch, "", status=2, stderr="ping: socket: Operation not permitted\n")
    [result] = probe_rtt("127.0.0.1", 3, methods=("system-ping",), **FAST)
    assert (result.method, result.samples) == ("icmp", ())
    assert result.error.endswith("/bin/ping failed: ping: socket: Operation not permitted)")


@pytest.mark.skipif(not IS_ROOT, reason="icmp-raw needs root")
def test_after_a_failing_method_the_next_one_runs(tmp_path, monkeypatch):
    fake_ping(tmp_path, monkeypatch, "", status=2, stderr="ping: socket: Operation not permitted\n")
    [result] = probe_rtt("127.0.0.1", 3, methods=("system-ping", "icmp-raw"), **FAST)
    check_clean_run(result, "127.0.0.1", "icmp-raw", 3)


def test_zero_count_sends_nothing():
    results = probe_rtt("127.0.0.1", 0, tcp_port=9, **FAST)
    assert [(r.samples, r.loss) for r in results] == [((), None), ((), None)]


@pytest.mark.parametrize("kwargs", [
    {"address": "localhost", "count": 1},
    {"address": "127.0.0.1", "count": -1},
    {"address": "127.0.0.1", "count": 1, "methods": ("icmp",)},
    {"address": "127.0.0.1", "count": 1, "tcp_port": 0},
])
def test_programming_errors_raise(kwargs):
    with pytest.raises(ValueError):
        probe_rtt(**kwargs)


# -- in a private network namespace: its own sysctls, nothing changed on this machine ----------------------

NETNS_PROBE = """
import json, sys
from pytomo.engine.ping import probe_rtt
out = []
for method in sys.argv[1].split(","):
    [r] = probe_rtt("127.0.0.1", 3, timeout_s=0.2, interval_s=0.02, methods=(method,))
    out.append([r.method, [s.seq for s in r.samples], r.rtts_ms, r.error])
print(json.dumps(out))
"""


def run_in_netns(methods, *, ping_group_range, echo_ignore_all):
    """probe_rtt in a fresh network namespace with the given sysctls; its results as lists."""
    setup = (f"ip link set lo up && echo '{ping_group_range}' > /proc/sys/net/ipv4/ping_group_range && "
             f"echo {echo_ignore_all} > /proc/sys/net/ipv4/icmp_echo_ignore_all && "
             'exec "$0" -c "$1" "$2"')
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(["unshare", "-n", "sh", "-c", setup, sys.executable, NETNS_PROBE, ",".join(methods)],
                          capture_output=True, text=True, timeout=30, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def netns_available() -> bool:
    if not IS_ROOT or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


needs_netns = pytest.mark.skipif(not netns_available(), reason="needs root and unshare -n")


@pytest.mark.root
@needs_netns
def test_icmp_dgram_works_where_ping_group_range_allows_it():
    [[method, seqs, rtts, error]] = run_in_netns(["icmp-dgram"], ping_group_range="0 2147483647", echo_ignore_all=0)
    assert (method, seqs, error) == ("icmp-dgram", [0, 1, 2], None)
    assert len(rtts) == 3 and all(0.0 < rtt < 50.0 for rtt in rtts)


@pytest.mark.root
@needs_netns
def test_unanswered_probes_are_all_lost_with_their_seq():
    methods = ["icmp-dgram", "icmp-raw"] + (["system-ping"] if HAVE_PING else [])
    results = run_in_netns(methods, ping_group_range="0 2147483647", echo_ignore_all=1)
    assert results == [[method, [0, 1, 2], [], None] for method in methods]
