"""``python -m bench.run``: run every benchmark in one go and write a markdown report with the targets' verdicts."""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import accuracy, efficiency, overhead
from pytomo.version import __version__

SECTIONS = {"accuracy": accuracy.run, "efficiency": efficiency.run, "overhead": overhead.run}


def main(argv: list[str] | None = None) -> int:
    """Write ``bench/reports/report-<UTC time>.md`` (or ``--out``) and print its path last."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="run only these sections")
    parser.add_argument("--out", help="report path")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    parts, missed = [], []
    for name in args.only or list(SECTIONS):
        t0 = time.monotonic()
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        try:
            text, miss = SECTIONS[name]()
        except Exception as exc:  # a benchmark that cannot run is reported, not hidden
            text, miss = f"## {name}\n\nCould not run: {exc}\n\n```\n{traceback.format_exc()}```\n", [f"{name}: {exc}"]
        parts.append(text + f"\n_{name} took {time.monotonic() - t0:.0f} s._\n")
        missed += miss
    verdict = ("**Every target is met.**" if not missed else
               "**Targets not met:**\n\n" + "\n".join(f"- {m}" for m in missed))
    head = (f"# Pytomo benchmark report\n\n{started:%Y-%m-%d %H:%M} UTC, pytomo {__version__}, Python "
            f"{platform.python_version()}, {platform.platform()}, {platform.processor() or platform.machine()}.\n\n"
            f"{verdict}\n\n")
    out = Path(args.out) if args.out else Path(__file__).parent / "reports" / f"report-{started:%Y%m%dT%H%M%SZ}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(head + "\n".join(parts))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
