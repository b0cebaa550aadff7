"""What the network stages observed: redirect hops, DNS answers, RTT probes, connections, TCP_INFO."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

# Linux struct tcp_info (linux/tcp.h): (kernel field name, struct code) in kernel order; the struct has natural
# alignment and no padding up to tcpi_snd_wnd. pytomo/engine/tcpinfo.py decodes it; the database stores the names.
TCP_INFO_LAYOUT: tuple[tuple[str, str], ...] = (
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
TCP_INFO_FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in TCP_INFO_LAYOUT)


@dataclass(frozen=True)
class Hop:
    """One request of the redirect chain, as observed (not guessed)."""

    index: int
    url: str
    host: str
    address: str | None
    status: int | None
    location: str | None
    elapsed_s: float | None
    started_at: datetime
    error: str | None = None
    connection: ConnectionUse | None = None  # opened for this hop (with set-up times) or reused; None: no answer
    http_version: str | None = None  # HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/3 of the answer
    impersonate: str | None = None  # the browser target presented over libcurl; None: requests (or libcurl's own)
    http_stream_id: int | None = None  # the HTTP/2 or HTTP/3 stream libcurl opened; None: HTTP/1.x or requests

    @property
    def origin(self) -> str:
        """``scheme://netloc`` of the hop's URL (the cache server's, for the last hop)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class DnsAnswer:
    """One answer (or failure) of one resolver for one host and record type."""

    host: str
    resolver: str  # label: system, lab, literal, getaddrinfo, or a configured name
    resolver_address: str | None
    rdtype: str  # A or AAAA
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, TIMEOUT, NO_NAMESERVERS, ...
    address: str | None
    ttl_s: int | None
    latency_ms: float | None
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class RttSample:
    """One RTT probe: ``rtt_ms`` is None when the probe was lost."""

    address: str
    method: str  # icmp-dgram, icmp-raw, system-ping, tcp-connect
    seq: int
    rtt_ms: float | None
    at: datetime


@dataclass(frozen=True)
class RttResult:
    """The probes sent to one address by one method."""

    address: str
    method: str
    samples: tuple[RttSample, ...]
    error: str | None = None

    @property
    def rtts_ms(self) -> list[float]:
        """The RTTs of the probes that were answered, in milliseconds."""
        return [s.rtt_ms for s in self.samples if s.rtt_ms is not None]

    @property
    def loss(self) -> float | None:
        """Fraction of probes lost (0..1); None when no probe was sent."""
        if not self.samples:
            return None
        return 1.0 - len(self.rtts_ms) / len(self.samples)

    @property
    def min_ms(self) -> float | None:
        """Minimum RTT in milliseconds."""
        return min(self.rtts_ms) if self.rtts_ms else None

    @property
    def avg_ms(self) -> float | None:
        """Mean RTT in milliseconds."""
        return statistics.fmean(self.rtts_ms) if self.rtts_ms else None

    @property
    def max_ms(self) -> float | None:
        """Maximum RTT in milliseconds."""
        return max(self.rtts_ms) if self.rtts_ms else None


@dataclass(frozen=True)
class ConnectionUse:
    """How one request used its connection: opened for it (with set-up times) or reused, and its rank on it."""

    new: bool
    tcp_connect_s: float | None  # TCP handshake, for a new connection
    tls_handshake_s: float | None  # TLS handshake after it, for a new HTTPS connection
    request_on_connection: int  # 1 for the first request of a connection
    tls_version: str | None = None  # TLSv1.2, TLSv1.3 (Python's ssl names); None: not over TLS


@dataclass(frozen=True)
class AddressOrigin:
    """Who holds an address, from the offline IP databases (``--ip-db``): its AS and country; ``problem`` says why
    a field is None (no database given, a private address, not in the databases)."""

    as_number: int | None = None
    as_name: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    problem: str | None = None
