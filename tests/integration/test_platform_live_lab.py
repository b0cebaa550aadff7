"""A live video of each recorded platform, crawled as a volunteer would (``-s youtube --lab``, ``-s dailymotion
--lab`` with its page URL): the recorded yt-dlp answer (``is_live``, an HLS format with its ``http_headers``) gives
the live channel's playlist to the player, which follows it at the live edge with the format's headers (issue 18,
platforms). The truth is nginx's access log: every playlist and segment request, with the User-Agent it carried."""

from __future__ import annotations

import json

import pytest

from pytomo.lab.live import PLAYLIST
from pytomo.lab.recorded import recordings
from pytomo.lab.tools import nginx_exe
from tests.conftest import connect, database_of, run_crawler

NGINX, WHY = nginx_exe()
pytestmark = pytest.mark.skipif(NGINX is None, reason=WHY)
WINDOW_S = 6.0
PAGES = {"youtube": ("LabLiveHl10", "https://www.youtube.com/watch?v=LabLiveHl10"),
         "dailymotion": ("x8lablive", "https://www.dailymotion.com/video/x8lablive")}


def _recorded_format(service: str, video_id: str) -> dict:
    entry = next(v for v in recordings(service)["videos"] if v["id"] == video_id)
    assert entry["ytdlp"]["info"]["live_status"] == "is_live"
    return entry["ytdlp"]["info"]["formats"][0]


@pytest.mark.parametrize("service", sorted(PAGES))
def test_a_platform_live_video_is_followed_at_the_live_edge(tmp_path, service):
    video_id, page = PAGES[service]
    fmt = _recorded_format(service, video_id)
    truth = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", service, "-b", "--lab", "-D", str(WINDOW_S), "-n", "1", "-S", "0",
                        "--lab-truth", str(truth), "--database-dir", str(tmp_path), page], timeout_s=240)
    conn = connect(database_of(proc))
    video = conn.execute("SELECT * FROM videos WHERE video_id = ?", (video_id,)).fetchone()
    assert video["status"] == "ok", video["error_message"]
    assert json.loads(video["extractor_json"])["format_id"] == fmt["format_id"]
    d = conn.execute("SELECT * FROM downloads WHERE video_row_id = ?", (video["id"],)).fetchone()
    assert d["delivery"] == "hls" and d["live"] == 1 and d["ended_by"] == "window"
    assert d["live_reloads"] >= 1 and d["live_latency_problem"] is None and d["live_latency_end_s"] > 0
    assert d["media_duration_s"] is None  # a live presentation has no duration
    served = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]
    served = [t for t in served if t["video_id"] == "live-hls" and t["method"] == "GET"]
    requests = conn.execute("SELECT * FROM segment_requests WHERE download_id = ? ORDER BY seq", (d["id"],)).fetchall()
    # every request of the session is one nginx logged, in order, the playlist as often as the player asked for it;
    # before them, the redirect walk's own GET of the format's URL (the playlist: hops.py, one hop, no redirect)
    session = served[len(served) - len(requests):]
    assert [t["segment"] for t in served[:len(served) - len(requests)]] == [PLAYLIST]
    assert [t["segment"] for t in session] == [r["url"].rsplit("/", 1)[1] for r in requests]
    assert sum(t["segment"] == PLAYLIST for t in session) == 1 + d["live_reloads"]
    expected_ua = (fmt.get("http_headers") or {}).get("User-Agent")
    if expected_ua:  # the format's own headers, on every request of the stream
        assert {t["user_agent"] for t in served} == {expected_ua}
    else:
        assert all(t["user_agent"] for t in served)
