"""Writes a run database of N videos (default 10,000) through the real schema, from seeded random values."""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytomo.results import iso  # noqa: E402
from pytomo.storage.schema import SCHEMA_VERSION, TABLES, VIEW  # noqa: E402
from pytomo.storage.sqlite import DB_SUFFIX  # noqa: E402
from pytomo.version import __version__  # noqa: E402

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
SERVERS = [(f"cache-{i}.bench.test", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(40)]
TITLES = ["Sunrise", "City timelapse", "<script>alert(1)</script> & \"quotes\"", "Ünïcødé 日本語 ✓", "News"]
WINDOW_S = 10.0
BIN_S = 0.1


def _video(c: sqlite3.Connection, rng: random.Random, run_id: int, n: int, at: datetime) -> None:
    host, ip = rng.choice(SERVERS)
    failed = rng.random() < 0.05
    page = f"http://www.bench.test/watch?v=v{n:06d}"
    vid = c.execute(
        "INSERT INTO videos (run_id, round, seed_source, page_url, service, video_id, title, announced_duration_s,"
        " related_count, started_at, ended_at, cache_server_delay_s, status, error_stage, error_kind, error_message)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (run_id, 0, "popular:today", page, "Bench", f"v{n:06d}", f"{rng.choice(TITLES)} #{n}", 30.0, 3, iso(at),
         iso(at + timedelta(seconds=WINDOW_S + 1)), rng.uniform(0.05, 0.5),
         "error" if failed else "ok", "redirects" if failed else None, "http_status" if failed else None,
         "HTTP 404" if failed else None)).lastrowid
    chain = [("www.bench.test", "10.1.0.1")] * rng.randint(0, 2) + [(host, ip)]
    for i, (h, a) in enumerate(chain):
        last = i == len(chain) - 1
        status = (404 if failed else 200) if last else 302
        c.execute("INSERT INTO hops (video_row_id, hop_index, url, origin, host, address, status_code, location,"
                  " elapsed_s, started_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (vid, i, f"http://{h}/v{n}", f"http://{h}", h, a, status, None if last else f"http://{host}/",
                   rng.uniform(0.001, 0.05), iso(at)))
    for h, a in dict.fromkeys(chain):
        for rdtype, addr in (("A", a), ("AAAA", None)):
            c.execute("INSERT INTO dns_answers (video_row_id, host, resolver, resolver_address, rdtype, rcode,"
                      " address, ttl_s, latency_ms, at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (vid, h, "system", "10.9.9.9", rdtype, "NOERROR", addr, 300, rng.uniform(1, 40), iso(at)))
    base_rtt = 5 + (SERVERS.index((host, ip)) % 10) * 4
    answered: dict[tuple[str, str], list[float]] = {}
    for _h, a in dict.fromkeys(chain):
        for method in ("icmp-dgram", "tcp-connect"):
            pid = c.execute("INSERT INTO rtt_probes (video_row_id, address, method, probes_sent) VALUES (?,?,?,?)",
                            (vid, a, method, 10)).lastrowid
            samples = [None if rng.random() < 0.02 else base_rtt + rng.expovariate(0.5) for _s in range(10)]
            answered[(a, method)] = [r for r in samples if r is not None]
            c.executemany("INSERT INTO rtt_samples (probe_id, video_row_id, address, method, seq, rtt_ms, sent_at)"
                          " VALUES (?,?,?,?,?,?,?)",
                          [(pid, vid, a, method, s, r, iso(at)) for s, r in enumerate(samples)])
    if failed:
        return
    rate = rng.choice([0.6e6, 1.5e6, 4e6, 20e6]) * rng.uniform(0.7, 1.3)
    enc = 1e6
    nbins = int(WINDOW_S / BIN_S)
    bins = [max(0, int(rate * BIN_S / 8 * rng.uniform(0.5, 1.5))) for _ in range(nbins)]
    total = sum(bins)
    stalls = [] if rate > enc * 1.2 else [(rng.uniform(2, 8), rng.uniform(0.3, 3.0)) for _ in range(rng.randint(1, 3))]
    tts = rng.uniform(0.05, 2.5)
    rtts = answered.get((ip, "icmp-dgram")) or answered.get((ip, "tcp-connect")) or []  # as the crawler's PingMin
    pings = (min(rtts), sum(rtts) / len(rtts), max(rtts)) if rtts else (None, None, None)
    did = c.execute(
        "INSERT INTO downloads (video_row_id, url, host, address, started_at, window_s, http_status, http_version,"
        " content_type, content_length_bytes, headers_s, first_byte_s, last_byte_s, transfer_s, bytes,"
        " first_read_bytes, avg_throughput_bps, peak_1s_bps, bin_s, ended_by, container, video_codec, audio_codec,"
        " width, height, frame_rate, media_duration_s, encoding_rate_bps, encoding_rate_source, media_time_source,"
        " initial_buffer_threshold_s, min_buffer_threshold_s, restart_buffer_threshold_s, time_to_start_s,"
        " initial_data_bytes, initial_rate_bps, buffered_at_start_s, stall_count, stall_total_s, buffer_at_end_s,"
        " media_received_s, played_s, playout_end_s, playout_state_at_end, throughput_to_encoding_ratio,"
        " throughput_2015_bps, resolve_s, ping_min_ms, ping_avg_ms, ping_max_ms)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
        "?,?,?,?,?)",
        (vid, f"http://{host}/v{n}.mp4", host, ip, iso(at + timedelta(seconds=0.3)), WINDOW_S, 200, "HTTP/1.1",
         "video/mp4", 3_750_000, 0.02, rng.uniform(0.02, 0.4), WINDOW_S, WINDOW_S - 0.05, total, bins[0],
         rate, rate * 1.4, BIN_S, "window", "mp4", "avc1", "mp4a", 640, 360, 25.0, 30.0, enc, "mediainfo-overall",
         "mp4-sample-table", 2.0, 0.1, 1.0, tts, 250_000, rate, 2.0, len(stalls), sum(d for _s, d in stalls),
         rng.uniform(0, 20), rate * WINDOW_S / enc, WINDOW_S - tts - sum(d for _s, d in stalls), WINDOW_S,
         "playing", rate / enc, total * 8 / (WINDOW_S - 0.05), rng.uniform(0.001, 0.04), *pings)).lastrowid
    c.executemany("INSERT INTO throughput_samples (download_id, bin_index, t_start_s, bytes) VALUES (?,?,?,?)",
                  [(did, i, i * BIN_S, b) for i, b in enumerate(bins)])
    c.executemany("INSERT INTO stalls (download_id, seq, start_s, media_position_s, duration_s, ongoing)"
                  " VALUES (?,?,?,?,?,?)", [(did, i, s, s - tts, d, 0) for i, (s, d) in enumerate(stalls)])
    c.executemany("INSERT INTO playout_timeline (download_id, t_s, state, playhead_s, buffer_s) VALUES (?,?,?,?,?)",
                  [(did, i * 0.5, "playing" if i * 0.5 > tts else "initial", max(0.0, i * 0.5 - tts),
                    rng.uniform(0, 8)) for i in range(int(WINDOW_S / 0.5))])


def make_database(directory: Path, videos: int = 10_000, seed: int = 42) -> Path:
    """Write ``bench.bench.<start>.pytomo_database.db`` with ``videos`` videos, one a minute; return its path."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench.bench.{START.strftime('%Y-%m-%dT%H-%M-%SZ')}{DB_SUFFIX}"
    path.unlink(missing_ok=True)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript(TABLES + VIEW)
    c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    end = START + timedelta(minutes=videos)
    run_id = c.execute(
        "INSERT INTO run (run_uuid, schema_version, software_version, started_at, ended_at, timezone, utc_offset_s,"
        " host_label, service, provider, settings_json, status, stop_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (str(uuid.UUID(int=seed, version=4)), SCHEMA_VERSION, __version__, iso(START), iso(end), "UTC", 0, "bench",
         "bench", "", json.dumps({"seed": seed}), "finished", "done")).lastrowid
    c.execute("BEGIN")
    for n in range(videos):
        _video(c, rng, run_id, n, START + timedelta(minutes=n, seconds=rng.uniform(0, 20)))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return path


def main() -> None:
    """Command line: ``web_make_db.py DIR [-n VIDEOS]``; prints the database path."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("directory", type=Path)
    p.add_argument("-n", "--videos", type=int, default=10_000)
    args = p.parse_args()
    print(make_database(args.directory, args.videos))


if __name__ == "__main__":
    main()
