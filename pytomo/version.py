"""Single source of the software version, and the commit it was built from."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

__version__ = "4.0.0.dev0"

COMMIT_FILE = "_commit.txt"  # written into the frozen bundle by build/pyinstaller.py, beside this package
_COMMIT = re.compile(r"[0-9a-f]{7,40}(-dirty)?")


def _bundle_commit() -> str | None:
    """The commit a frozen executable was built from: ``_commit.txt`` in the bundle (or beside the package)."""
    places = [Path(getattr(sys, "_MEIPASS", "")) / COMMIT_FILE] if getattr(sys, "frozen", False) else []
    places.append(Path(__file__).resolve().parent / COMMIT_FILE)
    for place in places:
        try:
            text = place.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if _COMMIT.fullmatch(text):
            return text
    return None


def _git_commit() -> str | None:
    """``git rev-parse --short HEAD`` of the checkout this package is in, ``-dirty`` when files are changed."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not _COMMIT.fullmatch(head):
        return None
    return head + ("-dirty" if dirty else "")


@functools.cache
def commit() -> str | None:
    """The commit of this software: the bundle's ``_commit.txt``, else git's HEAD; None when neither is there."""
    return _bundle_commit() or _git_commit()


def full_version() -> str:
    """``4.0.0.dev0+g1a2b3c4`` (PEP 440 local version with the commit), or the version alone."""
    c = commit()
    return f"{__version__}+g{c.replace('-', '.')}" if c else __version__
