"""Options of the platform plugins and the volunteer defaults: parsing, checks, secrets kept out of the record."""

from __future__ import annotations

import json
import socket

import pytest

from pytomo.cli import crawl_main, parse_crawl_args
from pytomo.settings import Settings
from pytomo.storage.sqlite import RunDatabase


def test_new_options_reach_the_settings(monkeypatch):
    monkeypatch.delenv("PYTOMO_YOUTUBE_API_KEY", raising=False)
    s = parse_crawl_args(["-s", "youtube", "--format", "720p", "--youtube-api-key", "k1", "--youtube-region", "FR",
                          "--youtube-search", "cats", "--youtube-playlist", "PL1", "--youtube-related", "channel",
                          "--youtube-client", "tv", "--youtube-client", "web", "--dailymotion-sort", "trending",
                          "--dailymotion-media", "api", "--label", "home-fibre", "--loop-interval", "300",
                          "--loop-min-interval", "30", "--loop-max-interval", "900", "--lab"])
    assert (s.media_format, s.youtube_api_key, s.youtube_region, s.youtube_search) == ("720p", "k1", "FR", "cats")
    assert (s.youtube_playlist, s.youtube_related, s.youtube_player_client) == ("PL1", "channel", ("tv", "web"))
    assert (s.dailymotion_sort, s.dailymotion_media, s.label, s.lab) == ("trending", "api", "home-fibre", True)
    assert (s.loop_mean_interval_s, s.loop_min_interval_s, s.loop_max_interval_s) == (300.0, 30.0, 900.0)


def test_volunteer_defaults():
    s = Settings()
    assert s.no_log_ip is True and s.label == "" and s.media_format == "player"
    assert (s.loop_mean_interval_s, s.loop_min_interval_s, s.loop_max_interval_s) == (600.0, 60.0, 1500.0)


def test_api_key_from_the_environment_is_never_recorded(monkeypatch):
    monkeypatch.setenv("PYTOMO_YOUTUBE_API_KEY", "secret-from-env")
    s = parse_crawl_args(["-s", "youtube"])
    assert s.youtube_api_key == "secret-from-env"
    assert parse_crawl_args(["--youtube-api-key", "cli-wins"]).youtube_api_key == "cli-wins"
    assert s.as_dict()["youtube_api_key"] == "<set>"
    assert "secret-from-env" not in json.dumps(s.as_dict())


@pytest.mark.parametrize("argv, words", [
    (["--format", "best of all"], "format must be player"),
    (["--label", "../etc"], "label must be"),
    (["--label", "a b"], "label must be"),
    (["--youtube-related", "magic"], "invalid choice"),
    (["--youtube-region", "France"], "two-letter country code"),
    (["--dailymotion-sort", "Most Viewed"], "API sort name"),
    (["--loop-min-interval", "100", "--loop-max-interval", "50"], "loop_max_interval_s"),
    (["-H"], "choose the format with --format"),
])
def test_bad_platform_options_give_one_line(argv, words, capsys):
    assert crawl_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_youtube_without_a_source_of_seeds_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PYTOMO_YOUTUBE_API_KEY", raising=False)
    assert crawl_main(["-b", "-s", "youtube", "--database-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--youtube-api-key" in err and "--youtube-search" in err
    assert list(tmp_path.glob("*.db")) == []


def test_label_replaces_the_host_name_in_the_file_name_and_the_run_row(tmp_path):
    s = parse_crawl_args(["-s", "lab", "--label", "volunteer-42", "--provider", "isp"])
    db = RunDatabase.create(tmp_path, s)
    try:
        assert db.path.name.startswith("volunteer-42.lab_isp.")
        assert socket.gethostname() not in db.path.name
        assert db.conn.execute("SELECT host_label FROM run").fetchone()[0] == "volunteer-42"
    finally:
        db.finish("finished")
