"""Real servers that pace a file on loopback (lighttpd, Apache's mod_ratelimit, nginx), and curl over a window."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytomo.lab.served import free_port
from pytomo.lab.tools import nginx_exe

HOST = "127.0.0.1"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CurlWindow:
    """What ``curl --max-time W`` reports (its -w variables), and the rate from its first response byte."""

    size_download_bytes: int
    speed_download_Bps: float  # size_download / time_total: the request's start (before connecting) is the origin
    time_starttransfer_s: float  # request start -> first response byte (the headers)
    time_total_s: float
    exit_code: int

    @property
    def from_first_byte_bps(self) -> float:
        """Bytes received over the time from the first response byte to the end, in bit/s."""
        return self.size_download_bytes * 8 / (self.time_total_s - self.time_starttransfer_s)


def binary(name: str) -> str | None:
    """The server's binary (``lighttpd``, ``apache2``, ``nginx``), or None when it is not installed."""
    if name == "nginx":
        return nginx_exe()[0]
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if os.access(p, os.X_OK)), None)


def curl_window(url: str, window_s: float) -> CurlWindow:
    """Fetch ``url`` with curl for at most ``window_s`` seconds (curl's --max-time, from the request's start)."""
    out = subprocess.run(["curl", "-s", "--noproxy", "*", "--max-time", str(window_s), "-o", "/dev/null", "-w",
                          "%{size_download} %{speed_download} %{time_starttransfer} %{time_total}", url],
                         capture_output=True, text=True, timeout=window_s + 10)
    size, speed, start, total = out.stdout.split()
    return CurlWindow(int(size), float(speed), float(start), float(total), out.returncode)


def _wait_listening(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {HOST}:{port} within {_START_TIMEOUT_S} s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(_STOP_TIMEOUT_S)


@contextmanager
def _serve(command: list[str], port: int, log: Path, stop_signal: int = signal.SIGTERM) -> Iterator[str]:
    with log.open("ab") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        _wait_listening(port, proc, log)
        yield f"http://{HOST}:{port}"
    finally:
        _stop(proc, stop_signal)


def lighttpd_config(root: Path, port: int, workdir: Path, kib_per_s: int) -> str:
    """lighttpd.conf: ``root`` on ``port``, every connection paced by ``connection.kbytes-per-second``."""
    user = ['server.username = "www-data"', 'server.groupname = "www-data"'] if os.geteuid() == 0 else []
    return "\n".join([
        f'server.document-root = "{root}"', f'server.bind = "{HOST}"', f"server.port = {port}",
        *user,  # errors go to stderr (the log we read when it fails to start)
        f"connection.kbytes-per-second = {kib_per_s}",
        'mimetype.assign = (".mp4" => "video/mp4", ".webm" => "video/webm", ".gz" => "application/gzip")',
    ]) + "\n"


@contextmanager
def lighttpd(root: Path, workdir: Path, kib_per_s: int) -> Iterator[str]:
    """lighttpd in the foreground (-D) serving ``root``; yields its base URL."""
    port = free_port(HOST)
    conf = workdir / "lighttpd.conf"
    conf.write_text(lighttpd_config(root, port, workdir, kib_per_s))
    with _serve([str(binary("lighttpd")), "-D", "-f", str(conf)], port, workdir / "lighttpd.out") as url:
        yield url


def apache_config(root: Path, port: int, workdir: Path, kib_per_s: int) -> str:
    """A whole apache2.conf: ``root`` on ``port`` through mod_ratelimit's RATE_LIMIT filter at ``kib_per_s``."""
    mods = ["mpm_event", "authz_core", "mime", "env", "ratelimit"]
    user = ["User www-data", "Group www-data"] if os.geteuid() == 0 else []
    return "\n".join([
        f'ServerRoot "{workdir}"', f"Listen {HOST}:{port}", "ServerName localhost",
        *(f"LoadModule {m}_module {APACHE_MODULES / f'mod_{m}.so'}" for m in mods), *user,
        f'PidFile "{workdir / "apache.pid"}"', f'DefaultRuntimeDir "{workdir}"', f'ErrorLog "{workdir / "error.log"}"',
        "LogLevel warn", "KeepAlive On", "EnableSendfile On", f'DocumentRoot "{root}"',
        "TypesConfig /dev/null", "AddType video/mp4 .mp4", "AddType video/webm .webm",
        f'<Directory "{root}">', "    Require all granted", "    SetOutputFilter RATE_LIMIT",
        f"    SetEnv rate-limit {kib_per_s}", "</Directory>",
    ]) + "\n"


@contextmanager
def apache(root: Path, workdir: Path, kib_per_s: int) -> Iterator[str]:
    """Apache httpd in the foreground (-DFOREGROUND, its own ServerRoot) serving ``root``; yields its base URL."""
    port = free_port(HOST)
    conf = workdir / "apache2.conf"
    conf.write_text(apache_config(root, port, workdir, kib_per_s))
    command = [str(binary("apache2")), "-DFOREGROUND", "-d", str(workdir), "-f", str(conf)]
    with _serve(command, port, workdir / "apache.out") as url:
        yield url


def nginx_config(root: Path, port: int, workdir: Path, kib_per_s: int) -> str:
    """nginx.conf: ``root`` on ``port``, each response paced by ``limit_rate`` (sendfile on, as the lab's)."""
    user = ["user www-data www-data;"] if os.geteuid() == 0 else []
    temp = " ".join(f"{k}_temp_path {workdir / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return "\n".join([
        "daemon off;", "master_process on;", "worker_processes 1;", *user, f"pid {workdir / 'nginx.pid'};",
        f"error_log {workdir / 'error.log'} warn;", "events { worker_connections 64; }",
        "http {", f"    {temp}", "    types { video/mp4 mp4; video/webm webm; }", "    access_log off;",
        "    sendfile on;", "    tcp_nopush on;",
        f"    server {{ listen {HOST}:{port}; root {root}; limit_rate {kib_per_s * 1024}; }}", "}",
    ]) + "\n"


@contextmanager
def nginx(root: Path, workdir: Path, kib_per_s: int) -> Iterator[str]:
    """nginx in the foreground (daemon off) serving ``root``; yields its base URL."""
    port = free_port(HOST)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(root, port, workdir, kib_per_s))
    with _serve([str(binary("nginx")), "-p", str(workdir), "-c", str(conf)], port, workdir / "nginx.out",
                signal.SIGQUIT) as url:
        yield url


SERVERS = {"lighttpd": lighttpd, "apache2": apache, "nginx": nginx}
