"""Cost of the MediaInfo sandbox: in-process pymediainfo against the child worker, on the lab's files, per call."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, table
from pytomo.lab.media import CONTAINERS, MediaSpec, ensure_media
from pytomo.media import info
from pytomo.media.sandbox import MediaInfoWorker

HEAD_BYTES = 2 * 1024 * 1024  # what the crawler gives MediaInfo


def _in_process(path: str) -> None:
    from pymediainfo import MediaInfo

    MediaInfo.parse(path)


def main(argv: list[str] | None = None) -> int:
    """Time both ways, alternated, on the head of each lab container written as the crawler writes it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50, help="calls per file and way (default 50)")
    args = parser.parse_args(argv)
    worker = MediaInfoWorker()
    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile(prefix="pytomo-bench-") as empty:
        worker.parse(empty.name)  # the child's start, counted apart
    start_ms = (time.perf_counter() - t0) * 1000
    rows, report = [], {"calls": args.calls, "worker_start_ms": round(start_ms, 1), "files": {}}
    with tempfile.TemporaryDirectory(prefix="pytomo-bench-") as folder:
        for container in CONTAINERS:
            media = ensure_media(MediaSpec(container, duration_s=10.0))
            path = str(Path(folder) / f"probe-{container}")
            open(path, "wb").close()
            data = media.path.read_bytes()
            info._write_sparse(path, data[:HEAD_BYTES], len(data), None)
            _in_process(path)  # library loaded and caches warm on both sides
            worker.parse(path)
            spent = {"in_process": 0.0, "worker": 0.0}
            for _ in range(args.calls):
                for way, call in (("in_process", _in_process), ("worker", worker.parse)):
                    t = time.perf_counter()
                    call(path)
                    spent[way] += time.perf_counter() - t
            in_ms, out_ms = (spent[w] / args.calls * 1000 for w in ("in_process", "worker"))
            rows.append([container, f"{in_ms:.2f}", f"{out_ms:.2f}", f"{out_ms - in_ms:+.2f}", f"{out_ms / in_ms:.2f}"])
            report["files"][container] = {"in_process_ms": in_ms, "worker_ms": out_ms, "ratio": out_ms / in_ms}
    worker.close()
    print(f"worker start (interpreter, pymediainfo, libmediainfo): {start_ms:.0f} ms, once per worker\n")
    print(table(["file (2 MiB head)", "in process, ms/call", "worker, ms/call", "added, ms", "ratio"], rows))
    out = ROOT / "bench" / "reports" / "mediainfo_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
