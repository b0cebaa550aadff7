"""The user-space delay line between two TUN devices: one-way delay, rate with a tail-drop queue, seeded loss."""

from __future__ import annotations

import ctypes
import heapq
import ipaddress
import json
import os
import random
import select
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field

UP, DOWN = 0, 1  # UP: root namespace (client) -> lab namespace (server); DOWN: back
DIRECTIONS = ("up", "down")
_DRAIN_PACKETS = 256  # packets read from one device per wake-up, so that releases stay on time
_READ_BYTES = 65536
_PR_SET_TIMERSLACK = 29
_SPIN_S = 0.0004
_SPIN_MAX_QUEUED = 8
_RT_PRIORITY = 1
_STATS = ("packets", "bytes", "headers", "tcp_packets", "udp_packets", "lost", "overflow", "late_max_s", "late_sum_s")
_TCP, _UDP = 6, 17  # IP protocol numbers
_UDP_HEADER_BYTES = 8
Packet = bytes  # the name ``bytes`` is a counter inside _Queue
TIMELINE_STEP_S = 0.1  # the delivery timeline keeps a point at most this often
_TIMELINE_POINTS = 6000  # and its newest points only (10 minutes at one a step)


@dataclass(frozen=True)
class LinkSpec:
    """The path to one server address: one-way delay, rate (both directions), loss per direction, queue."""

    ip: str
    delay_s: float = 0.0
    rate_bps: float | None = None  # None: no serialisation, as fast as the line goes
    loss_down: float = 0.0  # server -> client
    loss_up: float = 0.0  # client -> server
    queue_bytes: int = 1 << 20  # bytes waiting for the link (tail drop above); only with a rate

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {"ip": self.ip, "delay_s": self.delay_s, "rate_bps": self.rate_bps, "loss_down": self.loss_down,
                "loss_up": self.loss_up, "queue_bytes": self.queue_bytes}


@dataclass
class _Queue:
    """One direction of one link: when its link is free again, what it did."""

    delay_s: float
    rate_bps: float | None
    loss: float
    queue_bytes: int
    rng: random.Random
    busy_until: float = 0.0
    packets: int = 0
    bytes: int = 0
    lost: int = 0
    overflow: int = 0
    late_max_s: float = 0.0
    late_sum_s: float = 0.0
    headers: int = 0  # bytes of IP and TCP or UDP headers among ``bytes`` (read from each packet)
    tcp_packets: int = 0
    udp_packets: int = 0
    # what the link delivered as it went, about one point a step, after a release: [monotonic time, bytes,
    # packets, header bytes, the latest release since the point before (s)]
    timeline: deque = field(default_factory=lambda: deque(maxlen=_TIMELINE_POINTS))

    def stats(self) -> dict:
        return {**{k: getattr(self, k) for k in _STATS}, "timeline": list(self.timeline)}

    def released(self, packet: Packet, release: float) -> None:
        """Count one packet written out (``release``: when it was due)."""
        now = time.monotonic()
        late = now - release
        self.packets += 1
        self.bytes += len(packet)
        self.headers += self._headers(packet)
        self.late_sum_s += late
        self.late_max_s = max(self.late_max_s, late)
        timeline = self.timeline
        if len(timeline) >= 2 and now - timeline[-2][0] < TIMELINE_STEP_S:
            # the newest point moves until a step has passed since the one before
            timeline[-1] = [now, self.bytes, self.packets, self.headers, max(late, timeline[-1][4])]
        else:
            timeline.append([now, self.bytes, self.packets, self.headers, late])

    def _headers(self, packet: Packet) -> int:
        """The IPv4 header's length, plus the TCP header's (its data offset: options included) or the UDP header's."""
        ip_bytes = (packet[0] & 0x0F) * 4
        protocol = packet[9]
        if protocol == _TCP and len(packet) >= ip_bytes + 13:
            self.tcp_packets += 1
            return ip_bytes + (packet[ip_bytes + 12] >> 4) * 4
        if protocol == _UDP and len(packet) >= ip_bytes + _UDP_HEADER_BYTES:
            self.udp_packets += 1
            return ip_bytes + _UDP_HEADER_BYTES
        return ip_bytes


class DelayLine:
    """Moves IPv4 packets between the root-side and the lab-side TUN descriptors, each at its release time.

    A packet to (UP) or from (DOWN) a server address is dropped with that direction's loss probability
    (a seeded generator per direction and server), then waits for its link: it leaves the link at
    ``max(arrival, link free) + size * 8 / rate`` and is written out ``delay_s`` later. When the bytes
    still waiting for the link would exceed ``queue_bytes``, it is dropped (tail drop). Any other packet
    (another address, IPv6, not from or to the root-side address) is dropped and counted as foreign.
    Any IPv4 protocol is carried alike (TCP, UDP and so QUIC, ICMP); the record counts TCP and UDP packets
    and their header bytes apart, read from each packet.
    """

    def __init__(self, fd_root: int, fd_lab: int, root_ip: str, links: list[LinkSpec], seed: int = 0) -> None:
        self.fds = (fd_root, fd_lab)
        self.root_ip = ipaddress.IPv4Address(root_ip).packed
        self.queues: dict[tuple[int, bytes], _Queue] = {}
        for link in links:
            key = ipaddress.IPv4Address(link.ip).packed
            for direction, loss in ((UP, link.loss_up), (DOWN, link.loss_down)):
                rng = random.Random(f"{seed}:{link.ip}:{DIRECTIONS[direction]}")
                self.queues[direction, key] = _Queue(link.delay_s, link.rate_bps, loss, link.queue_bytes, rng)
        self.foreign = 0
        self.write_errors = 0
        self._heap: list[tuple[float, int, int, _Queue, bytes]] = []
        self._seq = 0

    def admit(self, packet: bytes, direction: int, now: float) -> None:
        """Take one packet read at ``now`` from the root side (UP) or the lab side (DOWN)."""
        if len(packet) < 20 or packet[0] >> 4 != 4:
            self.foreign += 1
            return
        if direction == UP:
            ours, theirs = packet[12:16], packet[16:20]
        else:
            ours, theirs = packet[16:20], packet[12:16]
        queue = self.queues.get((direction, theirs))
        if queue is None or ours != self.root_ip:
            self.foreign += 1
            return
        if queue.loss and queue.rng.random() < queue.loss:
            queue.lost += 1
            return
        size = len(packet)
        if queue.rate_bps:
            start = max(now, queue.busy_until)
            if (start - now) * queue.rate_bps / 8 + size > queue.queue_bytes:
                queue.overflow += 1
                return
            queue.busy_until = start + size * 8 / queue.rate_bps
            release = queue.busy_until + queue.delay_s
        else:
            release = now + queue.delay_s
        self._seq += 1
        heapq.heappush(self._heap, (release, self._seq, self.fds[1 - direction], queue, packet))

    def release_due(self, now: float) -> float | None:
        """Write out every packet due by ``now``; the time of the next one, or None."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            release, _, fd, queue, packet = heapq.heappop(heap)
            try:
                os.write(fd, packet)
            except OSError:
                self.write_errors += 1
                continue
            queue.released(packet, release)
        return heap[0][0] if heap else None

    def read_from(self, direction: int, now: float) -> None:
        """Read the packets waiting on one side (at most a batch), all stamped ``now``."""
        fd = self.fds[direction]
        for _ in range(_DRAIN_PACKETS):
            try:
                packet = os.read(fd, _READ_BYTES)
            except BlockingIOError:
                return
            if not packet:
                raise EOFError(f"the {DIRECTIONS[direction]} side's TUN device is gone")
            self.admit(packet, direction, now)

    def stats(self) -> dict:
        """Counters per server address and direction, foreign packets, CPU time used so far."""
        links: dict[str, dict[str, dict]] = {}
        for (direction, key), queue in self.queues.items():
            links.setdefault(str(ipaddress.IPv4Address(key)), {})[DIRECTIONS[direction]] = queue.stats()
        cpu = os.times()
        return {"links": links, "foreign": self.foreign, "write_errors": self.write_errors,
                "queued": len(self._heap), "cpu_s": cpu.user + cpu.system}

    def run(self, control: socket.socket) -> None:
        """Forward until the control socket closes; answer each ``stats`` line on it with a JSON line."""
        control.setblocking(False)
        watched = [self.fds[UP], self.fds[DOWN], control.fileno()]
        pending = b""
        while True:
            next_release = self.release_due(time.monotonic())
            timeout = None if next_release is None else max(0.0, next_release - time.monotonic())
            if timeout and len(self._heap) <= _SPIN_MAX_QUEUED:
                # sparse packets (pings, handshakes): wake up a little early and poll for the rest, as the
                # kernel's wake-up comes 0.1-0.3 ms late; a bulk flow is not worth the CPU
                timeout = max(0.0, timeout - _SPIN_S)
            ready, _, _ = select.select(watched, [], [], timeout)
            now = time.monotonic()
            for fd in ready:
                if fd == self.fds[UP]:
                    self.read_from(UP, now)
                elif fd == self.fds[DOWN]:
                    self.read_from(DOWN, now)
                else:
                    try:
                        data = control.recv(4096)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    pending += data
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        if line.strip() == b"stats":
                            control.setblocking(True)
                            control.sendall(json.dumps(self.stats()).encode() + b"\n")
                            control.setblocking(False)


def _tight_timers() -> None:
    """Ask for 1 µs timer slack (default 50 µs) and the lowest real-time priority, so that releases are on
    time even when the machine is busy (the kernel still keeps 5 % of each CPU for everything else)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(_RT_PRIORITY))
    except (OSError, AttributeError):
        pass  # not allowed here: ordinary scheduling


def _low_fd(fd: int) -> int:
    low = os.dup(fd)  # the lowest free number: we hold only a handful
    os.close(fd)
    return low


def main(argv: list[str]) -> int:
    """``python -m pytomo.lab.delayline CONFIG_JSON``: fds, addresses and links come from the parent."""
    config = json.loads(argv[0])
    links = [LinkSpec(**raw) for raw in config["links"]]
    fds = [_low_fd(config[key]) for key in ("fd_root", "fd_lab", "fd_control")]  # select() wants fds < 1024
    line = DelayLine(fds[0], fds[1], config["root_ip"], links, config.get("seed", 0))
    control = socket.socket(fileno=fds[2])
    _tight_timers()
    control.sendall(b"ready\n")
    try:
        line.run(control)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
