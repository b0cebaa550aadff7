"""Debian's Caddy as lab cache servers: HTTPS with HTTP/1.1, HTTP/2 and HTTP/3 on one port; its access log as truth."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytomo.errors import LabError
from pytomo.lab.nginx import NginxSite, free_port, make_docroot, parent_death_signal, request_record, site_of

if TYPE_CHECKING:
    from pytomo.lab.scenario import ServerProfile

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

log = logging.getLogger(__name__)

LOGGER_PREFIX = "http.log.access."  # Caddy names a server's access logger http.log.access.<default_logger_name>
TLS_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}  # Go's tls.Version*
_START_TIMEOUT_S = 15.0
_START_ATTEMPTS = 3
_STOP_TIMEOUT_S = 5.0
_TAIL_INTERVAL_S = 0.2


class CaddyError(LabError):
    """Caddy could not be started."""


def caddy_exe() -> tuple[str | None, str]:
    """Caddy's executable, or None and why not."""
    exe = shutil.which("caddy")
    return (exe, "") if exe else (None, "caddy is not installed (apt-get install caddy)")


def render_config(sites: list[NginxSite], workdir: Path) -> dict[str, Any]:
    """Caddy's JSON configuration for these sites: each its own server on its address, HTTPS only with the lab's
    certificate, protocols h1, h2 and h3 (Caddy advertises h3 in Alt-Svc), a file server over its media, and a JSON
    access log of its own (the logger name says which server)."""
    servers: dict[str, Any] = {}
    certificates = []
    for site in sites:
        p = site.profile
        if site.cert is None:
            raise CaddyError(f"caddy server {p.name} has no certificate")
        tag = f"lab-{p.name}"
        certificates.append({"certificate": str(site.cert[0]), "key": str(site.cert[1]), "tags": [tag]})
        if p.fault in ("404", "403", "500"):
            handler: dict[str, Any] = {"handler": "static_response", "status_code": int(p.fault)}
        else:
            handler = {"handler": "file_server", "root": str(workdir / "root" / p.name)}
        servers[p.name] = {
            "listen": [f"{p.ip}:{site.port}"],
            "protocols": ["h1", "h2", "h3"],
            "routes": [{"match": [{"path_regexp": {"pattern": r"^/(v/[\w-]+\.(mp4|webm|flv)|s/[\w-]+/[\w./-]+)$"}}],
                        "handle": [handler]},
                       {"handle": [{"handler": "static_response", "status_code": 404}]}],
            "tls_connection_policies": [{"certificate_selection": {"any_tag": [tag]}}],
            "automatic_https": {"disable": True},
            "logs": {"default_logger_name": p.name},
        }
    access = [LOGGER_PREFIX + s.profile.name for s in sites]
    return {
        "admin": {"disabled": True},
        "storage": {"module": "file_system", "root": str(workdir / "data")},
        "logging": {"logs": {
            "default": {"level": "WARN", "writer": {"output": "file", "filename": str(workdir / "error.log")},
                        "exclude": access},
            "access": {"level": "INFO", "include": access, "encoder": {"format": "json"},
                       "writer": {"output": "file", "filename": str(workdir / "access.log")}}}},
        "apps": {"tls": {"certificates": {"load_files": certificates}},
                 "http": {"servers": servers}},
    }


def parse_log_line(line: str) -> dict[str, Any] | None:
    """One access-log line as the fields the truth needs (None for a line that is not an access entry)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not str(raw.get("logger", "")).startswith(LOGGER_PREFIX):
        return None
    request = raw.get("request") or {}
    headers = request.get("headers") or {}
    tls = request.get("tls") or {}
    resp_headers = raw.get("resp_headers") or {}

    def first(values: Any) -> str | None:
        return values[0] if isinstance(values, list) and values else None

    length = first(resp_headers.get("Content-Length"))
    return {"server": raw["logger"][len(LOGGER_PREFIX):], "method": request.get("method"),
            "request_uri": request.get("uri"), "status": raw.get("status"), "size": raw.get("size"),
            "duration_s": raw.get("duration"), "ts": raw.get("ts"), "range": first(headers.get("Range")),
            "protocol": request.get("proto"), "tls_version": TLS_VERSIONS.get(int(tls.get("version") or 0)),
            "alpn": tls.get("proto"), "remote_port": request.get("remote_port"),
            "content_length_bytes": int(length) if length and length.isdigit() else None,
            "content_encoding": first(resp_headers.get("Content-Encoding")),
            "user_agent": first(headers.get("User-Agent"))}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def truth_record(entry: dict[str, Any], lab: Lab, profile: ServerProfile) -> dict[str, Any]:
    """A ground-truth record (truth.TRUTH_FIELDS) from one parsed Caddy access-log entry: ``size`` (the body bytes
    written), ``duration`` and ``proto`` are Caddy's word."""
    record = request_record(lab, profile, entry["request_uri"])
    ended = entry["ts"]
    started = ended - (entry["duration_s"] or 0.0) if ended is not None else None
    record.update(
        software="caddy", method=entry["method"], status=entry["status"], range=entry["range"],
        bytes_sent=entry["size"], body_bytes_sent=entry["size"], request_time_s=entry["duration_s"], msec=ended,
        content_length_bytes=entry["content_length_bytes"], content_encoding=entry["content_encoding"],
        request_uri=entry["request_uri"], protocol=entry["protocol"], tls_version=entry["tls_version"],
        user_agent=entry["user_agent"],
        started_at=_iso(started) if started is not None else None, ended_at=_iso(ended) if ended is not None else None)
    return record


def _listening(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


class CaddyServers:
    """One Caddy process serving every ``software = "caddy"`` cache server of a lab."""

    def __init__(self, lab: Lab, profiles: list[ServerProfile], exe: str,
                 run_in: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.lab = lab
        self.exe = exe
        self.profiles = {p.name: p for p in profiles}
        self._in_namespace = run_in is not None
        self._run_in = run_in or (lambda fn: fn())
        self.sites: dict[str, NginxSite] = {}
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None

    def port(self, name: str) -> int:
        """The port (TCP and UDP) of Caddy server ``name``."""
        return self.sites[name].port

    def start(self) -> CaddyServers:
        """Write the configuration, start Caddy and wait until every server accepts connections."""
        self.workdir = Path(tempfile.mkdtemp(prefix="pytomo-caddy-"))
        for attempt in range(_START_ATTEMPTS):
            try:
                self._launch()
                break
            except CaddyError as exc:
                self._halt()
                if "in use" not in str(exc) or attempt == _START_ATTEMPTS - 1:
                    self.stop()
                    raise
                log.info("caddy: a chosen port was taken meanwhile (%s); trying other ports", exc)
            except BaseException:
                self.stop()
                raise
        self._tail = threading.Thread(target=self._tail_loop, name="lab-caddy-log", daemon=True)
        self._tail.start()
        return self

    def _dir(self) -> Path:
        if self.workdir is None:
            raise CaddyError("caddy has no working folder: it was not started")
        return self.workdir

    def _launch(self) -> None:
        w = self._dir()
        shutil.rmtree(w / "root", ignore_errors=True)
        for name in ("access.log", "error.log", "stderr.log"):
            (w / name).write_bytes(b"")
        self._offset, self._partial = 0, b""
        self.sites = {p.name: site_of(self.lab, p, self._run_in(functools.partial(free_port, p.ip)))
                      for p in self.profiles.values()}
        for site in self.sites.values():
            make_docroot(w / "root" / site.profile.name, site)
        conf = w / "caddy.json"
        conf.write_text(json.dumps(render_config(list(self.sites.values()), w), indent=1))
        # Caddy keeps its data and configuration under XDG folders of HOME: here, in its working folder
        env = {**os.environ, "HOME": str(w), "XDG_DATA_HOME": str(w / "data"), "XDG_CONFIG_HOME": str(w / "config")}
        preexec = None if self._in_namespace else parent_death_signal()
        with open(w / "stderr.log", "wb") as err:
            self.proc = self._run_in(lambda: subprocess.Popen(
                [self.exe, "run", "--config", str(conf)], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                close_fds=True, env=env, preexec_fn=preexec))
        deadline = time.monotonic() + _START_TIMEOUT_S
        waiting = [(s.profile.ip, s.port) for s in self.sites.values()]
        while waiting:
            if self.proc.poll() is not None:
                raise CaddyError(f"caddy exited with status {self.proc.returncode}: {self._last_error()}")
            if time.monotonic() > deadline:
                raise CaddyError(f"caddy did not accept connections within {_START_TIMEOUT_S:g} s: "
                                 f"{self._last_error()}")
            if _listening(*waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.05)
        log.info("caddy %s serving %s", self.exe,
                 ", ".join(f"{s.profile.ip}:{s.port} ({name})" for name, s in self.sites.items()))

    def _last_error(self) -> str:
        lines: list[str] = []
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                lines += [ln.strip() for ln in (self._dir() / name).read_text(errors="replace").splitlines()
                          if ln.strip()]
        errors = [ln for ln in lines if '"level":"error"' in ln or '"level":"fatal"' in ln or ln.startswith("Error")]
        return (errors or lines or ["no message"])[-1][-400:]

    def stop(self) -> None:
        """Stop Caddy (SIGINT: a graceful stop, then SIGKILL), read its last log lines, remove its folder;
        idempotent."""
        self._stop.set()
        self._halt()
        if self._tail is not None and self._tail is not threading.current_thread():
            self._tail.join(2.0)
        if self.workdir is not None:
            self.collect()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _halt(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGINT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(_STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                log.warning("caddy did not stop within %g s of %s", _STOP_TIMEOUT_S, sig.name)

    def collect(self) -> int:
        """Add the access log's new lines to the lab's ground truth; the number added."""
        with self._lock:
            if self.workdir is None:
                return 0
            try:
                with open(self.workdir / "access.log", "rb") as fh:
                    fh.seek(self._offset)
                    data = fh.read()
            except OSError:
                return 0
            self._offset += len(data)
            data = self._partial + data
            *lines, self._partial = data.split(b"\n")
            added = 0
            for line in lines:
                entry = parse_log_line(line.decode("utf-8", "replace"))
                profile = self.profiles.get(entry["server"]) if entry else None
                if entry is None or profile is None:
                    continue
                self.lab.truth.add(truth_record(entry, self.lab, profile))
                added += 1
            return added

    def _tail_loop(self) -> None:
        while not self._stop.wait(_TAIL_INTERVAL_S):
            self.collect()
