"""The lab's authoritative DNS server: fixed A/AAAA records on a loopback address, over UDP and TCP."""

from __future__ import annotations

import functools
import ipaddress
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from pytomo.errors import LabError

log = logging.getLogger(__name__)

_UDP_SIZE_WITHOUT_EDNS = 512
_TCP_IDLE_TIMEOUT_S = 10.0
_BIND_ATTEMPTS = 20
_JOIN_TIMEOUT_S = 2.0


class LabDnsServer:
    """Authoritative DNS for the lab's host names, on a loopback address, over UDP and TCP.

    ``records`` maps a host name (case-insensitive, with or without the trailing dot) to its addresses,
    IPv4 and IPv6 mixed. A and AAAA queries get the addresses of that family (NOERROR with an empty
    answer when the name has none), an unknown name gets NXDOMAIN, any other type NOERROR and no data.
    UDP answers larger than the client's buffer (512 bytes without EDNS) are truncated with TC set, so
    clients retry over TCP. The records of an answer come in a shuffled order (dnspython's default, like a
    round-robin server). Each answer is held back ``delay_s`` seconds. ``queries`` logs every query
    answered as ``(qname, rdtype, transport)``, the name in lower case without the trailing dot.
    """

    def __init__(self, records: Mapping[str, Sequence[str]], *, ttl_s: int = 300, host: str = "127.77.0.53",
                 port: int = 0, delay_s: float = 0.0) -> None:
        if ttl_s < 0 or delay_s < 0:
            raise LabError(f"DNS ttl_s and delay_s must not be negative (got {ttl_s}, {delay_s})")
        try:
            self._family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        except ValueError:
            raise LabError(f"the lab DNS server needs an IP address to listen on, not {host!r}") from None
        self.host = host
        self.port = port
        self.ttl_s = ttl_s
        self.delay_s = delay_s
        self.queries: list[tuple[str, str, str]] = []
        self._zone = _build_zone(records)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._serve_thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> LabDnsServer:
        """Bind UDP and TCP on the same port and serve from daemon threads; returns self."""
        if self._serve_thread is not None:
            return self
        self._udp, self._tcp = self._bind()
        self.port = self._udp.getsockname()[1]
        self._wake = socket.socketpair()
        self._stopping.clear()
        self._serve_thread = threading.Thread(target=self._serve, name=f"lab-dns-{self.host}:{self.port}",
                                              daemon=True)
        self._serve_thread.start()
        log.debug("lab DNS server on %s port %d (%d names)", self.host, self.port, len(self._zone))
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and wait (briefly) for the threads to end."""
        if self._serve_thread is None:
            return
        self._stopping.set()
        assert self._wake is not None
        try:
            self._wake[1].send(b"x")
        except OSError:
            pass
        self._serve_thread.join(_JOIN_TIMEOUT_S)
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for worker in workers:
            worker.join(_JOIN_TIMEOUT_S)
        for sock in (self._udp, self._tcp, *self._wake):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake = None
        self._serve_thread = None

    def __enter__(self) -> LabDnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        """A UDP and a TCP socket bound to the same port (any free one when port is 0)."""
        last_error: OSError | None = None
        for _ in range(_BIND_ATTEMPTS if self.port == 0 else 1):
            udp = socket.socket(self._family, socket.SOCK_DGRAM)
            tcp = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                udp.bind((self.host, self.port))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.host, udp.getsockname()[1]))
                tcp.listen(16)
                return udp, tcp
            except OSError as exc:
                udp.close()
                tcp.close()
                last_error = exc
        raise LabError(f"cannot bind the lab DNS server to {self.host} port {self.port}: {last_error}")

    # -- serving -----------------------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None and self._wake is not None
        udp, tcp, wake = self._udp, self._tcp, self._wake[0]
        with selectors.DefaultSelector() as selector:
            for sock in (udp, tcp, wake):
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                    try:
                        if key.fileobj is udp:
                            wire, peer = udp.recvfrom(65535)
                            self._dispatch(functools.partial(self._answer_udp, wire, peer))
                        else:
                            conn, _ = tcp.accept()
                            with self._lock:
                                self._connections.add(conn)
                            self._dispatch(functools.partial(self._serve_connection, conn), own_thread=True)
                    except OSError as exc:
                        log.debug("lab DNS server: %s", exc)

    def _dispatch(self, job: Callable[[], None], *, own_thread: bool = False) -> None:
        """Run job in a worker thread (TCP connections, delayed answers: one must not block others), or at once."""
        if self.delay_s <= 0 and not own_thread:
            job()
            return
        worker = threading.Thread(target=self._run_worker, args=(job,), daemon=True)
        with self._lock:
            self._workers.add(worker)
        worker.start()

    def _run_worker(self, job: Callable[[], None]) -> None:
        try:
            job()
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _answer_udp(self, wire: bytes, peer: tuple) -> None:
        reply = self._reply(wire, "udp")
        if reply is None or self._udp is None:
            return
        try:
            self._udp.sendto(reply, peer)
        except OSError as exc:
            log.debug("lab DNS server: cannot answer %s: %s", peer, exc)

    def _serve_connection(self, conn: socket.socket) -> None:
        """Answer length-prefixed queries on one TCP connection until the client closes it."""
        conn.settimeout(_TCP_IDLE_TIMEOUT_S)
        try:
            while not self._stopping.is_set():
                header = _recv_exactly(conn, 2)
                if header is None:
                    return
                wire = _recv_exactly(conn, struct.unpack("!H", header)[0])
                if wire is None:
                    return
                reply = self._reply(wire, "tcp")
                if reply is not None:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError as exc:
            log.debug("lab DNS server: TCP connection ended: %s", exc)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _reply(self, wire: bytes, transport: str) -> bytes | None:
        """The wire answer to one query (after the delay), or None for garbage and when stopping."""
        if self.delay_s > 0 and self._stopping.wait(self.delay_s):
            return None
        try:
            query = dns.message.from_wire(wire)
        except Exception as exc:  # any undecodable packet is dropped; the server keeps going
            log.debug("lab DNS server: dropped a %d-byte %s packet: %s", len(wire), transport, exc)
            return None
        if query.flags & dns.flags.QR:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        else:
            self._fill(response, query.question[0])
            question = query.question[0]
            with self._lock:
                self.queries.append((question.name.to_text(omit_final_dot=True).lower(),
                                     dns.rdatatype.to_text(question.rdtype), transport))
        if transport == "tcp":
            max_size = 65535
        elif query.edns >= 0:
            max_size = max(_UDP_SIZE_WITHOUT_EDNS, query.payload)
        else:
            max_size = _UDP_SIZE_WITHOUT_EDNS
        return response.to_wire(max_size=max_size, prefer_truncation=True)

    def _fill(self, response: dns.message.Message, question: dns.rrset.RRset) -> None:
        """Put the records answering question into response (or set NXDOMAIN)."""
        entry = self._zone.get(question.name)
        if entry is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        if question.rdclass != dns.rdataclass.IN or question.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return
        found = entry[0] if question.rdtype == dns.rdatatype.A else entry[1]
        if found:
            response.answer.append(dns.rrset.from_text_list(question.name, self.ttl_s, dns.rdataclass.IN,
                                                            question.rdtype, found))


def _build_zone(records: Mapping[str, Sequence[str]]) -> dict[dns.name.Name, tuple[list[str], list[str]]]:
    """Names (dnspython compares them case-insensitively) to their IPv4 and IPv6 addresses."""
    zone: dict[dns.name.Name, tuple[list[str], list[str]]] = {}
    for name, addresses in records.items():
        if isinstance(addresses, str):
            raise LabError(f"the addresses of {name!r} must be a list, not the string {addresses!r}")
        try:
            key = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise LabError(f"bad lab host name {name!r}: {exc}") from None
        v4, v6 = zone.setdefault(key, ([], []))
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                raise LabError(f"bad address {text!r} for lab host {name!r}") from None
            family = v4 if ip.version == 4 else v6
            if str(ip) not in family:
                family.append(str(ip))
    return zone


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    """size bytes from conn, or None when the peer closes first."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)
