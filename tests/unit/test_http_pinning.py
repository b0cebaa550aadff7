"""Requests go to the address we chose, with the original Host, and for HTTPS the SNI and certificate name."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import trustme

from pytomo.engine.http import HttpClient, pinned_url

NAME = "secure.lab.pytomo.test"


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = self.headers.get("Host", "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert(NAME)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    seen_sni = []
    ctx.sni_callback = lambda sock, name, c: seen_sni.append(name)
    server = ThreadingHTTPServer(("127.77.2.1", 0), _Echo)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield server.server_address[1], str(ca_file), seen_sni
    server.shutdown()
    server.server_close()


def test_https_goes_to_the_pinned_address_with_sni_and_name_check(https_server):
    port, ca_file, seen_sni = https_server
    client = HttpClient(lambda host: ["127.77.2.1"] if host == NAME else [])
    client.session.verify = ca_file
    resp = client.request("GET", f"https://{NAME}:{port}/x")
    assert resp.status_code == 200 and resp.text == f"{NAME}:{port}"
    assert seen_sni == [NAME]


def test_https_certificate_for_another_name_is_refused(https_server):
    port, ca_file, _seen = https_server
    client = HttpClient(lambda host: ["127.77.2.1"])
    client.session.verify = ca_file
    with pytest.raises(requests.exceptions.SSLError):
        client.request("GET", f"https://other.lab.pytomo.test:{port}/x")


def test_pinned_url_keeps_port_path_and_query():
    assert pinned_url("http://a.test:8080/p/q?x=1#frag", "127.0.0.5") == "http://127.0.0.5:8080/p/q?x=1"
    assert pinned_url("https://a.test/v", "::1") == "https://[::1]/v"
