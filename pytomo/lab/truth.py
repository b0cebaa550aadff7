"""The lab's ground-truth log: one JSON line per media transfer served by a cache server."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

TRUTH_FIELDS = ("video_id", "page_url", "media_url", "cache_host", "cache_ip", "rate_bps", "burst_bytes",
                "ttfb_delay_s", "stalls", "fault", "container", "bitrate_bps", "duration_s", "size_bytes",
                "method", "status", "range", "bytes_sent", "started_at", "ended_at", "segment",
                # the network path to the cache server (all null when the lab runs on loopback)
                "path_delay_ms", "path_rate_bps", "path_loss", "path_loss_up", "path_queue_bytes", "path_mtu_bytes")


class TruthLog:
    """Collects transfer records in memory and, when given a path, appends them to a JSON-lines file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def add(self, record: dict[str, Any]) -> None:
        """Store one transfer record (all TRUTH_FIELDS)."""
        row = {k: record.get(k) for k in TRUTH_FIELDS}
        with self._lock:
            self.records.append(row)
            if self.path:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read a ground-truth log back."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
