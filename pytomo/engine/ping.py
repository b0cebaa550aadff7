"""RTT probes to one address: ICMP echo by the first method that can run here, and TCP connect times."""

from __future__ import annotations

import errno
import ipaddress
import itertools
import logging
import math
import os
import re
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from icmplib import ICMPLibError, ICMPRequest, ICMPSocketError, ICMPv4Socket, ICMPv6Socket, SocketPermissionError

from pytomo.results import RttResult, RttSample, utc_now
from pytomo.settings import DEFAULTS

log = logging.getLogger(__name__)

ICMP_METHODS = ("icmp-dgram", "icmp-raw", "system-ping")
PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"

# iputils with -D: "[1700000000.123456] 64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.051 ms"
_PING_REPLY = re.compile(
    r"^\[(?P<stamp>\d+(?:\.\d+)?)\].*\bicmp_seq=(?P<seq>\d+)\b.*\btime[=<](?P<rtt>\d+(?:\.\d+)?) ms")
_identifiers = itertools.count(os.getpid())
_identifiers_lock = threading.Lock()


class _CannotRun(Exception):
    """This ICMP method cannot run on this machine (the message says why)."""


def probe_rtt(address: str, count: int, *, timeout_s: float = DEFAULTS.ping_timeout_s,
              interval_s: float = DEFAULTS.ping_interval_s, tcp_port: int | None = None,
              methods: Sequence[str] = ICMP_METHODS) -> list[RttResult]:
    """Send count probes to address (an IP literal) and keep every one of them.

    ICMP: the first of ``methods`` that can run here sends the probes, giving one RttResult with that
    method's name; when none can, one RttResult with method ``icmp``, no samples and the reasons in
    ``error`` (an empty ``methods`` skips ICMP). With ``tcp_port``, also a ``tcp-connect`` RttResult.
    Probes are sent every ``interval_s``; a reply later than ``timeout_s`` counts as lost. Samples are
    numbered 0..count-1 for every method (``ping``'s icmp_seq N is seq N-1).
    """
    ip = ipaddress.ip_address(address)  # ValueError for a host name: resolving is the DNS stage's job
    if count < 0 or timeout_s <= 0 or interval_s < 0:
        raise ValueError(f"bad probe settings: count={count}, timeout_s={timeout_s}, interval_s={interval_s}")
    unknown = [m for m in methods if m not in ICMP_METHODS]
    if unknown:
        raise ValueError(f"unknown ICMP methods {unknown}; known: {ICMP_METHODS}")
    if tcp_port is not None and not 1 <= tcp_port <= 65535:
        raise ValueError(f"bad TCP port {tcp_port}")
    results = []
    if methods:
        results.append(_icmp(str(ip), count, timeout_s, interval_s, methods))
    if tcp_port is not None:
        results.append(_tcp_connect(str(ip), tcp_port, count, timeout_s, interval_s))
    return results


def _icmp(address: str, count: int, timeout_s: float, interval_s: float, methods: Sequence[str]) -> RttResult:
    """The probes of the first method that can run, or an empty result saying why none could."""
    reasons = []
    for method in methods:
        try:
            if method == "system-ping":
                samples = _system_ping(address, count, timeout_s, interval_s)
            else:
                samples = _icmplib_probes(address, count, timeout_s, interval_s, method)
        except _CannotRun as exc:
            log.debug("%s cannot run here: %s", method, exc)
            reasons.append(f"{method}: {exc}")
            continue
        return RttResult(address, method, tuple(samples))
    return RttResult(address, "icmp", (), error="no ICMP method can run here (" + "; ".join(reasons) + ")")


def _icmplib_probes(address: str, count: int, timeout_s: float, interval_s: float, method: str) -> list[RttSample]:
    """ICMP echo through icmplib's sockets, one request at a time so that each keeps its sequence number."""
    privileged = method == "icmp-raw"
    socket_class = ICMPv6Socket if ipaddress.ip_address(address).version == 6 else ICMPv4Socket
    try:
        sock = socket_class(privileged=privileged)
    except SocketPermissionError:
        raise _CannotRun(_raw_reason() if privileged else _dgram_reason()) from None
    except ICMPSocketError as exc:
        raise _CannotRun(f"cannot open the ICMP socket: {exc}") from None
    with _identifiers_lock:
        identifier = next(_identifiers) & 0xFFFF
    samples = []
    with sock:
        start = time.monotonic()
        for seq in range(count):
            _sleep_until(start + seq * interval_s)
            request = ICMPRequest(destination=address, id=identifier, sequence=seq)
            at = utc_now()
            rtt_ms = None
            try:
                sock.send(request)
                reply = sock.receive(request, timeout_s)
                reply.raise_for_status()
                rtt_ms = (reply.time - request.time) * 1000.0
            except ICMPLibError as exc:
                log.debug("%s probe %d to %s lost: %s", method, seq, address, exc)
            samples.append(RttSample(address, method, seq, rtt_ms, at))
    return samples


def _dgram_reason() -> str:
    try:
        with open(PING_GROUP_RANGE) as handle:
            low, high = (int(v) for v in handle.read().split())
    except (OSError, ValueError):
        return "unprivileged ICMP sockets are not allowed here"
    return (f"unprivileged ICMP sockets are not allowed: net.ipv4.ping_group_range is {low} {high} "
            f"and our groups are {sorted({os.getegid(), *os.getgroups()})}")


def _raw_reason() -> str:
    return f"raw ICMP sockets need root or CAP_NET_RAW (running as uid {os.geteuid()})"


def _system_ping(address: str, count: int, timeout_s: float, interval_s: float) -> list[RttSample]:
    """ICMP echo by the system's iputils ``ping``, each reply line parsed so that lost probes keep their seq."""
    binary = shutil.which("ping")
    if binary is None:
        raise _CannotRun("no ping program on PATH")
    if count == 0:
        return []
    # -W takes whole seconds in older iputils: wait at least timeout_s, then drop replies later than it.
    argv = [binary, "-n", "-D", "-c", str(count), "-i", f"{interval_s:.3f}", "-W", str(max(1, math.ceil(timeout_s))),
            address]
    started = time.time()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
                              timeout=count * interval_s + timeout_s + 10)
        output, status, stderr = done.stdout, done.returncode, done.stderr
    except OSError as exc:
        raise _CannotRun(f"cannot run {binary}: {exc}") from None
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        status, stderr = None, "killed after timeout"
    replies: dict[int, tuple[float, float]] = {}
    for line in output.splitlines():
        match = _PING_REPLY.match(line)
        if match:
            reply_ms = float(match["rtt"])
            sent_at = float(match["stamp"]) - reply_ms / 1000.0
            replies.setdefault(int(match["seq"]) - 1, (reply_ms, sent_at))  # the first copy; later ones are DUP!
    if not replies and status not in (0, 1):
        last_line = (stderr.strip().splitlines() or [f"exit status {status}"])[-1]
        raise _CannotRun(f"{binary} failed: {last_line}")
    first_sent = min((sent - seq * interval_s for seq, (_, sent) in replies.items()), default=started)
    samples = []
    for seq in range(count):
        rtt_ms: float | None
        rtt_ms, sent_at = replies.get(seq, (None, first_sent + seq * interval_s))  # lost: send time estimated
        if rtt_ms is not None and rtt_ms > timeout_s * 1000.0:
            rtt_ms = None
        samples.append(RttSample(address, "system-ping", seq, rtt_ms, _utc(sent_at)))
    return samples


def _tcp_connect(address: str, port: int, count: int, timeout_s: float, interval_s: float) -> RttResult:
    """count TCP connects to address:port, each closed at once; refused or timed out ones are lost."""
    family, _, _, _, sockaddr = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM,
                                                   flags=socket.AI_NUMERICHOST)[0]
    samples = []
    failures: Counter[str] = Counter()
    start = time.monotonic()
    for seq in range(count):
        _sleep_until(start + seq * interval_s)
        at = utc_now()
        rtt_ms, failure = _connect_once(family, sockaddr, timeout_s)
        if failure:
            failures[failure] += 1
            log.debug("tcp-connect probe %d to %s port %d lost: %s", seq, address, port, failure)
        samples.append(RttSample(address, "tcp-connect", seq, rtt_ms, at))
    error = "; ".join(f"{why} ({n} of {count} probes)" for why, n in failures.items()) or None
    return RttResult(address, "tcp-connect", tuple(samples), error=error)


def _connect_once(family: int, sockaddr: tuple, timeout_s: float) -> tuple[float | None, str | None]:
    """(rtt_ms, None) for a completed handshake, (None, why) otherwise."""
    with socket.socket(family, socket.SOCK_STREAM) as sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_WRITE)
        started_ns = time.perf_counter_ns()
        code = sock.connect_ex(sockaddr)
        if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            if not selector.select(timeout_s):
                return None, f"timed out after {timeout_s:g} s"
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        elapsed_ns = time.perf_counter_ns() - started_ns
    if code == 0:
        return elapsed_ns / 1e6, None
    if code == errno.ECONNREFUSED:
        return None, "connection refused"
    return None, os.strerror(code)


def _sleep_until(deadline: float) -> None:
    delay_s = deadline - time.monotonic()
    if delay_s > 0:
        time.sleep(delay_s)


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)
