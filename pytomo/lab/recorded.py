"""The recorded platforms' files (``pytomo/lab/recordings/*.json``), parsed once for the lab's servers and rules."""

from __future__ import annotations

import json
from functools import cache

from pytomo.paths import package_root


@cache
def recordings(name: str) -> dict:
    """One recordings file (``youtube`` or ``dailymotion``), parsed once."""
    path = package_root() / "lab" / "recordings" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))
