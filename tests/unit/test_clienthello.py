"""The ClientHello parser: real hellos of Python's ssl and of curl_cffi's own browser targets, judged as the lab's
``tls_fingerprint`` rule judges them, and any bytes parsed without an exception."""

from __future__ import annotations

import random
import socket
import ssl
import threading

import pytest
from curl_cffi import Curl, CurlError, CurlOpt

from pytomo.engine.curl import impersonation_target
from pytomo.lab.clienthello import is_grease, judge, parse, peek


def _hello_of(connect) -> bytes:
    """The first TLS record a client sends to a listening socket that never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(peek(conn, 5.0))

    worker = threading.Thread(target=accept)
    worker.start()
    try:
        connect(server.getsockname()[1])
    except (OSError, CurlError, ssl.SSLError):
        pass
    worker.join(10)
    server.close()
    return got[0]


def _curl(target: str | None):
    def connect(port: int) -> None:
        c = Curl()
        c.setopt(CurlOpt.URL, f"https://localhost:{port}/")
        c.setopt(CurlOpt.TIMEOUT_MS, 1500)
        if target:
            assert c.impersonate(impersonation_target(target)) == 0
        try:
            c.perform()
        finally:
            c.close()
    return connect


def _python_ssl(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=1.5) as raw:
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize(("name", "connect", "browser"), [
    ("chrome", _curl("chrome"), True), ("firefox", _curl("firefox"), True),
    ("curl_cffi without impersonation", _curl(None), False), ("python ssl", _python_ssl, False)])
def test_browsers_are_told_from_other_clients(name, connect, browser):
    data = _hello_of(connect)
    hello = parse(data)
    assert hello is not None and hello.sni == "localhost", name
    verdict = judge("browser", data)
    assert verdict["tls_client"] == ("browser" if browser else "not_browser"), (name, verdict)
    assert verdict["tls_client_refused"] is not browser
    assert judge("refuse", data)["tls_client_refused"] is True
    assert verdict["client_hello"].startswith("t13d")  # JA4: TCP, TLS 1.3 offered, SNI
    if name == "chrome":
        assert "grease" in verdict["client_hello"]
    if name == "firefox":
        assert "record_size_limit+delegated_credentials" in verdict["client_hello"]


def test_grease_values_are_those_of_rfc_8701():
    assert [v for v in range(0x10000) if is_grease(v)] == [0x0A0A + 0x1010 * i for i in range(16)]


def test_any_bytes_parse_without_an_exception():
    rng = random.Random(17)
    real = _hello_of(_curl("chrome"))
    for _ in range(3000):
        data = bytearray(real[:rng.randrange(len(real) + 1)])
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        parse(bytes(data))
        judge("browser", bytes(data))
    assert parse(b"GET / HTTP/1.1\r\n\r\n") is None and judge("browser", b"")["tls_client"] is None


def test_the_scenario_takes_the_rule_only_on_the_labs_own_https_server():
    from pytomo.errors import LabError
    from pytomo.lab.scenario import parse_scenario

    def scenario(**server) -> dict:
        return {"scenario": {"name": "t"}, "servers": [{"name": "s", **server}],
                "videos": [{"id": "v", "server": "s"}]}

    profile = parse_scenario(scenario(tls_fingerprint="browser")).server("s")
    assert profile.tls and profile.tls_fingerprint == "browser"
    for bad in ({"tls_fingerprint": "chrome"}, {"tls_fingerprint": "browser", "software": "nginx"},
                {"tls_fingerprint": "refuse", "tls": False}):
        with pytest.raises(LabError, match="tls_fingerprint"):
            parse_scenario(scenario(**bad))
