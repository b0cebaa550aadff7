"""The volunteer executable's entry (pytomo/__main__.py): the researchers' tools and left-out libraries in one line."""

from __future__ import annotations

import pytest

import pytomo.__main__ as entry
from pytomo.cli import ExitStatus
from pytomo.paths import LEFT_OUT


@pytest.mark.parametrize("command", ["export", "analyse"])
def test_a_researchers_tool_answers_one_line_without_running(command, capsys, monkeypatch):
    monkeypatch.setattr(entry, "main", lambda argv: pytest.fail("the command ran"))
    assert entry.frozen_main([command, "--help"]) == ExitStatus.USAGE
    out, err = capsys.readouterr()
    assert out == "" and err == (f"pytomo: {command} is a researcher's tool, not in the volunteer executable: "
                                 "install the Python package; see docs/analysis.md\n")


def test_a_command_that_reaches_a_left_out_library_answers_one_line(capsys, monkeypatch):
    def collector(argv):
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow.parquet")

    monkeypatch.setattr(entry, "main", collector)
    assert entry.frozen_main(["server", "--collect", "dir"]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pytomo: server --collect needs pyarrow, which the volunteer")


def test_another_missing_module_is_a_bug_and_keeps_its_traceback(monkeypatch):
    def broken(argv):
        raise ModuleNotFoundError("No module named 'pytomo.nothing'", name="pytomo.nothing")

    monkeypatch.setattr(entry, "main", broken)
    with pytest.raises(ModuleNotFoundError):
        entry.frozen_main(["crawl"])


def test_other_commands_run_as_they_are(monkeypatch):
    seen = []
    monkeypatch.setattr(entry, "main", lambda argv: seen.append(argv) or 0)
    assert entry.frozen_main(["crawl", "-n", "1"]) == 0 and seen == [["crawl", "-n", "1"]]


def test_the_researchers_libraries_and_the_lab_ffmpeg_are_left_out():
    assert {"duckdb", "pyarrow", "adbc_driver_manager", "adbc_driver_sqlite", "numpy", "pandas", "dask", "matplotlib",
            "PIL", "playwright", "imageio_ffmpeg"} == set(LEFT_OUT)
