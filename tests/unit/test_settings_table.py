"""The settings table: one row per setting gives the field, the option, its help with the real default, the config key,
the check, how the run row keeps it, and docs/options.md; the plugins' sections are merged into it."""

from __future__ import annotations

import dataclasses

import pytest

from pytomo import settings as settings_mod
from pytomo.cli import crawl_main
from pytomo.cli.crawl import crawl_parser, help_text
from pytomo.cli.options_doc import DOC_PATH, options_markdown
from pytomo.errors import UsageError
from pytomo.settings import BY_NAME, PLUGIN_SECTIONS, SETTINGS, STORED, Settings, build


def test_every_field_is_one_row_with_the_fields_default():
    assert sorted(s.name for s in SETTINGS) == sorted(f.name for f in dataclasses.fields(Settings))
    assert len(BY_NAME) == len(SETTINGS)
    defaults = Settings()
    for s in SETTINGS:
        assert getattr(defaults, s.name) == s.default, s.name
        assert s.group in settings_mod.GROUPS, s.name
        assert s.help and "\n" not in s.help, s.name
    assert "extra" not in BY_NAME  # no mutable catch-all in the frozen settings
    assert settings_mod.SECRETS == ("collector_token", "youtube_api_key", "dailymotion_access_token")


def test_docs_options_md_is_generated_from_the_table():
    assert DOC_PATH.read_text(encoding="utf-8") == options_markdown(), (
        "docs/options.md is out of date: run .venv/bin/python -m pytomo.cli.options_doc --write")


def test_every_row_with_a_flag_is_an_option_with_its_real_default_in_the_help():
    actions = {a.dest: a for a in crawl_parser()._actions if a.help and not a.help.startswith("undo")}
    for s in SETTINGS:
        if not s.flag and not s.negative:
            assert s.name not in actions, s.name
            continue
        assert s.name in actions, s.name
        if not s.flag:  # only a flag that turns it off (--no-system-dns)
            continue
        shown = s.shown_default()
        if shown:
            assert f"(default {shown})" in actions[s.name].help, s.name


def test_a_changed_default_shows_in_the_help_and_in_help_that_names_it():
    changed = dataclasses.replace(BY_NAME["ping_count"], default=7)
    assert help_text(changed).endswith("(default 7)")
    assert "<= 0: 600 s" in help_text(BY_NAME["download_time_s"])  # {max_download_time_s} filled from the table


def test_every_setting_name_is_a_config_key(tmp_path):
    values = {s.name: s.default for s in SETTINGS if s.default is not None}
    assert build(values, {}) == Settings()
    cfg = tmp_path / "all.toml"
    cfg.write_text('[pytomo]\nbba_cushion_s = 12\nuser_agent = "ua"\nrandom_seed = 4\n')
    s = build(settings_mod.load_config_file(cfg), {})
    assert (s.bba_cushion_s, s.user_agent, s.random_seed) == (12.0, "ua", 4)


def test_unknown_config_keys_are_refused_in_one_line_naming_them(tmp_path):
    cfg = tmp_path / "typos.toml"
    cfg.write_text("pingcount = 3\nping_count = 2\nsevice = 'lab'\n")
    with pytest.raises(UsageError) as err:
        settings_mod.load_config_file(cfg)
    assert "unknown settings pingcount, sevice" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name, bad", [
    ("ping_count", 0), ("max_rounds", 0), ("max_per_url", -1), ("initial_buffer_s", -1.0),
    ("loop_min_interval_s", -5.0), ("time_frame", "yesterday"), ("media_format", "best of all"),
    ("youtube_region", "France"), ("log_level", "chatty"), ("abr", "magic"), ("rendition", "middle"),
])
def test_one_check_whether_the_value_comes_from_the_command_line_or_the_file(name, bad, tmp_path, capsys):
    s = BY_NAME[name]
    with pytest.raises(UsageError) as from_file:
        build({name: bad}, {})
    flag = next(f for f in s.flag if f.startswith("-"))
    assert crawl_main([flag, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"start_crawl.py: error: {from_file.value}\n" or str(from_file.value).lower() in err.lower()


@pytest.mark.parametrize("name, bad", [
    ("ping_timeout_s", 0.0), ("media_box_limit_bytes", 1024), ("page_limit_bytes", 0), ("bba_cushion_s", 0.0),
    ("youtube_api_base_url", "ftp://x"), ("bot_check_pause_s", -1.0),
])
def test_settings_without_an_option_are_checked_too(name, bad):
    with pytest.raises(UsageError) as err:
        build({name: bad}, {})
    assert name in str(err.value)


def test_types_from_the_file_are_checked():
    with pytest.raises(UsageError, match="must be a number"):
        build({"ping_count": "ten"}, {})
    with pytest.raises(UsageError, match="must be true or false"):
        build({"loop": "yes"}, {})
    with pytest.raises(UsageError, match="must be a whole number"):
        build({"ping_count": 2.5}, {})
    assert build({"dns_extra": "x=127.0.0.1"}, {}).dns_extra == ("x=127.0.0.1",)


def test_the_table_is_the_core_rows_then_each_plugins_section():
    owners = [s.plugin for s in SETTINGS]
    assert owners == sorted(owners, key=["", *PLUGIN_SECTIONS].index)  # core first, then the sections in order
    for plugin, section in PLUGIN_SECTIONS.items():
        assert issubclass(Settings, section)
        rows = [s for s in SETTINGS if s.plugin == plugin]
        assert [s.name for s in rows] == [f.name for f in dataclasses.fields(section)]
        for s in rows:
            assert s.name.startswith(plugin + "_") and s.group == plugin, s.name
            assert s.key == f"{plugin}.{s.name.removeprefix(plugin + '_')}"
    core = {s.name for s in SETTINGS if not s.plugin}
    assert not core & set(PLUGIN_SECTIONS)  # a plugin's table never clashes with a core key in TOML
    assert all(BY_NAME[name].key == name for name in core)


def test_plugins_settings_from_their_tables_or_by_their_flat_names(tmp_path):
    cfg = tmp_path / "plugins.toml"
    cfg.write_text('ping_count = 3\n[youtube]\napi_key = "k"\nregion = "FR"\nplayer_client = ["tv"]\n'
                   '[dailymotion]\nsort = "trending"\n')
    s = build(settings_mod.load_config_file(cfg), {})
    assert (s.ping_count, s.youtube_api_key, s.youtube_region, s.youtube_player_client) == (3, "k", "FR", ("tv",))
    assert s.dailymotion_sort == "trending"
    cfg.write_text('[pytomo]\nping_count = 3\nyoutube.region = "DE"\n[pytomo.dailymotion]\nmedia = "api"\n')
    s = build(settings_mod.load_config_file(cfg), {})
    assert (s.ping_count, s.youtube_region, s.dailymotion_media) == (3, "DE", "api")
    cfg.write_text('youtube_api_key = "old"\ndailymotion_sort = "trending"\n')  # the older flat spelling
    assert settings_mod.load_config_file(cfg) == {"youtube_api_key": "old", "dailymotion_sort": "trending"}
    assert build(settings_mod.load_config_file(cfg), {"youtube_api_key": "cli"}).youtube_api_key == "cli"


@pytest.mark.parametrize("text, words", [
    ('youtube_region = "FR"\n[youtube]\nregion = "DE"\n', "youtube.region is given twice (youtube_region and "
                                                          "youtube.region)"),
    ('[youtube]\nregoin = "FR"\nyoutube_search = "x"\n', "unknown settings youtube.regoin, youtube.youtube_search"),
    ('[youtube]\nping_count = 2\n', "unknown setting youtube.ping_count"),
    ('youtube = "FR"\n', "youtube must be a table ([youtube]"),
])
def test_plugin_tables_are_checked_in_one_line(text, words, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as err:
        settings_mod.load_config_file(cfg)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_how_the_run_row_keeps_each_setting_is_in_its_row():
    assert {s.stored for s in SETTINGS} <= set(STORED)
    for s in SETTINGS:
        if s.metavar in ("FILE", "DIR"):  # a local path may name its owner: never stored whole
            assert s.stored in ("base-name", "set"), s.name
        if s.kind is str and s.name.endswith(("_url", "proxy")):  # a URL may carry a user:password
            assert s.stored in ("redacted-url", "secret"), s.name
        assert s.secret == (s.stored == "secret") == (s.name in settings_mod.SECRETS)
    assert {s.name for s in SETTINGS if s.trusted_host} == {
        "http_proxy", "info_source_url", "youtube_api_base_url", "dailymotion_api_base_url"}


def test_the_run_trusts_the_hosts_of_the_rows_that_say_so():
    from pytomo.run import _given_hosts

    s = build({}, {"youtube_api_base_url": "http://10.0.0.1:8080/youtube/v3", "info_source_url": "http://rec.lan/i",
                   "http_proxy": "http://u:p@proxy.lan:3128", "collector_url": "https://collector.example/"})
    assert sorted(_given_hosts(s)) == ["10.0.0.1", "api.dailymotion.com", "proxy.lan", "rec.lan"]


def test_environment_is_a_layer_from_the_table():
    assert settings_mod.from_environment({"PYTOMO_YOUTUBE_API_KEY": "k", "OTHER": "x"}) == {"youtube_api_key": "k"}
