"""The server against hostile input: every parameter of every page answers 400/404 (escaped), HEAD, 50 clients."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.conftest import ROOT
from tests.web.conftest import read_db

GROUPS = ["", "graphs/qoe", "graphs/qos", "graphs/characteristics", "graphs/all"]
HOSTILE = [
    "²", "٣", "9" * 4300, "9" * 5000, "-1", "0", "+1", " 1", "1.0", "1e3", "99999999999999999999", "../",
    "../../etc/passwd", "\x00", "a\x00b", "\n", "%", "%zz", "x" * 10_000, "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>", "'; DROP TABLE videos; --", "0" * 16, "f" * 16, "F" * 16, "日本語", "",
]
RAW_QUERIES = ["%ff", "%C0%AE%C0%AE%2F", "db", "=", "a=1&" * 25]  # sent exactly as written


class LoggedServer:
    """``start_server.py`` in a child process, its stderr in a file that tests may read at any time."""

    def __init__(self, folder: Path, tmp: Path) -> None:
        self.log = tmp / "server-stderr.txt"
        env = dict(os.environ, PYTOMO_CACHE_DIR=str(tmp / "cache"))
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "start_server.py"), "-d", str(folder), "0"],
                                         cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        line = self.proc.stdout.readline()
        match = re.match(r"serving (http://\S+/)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r} {self.log.read_text()}")
        self.url = match.group(1)
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port

    def stderr(self) -> str:
        """What the server logged so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it (Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def site(lab_db, tmp_path_factory):
    """The server on the lab crawl, with the ids the pages need."""
    tmp = tmp_path_factory.mktemp("web-hardening")
    srv = LoggedServer(lab_db.parent, tmp)
    main = requests.get(srv.url, timeout=20).text
    db = re.search(r"db=([0-9a-f]{16})", main).group(1)
    conn = read_db(lab_db)
    vid = conn.execute("SELECT video_row_id FROM downloads WHERE bytes > 0 LIMIT 1").fetchone()[0]
    conn.close()
    src = re.search(r"src=((?:service|server)-[A-Za-z0-9_.-]+)", main).group(1)
    yield srv, db, vid, src
    srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def _raw(srv: LoggedServer, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One request with the target sent exactly as written, read to the end of the connection."""
    with socket.create_connection((srv.host, srv.port), timeout=20) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: {srv.host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _pages(db: str, vid: int) -> dict[str, tuple[str, ...]]:
    """Every route with a working target, and the parameters it reads."""
    pages = {f"/{g}": ("db", "span", "src") for g in GROUPS}
    pages.update({"/videos": ("db", "page"), "/servers": ("db",), "/archive": ("db",), f"/video/{vid}": ("db",),
                  f"/video/{vid}/throughput.svg": ("db",), "/graph/throughput_2015_bps.png": ("db", "span", "src")})
    return pages


def _escaped(value: str) -> str:
    return html.escape(value, quote=True).replace("&#x27;", "&#39;")


def _check_refused(srv: LoggedServer, target: str, value: str | None) -> None:
    status, headers, body = _raw(srv, "GET", target)
    assert status in (400, 404), (target[:120], status)
    assert headers["content-type"] == "text/html; charset=utf-8", target[:120]
    assert int(headers["content-length"]) == len(body)
    text = body.decode("utf-8")
    assert "Traceback" not in text and "<script" not in text.lower() and "<img src=x" not in text, target[:120]
    if status == 400 and value is not None and value.isprintable():
        assert _escaped(value[:40]) in text, (target[:120], text)  # says which value, escaped


def test_every_parameter_of_every_page_refuses_hostile_values(site):
    srv, db, vid, src = site
    for path, params in _pages(db, vid).items():
        assert _raw(srv, "GET", f"{path}?db={db}")[0] == 200, path
        for name in params:
            for value in HOSTILE:
                _check_refused(srv, f"{path}?{name}={quote(value, safe='')}", value)
        for value in ("<b>x</b>", "sort", "x" * 5000):  # a parameter the page does not take
            _check_refused(srv, f"{path}?db={db}&{quote(value, safe='')}=1", value)
        for raw in RAW_QUERIES:
            _check_refused(srv, f"{path}?db={db}&{raw}" if "=" not in raw[:2] else f"{path}?{raw}", None)
    assert "Traceback" not in srv.stderr()


def test_values_that_look_right_but_name_nothing_are_404(site):
    srv, db, vid, src = site
    for target in (f"/?db={'0' * 16}", f"/videos?db={db}&page=1000000", "/video/999999999999", "/video/0",
                   f"/graph/throughput_2015_bps.png?db={db}&src=server-10.99.99.99", f"/?db={db}&src=service-nothing",
                   f"/video/{vid}/rtt.svg?db={'a' * 16}"):
        status, _headers, body = _raw(srv, "GET", target)
        assert status == 404, (target, status)
        assert b"Traceback" not in body
    assert "Traceback" not in srv.stderr()


def test_hostile_paths_are_404(site):
    srv, db, vid, src = site
    for path in ("/video/%C2%B2", "/video/%D9%A3", "/video/" + "9" * 4300, "/video/-1", "/video/1%00",
                 "/video/1%0A", "/video/%3Cscript%3E", "/video/1/x.svg", "/graph/%3Cb%3E.png", "/graph/../x.png",
                 "/%ff", "/%00", "/graphs/%2e%2e", "/static/%00.css", "/" + "a" * 10_000):
        status, _headers, body = _raw(srv, "GET", path)
        assert status == 404, (path[:80], status)
        assert b"Traceback" not in body and b"<script" not in body
    assert "Traceback" not in srv.stderr()


def test_head_answers_the_headers_of_get_without_a_body(site):
    srv, db, vid, src = site
    targets = [f"{p}?db={db}" for p in _pages(db, vid)] + ["/static/style.css", "/favicon.ico"]
    for target in targets:
        status, headers, body = _raw(srv, "HEAD", target)
        assert status == 200, target
        assert body == b"", target
        got_status, got_headers, got_body = _raw(srv, "GET", target)
        assert got_status == 200
        assert int(headers["content-length"]) == len(got_body) > 0, target
        assert headers["content-type"] == got_headers["content-type"], target
    status, headers, body = _raw(srv, "HEAD", "/videos?page=%C2%B2")
    assert status == 400 and body == b"" and int(headers["content-length"]) > 0


def test_head_then_get_on_one_connection(site):
    srv, db, vid, src = site
    session = requests.Session()
    head = session.head(srv.url + "videos", timeout=20)
    got = session.get(srv.url + "videos", timeout=20)  # a body left by HEAD would corrupt this answer
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and int(head.headers["Content-Length"]) == len(got.content)
    assert got.text.rstrip().endswith("</html>")


def test_listen_backlog_fits_the_clients(site):
    srv, _db, _vid, _src = site
    if not shutil.which("ss"):
        pytest.skip("no ss here to read the listen backlog")
    out = subprocess.run(["ss", "-ltnH", f"sport = :{srv.port}"], capture_output=True, text=True).stdout
    backlog = int(out.split()[2])  # State Recv-Q Send-Q: Send-Q of a listening socket is its backlog
    assert backlog >= 128


def test_fifty_concurrent_clients_all_get_answers(site):
    srv, db, vid, src = site
    targets = [f"?db={db}", f"videos?db={db}", f"video/{vid}?db={db}", f"graphs/qos?db={db}&span=day",
               "videos?page=%C2%B2", f"graph/throughput_2015_bps.png?db={db}&span=hour", "favicon.ico",
               f"servers?db={db}"]
    clients, rounds = 50, 4
    start = threading.Barrier(clients)
    answers: list[tuple[str, int]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        mine, bad = [], []
        try:
            start.wait(timeout=30)
            with requests.Session() as s:
                for i in range(rounds):
                    target = targets[(k + i) % len(targets)]
                    mine.append((target, s.get(srv.url + target, timeout=60).status_code))
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            bad.append(f"client {k}: {exc!r}")
        with lock:
            answers.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:5]
    assert len(answers) == clients * rounds
    for target, status in answers:
        assert status == (400 if "%C2%B2" in target else 200), target
    assert "Traceback" not in srv.stderr()
