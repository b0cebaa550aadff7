"""``python -m pytomo`` and the volunteer executable: the dispatcher of pytomo/cli (``pytomo --help``)."""

from __future__ import annotations

import sys

from pytomo.cli import ExitStatus, main
from pytomo.paths import LEFT_OUT

RESEARCHERS = {"export": "docs/analysis.md", "analyse": "docs/analysis.md"}
"""The researchers' tools: the volunteer executable leaves their libraries out (pytomo.paths.LEFT_OUT)."""


def left_out(argv: list[str], missing: str | None = None) -> str | None:
    """The one line the executable answers for a command it does not carry (``missing``: a library found absent)."""
    command = argv[0] if argv else ""
    if command in RESEARCHERS:
        return (f"pytomo: {command} is a researcher's tool, not in the volunteer executable: install the Python "
                f"package; see {RESEARCHERS[command]}")
    if missing is not None and missing.split(".")[0] in LEFT_OUT:
        return (f"pytomo: {' '.join(argv[:2])} needs {missing.split('.')[0]}, which the volunteer executable does not "
                "carry: install the Python package; see README.md, The volunteer executable")
    return None


def frozen_main(argv: list[str]) -> int:
    """The executable: a researcher's tool or a left-out library gives one line and the usage status."""
    line = left_out(argv)
    if line is None:
        try:
            return main(argv)
        except ModuleNotFoundError as exc:
            line = left_out(argv, exc.name or "")
            if line is None:
                raise
    print(line, file=sys.stderr, flush=True)
    return ExitStatus.USAGE


if __name__ == "__main__":
    sys.exit(frozen_main(sys.argv[1:]) if getattr(sys, "frozen", False) else main())
