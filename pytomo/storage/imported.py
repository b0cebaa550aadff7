"""A run database of our schema written from the rows of a 2015 database or a 2013 dump (``pytomo import``).

Only what means the same in both is put in our tables; every source row is also kept whole, under its 2015 names and
meanings, in ``crawl_2015``. The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytomo.errors import StorageError, UsageError
from pytomo.results import iso
from pytomo.storage.schema import COLUMNS_2015, CRAWL_2015, IMPORTED_TABLE, SCHEMA_VERSION, TABLES, VIEW
from pytomo.storage.sqlite import DB_SUFFIX, _safe, write_metadata
from pytomo.version import __version__, commit
from pytomo.zones import zone

SOURCE_COLUMNS = COLUMNS_2015[:-1]  # the 2015 table's 29 columns (LocalID is the view's)
MAX_VIDEO_ROWS = 10_000
STATUS = "imported"
RESOLVERS = {"default": "system", "google_public_dns": "google", "open_dns": "opendns"}  # 2015 label -> ours
PLAYOUT_PROBLEM = ("imported from 2015: the 2015 playout model's figures (DownloadInterruptions, BufferingDuration, "
                   "PlaybackDuration in media seconds, InitialData, InitialRate) are not ours; crawl_2015 keeps them "
                   "under their 2015 names")
MEDIA_PROBLEM = ("imported from 2015: VideoType, VideoDuration and EncodingRate as kaa_metadata read them then; "
                 "codecs, picture size and media time were not recorded")
NO_DOWNLOAD = "the 2015 row has no DownloadBytes: nothing was downloaded from this video's cache server"


@dataclass(frozen=True)
class ImportFacts:
    """What the run row says of the source: its file name, SHA-256, layout, the columns it lacked, its row count;
    the zone its local times are read in; the run UUID (from the content) and an optional label."""

    source_name: str
    sha256: str
    layout: str
    missing: tuple[str, ...]
    rows: int
    tz: str
    run_uuid: str
    host_label: str | None = None


@dataclass
class _Clock:
    """The source's local wall times read in one zone: to UTC, DST-aware, in the order they were written."""

    tz: tzinfo
    name: str
    previous: datetime | None = None
    ambiguous: int = 0

    def utc(self, text: str, where: str) -> datetime:
        naive = datetime.fromisoformat(text)
        early, late = naive.replace(tzinfo=self.tz, fold=0), naive.replace(tzinfo=self.tz, fold=1)
        if early.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) != naive:
            raise UsageError(f"{where}: {text} does not exist in {self.name} (it falls in the hour skipped when "
                             f"clocks go forward): is --tz {self.name} the volunteer's zone?")
        chosen = early
        if early.utcoffset() != late.utcoffset():  # the repeated hour: rows were written in time order
            self.ambiguous += 1
            if self.previous is not None and early.astimezone(UTC) < self.previous:
                chosen = late
        out = chosen.astimezone(UTC)
        self.previous = out if self.previous is None else max(self.previous, out)
        return out

    def local(self, at: datetime) -> str:
        """``at`` as the volunteer's local time with its offset."""
        return at.astimezone(self.tz).isoformat(timespec="microseconds")


def _view_time(at: datetime) -> str:
    """A UTC time as the view's ID writes it (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return (iso(at) or "")[:26].replace("T", " ")


def _host(url: str | None) -> str:
    try:
        return (urlsplit(url).hostname or url or "") if url else ""
    except ValueError:
        return url or ""


def _resolvers(label: str | None) -> list[tuple[str, str | None]]:
    """(resolver, its address) of a 2015 Resolver label (``default_80.10.246.2``; merged ones joined by ``_``)."""
    text = label or ""
    found = []
    for name, ours in RESOLVERS.items():
        start = 0
        while (at := text.find(name + "_", start)) >= 0:
            start = at + len(name) + 1
            address = text[start:].split("_", 1)[0]
            found.append((at, ours, address or None))
    merged = [(ours, address) for _at, ours, address in sorted(found)][:len(RESOLVERS)]  # 2015 asked three at most
    return merged or [(text or "unknown", None)]


def _finite(value: float | None) -> float | None:
    """A computed value, None when it overflowed (a source's extreme numbers)."""
    return value if value is not None and math.isfinite(value) else None


def _is_hop(row: dict[str, Any]) -> bool:
    """A redirecting hop's row: it names the next hop and downloaded nothing (inventory 3.5)."""
    return bool(row["RedirectUrl"]) and row["DownloadBytes"] is None


def _videos(rows: Iterable[tuple[object, ...]], where: str) -> Iterator[list[dict[str, Any]]]:
    """The source's rows grouped by video: its hops' rows, then the rows of its last hop (one per address)."""
    current: list[dict[str, Any]] = []
    finals: set[tuple[Any, Any]] = set()  # (CacheUrl, IP) of the current video's last-hop rows
    for n, values in enumerate(rows, 1):
        row = dict(zip(SOURCE_COLUMNS, values, strict=True))
        row["_n"] = n
        hop = _is_hop(row)
        last_hop = next(iter(finals))[0] if finals else row["CacheUrl"]
        new = (not current or row["Url"] != current[0]["Url"] or (hop and bool(finals))
               or (not hop and ((row["CacheUrl"], row["IP"]) in finals or last_hop != row["CacheUrl"])))
        if new and current:
            yield current
            current, finals = [], set()
        if len(current) >= MAX_VIDEO_ROWS:
            raise UsageError(f"{where}: more than {MAX_VIDEO_ROWS} rows for one video (row {n})")
        current.append(row)
        if not hop:
            finals.add((row["CacheUrl"], row["IP"]))
    if current:
        yield current


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    cursor = conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                          tuple(row.values()))
    return int(cursor.lastrowid or 0)


@dataclass
class _Writer:
    """Writes the videos of one source into an open database."""

    conn: sqlite3.Connection
    run_id: int
    clock: _Clock
    facts: ImportFacts
    first: datetime | None = None
    last: datetime | None = None
    service: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"videos": 0, "hops": 0, "downloads": 0})

    def video(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row["_utc"] = self.clock.utc(row["ID"], f"{self.facts.source_name} row {row['_n']}")
        times = [r["_utc"] for r in rows]
        self.first = min(times) if self.first is None else min(self.first, *times)
        self.last = max(times) if self.last is None else max(self.last, *times)
        self.service = self.service or next((r["Service"] for r in rows if r["Service"]), None)
        played = any((r["DownloadBytes"] or 0) > 0 for r in rows)
        final = next((r for r in rows if not _is_hop(r)), rows[-1])
        vid = _insert(self.conn, "videos", {
            "run_id": self.run_id, "round": 0, "page_url": rows[0]["Url"] or "", "service": final["Service"],
            "cache_server_delay_s": final["CacheServerDelay"], "started_at": iso(rows[0]["_utc"]),
            "started_at_local": self.clock.local(rows[0]["_utc"]), "status": "ok" if played else "error",
            "error_stage": None if played else "download", "error_kind": None if played else "no_download",
            "error_message": None if played else NO_DOWNLOAD})
        self._hops(vid, rows)
        for row in rows:
            if row["IP"] and row["CacheUrl"]:
                for resolver, address in _resolvers(row["Resolver"]):
                    self.conn.execute(
                        "INSERT INTO dns_answers (video_row_id, host, resolver, resolver_address, rdtype, rcode, "
                        "address, latency_ms, at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (vid, _host(row["CacheUrl"]), resolver, address, "AAAA" if ":" in row["IP"] else "A",
                         "NOERROR", row["IP"], None if row["ResolveTime"] is None or len(_resolvers(row["Resolver"]))
                         > 1 else _finite(row["ResolveTime"] * 1000.0), iso(row["_utc"])))
            if row["DownloadBytes"] is not None:
                self._download(vid, row)
            self.conn.execute(
                f"INSERT INTO {IMPORTED_TABLE} (video_row_id, {', '.join(COLUMNS_2015)}) "
                f"VALUES (?, {', '.join('?' for _ in COLUMNS_2015)})",
                (vid, _view_time(row["_utc"]), *(row[c] for c in SOURCE_COLUMNS[1:]), row["ID"]))
        self.counts["videos"] += 1

    def _hops(self, vid: int, rows: list[dict[str, Any]]) -> None:
        """One hop per cache URL in the order met, at the address of its first row (the default resolver's)."""
        seen: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["CacheUrl"] and row["CacheUrl"] not in seen:
                seen[row["CacheUrl"]] = row
        for index, (url, row) in enumerate(seen.items()):
            self.conn.execute(
                "INSERT INTO hops (video_row_id, hop_index, url, origin, host, address, started_at) "
                "VALUES (?,?,?,?,?,?,?)", (vid, index, url, url, _host(url), row["IP"], iso(row["_utc"])))
            self.counts["hops"] += 1

    def _download(self, vid: int, row: dict[str, Any]) -> None:
        nbytes, secs, rate = row["DownloadBytes"], row["DownloadTime"], row["EncodingRate"]
        length = row["VideoLength"]
        asn = row["ASNumber"]
        problem = ("ASNumber is not in the 2013 layout" if "ASNumber" in self.facts.missing else
                   "2015: the RIPEstat lookup failed (ASNumber 0)" if asn == 0 else
                   "2015: no ASNumber" if asn is None else None)
        _insert(self.conn, "downloads", {
            "video_row_id": vid, "url": row["CacheUrl"] or "", "host": _host(row["CacheUrl"]),
            "address": row["IP"] or "", "started_at": iso(row["_utc"]),
            "started_at_local": self.clock.local(row["_utc"]),
            "as_number": asn or None, "ip_db_problem": problem, "window_s": None, "bin_s": None,
            "http_status": row["StatusCode"],
            "content_length_bytes": int(length) if length is not None and float(length).is_integer() else None,
            "transfer_s": secs, "bytes": nbytes, "throughput_2015_bps": _finite(nbytes * 8 / secs) if secs else None,
            "resolve_s": row["ResolveTime"], "ping_min_ms": row["PingMin"], "ping_avg_ms": row["PingAvg"],
            "ping_max_ms": row["PingMax"], "container": row["VideoType"].lower() if row["VideoType"] else None,
            "media_duration_s": row["VideoDuration"],
            "encoding_rate_bps": None if rate is None else _finite(rate * 1000.0),
            "encoding_rate_source": None if rate is None else "size-over-duration", "media_problem": MEDIA_PROBLEM,
            "playout_problem": PLAYOUT_PROBLEM})
        self.counts["downloads"] += 1


def _offset_s(at: datetime, tz: tzinfo) -> int:
    offset = at.astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def database_path(folder: Path, facts: ImportFacts, service: str, started: datetime) -> Path:
    """``<label or imported>.<service>.<UTC start>-<run uuid's first 8>.pytomo_database.db``: the same source gives
    the same name."""
    stamp = started.strftime("%Y-%m-%dT%H-%M-%SZ")
    return folder / f"{_safe(facts.host_label or 'imported')}.{_safe(service)}.{stamp}-{facts.run_uuid[:8]}{DB_SUFFIX}"


def _run_row(conn: sqlite3.Connection, facts: ImportFacts) -> int:
    settings = {"import": {"source": facts.source_name, "sha256": facts.sha256, "layout": facts.layout,
                           "tz": facts.tz, "rows": facts.rows, "columns_not_in_source": list(facts.missing),
                           "by": f"pytomo import {__version__}"}}
    return _insert(conn, "run", {
        "run_uuid": facts.run_uuid, "schema_version": SCHEMA_VERSION, "software_version": __version__,
        "software_commit": commit(), "started_at": "", "timezone": facts.tz, "timezone_source": "pytomo import --tz",
        "utc_offset_s": 0, "host_label": facts.host_label, "service": "Unknown",
        "settings_json": json.dumps(settings, sort_keys=True),
        "vantage_problem": "imported from 2015: the volunteer's network was not recorded", "status": STATUS,
        "stop_reason": f"imported from {facts.source_name} ({facts.layout}, sha256 {facts.sha256}, its local times "
                       f"read in {facts.tz})"})


def write_imported(rows: Iterable[tuple[object, ...]], facts: ImportFacts, folder: Path) -> tuple[Path, dict[str, int]]:
    """Write the run database of one source into ``folder``: its path and how many videos, hops and downloads."""
    clock = _Clock(zone(facts.tz), facts.tz)
    folder = Path(folder)
    tmp = folder / f".{facts.run_uuid}.importing"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot write in {folder}: {exc}") from exc
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(TABLES + VIEW + CRAWL_2015)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("BEGIN")
        writer = _Writer(conn, _run_row(conn, facts), clock, facts)
        for video in _videos(rows, facts.source_name):
            writer.video(video)
        if writer.first is None or writer.last is None:
            raise UsageError(f"{facts.source_name}: no rows")
        service = writer.service or "Unknown"
        conn.execute("UPDATE run SET started_at=?, ended_at=?, started_at_local=?, ended_at_local=?, utc_offset_s=?, "
                     "service=? WHERE id=?",
                     (iso(writer.first), iso(writer.last), clock.local(writer.first), clock.local(writer.last),
                      _offset_s(writer.first, clock.tz),
                      service, writer.run_id))
        conn.execute("COMMIT")
        conn.close()
        target = database_path(folder, facts, service, writer.first)
        os.replace(tmp, target)
    except BaseException as exc:
        conn.close()
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-journal").unlink(missing_ok=True)
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise StorageError(f"cannot write the imported run in {folder}: {exc}") from exc
        raise
    try:
        write_metadata(target)
    except OSError:
        pass  # the Datasette descriptions are a convenience; the run is whole without them
    return target, {**writer.counts, "ambiguous_times": clock.ambiguous}
