"""Upload ended run databases to a collector: gzip over HTTPS (HTTP only to loopback), retried with backoff."""

from __future__ import annotations

import gzip
import ipaddress
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pytomo.errors import PytomoError, StorageError, UsageError
from pytomo.readers.facts import RunFacts, run_facts
from pytomo.storage.recover import StillWriting, close_killed
from pytomo.upload.outbox import Outbox
from pytomo.version import __version__

log = logging.getLogger(__name__)

RUNS_PATH = "api/v1/runs"
MAX_ATTEMPTS = 5  # one try and four retries
BACKOFF_FIRST_S = 0.5  # then doubled: 0.5, 1, 2, 4 s
BACKOFF_MAX_S = 8.0
DEADLINE_S = 120.0  # all attempts of one run together
TIMEOUT_S = 60.0  # one request
RETRIED_STATUSES = (408, 425, 429, 500, 502, 503, 504)


class UploadFailed(PytomoError):
    """A run could not be uploaded (the collector refused it, or could not be reached in time)."""


class TokenRefused(UploadFailed):
    """The collector refused the token (401 or 403): nothing more is tried."""


def runs_endpoint(collector: str) -> str:
    """The collector's ``POST /api/v1/runs`` URL; a usage error unless HTTPS, or plain HTTP to a loopback host."""
    parts = urlsplit(collector)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        raise UsageError(f"collector must be an https:// URL, not {collector!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise UsageError(f"collector {collector!r}: plain http is allowed only to a loopback address; use https://")
    base = collector.rstrip("/")
    return base if base.endswith("/" + RUNS_PATH) else f"{base}/{RUNS_PATH}"


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Answer:
    """The collector's answer to one upload."""

    status: int
    message: str
    already: bool = False


def _message(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8", "replace"))
        text = str(data.get("message") or data.get("error") or "") if isinstance(data, dict) else ""
    except ValueError:
        text = body.decode("utf-8", "replace")
    return " ".join(text.split())[:200]


class Uploader:
    """Sends run databases to one collector with one token; ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(self, collector: str, token: str, *, attempts: int = MAX_ATTEMPTS,
                 backoff_s: float = BACKOFF_FIRST_S, deadline_s: float = DEADLINE_S,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 context: ssl.SSLContext | None = None) -> None:
        self.endpoint = runs_endpoint(collector)
        if not token:
            raise UsageError("no collector token: set collector_token in the config file or PYTOMO_COLLECTOR_TOKEN")
        self.collector = collector
        self.token = token
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.deadline_s = deadline_s
        self.sleep = sleep
        self.clock = clock
        self.context = context

    def post(self, body: bytes, facts: RunFacts) -> Answer:
        """One POST; an HTTP error status is an Answer, a network failure an OSError."""
        req = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/vnd.sqlite3",
            "Content-Encoding": "gzip", "X-Pytomo-Run": facts.run_uuid, "X-Pytomo-Sha256": facts.sha256,
            "User-Agent": f"pytomo/{__version__}"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S, context=self.context) as resp:  # noqa: S310
                data = resp.read(65536)
                return Answer(resp.status, _message(data), already=resp.status == 200)
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, _message(exc.read(65536) if exc.fp else b""))

    def send(self, facts: RunFacts, body: bytes) -> Answer:
        """Post ``body`` until it is taken, refused, or the attempts or the deadline run out."""
        start = self.clock()
        delay = self.backoff_s
        last = "not tried"
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self.post(body, facts)
            except OSError as exc:  # refused, reset, timed out, TLS: worth another try
                last = f"cannot reach the collector: {getattr(exc, 'reason', None) or exc}"
            else:
                if answer.status in (401, 403):
                    raise TokenRefused(f"the collector refused the token ({answer.status}: {answer.message})")
                if answer.status in (200, 201):
                    return answer
                last = f"the collector answered {answer.status}: {answer.message}"
                if answer.status not in RETRIED_STATUSES:
                    raise UploadFailed(last)
            if attempt == self.attempts or self.clock() - start + delay > self.deadline_s:
                break
            log.info("upload of %s: %s; again in %.1f s", facts.run_uuid, last, delay)
            self.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
        raise UploadFailed(f"{last} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})")

    def upload(self, path: Path, outbox: Outbox | None = None) -> Answer:
        """Upload one run database that has ended, keeping its state in the outbox of its folder; a run whose
        crawler was killed is closed as ``interrupted`` first (``pytomo.storage.recover``)."""
        path = Path(path)
        outbox = outbox or Outbox(path.parent)
        try:
            facts = self._facts(path)
        except StillWriting as exc:
            outbox.record(path.name, state="pending", why="the run is still running", collector=self.collector)
            raise UploadFailed(f"{exc}: not sent") from exc
        except StorageError as exc:
            outbox.record(path.name, state="failed", why=str(exc), collector=self.collector)
            raise UploadFailed(str(exc)) from exc
        common = {"run_uuid": facts.run_uuid, "sha256": facts.sha256, "collector": self.collector}
        previous = outbox.get(path.name)
        attempts = (previous.attempts if previous else 0) + 1
        outbox.record(path.name, state="pending", why="sending", attempts=attempts, **common)
        body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        try:
            answer = self.send(facts, body)
        except TokenRefused as exc:  # says nothing about the run: an upload that was taken stays taken
            kept = previous is not None and previous.state == "uploaded" and previous.sha256 == facts.sha256 \
                and previous.collector == self.collector
            outbox.record(path.name, state="uploaded" if kept else "pending",
                          why=previous.why if kept and previous else f"not sent: {exc}", **common)
            raise
        except UploadFailed as exc:
            outbox.record(path.name, state="failed", why=str(exc), **common)
            raise
        outbox.record(path.name, state="uploaded", why="already there" if answer.status == 200 else "stored",
                      **common)
        return answer

    @staticmethod
    def _facts(path: Path) -> RunFacts:
        """The run's facts, after closing it as ``interrupted`` if its crawler was killed."""
        facts = run_facts(path)
        if facts.status == "running" and close_killed(path, closer="pytomo upload") is not None:
            facts = run_facts(path)
        return facts
