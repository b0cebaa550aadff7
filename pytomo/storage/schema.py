"""The run database schema: normalised tables with units in column names, and the 2015 ``pytomo_crawl`` view."""

from __future__ import annotations

from pytomo.figures import FIGURES, ddl
from pytomo.results import TCP_INFO_FIELD_NAMES as TCP_INFO_FIELDS

COLUMNS_2015 = ("ID", "Service", "Url", "CacheUrl", "CacheServerDelay", "IP", "Resolver", "ResolveTime", "ASNumber",
                "PingMin", "PingAvg", "PingMax", "DownloadTime", "VideoType", "VideoDuration", "VideoLength",
                "EncodingRate", "DownloadBytes", "DownloadInterruptions", "InitialData", "InitialRate",
                "InitialPlaybackBuffer", "BufferingDuration", "PlaybackDuration", "BufferDurationAtEnd",
                "TimeTogetFirstByte", "MaxInstantThp", "RedirectUrl", "StatusCode", "LocalID")
"""The ``pytomo_crawl`` view's 2015 columns: the 2015 table's, in its order (inventory section 7.2), then ``LocalID``;
each keeps its 2015 meaning (``PlaybackDuration``: media seconds)."""
VIEW_EXTRA = {"played_s": "d.played_s"}
"""The view's columns after the 2015 ones, named as our figures, and their sources: ``played_s``, wall seconds spent
playing (2015 stored no such figure: its ``PlaybackDuration`` holds media seconds)."""
VIEW_UNITS = {"PlaybackDuration": "s", "BufferDurationAtEnd": "s", "played_s": "s"}
"""The unit of each view column that no figure reads back (``Figure.legacy``): the others have their figure's."""

# PlaybackDuration as 2015 meant it (inventory 6.5): the media seconds received at the last moment the player was
# playing (the whole media received when the window closed playing or ended; else, the playout stalled at its end,
# what it had received when that last stall began, read from the timeline); NULL when playback never started.
PLAYBACK_DURATION = (
    "CASE WHEN d.time_to_start_s IS NULL THEN NULL WHEN d.playout_state_at_end = 'buffering' THEN "
    "(SELECT b.playhead_s + b.buffer_s FROM playout_timeline b WHERE b.download_id = d.id AND b.state = 'buffering' "
    "AND b.t_s >= (SELECT max(p.t_s) FROM playout_timeline p WHERE p.download_id = d.id AND p.state = 'playing') "
    "ORDER BY b.t_s, b.rowid LIMIT 1) ELSE d.media_received_s END")

PER_ADDRESS = {  # the view's columns that are not one figure of the downloaded row: facts of the video, of the hop
    # and of each address it answered (the view has a row per address, downloaded or not)
    "ID": "replace(substr(coalesce(d.started_at, v.started_at), 1, 26), 'T', ' ')",
    "Service": "v.service", "Url": "v.page_url", "CacheUrl": "ha.origin", "IP": "ha.address", "Resolver": "ha.resolver",
    "ResolveTime": "ha.resolve_s",
    "ASNumber": "(SELECT x.as_number FROM downloads x WHERE x.video_row_id = ha.video_row_id AND x.address = ha.address"
                " AND x.as_number IS NOT NULL ORDER BY x.id LIMIT 1)",
    "PingMin": "coalesce(icmp.mn, tcp.mn)", "PingAvg": "coalesce(icmp.av, tcp.av)",
    "PingMax": "coalesce(icmp.mx, tcp.mx)",
    "VideoType": "d.container",
    "RedirectUrl": "(SELECT n.origin FROM hops n WHERE n.video_row_id = ha.video_row_id AND n.hop_index = "
                   "ha.hop_index + 1)",
    "StatusCode": "ha.status_code",  # the status observed at this hop (the figure http_status is the media answer's)
    "LocalID": "replace(substr(coalesce(d.started_at_local, v.started_at_local), 1, 26), 'T', ' ')",
    "PlaybackDuration": PLAYBACK_DURATION,
    "BufferDurationAtEnd": "d.buffer_at_end_s",  # its 2015 meaning; 2015 always wrote 0.0, so no figure reads it back
}


def view_columns() -> str:
    """The view's SELECT list: each 2015 column from the figure whose ``legacy`` names it (divided by its
    ``legacy_scale``: kbit/s there), else from PER_ADDRESS; then VIEW_EXTRA."""
    by_column = {f.legacy: f for f in FIGURES if isinstance(f.legacy, str)}
    out = []
    for col in (*COLUMNS_2015, *VIEW_EXTRA):
        if col in PER_ADDRESS or col in VIEW_EXTRA:
            expr = PER_ADDRESS.get(col) or VIEW_EXTRA[col]
        else:
            f = by_column[col]
            expr = f"{'v' if f.table == 'videos' else 'd'}.{f.name}"
            expr += f" / {f.legacy_scale:.1f}" if f.legacy_scale != 1 else ""
        out.append(f"    {expr} AS {col}")
    return ",\n".join(out)

# 2: videos.extractor_json; 3: connection use, content encoding, byte ranges, pairs; 4: figures declared in
# pytomo/figures.py, renamed (Figure.old_name), throughput_2015_bps, resolve_s and ping_*_ms per download, NULL stall
# figures when playback never started, the run's service as the plugin's label; 5: a run that travels (run_uuid,
# timezone, utc_offset_s, local times beside UTC ones, software_commit, settings without paths, credentials or host
# name, host_label NULL unless --label), as_number/as_name/country per download from --ip-db (the view's ASNumber);
# 6: playouts and playout_stalls, one row per --player profile and download (pytomo/engine/profiles.py); 7: the
# transport of each request: downloads.tls_version, segment_requests.http_version and tls_version, hops' connection;
# 8: impersonate (the browser fingerprint libcurl presented) per download, segment request and hop; http_stream_id
# and quic_fallback (why --http auto's HTTP/3 fell back to TCP) per download and segment request, http_stream_id per
# hop; live HLS (downloads.live and live_*, segment_requests' media_sequence, playlist_changed, new_segments and
# program_date_s, the live_latency table); 9: YouTube's clients per video (videos.yt_*: asked, answered, SABR-only,
# PO-token-skipped, the measured URL's client, PO token and User-Agent)
SCHEMA_VERSION = 9

TABLES = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY,
    run_uuid TEXT NOT NULL UNIQUE,       -- uuid4: names the run wherever the file goes
    schema_version INTEGER NOT NULL,
    software_version TEXT NOT NULL,
    software_commit TEXT,                -- git commit (short, -dirty when changed); NULL: not known
    started_at TEXT NOT NULL,            -- UTC ISO-8601
    ended_at TEXT,
    started_at_local TEXT,               -- the volunteer's local time, ISO-8601 with its UTC offset
    ended_at_local TEXT,
    timezone TEXT,                       -- IANA zone (Europe/Paris); NULL: not known, timezone_problem says why
    timezone_source TEXT,                -- TZ, /etc/timezone, /etc/localtime
    timezone_problem TEXT,
    utc_offset_s INTEGER NOT NULL,       -- local time - UTC at the start, in seconds
    host_label TEXT,                     -- --label; NULL: none given (the host name is never stored)
    service TEXT NOT NULL,
    provider TEXT,
    settings_json TEXT NOT NULL,         -- every setting of the run: paths as base names, no credentials
    vantage_as_number INTEGER,           -- the volunteer's network: always NULL here (the collector looks it up
    vantage_as_name TEXT,                -- from the uploader's address and keeps only AS and country)
    vantage_country TEXT,
    vantage_problem TEXT,
    python_version TEXT,
    platform TEXT,
    lab_scenario TEXT,
    status TEXT NOT NULL DEFAULT 'running',  -- running, finished, interrupted, failed
    stop_reason TEXT
);
{videos}CREATE TABLE IF NOT EXISTS hops (
    id INTEGER PRIMARY KEY,
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    hop_index INTEGER NOT NULL,
    url TEXT NOT NULL,
    origin TEXT NOT NULL,                -- scheme://host[:port]
    host TEXT NOT NULL,
    address TEXT,                        -- the address the request went to
    status_code INTEGER,                 -- as observed; NULL when the request failed
    location TEXT,                       -- the Location header as sent
    elapsed_s REAL,
    started_at TEXT NOT NULL,
    error TEXT,
    http_version TEXT,                   -- HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/3 of the answer (NULL: no answer)
    new_connection INTEGER,              -- 1: opened a new connection, 0: reused a kept-alive one
    tcp_connect_s REAL,                  -- TCP handshake of that new connection
    tls_handshake_s REAL,                -- TLS handshake after it (HTTPS)
    tls_version TEXT,                    -- TLSv1.2, TLSv1.3 (NULL: not over TLS)
    impersonate TEXT,                    -- browser target presented (chrome152); NULL: requests or libcurl's own
    http_stream_id INTEGER               -- HTTP/2 or HTTP/3 stream libcurl opened; NULL: HTTP/1.x, or requests
);
CREATE TABLE IF NOT EXISTS dns_answers (
    id INTEGER PRIMARY KEY,
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    host TEXT NOT NULL,
    resolver TEXT NOT NULL,
    resolver_address TEXT,
    rdtype TEXT NOT NULL,
    rcode TEXT NOT NULL,
    address TEXT,
    ttl_s INTEGER,
    latency_ms REAL,
    at TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS rtt_probes (
    id INTEGER PRIMARY KEY,
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    address TEXT NOT NULL,
    method TEXT NOT NULL,                -- icmp-dgram, icmp-raw, system-ping, tcp-connect
    probes_sent INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS rtt_samples (
    id INTEGER PRIMARY KEY,
    probe_id INTEGER NOT NULL REFERENCES rtt_probes(id),
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    address TEXT NOT NULL,
    method TEXT NOT NULL,
    seq INTEGER NOT NULL,
    rtt_ms REAL,                         -- NULL: lost
    sent_at TEXT NOT NULL
);
{downloads}CREATE TABLE IF NOT EXISTS segment_requests (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,                -- manifest, video, audio, muxed
    kind TEXT NOT NULL,                  -- manifest, index (sidx by range), init, media; range (progressive)
    rendition_id TEXT,
    bandwidth_bps REAL,
    url TEXT NOT NULL,
    http_status INTEGER,
    trequest_s REAL NOT NULL,            -- ISO/IEC 23009-1 Annex D, seconds since the session started
    tresponse_s REAL,
    tfinish_s REAL,
    bytes INTEGER NOT NULL,
    media_start_s REAL,
    media_duration_s REAL,
    complete INTEGER NOT NULL,
    error TEXT,
    range_first_byte INTEGER,            -- the Range asked for (NULL: the whole file)
    range_last_byte INTEGER,
    new_connection INTEGER,              -- 1: opened a new connection, 0: reused a kept-alive one
    tcp_connect_s REAL,
    tls_handshake_s REAL,
    content_encoding TEXT,
    http_version TEXT,                   -- HTTP/1.0, HTTP/1.1 (NULL: no answer)
    tls_version TEXT,                    -- TLSv1.2, TLSv1.3 (NULL: not over TLS)
    impersonate TEXT,                    -- browser target presented (chrome152); NULL: libcurl's own or requests
    http_stream_id INTEGER,              -- HTTP/2 or HTTP/3 stream (libcurl's verbose text); NULL: HTTP/1.x
    quic_fallback TEXT,                  -- HTTP/3 tried, TCP used: libcurl's words why; NULL: HTTP/3 or not tried
    media_sequence INTEGER,              -- live HLS: the segment's number, or a reload's EXT-X-MEDIA-SEQUENCE
    playlist_changed INTEGER,            -- live HLS reload (kind reload): 1 the playlist changed, 0 it did not
    new_segments INTEGER,                -- live HLS reload: segments no earlier load had listed
    program_date_s REAL,                 -- live HLS media: its EXT-X-PROGRAM-DATE-TIME, UNIX time
    PRIMARY KEY (download_id, seq)
);
CREATE TABLE IF NOT EXISTS live_latency (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    seq INTEGER NOT NULL,
    t_s REAL NOT NULL,                   -- seconds since the session started, every second from playback's start
    latency_s REAL NOT NULL,             -- wall clock minus the EXT-X-PROGRAM-DATE-TIME of the media playing
    playhead_s REAL NOT NULL,            -- the model's media position then
    PRIMARY KEY (download_id, seq)
);
CREATE TABLE IF NOT EXISTS throughput_samples (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    bin_index INTEGER NOT NULL,
    t_start_s REAL NOT NULL,             -- seconds since the request was sent
    bytes INTEGER NOT NULL,
    PRIMARY KEY (download_id, bin_index)
);
CREATE TABLE IF NOT EXISTS stalls (
    id INTEGER PRIMARY KEY,
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    seq INTEGER NOT NULL,
    start_s REAL NOT NULL,               -- seconds since the request was sent
    media_position_s REAL NOT NULL,
    duration_s REAL NOT NULL,
    ongoing INTEGER NOT NULL             -- 1: still stalled when the window closed
);
CREATE TABLE IF NOT EXISTS playout_timeline (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    t_s REAL NOT NULL,
    state TEXT NOT NULL,
    playhead_s REAL NOT NULL,
    buffer_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playouts (
    id INTEGER PRIMARY KEY,
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    profile TEXT NOT NULL,               -- --player: 2015, dashjs, shaka, hlsjs, native (pytomo/engine/profiles.py)
    drove_fetch INTEGER NOT NULL,        -- 1: its buffer goal and ABR rule decided what the HLS/DASH session fetched
    initial_buffer_threshold_s REAL NOT NULL,
    min_buffer_threshold_s REAL NOT NULL,
    restart_buffer_threshold_s REAL NOT NULL,  -- at the first stall; multiplied by restart_growth after each
    restart_growth REAL NOT NULL,
    time_to_start_s REAL,                -- seconds since the request was sent; NULL: problem says why
    stall_count INTEGER,                 -- NULL: playback never started
    stall_total_s REAL,
    played_s REAL,
    buffer_at_end_s REAL,
    media_received_s REAL,
    end_s REAL,
    state_at_end TEXT,
    problem TEXT                         -- not_started, or why the download has no playout
);
CREATE TABLE IF NOT EXISTS playout_stalls (
    playout_id INTEGER NOT NULL REFERENCES playouts(id),
    seq INTEGER NOT NULL,
    start_s REAL NOT NULL,               -- seconds since the request was sent
    media_position_s REAL NOT NULL,
    duration_s REAL NOT NULL,
    ongoing INTEGER NOT NULL,
    PRIMARY KEY (playout_id, seq)
);
CREATE TABLE IF NOT EXISTS tcp_info_samples (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    t_s REAL NOT NULL,                   -- seconds since the request was sent
    role TEXT NOT NULL,                  -- receiver: the crawler's downloading socket
    {tcp_columns}
);
CREATE INDEX IF NOT EXISTS videos_run ON videos(run_id);
CREATE INDEX IF NOT EXISTS hops_video ON hops(video_row_id);
CREATE INDEX IF NOT EXISTS dns_video ON dns_answers(video_row_id, host);
CREATE INDEX IF NOT EXISTS rtt_video ON rtt_samples(video_row_id, address);
CREATE INDEX IF NOT EXISTS rtt_probes_video ON rtt_probes(video_row_id);
CREATE INDEX IF NOT EXISTS downloads_video ON downloads(video_row_id);
CREATE INDEX IF NOT EXISTS stalls_download ON stalls(download_id);
CREATE INDEX IF NOT EXISTS timeline_download ON playout_timeline(download_id);
CREATE INDEX IF NOT EXISTS tcp_info_download ON tcp_info_samples(download_id);
CREATE INDEX IF NOT EXISTS playouts_download ON playouts(download_id);
""".replace("{tcp_columns}", ",\n    ".join(f"{name} INTEGER" for name in TCP_INFO_FIELDS)).replace(
    "{videos}", ddl("videos")).replace("{downloads}", ddl("downloads"))

# One row per video, hop and distinct address, with the 2015 column names and units (inventory section 7.2).
VIEW = """
CREATE VIEW IF NOT EXISTS pytomo_crawl AS
WITH hop_addresses AS (
    SELECT h.video_row_id, h.hop_index, h.origin, h.status_code, a.address,
           group_concat(DISTINCT CASE a.resolver WHEN 'system' THEN 'default' ELSE a.resolver END
                        || '_' || ifnull(a.resolver_address, '')) AS resolver,
           min(a.latency_ms) / 1000.0 AS resolve_s
    FROM hops h JOIN dns_answers a
      ON a.video_row_id = h.video_row_id AND a.host = h.host AND a.address IS NOT NULL
    GROUP BY h.video_row_id, h.hop_index, a.address
),
icmp AS (
    SELECT video_row_id, address, min(rtt_ms) AS mn, avg(rtt_ms) AS av, max(rtt_ms) AS mx
    FROM rtt_samples WHERE method != 'tcp-connect' GROUP BY video_row_id, address
),
tcp AS (
    SELECT video_row_id, address, min(rtt_ms) AS mn, avg(rtt_ms) AS av, max(rtt_ms) AS mx
    FROM rtt_samples WHERE method = 'tcp-connect' GROUP BY video_row_id, address
),
last_hop AS (SELECT video_row_id, max(hop_index) AS hop_index FROM hops GROUP BY video_row_id)
SELECT
{columns}
FROM hop_addresses ha
JOIN videos v ON v.id = ha.video_row_id
JOIN last_hop lh ON lh.video_row_id = ha.video_row_id
LEFT JOIN downloads d ON d.id = (
    SELECT x.id FROM downloads x
    WHERE x.video_row_id = ha.video_row_id AND x.address = ha.address AND ha.hop_index = lh.hop_index
    ORDER BY x.id LIMIT 1)
LEFT JOIN icmp ON icmp.video_row_id = ha.video_row_id AND icmp.address = ha.address
LEFT JOIN tcp ON tcp.video_row_id = ha.video_row_id AND tcp.address = ha.address
ORDER BY ha.video_row_id, ha.hop_index;
""".replace("{columns}", view_columns())

IMPORTED_TABLE = "crawl_2015"
# A run made by ``pytomo import`` from a 2015 database or a 2013 dump: every source row as the 2015 tool wrote it,
# under its 2015 name and meaning (PlaybackDuration in media seconds, EncodingRate in kbit/s, ...), with the video it
# belongs to; ID is its time in UTC (as the view's ID), LocalID the source's own local text. The export's
# ``pytomo_crawl`` of an imported run is this table (pytomo/readers/tables.py), not the view.
CRAWL_2015 = f"""
CREATE TABLE IF NOT EXISTS {IMPORTED_TABLE} (
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    ID TEXT NOT NULL, Service text, Url text, CacheUrl text, CacheServerDelay real, IP text, Resolver text,
    ResolveTime real, ASNumber int, PingMin real, PingAvg real, PingMax real, DownloadTime real, VideoType text,
    VideoDuration real, VideoLength real, EncodingRate real, DownloadBytes int, DownloadInterruptions int,
    InitialData real, InitialRate real, InitialPlaybackBuffer real, BufferingDuration real, PlaybackDuration real,
    BufferDurationAtEnd real, TimeTogetFirstByte real, MaxInstantThp real, RedirectUrl text, StatusCode int,
    LocalID TEXT NOT NULL
);
"""
