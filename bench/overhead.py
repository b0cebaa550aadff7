"""Overhead: wall time of one video's measurement outside its download (redirects, DNS, RTT, parsing, storage)."""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime

from bench.common import ROOT, table

TARGET_S = 1.0


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(pings: int = 3) -> tuple[str, list[str]]:
    """A crawl of the default lab with -n 3; per video: its whole span minus its transfer."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), "-s", "lab", "-b", "-t", "all_time",
                              "-P", "50", "-D", "1", "-n", str(pings), "-S", "0", "--database-dir", tmp], cwd=ROOT,
                             capture_output=True, text=True, timeout=900, check=True)
        conn = sqlite3.connect(out.stdout.strip().splitlines()[-1])
        conn.row_factory = sqlite3.Row
        videos = conn.execute("SELECT * FROM videos ORDER BY id").fetchall()
        ended = conn.execute("SELECT ended_at FROM run").fetchone()[0]
        rows, spans = [], []
        for i, v in enumerate(videos):
            nxt = videos[i + 1]["started_at"] if i + 1 < len(videos) else ended
            span = (_t(nxt) - _t(v["started_at"])).total_seconds()
            d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ? ORDER BY id LIMIT 1",
                             (v["id"],)).fetchone()
            transfer = 0.0
            if d is not None:
                transfer = (d["headers_s"] or 0) + d["window_s"] if d["ended_by"] == "window" else (
                    d["last_byte_s"] or d["headers_s"] or 0.0)
            overhead = span - transfer
            addresses = conn.execute("SELECT count(DISTINCT address) FROM rtt_probes WHERE video_row_id = ?",
                                     (v["id"],)).fetchone()[0]
            if v["status"] == "ok":
                spans.append(overhead)
            rows.append([v["video_id"], v["status"], addresses, f"{span:.3f}", f"{transfer:.3f}", f"{overhead:.3f}"])
    med, worst = statistics.median(spans), max(spans)
    missed = [] if worst < TARGET_S else [f"overhead up to {worst:.2f} s per video (target under {TARGET_S} s)"]
    text = (f"## Overhead\n\nA crawl of the default lab with `-n {pings} -D 1 -S 0`; per video, the time from its "
            "start to the next video's start, less its transfer. Measured videos: median "
            f"**{med:.3f} s**, maximum **{worst:.3f} s** (target under {TARGET_S} s). The RTT probes dominate: "
            f"{pings} ICMP and {pings} TCP probes per address, spaced 0.2 s.\n\n"
            + table(["video", "status", "addresses probed", "span s", "transfer s", "overhead s"], rows) + "\n")
    return text, missed


if __name__ == "__main__":
    section, missed = run()
    print(section)
    print("missed:", missed or "none")
