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
from urllib.parse import urlsplit

from pytomo.errors import StorageError
from pytomo.results import iso, utc_now
from pytomo.storage.schema import SCHEMA_VERSION, TABLES, TCP_INFO_FIELDS, VIEW
from pytomo.version import __version__

if TYPE_CHECKING:
    from datetime import datetime

    from pytomo.engine.pipeline import DownloadAnalysis, VideoMeasurement
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


def origin(url: str) -> str:
    """``scheme://netloc`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


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
                (SCHEMA_VERSION, __version__, iso(started), host, settings.service, settings.provider,
                 json.dumps(settings.as_dict(), default=str, sort_keys=True), sys.version.split()[0],
                 platform.platform(), lab_scenario))
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot create the run database in {directory}: {exc}") from exc
        return cls(path, conn, cur.lastrowid)

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

    def measured_page_urls(self) -> set[str]:
        """Page URLs already measured in this run (with a download that got bytes)."""
        rows = self.conn.execute(
            "SELECT DISTINCT v.page_url FROM videos v JOIN downloads d ON d.video_row_id = v.id WHERE d.bytes > 0")
        return {r[0] for r in rows}

    def add_video(self, m: VideoMeasurement) -> int:
        """Store one video with everything observed, in one transaction."""
        c = self.conn
        try:
            c.execute("BEGIN")
            vid = c.execute(
                "INSERT INTO videos (run_id, round, seed_source, page_url, service, video_id, title, duration_s,"
                " related_count, started_at, ended_at, cache_server_delay_s, status, error_stage, error_kind,"
                " error_message, extractor_json, available_wait_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (self.run_id, m.round, m.seed_source, m.page_url, m.service_label, m.video_id, m.title,
                 m.duration_s, len(m.related), iso(m.started_at), iso(m.ended_at), m.cache_server_delay_s,
                 m.status, m.error_stage, m.error_kind, m.error_message,
                 json.dumps(m.extractor, sort_keys=True, default=str) if m.extractor else None,
                 m.available_wait_s)).lastrowid
            c.executemany(
                "INSERT INTO hops (video_row_id, hop_index, url, origin, host, address, status_code, location,"
                " elapsed_s, started_at, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(vid, h.index, h.url, origin(h.url), h.host, h.address, h.status, h.location, h.elapsed_s,
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
                self._add_download(vid, d)
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

    def _add_download(self, vid: int, d: DownloadAnalysis) -> None:
        t = d.transfer
        info = d.media
        p = d.playout
        params = d.params
        row: dict[str, Any] = {
            "video_row_id": vid, "url": t.url, "host": urlsplit(t.url).hostname or "", "address": t.address,
            "started_at": iso(t.started_at), "window_s": t.window_s, "status_code": t.status,
            "http_version": t.http_version, "content_type": t.content_type,
            "content_length_bytes": t.content_length_bytes, "headers_s": t.headers_s, "ttfb_s": t.first_byte_s,
            "last_byte_s": t.last_byte_s, "duration_s": t.duration_s, "bytes": t.bytes_total,
            "first_read_bytes": t.first_read_bytes, "avg_throughput_bps": t.avg_throughput_bps,
            "peak_1s_throughput_bps": t.peak_1s_bps, "bin_s": t.bin_s, "ended_by": t.ended_by,
            "error_kind": t.error_kind, "error": t.error,
            "tail_range": f"{t.tail_range[0]}-{t.tail_range[1]}" if t.tail_range else None,
            "tail_bytes": len(t.tail) if t.tail is not None else None, "tail_error": t.tail_error,
            "tail_new_connection": _flag(t.tail_connection.new if t.tail_connection else None),
            "new_connection": _flag(t.connection.new if t.connection else None),
            "tcp_connect_s": t.connection.tcp_connect_s if t.connection else None,
            "tls_handshake_s": t.connection.tls_handshake_s if t.connection else None,
            "content_encoding": t.content_encoding, "decoded_bytes": t.decoded_bytes,
            "body_overrun": int(t.body_overrun), "stream_role": d.stream_role, "pair_bytes": d.pair_bytes,
            "pair_avg_throughput_bps": d.pair_avg_throughput_bps,
            "container": d.container,
            "video_codec": info.video_codec if info else None, "audio_codec": info.audio_codec if info else None,
            "width": info.width if info else None, "height": info.height if info else None,
            "frame_rate": info.frame_rate if info else None, "media_duration_s": d.media_duration_s,
            "media_duration_source": d.media_duration_source,
            "encoding_rate_bps": d.encoding_rate_bps, "encoding_rate_source": d.encoding_rate_source,
            "media_time_source": d.media_time_source, "media_problem": d.media_problem,
            "initial_buffer_s": params.initial_buffer_s, "min_buffer_s": params.min_buffer_s,
            "restart_buffer_s": params.restart_buffer_s,
            "time_to_start_s": p.time_to_start_s if p else None,
            "initial_data_bytes": p.initial_data_bytes if p else None,
            "initial_rate_bps": d.initial_rate_bps,
            "initial_playback_buffer_s": p.initial_buffer_s if p else None,
            "stall_count": p.stall_count if p else None, "stall_total_s": p.stall_total_s if p else None,
            "buffer_at_end_s": p.buffer_at_end_s if p else None,
            "media_received_s": p.media_received_s if p else None, "played_s": p.played_s if p else None,
            "playout_end_s": p.end_s if p else None, "playout_state_at_end": p.state_at_end if p else None,
            "playout_problem": d.playout_problem, "throughput_to_encoding_ratio": d.throughput_ratio,
            "tcp_min_rtt_ms": t.tcp_min_rtt_ms, "tcp_rcv_rtt_ms": t.tcp_rcv_rtt_ms,
            "delivery": d.delivery, "rendition_id": d.rendition_id, "declared_bandwidth_bps": d.declared_bandwidth_bps,
            "rendition_switches": d.rendition_switches if d.delivery != "progressive" else None,
            "p1203_input_json": json.dumps(d.p1203_input) if d.p1203_input else None,
        }
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        did = self.conn.execute(f"INSERT INTO downloads ({cols}) VALUES ({marks})", tuple(row.values())).lastrowid
        if d.segments:
            self.conn.executemany(
                "INSERT INTO segment_requests (download_id, seq, stream, kind, rendition_id, bandwidth_bps, url,"
                " status, trequest_s, tresponse_s, tfinish_s, bytes, media_start_s, media_duration_s, complete, error,"
                " range_first_byte, range_last_byte, new_connection, tcp_connect_s, tls_handshake_s, content_encoding)"
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
