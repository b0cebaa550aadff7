"""One command (pytomo crawl | server | lab | rrd | p1203) and one exit-status table for every entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytomo import paths
from pytomo.cli import CHILDREN, COMMANDS, ExitStatus, exit_status, guarded, main
from pytomo.errors import LabError, MeasurementError, PytomoError, StorageError, UsageError
from tests.conftest import ROOT


def test_exit_status_table():
    assert [(s.name, int(s)) for s in ExitStatus] == [("OK", 0), ("FAILURE", 1), ("USAGE", 2), ("INTERRUPTED", 130)]


@pytest.mark.parametrize("exc, status", [
    (UsageError("x"), ExitStatus.USAGE), (PytomoError("x"), ExitStatus.FAILURE), (LabError("x"), ExitStatus.FAILURE),
    (StorageError("x"), ExitStatus.FAILURE), (MeasurementError("x"), ExitStatus.FAILURE),
    (OSError(28, "No space left on device"), ExitStatus.FAILURE), (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
])
def test_the_exception_tree_maps_to_one_status(exc, status, capsys):
    assert exit_status(exc) is status

    def body() -> int:
        raise exc

    assert guarded("prog", body) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("prog: "), err


def test_a_bug_is_not_an_exit_status():
    with pytest.raises(TypeError):
        exit_status(ValueError("bug"))
    with pytest.raises(ValueError):
        guarded("prog", lambda: int("bug"))


def test_help_lists_every_command_with_one_line(capsys):
    assert main(["--help"]) == ExitStatus.OK
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert f"  {name}" in out and command.summary in out
    assert set(COMMANDS) >= {"crawl", "server", "lab", "rrd", "p1203"}
    assert not any(child in out for child in CHILDREN)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_own_help(name, capsys):
    assert main([name, "--help"]) == ExitStatus.OK
    assert capsys.readouterr().out.startswith(f"usage: pytomo {name} ")


@pytest.mark.parametrize("argv, words", [([], "no command given"), (["nonsense"], "unknown command 'nonsense'")])
def test_no_or_an_unknown_command_is_a_usage_error(argv, words, capsys):
    assert main(argv) == ExitStatus.USAGE
    assert words in capsys.readouterr().err


def test_bad_usage_of_every_command_is_status_2_in_one_line(tmp_path, capsys):
    for argv in (["crawl", "-n", "0"], ["server", "80"], ["lab", "--bogus"], ["rrd", "-d", str(tmp_path)],
                 ["rrd", "-f", str(tmp_path / "none.db")], ["p1203", str(tmp_path / "none.db")], ["p1203"]):
        assert main(argv) == ExitStatus.USAGE, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"pytomo {argv[0]}: error: "), (argv, err)


def test_a_bad_lab_scenario_named_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    for argv in (["lab", "--scenario", str(bad)], ["lab", "--scenario", str(tmp_path / "missing.toml")],
                 ["crawl", "-b", "-s", "lab", "--lab-scenario", str(bad), "--database-dir", str(tmp_path)]):
        assert main(argv) == ExitStatus.USAGE, argv
        assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.glob("*.db")) == []


def test_children_are_dispatched_where_paths_says():
    for name, (module, _function) in CHILDREN.items():
        assert paths.child_command(name)[-1] == module


@pytest.mark.parametrize("argv, prog", [
    (["-m", "pytomo.lab", "--scenario", "/nonexistent/s.toml"], "python -m pytomo.lab"),
    (["-m", "pytomo.rrd", "-d", "/nonexistent"], "python -m pytomo.rrd"),
    (["-m", "pytomo.p1203_cli", "/nonexistent/x.db"], "python -m pytomo.p1203_cli"),
    (["-m", "pytomo", "rrd", "-d", "/nonexistent"], "pytomo rrd"),
    ([str(ROOT / "start_server.py"), "--rebuild-rrd", "-d", "/nonexistent"], "start_server.py"),
])
def test_old_names_are_aliases_with_the_same_exit_status(argv, prog):
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == ExitStatus.USAGE, done.stderr
    assert done.stderr.startswith(f"{prog}: error: ") and done.stderr.count("\n") == 1, done.stderr
