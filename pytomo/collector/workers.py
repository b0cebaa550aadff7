"""Uploads checked, stored and ingested in worker processes, so that the collector uses every core.

The request threads of the server receive each body (gunzip and SHA-256 release the GIL); what follows is Python
and Arrow work held by the GIL: the check, the claim in the index, the Parquet writes. ``Workers`` hands it to a
pool of processes, each with its own ``Collector`` on the same folder (the index serialises claims between
processes) that neither recovers nor migrates the folder: the serving process did both before starting them.
Processes are spawned (the server is threaded), and warmed up before the server listens.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from pytomo.collector.origin import Origin
from pytomo.collector.store import Collector, Result, WorkerLost
from pytomo.errors import PytomoError

log = logging.getLogger(__name__)

_collector: Collector | None = None  # the worker process's own


def _orphaned(parent: int) -> None:
    """End this worker when the serving process is gone (killed without stopping its pool)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start(root: str, ip_dbs: tuple[str, ...], max_bytes: int, started: Any) -> None:
    """A worker's initializer: its Collector, without recovery (the serving process owns that); ``started`` is
    released once it is warm."""
    global _collector
    threading.Thread(target=_orphaned, args=(os.getppid(),), name="orphaned", daemon=True).start()

    _collector = Collector(Path(root), ip_dbs=ip_dbs, max_bytes=max_bytes, owner=False)
    _collector.addresses()  # the IP databases opened
    _warm()
    started.release()


def _warm() -> None:
    """What the first ingest would import (pyarrow's Parquet writer imports pandas at its first table)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    import pytomo.dataset.parquet  # noqa: F401
    import pytomo.readers.tables  # noqa: F401

    pq.write_table(pa.table({"x": [1]}), io.BytesIO())


def _settle(part: Path, sha: str, uploader: str, origin: Origin, claimed_uuid: str) -> Result:
    if _collector is None:
        raise PytomoError("the worker has no collector")
    return _collector.settle(part, sha, uploader, origin, claimed_uuid)


class Workers:
    """A pool of ``count`` processes settling uploads for the collector in ``root``."""

    def __init__(self, root: Path, ip_dbs: tuple[str, ...], max_bytes: int, count: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.started = self.context.Semaphore(0)
        self.args = (str(root), tuple(ip_dbs), max_bytes, self.started)
        self.count = count
        self.lock = threading.Lock()
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.count, mp_context=self.context, initializer=_start, initargs=self.args)

    def warm(self, timeout_s: float = 120.0) -> None:
        """Start every process now and wait until each is warm (imports, IP databases), rather than have them
        start with the first uploads."""
        futures = [self.pool.submit(int) for _ in range(self.count)]  # the pool spawns a process per task waiting
        deadline, ready = time.monotonic() + timeout_s, 0
        while ready < self.count:
            if self.started.acquire(timeout=0.25):
                ready += 1
                continue
            failed = next((f.exception() for f in futures if f.done() and f.exception()), None)
            if failed is not None or time.monotonic() > deadline:
                raise PytomoError(f"the collector's worker processes did not start: {failed or 'too slow'}")

    def settle(self, part: Path, sha: str, uploader: str, origin: Origin, claimed_uuid: str) -> Result:
        """``Collector.settle`` in a worker; WorkerLost when the process died (the pool is made again)."""
        with self.lock:
            pool = self.pool
        try:
            future: Future[Result] = pool.submit(_settle, part, sha, uploader, origin, claimed_uuid)
            return future.result()
        except BrokenProcessPool:
            with self.lock:
                if self.pool is pool:
                    log.error("a worker process of the collector died: starting them again")
                    self.pool = self._pool()
            raise WorkerLost("a worker process died while storing the upload") from None

    def close(self) -> None:
        """Stop the processes (after the uploads they hold)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
