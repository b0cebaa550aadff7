"""YouTube's formats requested as its player requests them, against the lab's YouTube-rules cache server's truth.

The lab's recordings carry the formats' ``http_headers``, ``downloader_options.http_chunk_size`` and, for one
video, ``available_at``; its ``rules = "youtube"`` server refuses what googlevideo refuses (another User-Agent, a
request without a range or with an open one, a HEAD, too early) and logs every request. The crawl must pass every
rule, asking chunks as yt-dlp draws them (95 % to 100 % of the chunk size), and its figures must agree with that
log.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from pytomo.engine.pair import play_pair
from pytomo.lab.platforms import recordings
from pytomo.results import DownloadAnalysis, PlayoutParams, Transfer
from tests.conftest import connect, database_of, run_crawler

PAIR, LATER = "LabPairAV08", "LabPreRol09"
CHUNK_BYTES = 262_144


def _formats(video_id: str) -> list[dict]:
    for entry in recordings("youtube")["videos"]:
        if entry.get("id") == video_id:
            return entry["ytdlp"]["info"]["formats"]
    raise KeyError(video_id)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("player-requests")
    truth = out / "truth.jsonl"
    proc = run_crawler(["-s", "youtube", "--lab", "-b", "-D", "3", "-n", "1", "-S", "0", "--database-dir", str(out),
                        "--lab-truth", str(truth), f"https://www.youtube.com/watch?v={PAIR}",
                        f"https://www.youtube.com/watch?v={LATER}"])
    records = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]
    return connect(database_of(proc)), [r for r in records if r.get("rules") == "youtube"]


def _rows(conn, video_id):
    video = conn.execute("SELECT * FROM videos WHERE video_id = ?", (video_id,)).fetchone()
    downloads = conn.execute("SELECT * FROM downloads WHERE video_row_id = ? ORDER BY id", (video["id"],)).fetchall()
    return video, downloads


def test_every_request_carries_the_formats_headers_and_none_is_refused(crawl):
    conn, served = crawl
    agent = _formats(PAIR)[0]["http_headers"]["User-Agent"]
    assert served and all(t["user_agent"] == agent for t in served)
    assert not [t for t in served if t["status"] == 403 or t.get("refused")]
    assert all(t["method"] == "GET" for t in served)  # never a HEAD to the media host
    for video_id in (PAIR, LATER):
        video, _downloads = _rows(conn, video_id)
        assert video["status"] == "ok", (video_id, video["error_kind"], video["error_message"])


def test_ranges_drawn_as_yt_dlp_draws_them_back_to_back_over_reused_connections(crawl):
    conn, served = crawl
    media = [t for t in served if t["range"] != "bytes=0-0"]  # the first-byte GET of the redirect walk aside
    assert media and all(t["status"] == 206 for t in media)
    sizes = []
    for t in media:  # a closed range: a chunk drawn in [95 %, 100 %] of the chunk size, or up to the file's end
        first, last = (int(x) for x in t["range"].removeprefix("bytes=").split("-"))
        assert int(0.95 * CHUNK_BYTES) <= last - first + 1 <= CHUNK_BYTES or last == t["size_bytes"] - 1, t["range"]
        sizes.append(last - first + 1)
    assert len(set(sizes)) > 1  # drawn, not fixed
    assert sum(1 for t in media if t["connection_requests"] > 1) >= len(media) - 3  # one new connection a stream
    _video, downloads = _rows(conn, PAIR)
    for d in downloads:
        reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? AND kind = 'range' ORDER BY seq",
                            (d["id"],)).fetchall()
        assert len(reqs) >= 2 and reqs[0]["range_first_byte"] == 0
        for before, after in zip(reqs, reqs[1:]):  # each range starts where the one before ended
            assert after["range_first_byte"] == before["range_last_byte"] + 1
        assert all(r["new_connection"] == 0 for r in reqs[1:])  # back to back on the connection of the first
        assert sum(r["bytes"] for r in reqs) == d["bytes"]


def test_the_format_is_waited_for_until_available_at(crawl):
    conn, served = crawl
    video, downloads = _rows(conn, LATER)
    assert video["available_wait_s"] is not None and 1.5 <= video["available_wait_s"] <= 4.0
    later = [t for t in served if t.get("available_at_s")]
    assert later and all(datetime.fromisoformat(t["started_at"]).timestamp() >= t["available_at_s"] for t in later)
    assert downloads[0]["bytes"] > 0


def test_video_and_audio_measured_together_against_the_truth(crawl):
    conn, served = crawl
    _video, downloads = _rows(conn, PAIR)
    assert [d["stream_role"] for d in downloads] == ["video", "audio"]
    for d in downloads:
        part = "video" if d["stream_role"] == "video" else "audio"
        mine = {int(t["range"].removeprefix("bytes=").split("-")[0]): t for t in served
                if t.get("part") == part and t["range"] != "bytes=0-0"}
        reqs = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? AND kind = 'range'",
                            (d["id"],)).fetchall()
        assert {r["range_first_byte"] for r in reqs} == set(mine), part  # every range served once, none else
        for r in reqs:  # what arrived is what the server sent (the window may cut the last one short)
            sent = mine[r["range_first_byte"]]["bytes_sent"]
            assert r["bytes"] == sent if r["complete"] else r["bytes"] <= sent, (part, r["range_first_byte"])
        done = [t for first, t in mine.items() if any(r["complete"] and r["range_first_byte"] == first for r in reqs)]
        starts = [datetime.fromisoformat(t["started_at"]).timestamp() for t in done]
        ends = [datetime.fromisoformat(t["ended_at"]).timestamp() for t in done]
        server_bps = sum(t["bytes_sent"] for t in done) * 8 / (max(ends) - min(starts))
        complete = [r for r in reqs if r["complete"]]
        ours_bps = sum(r["bytes"] for r in complete) * 8 / (max(r["tfinish_s"] for r in complete)
                                                            - min(r["trequest_s"] for r in complete))
        assert ours_bps == pytest.approx(server_bps, rel=0.15), part
    video_row, audio_row = downloads
    assert video_row["pair_bytes"] == video_row["bytes"] + audio_row["bytes"]
    assert video_row["time_to_start_s"] is not None and video_row["stall_count"] == 0
    assert audio_row["time_to_start_s"] is None and "played together" in audio_row["playout_problem"]


def _analysis(events: list[tuple[float, int, float]], duration_s: float) -> DownloadAnalysis:
    t = Transfer(url="http://127.0.0.1/x", address="127.0.0.1", started_at=datetime.now(), window_s=10.0, bin_s=0.1,
                 headers_s=0.0, first_byte_s=events[0][0], last_byte_s=events[-1][0], bytes_total=events[-1][1],
                 ended_by="window")
    from pytomo.engine.playout import simulate

    a = DownloadAnalysis(transfer=t, params=PlayoutParams(), media_duration_s=duration_s)
    a.media_events = events
    a.playout = simulate(events, 10.0, PlayoutParams(), media_duration_s=duration_s)
    return a


@pytest.mark.parametrize("slow", ["video", "audio"])
def test_the_pair_stalls_when_either_buffer_runs_dry(slow):
    fast = [(0.1 * k, 1000 * k, min(30.0, 1.0 * k)) for k in range(1, 101)]  # 10 s of media a second
    dry = [(0.1, 100, 3.0), (6.0, 200, 3.5)]  # 3 s at once, then nothing until 6 s
    video = _analysis(dry if slow == "video" else fast, 30.0)
    audio = _analysis(dry if slow == "audio" else fast, 30.0)
    assert (video.playout.stall_count if slow == "video" else audio.playout.stall_count) >= 1
    play_pair(video, audio, 0.0, PlayoutParams())
    assert video.playout.time_to_start_s is not None and video.playout.stall_count >= 1
    first = video.playout.stalls[0]
    assert 3.0 <= first.start_s <= 3.3  # the slow stream's 3 s ran out, whichever it is


def test_a_range_over_the_servers_cap_ends_the_download_as_yt_dlp_s_does(tmp_path):
    """A googlevideo session that caps ranges under the chunk size: yt-dlp's download ends at the 403 (an HTTP error
    under 500 is not retried, yt_dlp/downloader/http.py); so does the crawler's, stored as a 403 of a platform's
    media host is (``blocked_client``: the crawler cannot tell a cap from a refusal; the lab's truth says which)."""
    from pytomo.lab.scenario import default_scenario_path

    text = default_scenario_path().read_text(encoding="utf-8")
    capped = text.replace("max_range_bytes = 1_048_576", "max_range_bytes = 200_000")
    assert capped != text
    scenario = tmp_path / "capped.toml"
    scenario.write_text(capped, encoding="utf-8")
    truth = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "youtube", "--lab", "--lab-scenario", str(scenario), "-b", "-D", "3", "-n", "1",
                        "-S", "0", "--database-dir", str(tmp_path), "--lab-truth", str(truth),
                        f"https://www.youtube.com/watch?v={PAIR}"])
    conn = connect(database_of(proc))
    video, _downloads = _rows(conn, PAIR)
    assert (video["status"], video["error_kind"]) == ("error", "blocked_client"), video["error_message"]
    assert "HTTP 403" in video["error_message"]
    served = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]
    ranges = [t for t in served if t.get("rules") == "youtube" and t["range"] != "bytes=0-0"]
    # the first chunk of each stream refused for its size (asked again as the next browsers, as a refused platform
    # request is: pytomo/engine/impersonate.py); nothing asked past it
    assert ranges and all(t["status"] == 403 and t["refused"] == "range_too_large" for t in ranges)
    assert {t["range"].removeprefix("bytes=").split("-")[0] for t in ranges} == {"0"}
    assert {t.get("part") for t in ranges} == {"video", "audio"} and len(ranges) <= 6
