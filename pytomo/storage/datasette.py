"""Datasette metadata of a run database, for every table and whatever the file is called.

``metadata(database)`` is Datasette's metadata of one run database served under the name ``database``: title,
description, each column's description and unit (Pint's spelling) for every table and the ``pytomo_crawl`` view,
from ``pytomo.storage.columns``. Datasette keys its metadata by database name (the file's stem), so a file renamed or
stored under its run UUID (the collector's) would lose a ``metadata.json`` written for another name: this module is
also a Datasette plugin (entry point ``datasette``; hook ``get_metadata`` in Datasette 0.x, ``startup`` writing into
its internal metadata tables in 1.0) that gives that metadata to every served database that is a Pytomo run
database, whatever its name, wherever Pytomo is installed beside Datasette.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytomo.storage.columns import VIEW_NAME, described

PINT = {"bit/s": "bit / s", "kbit/s": "kbit / s", "bytes": "byte", "ms": "ms", "s": "s"}
"""Our units as Pint (which Datasette uses to show and convert them) spells them."""
TITLES = {
    "run": "The run: one row (its UUID, software, clock and zone, settings, status)",
    "videos": "Videos: one row per page URL measured",
    "hops": "Hops: every request of the redirect chain, the last one the cache server",
    "dns_answers": "DNS answers: one row per address record, or failure, of every resolver",
    "rtt_probes": "RTT probes: one probe run per address and method",
    "rtt_samples": "RTT samples: every probe's answer (rtt_ms NULL: lost)",
    "downloads": "Downloads: one row per media transfer",
    "segment_requests": "Segment requests: every HLS/DASH request (ISO/IEC 23009-1 Annex D)",
    "throughput_samples": "Throughput samples: bytes received per bin",
    "stalls": "Stalls: every interruption after playback started",
    "playout_timeline": "Playout timeline: the player's state and buffer at every change",
    "playouts": "Playouts: one row per download and --player profile",
    "playout_stalls": "Playout stalls: every stall of a profile's playout",
    "tcp_info_samples": "TCP_INFO samples of the downloading socket",
    "live_latency": "Live latency: latency to the live edge every second (live streams)",
    VIEW_NAME: "pytomo_crawl: the 2015 columns, one row per video, hop and address (2015 names, units, meanings)",
}
REQUIRED = ("run", "videos", "downloads")
"""The tables that make a file a Pytomo run database (the plugin describes no other)."""


def table_metadata(table: str) -> dict[str, Any]:
    """Datasette's metadata of one table: title, description, columns and units."""
    docs = described(table)
    return {"title": TITLES.get(table, table),
            "description": "Declared in pytomo/figures.py and pytomo/storage/schema.py; docs/schema.md explains them.",
            "columns": {col: text for col, (_unit, text) in docs.items() if text},
            "units": {col: PINT[unit] for col, (unit, _text) in docs.items() if unit in PINT}}


def database_metadata() -> dict[str, Any]:
    """The metadata of a run database's tables, whatever it is called (``{"tables": {...}}``)."""
    return {"description": "A Pytomo run database (docs/schema.md)",
            "tables": {table: table_metadata(table) for table in TITLES}}


def metadata(database: str) -> dict[str, Any]:
    """Datasette ``metadata.json`` of one run database served under the name ``database``."""
    return {"title": "Pytomo run database", "databases": {database: database_metadata()}}


_seen: dict[tuple[str, float], bool] = {}


def is_run_database(path: str | None) -> bool:
    """True for a file with the tables of a Pytomo run database (read-only, immutable; cached by path and mtime)."""
    if not path:
        return False
    try:
        key = (path, Path(path).stat().st_mtime)
    except OSError:
        return False
    if key not in _seen:
        try:
            conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1", uri=True)
            try:
                names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.Error:
            names = set()
        _seen[key] = all(t in names for t in REQUIRED)
    return _seen[key]


def _hookimpl(fn: Any) -> Any:
    """Datasette's hookimpl marker (pluggy's, project ``datasette``) without importing Datasette."""
    try:
        import pluggy
    except ImportError:  # pluggy comes with Datasette: without it nobody calls the hook
        return fn
    return pluggy.HookimplMarker("datasette")(fn)


def _run_databases(datasette: Any) -> list[str]:
    served = getattr(datasette, "databases", {}) or {}
    return [name for name, db in served.items() if is_run_database(getattr(db, "path", None))]


@_hookimpl
def get_metadata(datasette: Any, key: Any, database: Any, table: Any) -> dict[str, Any]:
    """Datasette's hook (0.x): the metadata of every served run database, under its own name."""
    return {"databases": {name: database_metadata() for name in _run_databases(datasette)}}


@_hookimpl
def startup(datasette: Any) -> Any:
    """Datasette's hook (1.0, where metadata lives in its internal database and get_metadata is gone): each served
    run database's table titles and descriptions and column descriptions, written there at start."""
    if not hasattr(datasette, "set_column_metadata"):
        return None

    async def describe() -> None:
        for name in _run_databases(datasette):
            await datasette.set_database_metadata(name, "description", database_metadata()["description"])
            for table, meta in database_metadata()["tables"].items():
                for key in ("title", "description"):
                    await datasette.set_resource_metadata(name, table, key, meta[key])
                for column, text in meta["columns"].items():
                    await datasette.set_column_metadata(name, table, column, "description", text)

    return describe
