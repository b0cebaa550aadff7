"""The lab's network path: a namespace for the cache servers behind two TUN devices and a user-space delay line."""

from __future__ import annotations

import bisect
import ipaddress
import json
import logging
import os
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pytomo.lab import netns
from pytomo.lab.delayline import TIMELINE_STEP_S, LinkSpec
from pytomo.paths import child_command

log = logging.getLogger(__name__)

SUPERNET = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking addresses, only inside our namespaces
NETNS_PREFIX = "pytomo-lab-"
LINK_PREFIX = "pyl"
DEFAULT_MTU_BYTES = 1500
FIRST_SERVER_HOST = 10
_NETNS_NAME = re.compile(rf"^{NETNS_PREFIX}(\d+)-(\d+)$")
_LINK_NAME = re.compile(rf"^{LINK_PREFIX}(\d+)[rl](\d+)$")
_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 3.0
_BUILD_LOCK = threading.Lock()
_MIN_QUEUE_PACKETS = 16
_MIN_QUEUE_S = 0.1

T = TypeVar("T")


class PathError(RuntimeError):
    """The network path cannot be built or used (the message says why)."""


@dataclass(frozen=True)
class PathSpec:
    """What one server's path does: one-way delay, rate (each direction), loss down and up, queue, MTU."""

    name: str
    delay_ms: float = 0.0
    rate_bps: float | None = None  # None: no rate limit (the delay line's own speed)
    loss: float = 0.0  # share of packets dropped from the server to the client
    loss_up: float = 0.0  # share dropped from the client to the server
    queue_bytes: int | None = None  # None: default_queue_bytes()
    mtu_bytes: int = DEFAULT_MTU_BYTES

    def default_queue_bytes(self) -> int:
        """Twice the bandwidth-delay product, at least 100 ms of the rate and 16 packets."""
        if not self.rate_bps:
            return 1 << 30
        rtt_s = 2 * self.delay_ms / 1000.0
        return int(max(self.rate_bps / 8 * max(2 * rtt_s, _MIN_QUEUE_S), _MIN_QUEUE_PACKETS * self.mtu_bytes))

    @property
    def effective_queue_bytes(self) -> int:
        """The queue the delay line uses."""
        return self.queue_bytes if self.queue_bytes is not None else self.default_queue_bytes()


@dataclass(frozen=True)
class Delivered:
    """What one direction of a link delivered between two monotonic times, from the delay line's own record."""

    span_s: float
    ip_bytes: float
    packets: float
    headers: float  # bytes of IP and TCP or UDP headers among them, read from each packet
    late_max_s: float  # the latest release in the span (a loaded machine releases late)

    @property
    def ip_bps(self) -> float:
        """The rate of IP bytes, as the path's rate counts."""
        return self.ip_bytes * 8 / self.span_s

    @property
    def transport_payload_bps(self) -> float:
        """The rate of what TCP or UDP carried (TLS records, QUIC packets): IP bytes less the headers."""
        return (self.ip_bytes - self.headers) * 8 / self.span_s


def delivered(queue: dict, start: float, end: float) -> Delivered:
    """What the queue (``stats()["links"][ip]["up" or "down"]``) delivered from ``start`` to ``end`` (monotonic
    seconds), its timeline interpolated between points."""
    points = queue["timeline"]
    if not points or end <= start:
        raise PathError("the delay line's record has nothing in that span")
    times = [p[0] for p in points]

    def at(t: float) -> list[float]:
        k = bisect.bisect_left(times, t)
        if k == 0 or k == len(points):
            return list(points[min(k, len(points) - 1)][1:4])
        f = (t - times[k - 1]) / (times[k] - times[k - 1])
        return [a + f * (b - a) for a, b in zip(points[k - 1][1:4], points[k][1:4])]

    first, last = at(start), at(end)
    inside = [p[4] for p in points if start <= p[0] <= end + TIMELINE_STEP_S]
    ip_bytes, packets, headers = (b - a for a, b in zip(first, last))
    return Delivered(end - start, ip_bytes, packets, headers, max(inside, default=0.0))


def unavailable_reason() -> str | None:
    """Why the path cannot be built here, or None when it can."""
    return netns.missing_support()


class NetPath:
    """Cache servers' addresses in a fresh network namespace, reached from here through the delay line.

    The root side (``root_ip`` on one TUN device) has one route per server address, with that server's
    MTU; the lab namespace holds the server addresses on ``lo`` and the route back on the other TUN device.
    The delay line runs as a child process, so it keeps its timing whatever the crawler does.
    """

    def __init__(self, specs: Sequence[PathSpec], seed: int = 0) -> None:
        if not specs:
            raise PathError("a network path needs at least one server")
        if len(specs) > 254 - FIRST_SERVER_HOST:
            raise PathError(f"a network path holds at most {254 - FIRST_SERVER_HOST} servers")
        self.specs = tuple(specs)
        self.seed = seed
        self.netns: str | None = None
        self.root_link: str | None = None
        self.lab_link: str | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self.addresses: dict[str, str] = {}
        self.final_stats: dict | None = None
        self._proc: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    # lifecycle
    def start(self) -> NetPath:
        """Build the namespace, devices, addresses and routes, and start the delay line."""
        reason = unavailable_reason()
        if reason:
            raise PathError(f"cannot build the network path: {reason}")
        last: Exception | None = None
        with _BUILD_LOCK:  # one build at a time in this process; other processes have other names
            clean_stale()
            for subnet in _free_subnets():
                try:
                    self._build(subnet)
                    return self
                except netns.NetnsError as exc:  # another run took this subnet meanwhile, or a real failure
                    last = exc
                    self.stop()
                    if "File exists" not in str(exc):
                        break
        raise PathError(f"cannot build the network path: {last or 'no free /24 in ' + str(SUPERNET)}")

    def _build(self, subnet: ipaddress.IPv4Network) -> None:
        pid, index = os.getpid(), (int(subnet.network_address) - int(SUPERNET.network_address)) >> 8
        self.subnet = subnet
        self.addresses = {s.name: str(subnet[FIRST_SERVER_HOST + i]) for i, s in enumerate(self.specs)}
        mtu = max(s.mtu_bytes for s in self.specs)
        name = f"{NETNS_PREFIX}{pid}-{index}"
        root_link, lab_link = f"{LINK_PREFIX}{pid}r{index}", f"{LINK_PREFIX}{pid}l{index}"
        netns.add_netns(name)
        self.netns = name  # only what we made is ours to delete
        fds: list[int] = []
        try:
            fds.append(netns.open_tun(root_link))
            self.root_link = root_link
            fds.append(netns.run_in_netns(name, lambda: netns.open_tun(lab_link)))
            self.lab_link = lab_link
            root_lines = [f"link set dev {self.root_link} mtu {mtu} up",
                          f"address add {self.root_ip}/32 dev {self.root_link}"]
            root_lines += [f"route add {self.addresses[s.name]}/32 dev {self.root_link} src {self.root_ip} "
                           f"mtu {s.mtu_bytes}" for s in self.specs]
            netns.ip(batch=root_lines)
            lab_lines = ["link set dev lo up", f"link set dev {self.lab_link} mtu {mtu} up",
                         f"address add {self.lab_ip}/32 dev {self.lab_link}",
                         f"route add {self.root_ip}/32 dev {self.lab_link} src {self.lab_ip}"]
            lab_lines += [f"address add {a}/32 dev lo" for a in self.addresses.values()]
            netns.ip(batch=lab_lines, netns=self.netns)
            self._spawn(fds[0], fds[1])
        finally:
            for fd in fds:  # the delay line holds the devices now; they go away with it
                os.close(fd)
        log.info("network path up: namespace %s, %s", self.netns,
                 ", ".join(f"{s.name} {self.addresses[s.name]}" for s in self.specs))

    def _spawn(self, fd_root: int, fd_lab: int) -> None:
        ours, theirs = socket.socketpair()
        links = [LinkSpec(ip=self.addresses[s.name], delay_s=s.delay_ms / 1000.0, rate_bps=s.rate_bps,
                          loss_down=s.loss, loss_up=s.loss_up, queue_bytes=s.effective_queue_bytes).as_dict()
                 for s in self.specs]
        config = {"fd_root": fd_root, "fd_lab": fd_lab, "fd_control": theirs.fileno(), "root_ip": self.root_ip,
                  "links": links, "seed": self.seed}
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                                         os.environ.get("PYTHONPATH")]))}
        try:
            self._proc = subprocess.Popen([*child_command("_delayline"), json.dumps(config)],
                                          pass_fds=(fd_root, fd_lab, theirs.fileno()), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                          start_new_session=True)  # Ctrl-C is for the crawler, not the path
        finally:
            theirs.close()
        self._control = ours
        ours.settimeout(_READY_TIMEOUT_S)
        try:
            ready = ours.recv(64)
        except OSError:
            ready = b""
        if ready != b"ready\n":
            self._proc.kill()
            err = self._proc.communicate(timeout=_STOP_TIMEOUT_S)[1].decode(errors="replace").strip()
            raise netns.NetnsError(f"the delay line did not start: {err.splitlines()[-1] if err else 'no answer'}")

    def stop(self) -> None:
        """Stop the delay line (its devices and routes go with it) and delete the namespace; idempotent."""
        if self._control is not None:
            try:
                self.final_stats = self.stats()
            except PathError:
                pass
            self._control.close()
            self._control = None
        if self._proc is not None:
            try:
                self._proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(_STOP_TIMEOUT_S)
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        present = set(netns.link_names())
        for name in (self.root_link, self.lab_link):
            if name and name in present:
                netns.ip("link", "delete", name, check=False)
        if self.netns and self.netns in netns.netns_names():
            netns.delete_netns(self.netns)
        self.netns = self.root_link = self.lab_link = None

    def __enter__(self) -> NetPath:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # use
    def _up_subnet(self) -> ipaddress.IPv4Network:
        """The /24 of the path being built or up."""
        if self.subnet is None:
            raise PathError("the network path is not up")
        return self.subnet

    @property
    def root_ip(self) -> str:
        """Our address on the path (the crawler's source address towards the servers)."""
        return str(self._up_subnet()[1])

    @property
    def lab_ip(self) -> str:
        """The lab namespace's address on its TUN device."""
        return str(self._up_subnet()[2])

    def address(self, name: str) -> str:
        """The path address of server ``name``."""
        return self.addresses[name]

    def spec(self, name: str) -> PathSpec:
        """The path spec of server ``name``."""
        return next(s for s in self.specs if s.name == name)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` inside the lab namespace (to make listening sockets there); its result."""
        if self.netns is None:
            raise PathError("the network path is not running")
        return netns.run_in_netns(self.netns, fn)

    def stats(self) -> dict:
        """The delay line's counters: per server address and direction, foreign packets, CPU seconds."""
        if self._control is None:
            if self.final_stats is not None:
                return self.final_stats
            raise PathError("the network path is not running")
        try:
            self._control.settimeout(_STOP_TIMEOUT_S)
            self._control.sendall(b"stats\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = self._control.recv(65536)
                if not chunk:
                    raise PathError("the delay line has stopped")
                data += chunk
        except OSError as exc:
            raise PathError(f"the delay line does not answer: {exc}") from None
        return json.loads(data)


def clean_stale() -> list[str]:
    """Delete namespaces and devices left by runs whose process is gone (killed runs); what was deleted."""
    removed = []
    for name in netns.netns_names():
        m = _NETNS_NAME.match(name)
        if m and not netns.pid_alive(int(m.group(1))):
            netns.delete_netns(name)
            removed.append(name)
    for name in netns.link_names():
        m = _LINK_NAME.match(name)
        if m and not netns.pid_alive(int(m.group(1))):
            netns.ip("link", "delete", name, check=False)
            removed.append(name)
    if removed:
        log.info("removed leftovers of killed lab runs: %s", ", ".join(removed))
    return removed


def _free_subnets() -> list[ipaddress.IPv4Network]:
    """The /24s of SUPERNET that no address or route of the root namespace touches."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for line in netns.ip("-4", "-o", "address", "show").splitlines():
        m = re.search(r"\binet (\S+)", line)
        if m:
            used.append(ipaddress.ip_interface(m.group(1)).network)
    for line in netns.ip("-4", "route", "show", "table", "all").splitlines():
        words = line.split()
        if words and words[0] in ("local", "broadcast", "unicast", "unreachable", "blackhole", "prohibit", "throw",
                                  "multicast", "anycast", "nat"):
            words = words[1:]
        if not words or words[0] == "default":
            continue
        try:
            used.append(ipaddress.ip_network(words[0], strict=False))
        except ValueError:
            continue
    used = [n for n in used if n.prefixlen > 0 and n.overlaps(SUPERNET)]
    return [s for s in SUPERNET.subnets(new_prefix=24)
            if s.network_address.packed[2] not in (0, 255) and not any(s.overlaps(n) for n in used)]
