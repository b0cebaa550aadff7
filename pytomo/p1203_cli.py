"""``python -m pytomo.p1203_cli DB``: an alias of ``pytomo p1203`` (a run's P.1203 inputs, ``--score``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """``pytomo p1203`` under its older name."""
    from pytomo.cli import run_command

    return run_command("p1203", sys.argv[1:] if argv is None else argv, prog="python -m pytomo.p1203_cli")


if __name__ == "__main__":
    sys.exit(main())
