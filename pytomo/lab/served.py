"""A real server (nginx, Caddy) run as a child of the lab for some cache servers, its access log read as truth."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pytomo.errors import LabError

if TYPE_CHECKING:
    from pytomo.lab.scenario import ServerProfile

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

log = logging.getLogger(__name__)

_START_ATTEMPTS = 3  # a port found free may be taken before the server binds it
_TAIL_INTERVAL_S = 0.2
_PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that has the kernel stop the child when this process dies (Linux, main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None  # the signal would come when this (short-lived) thread ends
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Site:
    """One cache server run by nginx or Caddy: its profile, port, and the files it serves under the lab's URLs."""

    profile: ServerProfile
    port: int
    progressive: dict[str, Path] = field(default_factory=dict)  # URL path /v/ID.EXT -> media file
    segmented: dict[str, Path] = field(default_factory=dict)  # video id -> folder served under /s/ID/
    cert: tuple[Path, Path] | None = None  # HTTPS (with HTTP/2 by ALPN): the certificate chain and key files


def free_port(ip: str) -> int:
    """A port that is free on ``ip`` right now (the kernel's choice of an ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def site_of(lab: Lab, profile: ServerProfile, port: int) -> Site:
    """A cache server run by nginx or Caddy: its port, its videos' files, its certificate for HTTPS."""
    site = Site(profile, port=port)
    if profile.tls:
        site.cert = lab.tls.cert_files(profile.host, profile.fault)
    for video in lab.scenario.videos:
        if video.server != profile.name:
            continue
        if video.id in lab.media:
            media = lab.media[video.id]
            site.progressive[f"{video.id}.{media.path.suffix.lstrip('.')}"] = media.path
        elif video.id in lab.segmented:
            site.segmented[video.id] = lab.segmented[video.id].root
        elif video.id in getattr(lab, "live", {}):  # a live channel: ffmpeg's folder (pytomo/lab/live.py)
            site.segmented[video.id] = lab.live[video.id].root
    return site


def make_docroot(root: Path, site: Site) -> None:
    """Symlinks to the media: only this server's videos exist under its root (anything else is a 404)."""
    (root / "v").mkdir(parents=True)
    (root / "s").mkdir()
    for name, target in site.progressive.items():
        (root / "v" / name).symlink_to(target)
    for video_id, target in site.segmented.items():
        (root / "s" / video_id).symlink_to(target, target_is_directory=True)


class ServedError(LabError):
    """A real server of the lab could not be started."""


class ServerProcess:
    """One process of a real server serving every cache server of one ``software`` kind.

    The contract of a subclass: ``_launch`` writes the configuration into ``workdir``, starts ``proc`` (through
    ``_run_in``, so that it listens in the network path's namespace when there is one) and returns when every
    server accepts connections, raising ``ServedError`` otherwise (with "in use" in the message when a chosen port
    was taken meanwhile: the start is tried again on other ports); ``_record`` turns one line of ``access.log`` into
    a ground-truth record, or None for a line that is not a request to one of its servers. ``STOP_SIGNALS`` says how
    to stop it: each signal in turn, waiting so long for the process to exit.
    """

    NAME = "server"
    STOP_SIGNALS: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 5.0), (signal.SIGKILL, 3.0))

    def __init__(self, lab: Lab, profiles: list[ServerProfile], exe: str,
                 run_in: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.lab = lab
        self.exe = exe
        self.profiles = {p.name: p for p in profiles}
        self._in_namespace = run_in is not None
        self._run_in = run_in or (lambda fn: fn())  # e.g. the network path's namespace
        self.sites: dict[str, Site] = {}
        self.workdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tail: threading.Thread | None = None

    def port(self, name: str) -> int:
        """The port of server ``name``."""
        return self.sites[name].port

    def _launch(self) -> None:  # pragma: no cover - the subclasses'
        raise NotImplementedError

    def _record(self, line: str) -> dict[str, Any] | None:  # pragma: no cover - the subclasses'
        raise NotImplementedError

    def _prepare(self) -> Path:
        """Empty logs, a port for each server, and its document root of symlinks to its own videos; the folder."""
        w = self._dir()
        shutil.rmtree(w / "root", ignore_errors=True)
        for name in ("access.log", "error.log", "stderr.log"):
            (w / name).write_bytes(b"")
        self.sites = {p.name: site_of(self.lab, p, self._run_in(functools.partial(free_port, p.ip)))
                      for p in self.profiles.values()}
        for site in self.sites.values():
            make_docroot(w / "root" / site.profile.name, site)
        return w

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``command`` (its output into stderr.log) in the namespace of the servers; stopped with the lab's
        process by the kernel when it runs in ours."""
        preexec = None if self._in_namespace else parent_death_signal()
        with open(self._dir() / "stderr.log", "wb") as err:
            self.proc = self._run_in(lambda: subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, close_fds=True, env=env,
                preexec_fn=preexec))

    def _wait_ready(self, answers: Callable[[str, int], bool], timeout_s: float) -> None:
        """Return when ``answers(ip, port)`` holds for every server; ServedError when the process exits, says a port
        is taken, or the time is up."""
        deadline = time.monotonic() + timeout_s
        waiting = [(s.profile.ip, s.port) for s in self.sites.values()]
        while waiting:
            if self.proc is None or self.proc.poll() is not None:
                status = self.proc.returncode if self.proc is not None else None
                raise ServedError(f"{self.NAME} exited with status {status}: {self._last_error()}")
            if time.monotonic() > deadline:
                raise ServedError(f"{self.NAME} did not accept connections within {timeout_s:g} s: "
                                  f"{self._last_error()}")
            if answers(*waiting[0]):
                waiting.pop(0)
            elif "in use" in self._last_error():
                raise ServedError(f"{self.NAME} could not listen: {self._last_error()}")
            else:
                time.sleep(0.05)
        log.info("%s %s serving %s", self.NAME, self.exe,
                 ", ".join(f"{s.profile.ip}:{s.port} ({name})" for name, s in self.sites.items()))

    def _log_lines(self) -> list[str]:
        """The lines of stderr.log and error.log so far."""
        lines: list[str] = []
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                lines += [ln.strip() for ln in (self._dir() / name).read_text(errors="replace").splitlines()
                          if ln.strip()]
        return lines

    def _last_error(self) -> str:
        """The most telling line of the process's own logs."""
        lines = self._log_lines()
        return (lines or ["no message"])[-1][-400:]

    def start(self) -> Self:
        """Write the configuration, start the process and wait until every server accepts connections."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"pytomo-{self.NAME}-"))
        self.workdir.chmod(0o755)  # workers running as the media's owner go through it to the symlinks
        for attempt in range(_START_ATTEMPTS):
            try:
                self._offset, self._partial = 0, b""
                self._launch()
                break
            except ServedError as exc:
                self._halt()
                if "in use" not in str(exc) or attempt == _START_ATTEMPTS - 1:
                    self.stop()
                    raise
                log.info("%s: a chosen port was taken meanwhile (%s); trying other ports", self.NAME, exc)
            except BaseException:
                self.stop()
                raise
        self._tail = threading.Thread(target=self._tail_loop, name=f"lab-{self.NAME}-log", daemon=True)
        self._tail.start()
        return self

    def _dir(self) -> Path:
        """The working folder of the process being started or running."""
        if self.workdir is None:
            raise ServedError(f"{self.NAME} has no working folder: it was not started")
        return self.workdir

    def stop(self) -> None:
        """Stop the process, read its last log lines into the truth and remove its working folder; idempotent."""
        self._stop.set()
        self._halt()
        if self._tail is not None and self._tail is not threading.current_thread():
            self._tail.join(2.0)
        if self.workdir is not None:
            self.collect()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def _halt(self) -> None:
        """End the process, one of STOP_SIGNALS after the other."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait_s in self.STOP_SIGNALS:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(wait_s)
                return
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s of %s", self.NAME, wait_s, sig.name)

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
                record = self._record(line.decode("utf-8", "replace"))
                if record is not None:
                    self.lab.truth.add(record)
                    added += 1
            return added

    def _tail_loop(self) -> None:
        while not self._stop.wait(_TAIL_INTERVAL_S):
            self.collect()
