"""Linux ``TCP_INFO`` of a socket, decoded under the kernel's own field names (struct tcp_info, linux/tcp.h)."""

from __future__ import annotations

import random
import socket
import struct

# (name, struct code) in kernel order; the struct has natural alignment and no padding up to tcpi_snd_wnd.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("tcpi_state", "B"), ("tcpi_ca_state", "B"), ("tcpi_retransmits", "B"), ("tcpi_probes", "B"),
    ("tcpi_backoff", "B"), ("tcpi_options", "B"), ("tcpi_wscale", "B"), ("tcpi_app_limited_flags", "B"),
    ("tcpi_rto", "I"), ("tcpi_ato", "I"), ("tcpi_snd_mss", "I"), ("tcpi_rcv_mss", "I"),
    ("tcpi_unacked", "I"), ("tcpi_sacked", "I"), ("tcpi_lost", "I"), ("tcpi_retrans", "I"), ("tcpi_fackets", "I"),
    ("tcpi_last_data_sent", "I"), ("tcpi_last_ack_sent", "I"), ("tcpi_last_data_recv", "I"),
    ("tcpi_last_ack_recv", "I"),
    ("tcpi_pmtu", "I"), ("tcpi_rcv_ssthresh", "I"), ("tcpi_rtt", "I"), ("tcpi_rttvar", "I"),
    ("tcpi_snd_ssthresh", "I"), ("tcpi_snd_cwnd", "I"), ("tcpi_advmss", "I"), ("tcpi_reordering", "I"),
    ("tcpi_rcv_rtt", "I"), ("tcpi_rcv_space", "I"), ("tcpi_total_retrans", "I"),
    ("tcpi_pacing_rate", "Q"), ("tcpi_max_pacing_rate", "Q"), ("tcpi_bytes_acked", "Q"),
    ("tcpi_bytes_received", "Q"),
    ("tcpi_segs_out", "I"), ("tcpi_segs_in", "I"), ("tcpi_notsent_bytes", "I"), ("tcpi_min_rtt", "I"),
    ("tcpi_data_segs_in", "I"), ("tcpi_data_segs_out", "I"),
    ("tcpi_delivery_rate", "Q"), ("tcpi_busy_time", "Q"), ("tcpi_rwnd_limited", "Q"), ("tcpi_sndbuf_limited", "Q"),
    ("tcpi_delivered", "I"), ("tcpi_delivered_ce", "I"),
    ("tcpi_bytes_sent", "Q"), ("tcpi_bytes_retrans", "Q"),
    ("tcpi_dsack_dups", "I"), ("tcpi_reord_seen", "I"), ("tcpi_rcv_ooopack", "I"), ("tcpi_snd_wnd", "I"),
)
FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in _FIELDS)
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
    for name, code in _FIELDS:
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
