"""MediaInfo in a kept-alive child process with time, CPU and memory limits and no network."""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from pytomo.errors import MediaError, ParserFailure

if TYPE_CHECKING:
    from pymediainfo import MediaInfo

MEMORY_LIMIT_BYTES = 512 * 1024 * 1024  # the child's address space, watched: it is killed past it
HEADROOM_BYTES = 256 * 1024 * 1024  # RLIMIT_AS is the watched limit plus this, for a spike between two looks
WATCH_S = 0.02  # how often the parent looks at the child's address space while it works
TIME_LIMIT_S = 10.0  # wall clock per file; the child is killed past it
CPU_LIMIT_S = 10  # CPU seconds per file (RLIMIT_CPU, raised before each file)
START_LIMIT_S = 30.0  # for the child to import MediaInfo and say it is ready
CALLS_PER_WORKER = 500  # a fresh child after this many files, so that leaks stay bounded
TRACK_FIELDS = ("format", "format_profile", "duration", "overall_bit_rate", "bit_rate", "width", "height",
                "frame_rate")
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_MEMORY_SIGNS = ("bad_alloc", "MemoryError", "Cannot allocate memory", "out of memory")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


@dataclass(frozen=True)
class Limits:
    """What one MediaInfo child may use."""

    memory_bytes: int = MEMORY_LIMIT_BYTES
    time_s: float = TIME_LIMIT_S
    cpu_s: int = CPU_LIMIT_S


def _child_command(limits: Limits) -> list[str]:
    from pytomo.paths import child_command

    return [*child_command("_mediainfo"), str(limits.memory_bytes + HEADROOM_BYTES), str(limits.cpu_s)]


def _address_space_bytes(pid: int) -> int:
    """The process's address space now (VmSize), 0 when it cannot be read (gone, or not Linux)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as file:
            return int(file.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class MediaInfoWorker:
    """One child process answering ``{"path": ...}`` lines with the tracks MediaInfo reads; restarted on failure."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._proc: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None
        self._calls = 0
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen:
        self._stderr = tempfile.TemporaryFile(prefix="pytomo-mediainfo-")
        proc = subprocess.Popen(_child_command(self.limits), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self._stderr, start_new_session=True, close_fds=True)
        self._proc, self._calls = proc, 0
        try:
            line, stopped = self._read_line(proc, START_LIMIT_S)
        except BaseException:
            self.close()
            raise
        if not line or json.loads(line).get("ready") is not True:
            self._fail(proc, stopped=stopped, what="starting")
        return proc

    def _read_line(self, proc: subprocess.Popen, limit_s: float) -> tuple[bytes, str | None]:
        """One line from the child (b"" if it ended), or why it was stopped: ``timeout`` or ``memory``."""
        assert proc.stdout is not None
        deadline = time.monotonic() + limit_s
        fd = proc.stdout.fileno()
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", "timeout"
            if not select.select([fd], [], [], min(left, WATCH_S))[0]:
                if _address_space_bytes(proc.pid) > self.limits.memory_bytes:
                    return b"", "memory"
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"", None
            buf += chunk
        return buf, None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 4096))
        return self._stderr.read().decode("utf-8", "replace")

    @staticmethod
    def _reap(proc: subprocess.Popen, kill: bool) -> tuple[int, int]:
        """Wait for the child (killed first if ``kill``, or if it lingers 5 s): its exit code and peak RSS in KiB."""
        if kill:
            proc.kill()
        deadline = time.monotonic() + 5
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if kill else os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return proc.returncode, usage.ru_maxrss
            if time.monotonic() > deadline:
                proc.kill()
                kill = True
            else:
                time.sleep(0.02)

    def _fail(self, proc: subprocess.Popen, *, stopped: str | None, what: str) -> None:
        """Reap the child (killed if ``stopped``), then raise the ParserFailure that says why it is gone.

        The watched limit decides most memory cases; past it, under RLIMIT_AS, MediaInfo fails in many ways
        (std::bad_alloc, or a NULL it does not check: SIGSEGV), so a death with a peak RSS over the watched limit
        counts as memory too.
        """
        timed_out = stopped == "timeout"
        status, peak_rss_kib = self._reap(proc, kill=stopped is not None)
        err = self._stderr_tail()
        self.close()
        mib = self.limits.memory_bytes >> 20
        if timed_out or status == -signal.SIGXCPU:
            limit = f"{self.limits.time_s:g} s" if timed_out else f"{self.limits.cpu_s} CPU s"
            raise ParserFailure(f"MediaInfo ran past its limit of {limit} {what}: killed", kind="parser_timeout")
        if (stopped == "memory" or any(sign in err for sign in _MEMORY_SIGNS) or status == -signal.SIGKILL
                or peak_rss_kib * 1024 >= self.limits.memory_bytes):
            raise ParserFailure(f"MediaInfo went past its {mib} MiB {what}: killed (peak RSS {peak_rss_kib >> 10} MiB)",
                                kind="parser_memory")
        how = f"signal {_signal_name(-status)}" if status < 0 else f"exit status {status}"
        raise ParserFailure(f"MediaInfo crashed {what} ({how}, peak RSS {peak_rss_kib >> 10} MiB)",
                            kind="parser_crash")

    def parse(self, path: str) -> dict[str, dict | None]:
        """The first general, video and audio track of ``path`` ({field: value}, None if absent).

        Raises ParserFailure when the child crashes, runs out of time or memory; the next call starts a new one.
        """
        with self._lock:
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps({"path": path}).encode() + b"\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self._fail(proc, stopped=None, what="before reading the file")
            try:
                line, stopped = self._read_line(proc, self.limits.time_s)
            except BaseException:  # Ctrl-C while MediaInfo works: its state is unknown, so it goes
                self.close()
                raise
            if not line:
                self._fail(proc, stopped=stopped, what="reading the file")
            answer = json.loads(line)
            self._calls += 1
            if self._calls >= CALLS_PER_WORKER:
                self.close()
            if "error" in answer:
                if answer["error"] == "memory":
                    raise ParserFailure(f"MediaInfo ran out of its {self.limits.memory_bytes >> 20} MiB "
                                        "reading the file", kind="parser_memory")
                raise MediaError(f"MediaInfo failed: {answer['error']}", kind="mediainfo_error")
            return answer["tracks"]

    def close(self) -> None:
        """Stop the child (it ends on end of input; killed if it does not)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=1)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_WORKER: MediaInfoWorker | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> MediaInfoWorker:
    """The process's MediaInfo worker (its child starts on first use, and stops at exit)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = MediaInfoWorker()
            atexit.register(_WORKER.close)
        return _WORKER


# --- the child -------------------------------------------------------------------------------------------------


def _confine(memory_bytes: int) -> None:
    """Address-space limit, no core files, a network namespace of its own (when allowed), death with the parent."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.unshare(_CLONE_NEWNET)  # fails without CAP_SYS_ADMIN: the child only reads a file anyway


def _allow_cpu(cpu_s: int) -> None:
    """Let this process use ``cpu_s`` more CPU seconds (SIGXCPU past them)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + cpu_s
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def _tracks(info: MediaInfo) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {}
    for name, tracks in (("general", info.general_tracks), ("video", info.video_tracks),
                         ("audio", info.audio_tracks)):
        out[name] = {f: getattr(tracks[0], f, None) for f in TRACK_FIELDS} if tracks else None
    return out


def child_main(argv: list[str]) -> int:
    """``_mediainfo ADDRESS_SPACE_BYTES CPU_S``: read ``{"path": ...}`` lines on stdin, answer one JSON line each."""
    memory_bytes, cpu_s = int(argv[0]), int(argv[1])
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the library prints goes to stderr, never into the answers
    _confine(memory_bytes)
    from pymediainfo import MediaInfo

    MediaInfo.can_parse()  # loads libmediainfo now, under the limits
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        path = json.loads(line)["path"]
        _allow_cpu(cpu_s)
        try:
            answer: dict = {"tracks": _tracks(MediaInfo.parse(path))}
        except MemoryError:
            answer = {"error": "memory"}
        except Exception as exc:  # MediaInfo refused the file: an answer, not a crash
            answer = {"error": f"{exc.__class__.__name__}: {exc}"}
        out.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
