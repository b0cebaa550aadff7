"""Linux plumbing for the lab's network path: named network namespaces, TUN devices, the ip command, setns."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

NETNS_DIR = "/run/netns"
TUN_DEVICE = "/dev/net/tun"
CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_IP_TIMEOUT_S = 10.0
IFNAMSIZ = 16

T = TypeVar("T")


class NetnsError(OSError):
    """A namespace, device or ip command failed (the message says which and why)."""


def missing_support() -> str | None:
    """Why namespaces and TUN devices cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"it needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"it needs root (running as uid {os.geteuid()})"
    if not os.path.exists(TUN_DEVICE):
        return f"{TUN_DEVICE} does not exist (load the tun module: modprobe tun)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    try:
        os.close(os.open(TUN_DEVICE, os.O_RDWR))
    except OSError as exc:
        return f"cannot open {TUN_DEVICE}: {exc.strerror}"
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    if done.returncode != 0:
        return f"'ip netns' does not work here: {done.stderr.strip() or done.returncode}"
    return None


def ip(*args: str, netns: str | None = None, batch: Iterable[str] | None = None, check: bool = True) -> str:
    """Run ``ip [-n netns] args`` (or ``ip -batch -`` with the given lines); its stdout."""
    argv = ["ip", *(["-n", netns] if netns else []), *(["-batch", "-"] if batch is not None else args)]
    text = "\n".join(batch) + "\n" if batch is not None else None
    try:
        done = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=_IP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from None
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


def netns_names() -> list[str]:
    """The named network namespaces (as ``ip netns`` makes them)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def link_names(netns: str | None = None) -> list[str]:
    """The network interfaces of the root namespace (or of ``netns``)."""
    names = []
    for line in ip("-o", "link", "show", netns=netns).splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def add_netns(name: str) -> None:
    """Create the named network namespace."""
    ip("netns", "add", name)


def delete_netns(name: str) -> None:
    """Delete the named network namespace (it lives on while sockets in it are open)."""
    ip("netns", "delete", name, check=False)


def open_tun(name: str) -> int:
    """Create the TUN device ``name`` (IP packets, no packet info) in the calling thread's namespace; its fd.

    The device is not persistent: it disappears when the last descriptor on it is closed.
    """
    if len(name.encode()) >= IFNAMSIZ:
        raise NetnsError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} bytes")
    fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise NetnsError(f"cannot create the TUN device {name}: {exc.strerror}") from None
    return fd


def _libc_setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise NetnsError(code, f"setns: {os.strerror(code)}")


def run_in_netns(name: str, fn: Callable[[], T], timeout_s: float = 30.0) -> T:
    """Call ``fn`` in a short-lived thread that has entered the namespace ``name``; its result.

    Sockets (and TUN devices) made by ``fn`` belong to that namespace and keep working from any thread.
    The caller's own thread never changes namespace.
    """
    outcome: list = []

    def body() -> None:
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
            try:
                _libc_setns(fd)
            finally:
                os.close(fd)
            outcome.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))

    thread = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise NetnsError(errno.ETIMEDOUT, f"no answer from namespace {name} within {timeout_s:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
