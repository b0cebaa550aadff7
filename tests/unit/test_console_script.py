"""``pytomo`` is a command after the install, as README and docs/ write it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pytomo.version import __version__


def test_the_install_declares_the_pytomo_command():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("pytomo") == "pytomo.cli:main"


def test_the_pytomo_command_runs_the_documented_commands():
    command = Path(sys.executable).with_name("pytomo")  # the virtual environment's bin/, where pip puts it
    assert command.is_file(), "run ./quickstart.sh: it installs the package, and with it the pytomo command"
    out = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and __version__ in out.stdout
    for name in ("crawl", "server", "upload", "tokens", "export", "analyse"):
        help_text = subprocess.run([str(command), name, "--help"], capture_output=True, text=True, timeout=60)
        assert help_text.returncode == 0 and f"pytomo {name}" in help_text.stdout, name
