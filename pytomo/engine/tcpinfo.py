"""Linux ``TCP_INFO`` of a socket, decoded under the kernel's own field names (pytomo/results/network.py)."""

from __future__ import annotations

import random
import socket
import struct

from pytomo.results import TCP_INFO_LAYOUT

_BUFFER_BYTES = 512

# Sampling schedule of ndt7: memoryless, mean 250 ms, clamped to [25 ms, 625 ms].
MEAN_INTERVAL_S, MIN_INTERVAL_S, MAX_INTERVAL_S = 0.25, 0.025, 0.625


def available() -> bool:
    """True where the platform exposes TCP_INFO (Linux)."""
    return hasattr(socket, "TCP_INFO")


def decode(raw: bytes) -> dict[str, int]:
    """The fields present in ``raw`` (older kernels return a shorter struct); absent fields are left out."""
    out: dict[str, int] = {}
    offset = 0
    for name, code in TCP_INFO_LAYOUT:
        size = struct.calcsize(code)
        if offset + size > len(raw):
            break
        out[name] = struct.unpack_from("=" + code, raw, offset)[0]
        offset += size
    return out


def read(sock: socket.socket) -> dict[str, int] | None:
    """One TCP_INFO snapshot of ``sock``, or None where it cannot be read."""
    if not available():
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _BUFFER_BYTES)
    except OSError:
        return None
    return decode(raw)


def next_interval_s(rng: random.Random) -> float:
    """The wait before the next sample: exponential around 250 ms, clamped, as ndt7 samples."""
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, rng.expovariate(1.0 / MEAN_INTERVAL_S)))
