"""The per-run SQLite database: created with the schema, one transaction per measured video, WAL mode."""

from __future__ import annotations

import json
import logging
import platform
import re
import socket
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytomo.errors import StorageError, UsageError
from pytomo.figures import datasette_metadata
from pytomo.figures import row as figure_row
from pytomo.results import iso, utc_now
from pytomo.storage.schema import SCHEMA_VERSION, TABLES, TCP_INFO_FIELDS, VIEW
from pytomo.version import __version__

if TYPE_CHECKING:
    from datetime import datetime

    from pytomo.results import DownloadAnalysis, VideoMeasurement
    from pytomo.settings import Settings

DB_SUFFIX = ".pytomo_database.db"

log = logging.getLogger(__name__)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "host"


def database_name(host_label: str, service: str, provider: str, started: datetime) -> str:
    """``<host>.<service>[_<provider>].<UTC start>.pytomo_database.db``."""
    svc = _safe(service) + (f"_{_safe(provider)}" if provider else "")
    return f"{_safe(host_label)}.{svc}.{started.strftime('%Y-%m-%dT%H-%M-%SZ')}{DB_SUFFIX}"


def _sqlite_int(value: int | None) -> int | float | None:
    """SQLite integers are signed 64-bit: a larger unsigned kernel counter (``~0`` = unlimited) is kept as REAL."""
    if value is not None and value > 0x7FFF_FFFF_FFFF_FFFF:
        return float(value)
    return value


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """Insert one row given by column name; its id."""
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return _rowid(conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values())))


def _rowid(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just made (sqlite3 sets it after every successful INSERT)."""
    rowid = cursor.lastrowid
    assert rowid is not None, "an INSERT without a row id"
    return rowid


def metadata_path(db_path: Path) -> Path:
    """``<name>.metadata.json`` beside a run database ``<name>.db``: Datasette's ``-m`` file for it."""
    return db_path.with_name(db_path.name.removesuffix(".db") + ".metadata.json")


def write_metadata(db_path: Path) -> Path:
    """Write the Datasette metadata (titles, descriptions, units of every figure) beside a run database."""
    path = metadata_path(db_path)
    path.write_text(json.dumps(datasette_metadata(db_path.name.removesuffix(".db")), indent=2) + "\n")
    return path


def service_label(service: str) -> str:
    """The plugin's label of a service name (the one spelling of ``run.service``, ``videos.service`` and the 2015
    ``Service``); the name itself when no plugin has it."""
    from pytomo.services import by_name

    try:
        return by_name(service).LABEL or service
    except UsageError:  # an unknown name: the run row keeps it as given
        return service


class RunDatabase:
    """One run's database. ``add_video`` commits each video as soon as it is measured."""

    def __init__(self, path: Path, conn: sqlite3.Connection, run_id: int) -> None:
        self.path = path
        self.conn = conn
        self.run_id = run_id

    @classmethod
    def create(cls, directory: str | Path, settings: Settings, *, host_label: str | None = None,
               lab_scenario: str | None = None) -> RunDatabase:
        """Create a new database file for a run starting now."""
        started = utc_now()
        host = host_label or settings.label or socket.gethostname()  # --label replaces the host name
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / database_name(host, settings.service, settings.provider, started)
            n = 1
            while path.exists():
                n += 1
                path = directory / database_name(host, settings.service, settings.provider, started).replace(
                    DB_SUFFIX, f"-{n}{DB_SUFFIX}")
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(TABLES + VIEW)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            cur = conn.execute(
                "INSERT INTO run (schema_version, software_version, started_at, host_label, service, provider,"
                " settings_json, python_version, platform, lab_scenario) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (SCHEMA_VERSION, __version__, iso(started), host, service_label(settings.service), settings.provider,
                 json.dumps(settings.as_dict(), default=str, sort_keys=True), sys.version.split()[0],
                 platform.platform(), lab_scenario))
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot create the run database in {directory}: {exc}") from exc
        return cls(path, conn, _rowid(cur))

    def finish(self, status: str, stop_reason: str | None = None) -> None:
        """Close the run row and the database; when the disk is full the row keeps ``running`` and a line says so."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.conn.execute("UPDATE run SET ended_at=?, status=?, stop_reason=? WHERE id=?",
                              (iso(utc_now()), status, stop_reason, self.run_id))
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # the transaction is rolled back: what was stored stays whole
            log.warning("cannot close the run row of %s: %s", self.path, exc)
        finally:
            self.conn.close()
        try:
            write_metadata(self.path)
        except OSError as exc:
            log.warning("cannot write the Datasette metadata beside %s: %s", self.path, exc)

    def add_video(self, m: VideoMeasurement) -> int:
        """Store one video with everything observed, in one transaction."""
        c = self.conn
        try:
            c.execute("BEGIN")
            video = {"run_id": self.run_id, "round": m.round, "seed_source": m.seed_source, "page_url": m.page_url,
                     **figure_row("videos", m), "started_at": iso(m.started_at), "ended_at": iso(m.ended_at),
                     "status": m.status, "error_stage": m.error_stage, "error_kind": m.error_kind,
                     "error_message": m.error_message,
                     "extractor_json": json.dumps(m.extractor, sort_keys=True, default=str) if m.extractor else None}
            vid = _insert(c, "videos", video)
            c.executemany(
                "INSERT INTO hops (video_row_id, hop_index, url, origin, host, address, status_code, location,"
                " elapsed_s, started_at, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(vid, h.index, h.url, h.origin, h.host, h.address, h.status, h.location, h.elapsed_s,
                  iso(h.started_at), h.error) for h in m.hops])
            c.executemany(
                "INSERT INTO dns_answers (video_row_id, host, resolver, resolver_address, rdtype, rcode, address,"
                " ttl_s, latency_ms, at, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(vid, a.host, a.resolver, a.resolver_address, a.rdtype, a.rcode, a.address, a.ttl_s, a.latency_ms,
                  iso(a.at), a.error) for a in m.dns])
            for r in m.rtt:
                pid = c.execute("INSERT INTO rtt_probes (video_row_id, address, method, probes_sent, error)"
                                " VALUES (?,?,?,?,?)", (vid, r.address, r.method, len(r.samples), r.error)).lastrowid
                c.executemany(
                    "INSERT INTO rtt_samples (probe_id, video_row_id, address, method, seq, rtt_ms, sent_at)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [(pid, vid, s.address, s.method, s.seq, s.rtt_ms, iso(s.at)) for s in r.samples])
            for d in m.downloads:
                self._add_download(m, vid, d)
            c.execute("COMMIT")
        except Exception as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
                raise StorageError(f"cannot store the video {m.page_url}: the disk is full or the database cannot "
                                   f"grow ({exc}); {self.path} keeps every video stored before it") from exc
            raise StorageError(f"cannot store the video {m.page_url}: {exc.__class__.__name__}: {exc}") from exc
        return vid

    def _add_download(self, m: VideoMeasurement, vid: int, d: DownloadAnalysis) -> None:
        t = d.transfer
        p = d.playout
        did = _insert(self.conn, "downloads", {"video_row_id": vid, **figure_row("downloads", m, d)})
        if d.segments:
            self.conn.executemany(
                "INSERT INTO segment_requests (download_id, seq, stream, kind, rendition_id, bandwidth_bps, url,"
                " http_status, trequest_s, tresponse_s, tfinish_s, bytes, media_start_s, media_duration_s, complete,"
                " error, range_first_byte, range_last_byte, new_connection, tcp_connect_s, tls_handshake_s,"
                " content_encoding)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(did, r.seq, r.stream, r.kind, r.rendition_id, r.bandwidth_bps, r.url, r.status, r.trequest_s,
                  r.tresponse_s, r.tfinish_s, r.bytes, r.media_start_s, r.media_duration_s, int(r.complete), r.error,
                  r.byte_range[0] if r.byte_range else None, r.byte_range[1] if r.byte_range else None,
                  _flag(r.new_connection), r.tcp_connect_s, r.tls_handshake_s, r.content_encoding)
                 for r in d.segments])
        if t.tcp_info:
            names = list(TCP_INFO_FIELDS)
            self.conn.executemany(
                f"INSERT INTO tcp_info_samples (download_id, t_s, role, {', '.join(names)})"
                f" VALUES (?, ?, 'receiver', {', '.join('?' for _ in names)})",
                [(did, ts, *(_sqlite_int(fields.get(n)) for n in names)) for ts, fields in t.tcp_info])
        self.conn.executemany(
            "INSERT INTO throughput_samples (download_id, bin_index, t_start_s, bytes) VALUES (?,?,?,?)",
            [(did, i, i * t.bin_s, b) for i, b in enumerate(t.bins_bytes)])
        if p:
            self.conn.executemany(
                "INSERT INTO stalls (download_id, seq, start_s, media_position_s, duration_s, ongoing)"
                " VALUES (?,?,?,?,?,?)",
                [(did, i, s.start_s, s.media_position_s, s.duration_s, int(s.ongoing)) for i, s in enumerate(p.stalls)])
            self.conn.executemany(
                "INSERT INTO playout_timeline (download_id, t_s, state, playhead_s, buffer_s) VALUES (?,?,?,?,?)",
                [(did, b.t_s, b.state, b.playhead_s, b.buffer_s) for b in d.timeline_points])
