"""Unit and description of every exported column, from the declarations: figures, the DDL's comments, the view.

``described(table)`` gives ``{column: (unit, description)}`` for a table of the run database (``run``, ``videos``,
``downloads``, ...) or the ``pytomo_crawl`` view: a figure's description (pytomo/figures.py), else the comment beside
the column in the DDL (pytomo/storage/schema.py), else none; units as the column's name declares them
(pytomo.units: ``_s``, ``_ms``, ``_bps``, ``_bytes``), the 2015 columns in their 2015 units (kbit/s). The Parquet
export writes them as each field's metadata and the Datasette metadata shows them.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache

from pytomo.figures import FIGURES, figures
from pytomo.storage.schema import COLUMNS_2015, PER_ADDRESS, TABLES, VIEW_EXTRA, VIEW_UNITS
from pytomo.units import scaled_unit, unit_of

VIEW_NAME = "pytomo_crawl"
ADDED = {
    "run_uuid": "the run's UUID (run.run_uuid; for a database without one, a uuid5 of the file's SHA-256)",
    "service": "partition: the video's service (the run's for a row without a video)",
    "utc_date": "partition: the video's UTC date, YYYY-MM-DD (the run's start date for a row without a video)",
}
"""The columns every exported row gains (pytomo/readers/tables.py)."""
OFFSET = "the volunteer's UTC offset at {local}: {local} minus the same instant in UTC, in seconds"
"""The description of the ``<time>_utc_offset_s`` column beside each local time of the export."""
VIEW_DESCRIPTIONS = {
    "ID": "start of the download (else of the video), UTC (2015: a local time; LocalID has it)",
    "Service": "the service's label (videos.service)",
    "Url": "the page URL (videos.page_url)",
    "CacheUrl": "scheme://host[:port] of the hop (hops.origin)",
    "IP": "an address the hop's host resolved to",
    "Resolver": "the resolvers that gave that address, label_resolveraddress, comma-separated",
    "ResolveTime": "the fastest of those DNS answers",
    "ASNumber": "AS number of the address (downloads.as_number, --ip-db); NULL when not known (2015: 0)",
    "PingMin": "smallest RTT to the address: ICMP echo, else TCP connect",
    "PingAvg": "mean RTT to the address: ICMP echo, else TCP connect",
    "PingMax": "largest RTT to the address: ICMP echo, else TCP connect",
    "VideoType": "the container (downloads.container)",
    "RedirectUrl": "origin of the next hop; NULL on the last",
    "StatusCode": "the HTTP status observed at this hop",
    "LocalID": "ID on the volunteer's clock (wall time; utc_offset_s beside it in the export)",
    "PlaybackDuration": "media seconds received at the last moment the player was playing, as 2015 meant it (not "
                        "playing time: played_s); NULL when playback never started",
    "BufferDurationAtEnd": "media buffered ahead of the playhead when the window closed (downloads.buffer_at_end_s; "
                           "the 2015 tool always wrote 0.0)",
    "played_s": "wall time spent playing (downloads.played_s); 2015 recorded none",
    "utc_offset_s": "LocalID minus ID: the volunteer's UTC offset then, in seconds",
}
"""What each view column that no figure reads means (the others: their figure's description)."""


def _ddl_comments() -> dict[str, dict[str, str]]:
    """``{table: {column: comment}}`` from the comment beside each column of the DDL."""
    out: dict[str, dict[str, str]] = {}
    table, last = "", ""
    for line in TABLES.splitlines():
        start = re.match(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", line)
        if start:
            table, last = start.group(1), ""
            continue
        column = re.match(r"\s{4}(\w+) [A-Z]+[^-]*--\s*(.+)$", line)
        if not table or not column or column.group(1) in ("PRIMARY", "FOREIGN"):
            continue
        comments = out.setdefault(table, {})
        text = column.group(2).strip()
        if last and comments[last].count("(") > comments[last].count(")"):  # the comment goes on: it is the last's
            comments[last] += " " + text
            continue
        comments[column.group(1)], last = text, column.group(1)
    return out


def _table_columns(table: str) -> list[str]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(TABLES)
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def _view() -> dict[str, tuple[str | None, str | None]]:
    by_column = {f.legacy: f for f in FIGURES if isinstance(f.legacy, str)}
    out: dict[str, tuple[str | None, str | None]] = {}
    for col in (*COLUMNS_2015, *VIEW_EXTRA, "utc_offset_s"):
        f = by_column.get(col) if col not in PER_ADDRESS else None
        if f is not None:
            unit = unit_of(f.name)
            out[col] = (scaled_unit(unit, f.legacy_scale) if unit else None,
                        f"{f.description} (downloads.{f.name}" + (f" / {f.legacy_scale:g})" if f.legacy_scale != 1
                                                                  else ")") if f.table == "downloads" else
                        f"{f.description} (videos.{f.name})")
        else:
            unit = VIEW_UNITS.get(col) or unit_of(col)
            out[col] = (unit, VIEW_DESCRIPTIONS.get(col))
    for col in ("ResolveTime",):
        out[col] = ("s", VIEW_DESCRIPTIONS[col])
    for col in ("PingMin", "PingAvg", "PingMax"):
        out[col] = ("ms", VIEW_DESCRIPTIONS[col])
    return out


@cache
def described(table: str) -> dict[str, tuple[str | None, str | None]]:
    """``{column: (unit, description)}`` of one exported table (or the view), the added columns included."""
    if table == VIEW_NAME:
        out = _view()
    else:
        comments = _ddl_comments().get(table, {})
        own = {f.name: f.description for f in figures(table)}
        out = {}
        for col in _table_columns(table):
            text = own.get(col) or comments.get(col)
            if text is None and col.startswith("tcpi_"):
                text = "Linux struct tcp_info's field of that name, as the kernel gave it (its own unit)"
            out[col] = (unit_of(col), text)
            if col.endswith("_local"):
                offset = col.removesuffix("_local") + "_utc_offset_s"
                out[offset] = ("s", OFFSET.format(local=col))
    out.update({col: (None, text) for col, text in ADDED.items()})
    return out
