"""Shared bench helpers: a lab in a child process, its addresses, and markdown tables."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def lab_process(scenario: Path, truth: Path | None = None):
    """``python -m pytomo.lab`` in its own process (so its CPU is not ours); yields its printed addresses."""
    cmd = [sys.executable, "-m", "pytomo.lab", "--scenario", str(scenario)]
    if truth:
        cmd += ["--truth", str(truth)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("serving"):
            break
    else:
        raise RuntimeError(f"the lab did not start: {proc.stderr.read()}")
    text = "".join(lines)
    caches = {m.group(2): (m.group(1), int(m.group(3)), m.group(4)) for m in re.finditer(
        r"cache +http://((\S+?)\.lab\.pytomo\.test):(\d+)/ +\((\S+?),", text)}
    dns = re.search(r"dns +(\S+):(\d+)", text)
    try:
        yield {"text": text, "caches": caches, "dns": (dns.group(1), int(dns.group(2)))}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
