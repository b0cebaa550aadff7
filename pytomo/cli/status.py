"""The one exit-status table of every command, and the one place where exceptions become exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn

from pytomo.errors import PytomoError, UsageError


class ExitStatus(IntEnum):
    """What every Pytomo command (and start_crawl.py, start_server.py) returns to the shell."""

    OK = 0  # done (a server or the lab stopped with Ctrl-C, a crawl that ran to its end)
    FAILURE = 1  # could not start or could not go on (a PytomoError, or the system refused: disk full, port in use)
    USAGE = 2  # a bad command line, or a bad file named on it (-f, --config, --lab-scenario, a database)
    INTERRUPTED = 130  # stopped early by Ctrl-C (128 + SIGINT, as shells report it)


HANDLED = (PytomoError, OSError, KeyboardInterrupt)
"""The exceptions a command turns into one line and a status; anything else is a bug and keeps its traceback."""


def exit_status(exc: BaseException) -> ExitStatus:
    """The exception tree -> the exit status: UsageError 2, other PytomoError (or OSError) 1, Ctrl-C 130."""
    if isinstance(exc, UsageError):
        return ExitStatus.USAGE
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    if isinstance(exc, (PytomoError, OSError)):
        return ExitStatus.FAILURE
    raise TypeError(f"no exit status for {type(exc).__name__}: it is a bug") from exc


def message(exc: BaseException) -> str:
    """The one line printed for a handled exception (after ``prog: ``)."""
    if isinstance(exc, KeyboardInterrupt):
        return "aborted"
    if isinstance(exc, OSError) and not isinstance(exc, PytomoError):
        return f"error: {exc.strerror or exc}"
    return f"error: {exc}"


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body: its status, or one line on stderr and the status of the exception it raised."""
    try:
        return int(body())
    except SystemExit as exc:  # argparse's --help and --version
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
    except HANDLED as exc:
        print(f"{prog}: {message(exc)}", file=sys.stderr, flush=True)
        return exit_status(exc)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UsageError (one line, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)
