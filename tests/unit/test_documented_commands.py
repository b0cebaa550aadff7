"""Every ``pytomo`` command line written in README.md and docs/ names a command that exists, and each of its options
is one that command (or its sub-command) lists in its ``--help``: a reader typing it as written gets no "unknown
command" and no "unrecognized arguments"."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from pytomo.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
PREFIX = re.compile(r"^(?:pytomo|python -m pytomo|\.venv/bin/pytomo)\s+(.*)$")
SUBCOMMANDS = {"tokens": ("add", "list", "revoke"), "lab": ("play",)}


def documented() -> list[tuple[str, str]]:
    """(where, the command line) of every pytomo line in a code block of README.md and docs/*.md."""
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        inside = False
        lines = doc.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            if line.startswith("```"):
                inside = not inside
                continue
            found = PREFIX.match(line.strip()) if inside else None
            if found:
                text = found.group(1).split("  #")[0].split(" # ")[0].rstrip(" \\")
                out.append((f"{doc.name}:{n}", text))
    return out


@cache
def help_of(*words: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pytomo", *words, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (words, done.stderr)
    return done.stdout


def test_the_docs_show_every_command() -> None:
    shown = {shlex.split(text)[0] for _where, text in documented() if not text.startswith("-")}
    assert set(COMMANDS) - {"crawl", "server"} <= shown  # those two are shown as ./start_crawl.py, ./start_server.py


@pytest.mark.parametrize(("where", "text"), documented(), ids=[w for w, _t in documented()])
def test_a_documented_command_line_is_one_the_command_takes(where: str, text: str) -> None:
    words = shlex.split(text.replace("[", " ").replace("]", " ").replace("...", " "))
    if words[0].startswith("-"):
        assert words[0] in ("--help", "-h", "--version", "-V"), where
        return
    assert words[0] in COMMANDS, f"{where}: no command {words[0]!r}"
    scope = [words[0]]
    if len(words) > 1 and words[1] in SUBCOMMANDS.get(words[0], ()):
        scope.append(words[1])
    listed = help_of(*scope)
    for word in words[len(scope):]:
        if word.startswith("-"):
            option = word.split("=")[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", listed), f"{where}: {scope} has no {option}"
