"""Throughput over the window against servers that pace in bursts (lighttpd, Apache's mod_ratelimit, nginx), with
curl over the same window as the reference."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytomo.results import Transfer
from tests.conftest import ROOT, connect, database_of, run_crawler
from tests.paced_servers import SERVERS, binary, curl_window

MEDIA_DIR = ROOT.parent / "shared" / "realmedia" / "progressive"
MEDIA = "moviepy_long_example.mp4"  # 1,344,578 bytes, 16 s: 672 kbit/s, paced below it
RATE_KIB_S = 40  # 328 kbit/s
WINDOW_S = 5.0
ATTEMPTS = 6  # lighttpd sometimes releases its second burst a second late, to curl as to us: pairs must agree
# lighttpd's bursts follow its own clock's seconds, so how many fall in a window depends on where in a second the
# request began: each attempt starts curl at another fraction of a second from the crawler's request (its started_at)
PHASE_STEP_S = 0.3
BYTES_AGREE = 0.01
RATE_AGREE = 0.02


def _row(tmp_path: Path, url: str):
    proc = run_crawler(["-s", "generic", "-b", "-D", str(WINDOW_S), "-n", "1", "-S", "0", "--database-dir",
                        str(tmp_path), url], timeout_s=120)
    return connect(database_of(proc)).execute("SELECT * FROM downloads").fetchone()


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_throughput_of_a_window_cut_download_is_curls_over_the_same_window(server, tmp_path):
    if binary(server) is None:
        pytest.skip(f"{server} is not installed (Debian package {'nginx-light' if server == 'nginx' else server})")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    if not (MEDIA_DIR / MEDIA).exists():
        pytest.skip(f"the real-media corpus is not at {MEDIA_DIR}")
    work = tmp_path / "server"
    work.mkdir()
    work.chmod(0o755)
    pairs = []
    with SERVERS[server](MEDIA_DIR, work, RATE_KIB_S) as base:
        url = f"{base}/{MEDIA}"
        for attempt in range(ATTEMPTS):
            d = _row(tmp_path / str(attempt), url)
            _wait_for_phase((datetime.fromisoformat(d["started_at"]).timestamp() + attempt * PHASE_STEP_S) % 1.0)
            ref = curl_window(url, WINDOW_S)
            assert ref.exit_code == 28, ref  # curl's --max-time ended it, as the window ends ours
            pairs.append((d["bytes"], d["avg_throughput_bps"], ref.size_download_bytes, ref.from_first_byte_bps))
            assert d["ended_by"] == "window" and d["bytes"] < MEDIA_DIR.joinpath(MEDIA).stat().st_size
            assert d["avg_throughput_bps"] == pytest.approx(d["bytes"] * 8 / WINDOW_S, rel=1e-9)
            assert d["throughput_2015_bps"] == pytest.approx(d["bytes"] * 8 / d["transfer_s"], rel=1e-9)
            assert d["avg_throughput_bps"] < RATE_KIB_S * 1024 * 8 * 1.25  # at most one second's worth ahead
            if abs(d["bytes"] - ref.size_download_bytes) <= BYTES_AGREE * ref.size_download_bytes:
                break
    agreeing = [p for p in pairs if abs(p[0] - p[2]) <= BYTES_AGREE * p[2]]
    assert agreeing, f"{server} never sent curl and the crawler the same bytes in {WINDOW_S} s: {pairs}"
    ours_bps, curl_bps = agreeing[-1][1], agreeing[-1][3]
    print(f"{server}: crawler/curl = {ours_bps / curl_bps:.4f} ({pairs})")
    assert ours_bps == pytest.approx(curl_bps, rel=RATE_AGREE), (server, pairs)


def _wait_for_phase(phase_s: float) -> None:
    """Sleep until the wall clock is ``phase_s`` into a second."""
    time.sleep((phase_s - time.time()) % 1.0)


def _transfer(ended_by: str) -> Transfer:
    """One second's worth at the start of each of 5 s (a window of 5 s), read as a server pacing in bursts sends."""
    tr = Transfer(url="http://x/v.mp4", address="127.0.0.1", started_at=datetime.now(UTC), window_s=5.0, bin_s=0.1,
                  headers_s=0.01, first_byte_s=0.01, first_read_bytes=1000, last_byte_s=4.01, ended_by=ended_by)
    tr.bytes_total = 5 * 40_000
    return tr


def test_the_window_counts_the_idle_second_after_the_last_burst():
    assert _transfer("window").avg_throughput_bps == pytest.approx(5 * 40_000 * 8 / 5.0)
    # a body that ended by itself keeps the rate it flowed at once it flowed
    assert _transfer("eof").avg_throughput_bps == pytest.approx((5 * 40_000 - 1000) * 8 / 4.0)
