"""Option parsing: 2015 options and defaults, the fixed bugs, layering with a config file, one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from pytomo.cli import crawl_main, parse_crawl_args
from pytomo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_2015_ones_where_they_still_make_sense():
    s = parse_crawl_args([])
    assert (s.max_crawled_urls, s.max_rounds, s.max_per_url, s.max_per_page) == (10000, 10000, 10, 10)
    assert (s.ping_count, s.download_time_s, s.delay_between_requests_s, s.time_frame) == (10, 30.0, 10.0, "today")
    assert (s.initial_buffer_s, s.min_buffer_s, s.restart_buffer_s) == (2.0, 0.1, 1.0)
    assert s.loop is False and s.related is False and s.batch is False
    assert s.redirect_max_hops == 10


def test_every_2015_option_is_accepted():
    s = parse_crawl_args(["-b", "-u", "5", "-r", "2", "-l", "-R", "-p", "3", "-P", "4", "-s", "lab", "-t", "week",
                          "-n", "7", "-D", "3.5", "-S", "0", "-x", "--http-proxy", "http://127.0.0.1:3128",
                          "--provider", "isp", "--download-extra-dns", "-L", "debug", "-f", "urls.txt",
                          "-B", "4", "-M", "0.2", "--restart-buffer", "1.5", "--database-dir", "out",
                          "--lab-scenario", "sc.toml", "--lab-truth", "t.jsonl", "http://a.example/v.mp4"])
    assert s.batch and s.loop and s.related and s.download_extra_dns and s.no_log_ip
    assert (s.max_crawled_urls, s.max_rounds, s.max_per_url, s.max_per_page) == (5, 2, 3, 4)
    assert (s.service, s.time_frame, s.ping_count, s.download_time_s, s.delay_between_requests_s) == (
        "lab", "week", 7, 3.5, 0.0)
    assert (s.initial_buffer_s, s.min_buffer_s, s.restart_buffer_s) == (4.0, 0.2, 1.5)
    assert s.http_proxy == "http://127.0.0.1:3128" and s.provider == "isp" and s.log_level == "DEBUG"
    assert s.input_file == "urls.txt" and s.urls == ("http://a.example/v.mp4",)
    assert (s.database_dir, s.lab_scenario, s.lab_truth) == ("out", "sc.toml", "t.jsonl")


def test_n_really_sets_the_probe_count():
    assert parse_crawl_args(["-n", "3"]).ping_count == 3


def test_no_related_and_no_loop_win_when_last():
    assert parse_crawl_args(["-R", "--no-related"]).related is False
    assert parse_crawl_args(["-l", "--no-loop"]).loop is False


def test_download_window_zero_means_the_maximum():
    assert parse_crawl_args(["-D", "0"]).window_s == 600.0


def test_config_file_is_between_defaults_and_command_line(tmp_path):
    cfg = tmp_path / "pytomo.toml"
    cfg.write_text('ping_count = 4\ndownload_time_s = 12.0\nprovider = "from-file"\n')
    s = parse_crawl_args(["--config", str(cfg), "-n", "6"])
    assert s.ping_count == 6  # command line wins
    assert s.download_time_s == 12.0  # file wins over default
    assert s.provider == "from-file"
    assert s.max_rounds == Settings().max_rounds  # default kept


@pytest.mark.parametrize("argv, words", [
    (["-n", "zero"], "not a whole number"),
    (["-n", "0"], "at least 1"),
    (["-D", "abc"], "not a number of seconds"),
    (["-t", "yesterday"], "invalid choice"),
    (["-B", "-1"], "must not be negative"),
    (["-L", "chatty"], "log level"),
    (["--frobnicate"], "unrecognized"),
    (["ftp://example.org/x"], "not an http(s) URL"),
    (["http://"], "not an http(s) URL"),
    (["http://host:99999/x"], "not an http(s) URL"),
    (["-c"], "needs --collector"),
    (["-c", "--collector", "http://collector.example/"], "only to a loopback"),
    (["--centralisation_server", "x"], "no longer exists"),
    (["--snmp"], "no longer exists"),
])
def test_bad_options_give_one_clear_line_and_status_2(argv, words, capsys):
    assert crawl_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("start_crawl.py: error: ") and words in err


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("ping_count = 'ten'\n")
    assert crawl_main(["--config", str(bad)]) == 2
    assert "must be a number" in capsys.readouterr().err
    assert crawl_main(["--config", str(tmp_path / "missing.toml")]) == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("ping_count = = 3\n")
    assert crawl_main(["--config", str(broken)]) == 2
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("pingcount = 3\n")
    assert crawl_main(["--config", str(unknown)]) == 2


def test_unknown_service_and_unreadable_file(tmp_path, capsys):
    assert crawl_main(["-b", "-s", "nosuch", "--database-dir", str(tmp_path)]) == 2
    assert "unknown service 'nosuch'" in capsys.readouterr().err
    assert crawl_main(["-b", "-s", "generic", "-f", str(tmp_path / "none.txt"), "--database-dir", str(tmp_path)]) == 2
    assert "cannot read the input file" in capsys.readouterr().err
    bad = tmp_path / "urls.txt"
    bad.write_text("# comment\nhttp://127.0.0.1:9/ok.mp4\nnot a url\n")
    assert crawl_main(["-b", "-s", "generic", "-f", str(bad), "--database-dir", str(tmp_path)]) == 2
    assert "line 3" in capsys.readouterr().err
    assert list(tmp_path.glob("*.db")) == []  # nothing created for a refused command line


def test_generic_without_urls_says_what_to_do(tmp_path, capsys):
    assert crawl_main(["-b", "-s", "generic", "--database-dir", str(tmp_path)]) == 2
    assert "give URLs" in capsys.readouterr().err


def test_no_prompt_without_a_terminal(tmp_path):
    # stdin is not a terminal: the crawler must not wait for an answer (it would hang here)
    proc = subprocess.run([sys.executable, str(ROOT / "start_crawl.py"), "-s", "generic", "--no-system-dns",
                           "--database-dir", str(tmp_path), "-n", "1", "-D", "1", "-S", "0",
                           "http://127.0.0.1:9/nothing.mp4"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "Start?" not in proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].endswith(".pytomo_database.db")


def test_hostile_titles_cannot_drive_the_terminal():
    from pytomo.console import clean

    assert clean("a\x1b[31mred\x07\r\nb", 40) == "a?[31mred???b"
    assert clean("x" * 50, 10) == "x" * 9 + "…"
