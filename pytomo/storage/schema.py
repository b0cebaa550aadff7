"""The run database schema: normalised tables with units in column names, and the 2015 ``pytomo_crawl`` view."""

from __future__ import annotations

from pytomo.engine.tcpinfo import FIELD_NAMES as TCP_INFO_FIELDS

SCHEMA_VERSION = 3  # 2: videos.extractor_json; 3: connection use, content encoding, byte ranges, pairs

TABLES = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    software_version TEXT NOT NULL,
    started_at TEXT NOT NULL,            -- UTC ISO-8601
    ended_at TEXT,
    host_label TEXT NOT NULL,
    service TEXT NOT NULL,
    provider TEXT,
    settings_json TEXT NOT NULL,         -- every setting of the run
    python_version TEXT,
    platform TEXT,
    lab_scenario TEXT,
    status TEXT NOT NULL DEFAULT 'running',  -- running, finished, interrupted, failed
    stop_reason TEXT
);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES run(id),
    round INTEGER NOT NULL,
    seed_source TEXT,                    -- input, popular:<time frame>, related:<video id>
    page_url TEXT NOT NULL,
    service TEXT,
    video_id TEXT,
    title TEXT,
    duration_s REAL,                     -- as the platform announces it
    related_count INTEGER,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    cache_server_delay_s REAL,           -- time to resolve the page and walk the redirects
    status TEXT NOT NULL,                -- ok, error, interrupted
    error_stage TEXT,
    error_kind TEXT,
    error_message TEXT,
    extractor_json TEXT,                 -- how the page was resolved: resolver and version, client, format, warnings
    available_wait_s REAL                -- waited for the format's available_at before the first media request
);
CREATE TABLE IF NOT EXISTS hops (
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
    error TEXT
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
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    video_row_id INTEGER NOT NULL REFERENCES videos(id),
    url TEXT NOT NULL,
    host TEXT NOT NULL,
    address TEXT NOT NULL,
    started_at TEXT NOT NULL,
    window_s REAL NOT NULL,
    status_code INTEGER,
    http_version TEXT,
    content_type TEXT,
    content_length_bytes INTEGER,
    headers_s REAL,                      -- request sent -> response headers
    ttfb_s REAL,                         -- request sent -> first body byte
    last_byte_s REAL,
    duration_s REAL,                     -- response headers -> last byte (2015 DownloadTime)
    bytes INTEGER NOT NULL,
    first_read_bytes INTEGER,
    avg_throughput_bps REAL,             -- (bytes - first read) * 8 / (last byte - first byte)
    peak_1s_throughput_bps REAL,         -- best 1 s of consecutive throughput bins
    bin_s REAL NOT NULL,
    ended_by TEXT,                       -- window, eof, error, interrupted
    error_kind TEXT,
    error TEXT,
    tail_range TEXT,                     -- byte range fetched for an index at the end of the file
    tail_bytes INTEGER,
    tail_error TEXT,
    tail_new_connection INTEGER,         -- 1: the tail's range request opened a new connection, 0: reused one
    new_connection INTEGER,              -- 1: the request opened a new connection, 0: it reused a kept-alive one
    tcp_connect_s REAL,                  -- TCP handshake of that new connection
    tls_handshake_s REAL,                -- TLS handshake after it (HTTPS)
    content_encoding TEXT,               -- gzip, deflate: bytes are on the wire, decoded_bytes after decoding
    decoded_bytes INTEGER,
    body_overrun INTEGER,                -- 1: more bytes followed the body than its Content-Length announced
    stream_role TEXT NOT NULL DEFAULT 'progressive',  -- progressive; video or audio of a pair played together
    pair_bytes INTEGER,                  -- a pair's video row: bytes of both streams
    pair_avg_throughput_bps REAL,        -- a pair's video row: both streams' bytes over their common span
    container TEXT,
    video_codec TEXT,
    audio_codec TEXT,
    width INTEGER,
    height INTEGER,
    frame_rate REAL,
    media_duration_s REAL,
    media_duration_source TEXT,          -- mediainfo, container-header, container-index (whole file received)
    encoding_rate_bps REAL,
    encoding_rate_source TEXT,           -- mediainfo-overall, size-over-duration
    media_time_source TEXT,              -- mp4-sample-table, mp4-fragments, webm-blocks, flv-tags, mpegts-pes, or
                                         -- average-bitrate
    media_problem TEXT,                  -- why the media figures are NULL or approximate
    initial_buffer_s REAL,               -- thresholds used by the playout model
    min_buffer_s REAL,
    restart_buffer_s REAL,
    time_to_start_s REAL,                -- request sent -> playback starts; NULL: not started in the window
    initial_data_bytes INTEGER,
    initial_rate_bps REAL,
    initial_playback_buffer_s REAL,      -- media buffered when playback started
    stall_count INTEGER,
    stall_total_s REAL,
    buffer_at_end_s REAL,
    media_received_s REAL,
    played_s REAL,                       -- wall time spent playing
    playout_end_s REAL,
    playout_state_at_end TEXT,
    playout_problem TEXT,                -- why the playout figures are NULL
    throughput_to_encoding_ratio REAL,
    tcp_min_rtt_ms REAL,                 -- tcpi_min_rtt of the receiving socket (fed by ACKs of what we sent)
    tcp_rcv_rtt_ms REAL,                 -- median tcpi_rcv_rtt: the receiver's RTT estimate under load
    delivery TEXT NOT NULL DEFAULT 'progressive',  -- progressive, hls, dash
    rendition_id TEXT,                   -- hls/dash: the last video rendition played
    declared_bandwidth_bps REAL,         -- hls/dash: its bandwidth as the manifest declares it
    rendition_switches INTEGER,
    p1203_input_json TEXT                -- ITU-T P.1203 input (I11, I13, I23, IGen) for this video
);
CREATE TABLE IF NOT EXISTS segment_requests (
    download_id INTEGER NOT NULL REFERENCES downloads(id),
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,                -- manifest, video, audio, muxed
    kind TEXT NOT NULL,                  -- manifest, index (sidx by range), init, media; range (progressive)
    rendition_id TEXT,
    bandwidth_bps REAL,
    url TEXT NOT NULL,
    status INTEGER,
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
""".replace("{tcp_columns}", ",\n    ".join(f"{name} INTEGER" for name in TCP_INFO_FIELDS))

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
    replace(substr(coalesce(d.started_at, v.started_at), 1, 26), 'T', ' ') AS ID,
    v.service AS Service,
    v.page_url AS Url,
    ha.origin AS CacheUrl,
    v.cache_server_delay_s AS CacheServerDelay,
    ha.address AS IP,
    ha.resolver AS Resolver,
    ha.resolve_s AS ResolveTime,
    NULL AS ASNumber,
    coalesce(icmp.mn, tcp.mn) AS PingMin,
    coalesce(icmp.av, tcp.av) AS PingAvg,
    coalesce(icmp.mx, tcp.mx) AS PingMax,
    d.duration_s AS DownloadTime,
    d.container AS VideoType,
    d.media_duration_s AS VideoDuration,
    d.content_length_bytes AS VideoLength,
    d.encoding_rate_bps / 1000.0 AS EncodingRate,
    d.bytes AS DownloadBytes,
    d.stall_count AS DownloadInterruptions,
    d.initial_data_bytes AS InitialData,
    d.initial_rate_bps / 1000.0 AS InitialRate,
    d.initial_playback_buffer_s AS InitialPlaybackBuffer,
    d.stall_total_s AS BufferingDuration,
    d.played_s AS PlaybackDuration,
    d.buffer_at_end_s AS BufferDurationAtEnd,
    d.ttfb_s AS TimeTogetFirstByte,
    d.peak_1s_throughput_bps / 1000.0 AS MaxInstantThp,
    (SELECT n.origin FROM hops n WHERE n.video_row_id = ha.video_row_id AND n.hop_index = ha.hop_index + 1)
        AS RedirectUrl,
    ha.status_code AS StatusCode
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
"""
