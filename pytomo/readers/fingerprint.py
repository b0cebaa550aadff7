"""A run's content fingerprint: the same videos at the same times from the same vantage point, whatever its UUID.

The SHA-256 of the run's ``host_label`` (the vantage point the volunteer named, or none) and the sorted pairs
(``videos.page_url``, ``videos.started_at``). Two uploads with one fingerprint are one run measured once, even when
a copy was given a new run UUID or its figures were changed. A run without videos has no fingerprint (None).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from pytomo.readers.upload_check import Rejected, open_upload


def fingerprint_of(path: Path, host_label: object) -> str | None:
    """The fingerprint of a checked upload (``check_upload`` first), or None for a run without videos."""
    try:
        conn = open_upload(path)
        try:
            pairs = conn.execute("SELECT page_url, started_at FROM videos").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise Rejected(f"its videos cannot be read: {exc}") from exc
    if not pairs:
        return None
    return fingerprint(host_label, pairs)


def fingerprint(host_label: object, pairs: list[tuple[object, object]]) -> str:
    """The SHA-256 (hex) of a label and (video URL, start) pairs, in any order."""
    videos = sorted([str(url), str(started)] for url, started in pairs)
    text = json.dumps({"host_label": host_label if host_label is None else str(host_label), "videos": videos},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
