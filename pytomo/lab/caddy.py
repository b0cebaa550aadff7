"""Debian's Caddy as lab cache servers: HTTPS with HTTP/1.1, HTTP/2 and HTTP/3 on one port; its access log as truth."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytomo.lab.nginx import Site, request_record
from pytomo.lab.served import ServedError, ServerProcess

if TYPE_CHECKING:
    from pytomo.lab.scenario import ServerProfile

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

log = logging.getLogger(__name__)

LOGGER_PREFIX = "http.log.access."  # Caddy names a server's access logger http.log.access.<default_logger_name>
TLS_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}  # Go's tls.Version*
_START_TIMEOUT_S = 15.0


def caddy_exe() -> tuple[str | None, str]:
    """Caddy's executable, or None and why not."""
    exe = shutil.which("caddy")
    return (exe, "") if exe else (None, "caddy is not installed (apt-get install caddy)")


def render_config(sites: list[Site], workdir: Path) -> dict[str, Any]:
    """Caddy's JSON configuration for these sites: each its own server on its address, HTTPS only with the lab's
    certificate, protocols h1, h2 and h3 (Caddy advertises h3 in Alt-Svc), a file server over its media, and a JSON
    access log of its own (the logger name says which server)."""
    servers: dict[str, Any] = {}
    certificates = []
    for site in sites:
        p = site.profile
        if site.cert is None:
            raise ServedError(f"caddy server {p.name} has no certificate")
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


class CaddyServers(ServerProcess):
    """One Caddy process serving every ``software = "caddy"`` cache server of a lab (SIGINT at stop: graceful)."""

    NAME = "caddy"
    STOP_SIGNALS = ((signal.SIGINT, 5.0), (signal.SIGKILL, 3.0))

    def _launch(self) -> None:
        w = self._prepare()
        conf = w / "caddy.json"
        conf.write_text(json.dumps(render_config(list(self.sites.values()), w), indent=1))
        # Caddy keeps its data and configuration under XDG folders of HOME: here, in its working folder
        env = {**os.environ, "HOME": str(w), "XDG_DATA_HOME": str(w / "data"), "XDG_CONFIG_HOME": str(w / "config")}
        self._spawn([self.exe, "run", "--config", str(conf)], env)
        self._wait_ready(_listening, _START_TIMEOUT_S)

    def _last_error(self) -> str:
        lines = self._log_lines()
        errors = [ln for ln in lines if '"level":"error"' in ln or '"level":"fatal"' in ln or ln.startswith("Error")]
        return (errors or lines or ["no message"])[-1][-400:]

    def _record(self, line: str) -> dict[str, Any] | None:
        entry = parse_log_line(line)
        profile = self.profiles.get(entry["server"]) if entry else None
        if entry is None or profile is None:
            return None
        return truth_record(entry, self.lab, profile)
