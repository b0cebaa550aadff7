"""Whole crawls of ``-s youtube --lab`` and ``-s dailymotion --lab``: recorded APIs and pages, real media measured
from the lab's cache servers, checked against the lab's ground truth."""

from __future__ import annotations

import json

from pytomo.storage.schema import SCHEMA_VERSION
from tests.conftest import connect, database_of, run_crawler

FAST = ["-b", "--lab", "-D", "0.5", "-n", "1", "-S", "0"]


def _truth(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_youtube_crawl_measures_the_chosen_formats_and_slows_down_after_a_bot_check(tmp_path):
    cfg = tmp_path / "volunteer.toml"
    cfg.write_text("bot_check_pause_s = 1.0\nbot_check_max_pause_s = 2.0\n")
    truth = tmp_path / "truth.jsonl"
    proc = run_crawler(["-s", "youtube", *FAST, "-P", "4", "--youtube-api-key", "lab-key", "--label", "lab-volunteer",
                        "--config", str(cfg), "--lab-truth", str(truth), "--database-dir", str(tmp_path)])
    db = database_of(proc)
    assert db.name.startswith("lab-volunteer.youtube.")
    conn = connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    assert list(rows) == ["LabSunrise1", "LabCityTL02", "LabBotChk03", "LabThrott07"]
    assert {r["seed_source"] for r in rows.values()} == {"chart:youtube-api:mostPopular"}
    assert "lab-key" not in conn.execute("SELECT settings_json FROM run").fetchone()[0]
    bot = rows["LabBotChk03"]
    assert (bot["status"], bot["error_stage"], bot["error_kind"]) == ("error", "resolve_page", "bot_check")
    assert "not a bot" in bot["error_message"] and json.loads(bot["extractor_json"])["resolver"] == "recorded"
    # each measured video downloaded the media of the format chosen for it, as the lab's truth log shows
    expected = {"LabSunrise1": ("lab-unlimited", "137+140"), "LabCityTL02": ("lab-40m", "22"),
                "LabThrott07": ("lab-throttled", "18")}
    served: dict[str, int] = {}  # bytes the cache servers sent per lab video, over every GET (ranges included)
    for t in _truth(truth):
        if t["method"] == "GET" and t["video_id"]:
            served[t["video_id"]] = served.get(t["video_id"], 0) + (t["bytes_sent"] or 0)
    for vid, (lab_video, format_id) in expected.items():
        row = rows[vid]
        record = json.loads(row["extractor_json"])
        assert row["status"] == "ok" and record["format_id"] == format_id and record["ytdlp_version"]
        download = conn.execute("SELECT * FROM downloads WHERE video_row_id = ? ORDER BY id",
                                (row["id"],)).fetchone()
        assert download["url"].endswith(f"/v/{lab_video}.mp4") and download["container"] == "mp4"
        assert 0 < download["bytes"] <= served[lab_video]
    assert json.loads(rows["LabCityTL02"]["extractor_json"])["missing_formats"]
    # the clients, as the recorded lines of yt-dlp say (LabSunrise1), or unknown where a recording kept none
    sunrise, city = rows["LabSunrise1"], rows["LabCityTL02"]
    assert (sunrise["yt_clients_asked"], sunrise["yt_clients_answered"]) == ("tv_samsung,visionos,web",) * 2
    assert (sunrise["yt_clients_sabr_only"], sunrise["yt_po_token_skipped"]) == ("web", "")
    assert sunrise["yt_measured_user_agent"] and sunrise["yt_measured_po_token"] == 0
    assert (city["yt_clients_asked"], city["yt_clients_answered"], city["yt_clients_sabr_only"]) == ("tv", None, None)
    log_text = db.with_suffix(".log").read_text()
    assert "YouTube answered bot_check (1 in a row): pausing 1 s" in log_text


def test_dailymotion_crawl_plays_hls_and_stores_errors(tmp_path):
    proc = run_crawler(["-s", "dailymotion", *FAST, "-t", "today", "-P", "3", "-R", "-r", "2",
                        "--database-dir", str(tmp_path)])
    conn = connect(database_of(proc))
    rows = {r["video_id"]: r for r in conn.execute("SELECT * FROM videos")}
    assert list(rows) == ["x8lab01", "x8lab02", "x8lab03"]  # the related ones were all measured in round 0
    assert rows["x8lab01"]["seed_source"] == "chart:dailymotion-api:sort=visited-today"
    assert rows["x8lab03"]["error_kind"] == "geo_blocked"
    deliveries = dict(conn.execute("SELECT v.video_id, d.delivery FROM downloads d JOIN videos v"
                                   " ON v.id = d.video_row_id").fetchall())
    assert deliveries == {"x8lab01": "hls", "x8lab02": "progressive"}
    hls = conn.execute("SELECT count(*) FROM segment_requests WHERE kind = 'media' AND http_status = 200").fetchone()[0]
    assert hls >= 1
    assert rows["x8lab01"]["related_count"] == 2
