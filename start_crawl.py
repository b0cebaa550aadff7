#!/usr/bin/env python3
"""Pytomo crawler: measure video streaming (see README.md and docs/options.md)."""

import os
import sys
from pathlib import Path

_VENV_PYTHON = Path(__file__).resolve().parent / ".venv" / "bin" / "python"
if _VENV_PYTHON.exists() and Path(sys.prefix).resolve() != _VENV_PYTHON.parent.parent.resolve():
    # run inside the project's virtual environment made by quickstart.sh, whatever python3 started us
    os.execv(str(_VENV_PYTHON), [str(_VENV_PYTHON), __file__, *sys.argv[1:]])

from pytomo.cli import run_command  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_command("crawl", sys.argv[1:], prog="start_crawl.py"))
