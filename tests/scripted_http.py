"""A loopback HTTP server whose every answer is scripted byte for byte, for the ways real servers speak HTTP."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    connection_id: int  # the n-th connection the server accepted (from 1)
    request_on_connection: int  # the n-th request on that connection (from 1)


@dataclass
class Answer:
    """What to send: raw bytes (status line, headers, body, as given) and whether to close afterwards."""

    data: bytes
    close: bool = False
    reset: bool = False  # close with RST instead of FIN
    pause: tuple[int, float] | None = None  # after this many bytes of ``data``, wait this many seconds
    drip_s: float | None = None  # send ``data`` one byte at a time, this many seconds apart


Route = Callable[[Request], Answer]


def response(status: str, headers: dict[str, str], body: bytes = b"", *, http: str = "HTTP/1.1",
             close: bool = False) -> Answer:
    """An answer built from a status, headers as given (no header added) and a body."""
    head = f"{http} {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return Answer(head.encode("latin-1") + body, close=close)


def chunked(body: bytes, size: int = 4096) -> bytes:
    """``body`` in the chunked transfer coding."""
    parts = [f"{len(body[i:i + size]):x}\r\n".encode() + body[i:i + size] + b"\r\n" for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@dataclass
class ScriptedServer:
    """Routes by path; keeps connections alive unless an answer says close. Records every request."""

    routes: dict[str, Route]
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self
        self._connections = 0
        self._lock = threading.Lock()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            conn_id = self._connections
        sock.settimeout(10)
        buffer = b""
        n = 0
        while True:
            while b"\r\n\r\n" not in buffer:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            n += 1
            req = Request(method, path, headers, conn_id, n)
            self.requests.append(req)
            route = self.routes.get(path.split("?", 1)[0])
            answer = route(req) if route else response("404 Not Found", {"Content-Length": "0"})
            try:
                if answer.drip_s is not None:
                    for i in range(len(answer.data)):
                        sock.sendall(answer.data[i:i + 1])
                        time.sleep(answer.drip_s)
                elif answer.pause is not None:
                    cut, wait_s = answer.pause
                    sock.sendall(answer.data[:cut])
                    time.sleep(wait_s)
                    sock.sendall(answer.data[cut:])
                else:
                    sock.sendall(answer.data)
            except OSError:
                return
            if answer.reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
                return
            if answer.close:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:  # the client went first
                    pass
                return
