"""The per-run SQLite database: created with the schema, one transaction per measured video, WAL mode while the
run lasts, one self-contained file (journal_mode=DELETE) once it is finished."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import socket
import sqlite3
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pytomo.errors import StorageError, UsageError
from pytomo.figures import row as figure_row
from pytomo.results import iso, local_iso, utc_now
from pytomo.settings import SETTINGS
from pytomo.storage.datasette import metadata
from pytomo.storage.schema import SCHEMA_VERSION, TABLES, TCP_INFO_FIELDS, VIEW
from pytomo.storage.writer_lock import WriterLock
from pytomo.version import __version__, commit

if TYPE_CHECKING:
    from pytomo.results import DownloadAnalysis, VideoMeasurement
    from pytomo.settings import Setting, Settings

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
    """Write the Datasette metadata (titles, descriptions, units of every column of every table) beside a run
    database, keyed by its name; pytomo.storage.datasette also gives it to Datasette whatever the file is called."""
    path = metadata_path(db_path)
    path.write_text(json.dumps(metadata(db_path.name.removesuffix(".db")), indent=2) + "\n")
    return path


def service_label(service: str) -> str:
    """The plugin's label of a service name (the one spelling of ``run.service``, ``videos.service`` and the 2015
    ``Service``); the name itself when no plugin has it."""
    from pytomo.services import by_name

    try:
        return by_name(service).LABEL or service
    except UsageError:  # an unknown name: the run row keeps it as given
        return service


# ------------------------------------------------------------------------------------ what the run row may hold

IANA_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")


@dataclass(frozen=True)
class LocalZone:
    """The volunteer's IANA time zone (None with ``problem`` when it cannot be known) and where it was read."""

    name: str | None
    source: str | None = None
    problem: str | None = None


def _zone_name(text: str) -> str | None:
    text = text.strip().removeprefix(":")
    if "zoneinfo/" in text:  # /usr/share/zoneinfo/Europe/Paris, or TZ=:/usr/share/zoneinfo/...
        text = text.split("zoneinfo/", 1)[1].removeprefix("posix/").removeprefix("right/")
    return text if IANA_ZONE.fullmatch(text) and text not in ("localtime", "posixrules") else None


def local_zone(environ: dict[str, str] | None = None, etc: Path = Path("/etc")) -> LocalZone:
    """The IANA zone of this computer: ``$TZ``, ``/etc/timezone``, the target of the ``/etc/localtime`` link."""
    env = os.environ if environ is None else environ
    tz = env.get("TZ")
    if tz is not None:
        name = _zone_name(tz)
        return LocalZone(name, "TZ") if name else LocalZone(None, "TZ", f"TZ={tz!r} is not an IANA zone name")
    try:
        name = _zone_name((etc / "timezone").read_text(encoding="utf-8").splitlines()[0])
        if name:
            return LocalZone(name, "/etc/timezone")
    except (OSError, UnicodeDecodeError, IndexError):
        pass
    try:
        name = _zone_name(os.readlink(etc / "localtime"))
        if name:
            return LocalZone(name, "/etc/localtime")
    except OSError:
        pass
    if sys.platform == "win32":
        return LocalZone(None, problem="Windows time zones are not IANA names; not mapped")
    return LocalZone(None, problem="no TZ, no /etc/timezone, /etc/localtime is not a link into zoneinfo")


def utc_offset_s(at: datetime) -> int:
    """Local time minus UTC at ``at``, in seconds."""
    offset = at.astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _redacted_url(value: str) -> str:
    """A URL without its user:password (``http://<redacted>@proxy:3128``)."""
    try:
        parts = urlsplit(value if "://" in value else f"http://{value}")
    except ValueError:
        return "<set>"
    if parts.username is None and parts.password is None:
        return value
    host = parts.hostname or ""
    netloc = "<redacted>@" + (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)) if "://" in value else netloc


def _base_name(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_base_name(v) for v in value)
    return Path(value).name or "<set>" if isinstance(value, str) and value else value


def stored_value(setting: Setting, value: Any) -> Any:
    """One setting's value as the run row keeps it, as its row of the settings table says (``Setting.stored``)."""
    if setting.stored == "base-name":
        return _base_name(value)
    if setting.stored in ("set", "secret"):
        return "<set>" if value and value != setting.default else value
    if setting.stored == "redacted-url" and isinstance(value, str) and "@" in value:
        return _redacted_url(value)
    return value


def stored_settings(settings: Settings) -> dict[str, Any]:
    """The settings as ``run.settings_json`` keeps them (each as its row's ``stored`` says: secrets as ``<set>``,
    local paths by their base names, a directory as ``<set>`` unless the default, credentials in URLs redacted); no
    host name."""
    return {s.name: stored_value(s, getattr(settings, s.name)) for s in SETTINGS}


class RunDatabase:
    """One run's database. ``add_video`` commits each video as soon as it is measured.

    While it is open, the writer lock (``<database>.writer``, an exclusive flock) tells readers a crawler is
    writing it; ``finish`` releases and deletes it.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, run_id: int, lock: WriterLock | None = None) -> None:
        self.path = path
        self.conn = conn
        self.run_id = run_id
        self.lock = lock

    @classmethod
    def create(cls, directory: str | Path, settings: Settings, *, host_label: str | None = None,
               lab_scenario: str | None = None) -> RunDatabase:
        """Create a new database file for a run starting now."""
        started = utc_now()
        stored_label = host_label or settings.label or None  # --label; the host name is never stored in the file
        host = stored_label or socket.gethostname()  # the file name keeps the host name when no --label is given
        zone = local_zone()
        directory = Path(directory)
        lock: WriterLock | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / database_name(host, settings.service, settings.provider, started)
            n = 1
            while path.exists():
                n += 1
                path = directory / database_name(host, settings.service, settings.provider, started).replace(
                    DB_SUFFIX, f"-{n}{DB_SUFFIX}")
            lock = WriterLock(path)
            lock.acquire()  # before the file exists: a reader never sees the run without its writer
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(TABLES + VIEW)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            cur = conn.execute(
                "INSERT INTO run (run_uuid, schema_version, software_version, software_commit, started_at,"
                " started_at_local, timezone, timezone_source, timezone_problem, utc_offset_s, host_label, service,"
                " provider, settings_json, vantage_problem, python_version, platform, lab_scenario)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (str(uuid.uuid4()), SCHEMA_VERSION, __version__, commit(), iso(started), local_iso(started),
                 zone.name, zone.source, zone.problem, utc_offset_s(started), stored_label,
                 service_label(settings.service), settings.provider,
                 json.dumps(stored_settings(settings), default=str, sort_keys=True),
                 "looked up by the collector from the uploader's address, never here", sys.version.split()[0],
                 platform.platform(), Path(lab_scenario).name if lab_scenario else None))
        except (OSError, sqlite3.Error) as exc:
            if lock is not None:
                lock.release()
            raise StorageError(f"cannot create the run database in {directory}: {exc}") from exc
        return cls(path, conn, _rowid(cur), lock)

    def finish(self, status: str, stop_reason: str | None = None) -> None:
        """Close the run row and the database; when the disk is full the row keeps ``running`` and a line says so."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            ended = utc_now()
            self.conn.execute("UPDATE run SET ended_at=?, ended_at_local=?, status=?, stop_reason=? WHERE id=?",
                              (iso(ended), local_iso(ended), status, stop_reason, self.run_id))
            self._self_contained()
        except sqlite3.Error as exc:  # the transaction is rolled back: what was stored stays whole
            log.warning("cannot close the run row of %s: %s", self.path, exc)
        finally:
            self.close()
        try:
            write_metadata(self.path)
        except OSError as exc:
            log.warning("cannot write the Datasette metadata beside %s: %s", self.path, exc)

    def close(self) -> None:
        """Close the connection and release the writer lock (its file deleted); the run row is left as it is."""
        try:
            self.conn.close()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _self_contained(self) -> None:
        """Fold the WAL into the file and leave WAL mode: one file, which opens with ``?mode=ro`` anywhere."""
        busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        mode = self.conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        if (busy and busy[0]) or not mode or str(mode[0]).lower() != "delete":  # a reader kept the WAL open
            log.warning("%s stays in WAL mode (a reader had it open): copy it with its -wal file, or open it with "
                        "immutable=1", self.path)

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
                " elapsed_s, started_at, error, http_version, new_connection, tcp_connect_s, tls_handshake_s,"
                " tls_version, impersonate, http_stream_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(vid, h.index, h.url, h.origin, h.host, h.address, h.status, h.location, h.elapsed_s,
                  iso(h.started_at), h.error, h.http_version, _flag(h.connection.new if h.connection else None),
                  h.connection.tcp_connect_s if h.connection else None,
                  h.connection.tls_handshake_s if h.connection else None,
                  h.connection.tls_version if h.connection else None, h.impersonate, h.http_stream_id)
                 for h in m.hops])
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
                " content_encoding, http_version, tls_version, impersonate, http_stream_id, quic_fallback,"
                " media_sequence, playlist_changed, new_segments, program_date_s)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(did, r.seq, r.stream, r.kind, r.rendition_id, r.bandwidth_bps, r.url, r.status, r.trequest_s,
                  r.tresponse_s, r.tfinish_s, r.bytes, r.media_start_s, r.media_duration_s, int(r.complete), r.error,
                  r.byte_range[0] if r.byte_range else None, r.byte_range[1] if r.byte_range else None,
                  _flag(r.new_connection), r.tcp_connect_s, r.tls_handshake_s, r.content_encoding, r.http_version,
                  r.tls_version, r.impersonate, r.http_stream_id, r.quic_fallback, _sqlite_int(r.media_sequence),
                  _flag(r.playlist_changed), r.new_segments, r.program_date_s)
                 for r in d.segments])
        if d.live is not None and d.live.latency:
            self.conn.executemany(
                "INSERT INTO live_latency (download_id, seq, t_s, latency_s, playhead_s) VALUES (?,?,?,?,?)",
                [(did, i, t_s, latency, playhead) for i, (t_s, latency, playhead) in enumerate(d.live.latency)])
        if t.tcp_info:
            names = list(TCP_INFO_FIELDS)
            self.conn.executemany(
                f"INSERT INTO tcp_info_samples (download_id, t_s, role, {', '.join(names)})"
                f" VALUES (?, ?, 'receiver', {', '.join('?' for _ in names)})",
                [(did, ts, *(_sqlite_int(fields.get(n)) for n in names)) for ts, fields in t.tcp_info])
        self.conn.executemany(
            "INSERT INTO throughput_samples (download_id, bin_index, t_start_s, bytes) VALUES (?,?,?,?)",
            [(did, i, i * t.bin_s, b) for i, b in enumerate(t.bins_bytes)])
        self._add_playouts(did, d)
        if p:
            self.conn.executemany(
                "INSERT INTO stalls (download_id, seq, start_s, media_position_s, duration_s, ongoing)"
                " VALUES (?,?,?,?,?,?)",
                [(did, i, s.start_s, s.media_position_s, s.duration_s, int(s.ongoing)) for i, s in enumerate(p.stalls)])
            self.conn.executemany(
                "INSERT INTO playout_timeline (download_id, t_s, state, playhead_s, buffer_s) VALUES (?,?,?,?,?)",
                [(did, b.t_s, b.state, b.playhead_s, b.buffer_s) for b in d.timeline_points])

    def _add_playouts(self, did: int, d: DownloadAnalysis) -> None:
        """One ``playouts`` row per --player profile, with its stalls."""
        for pp in d.profile_playouts:
            r = pp.result
            started = r is not None and r.started
            params = r.params if r is not None else None
            pid = _insert(self.conn, "playouts", {
                "download_id": did, "profile": pp.profile, "drove_fetch": int(pp.drove_fetch),
                "initial_buffer_threshold_s": params.initial_buffer_s if params else d.params.initial_buffer_s,
                "min_buffer_threshold_s": params.min_buffer_s if params else d.params.min_buffer_s,
                "restart_buffer_threshold_s": params.restart_buffer_s if params else d.params.restart_buffer_s,
                "restart_growth": params.restart_growth if params else 1.0,
                "time_to_start_s": r.time_to_start_s if r else None,
                "stall_count": r.stall_count if started and r else None,
                "stall_total_s": r.stall_total_s if started and r else None,
                "played_s": r.played_s if r else None, "buffer_at_end_s": r.buffer_at_end_s if r else None,
                "media_received_s": r.media_received_s if r else None, "end_s": r.end_s if r else None,
                "state_at_end": r.state_at_end if r else None, "problem": pp.problem})
            if started and r is not None:
                self.conn.executemany(
                    "INSERT INTO playout_stalls (playout_id, seq, start_s, media_position_s, duration_s, ongoing)"
                    " VALUES (?,?,?,?,?,?)",
                    [(pid, i, x.start_s, x.media_position_s, x.duration_s, int(x.ongoing))
                     for i, x in enumerate(r.stalls)])
