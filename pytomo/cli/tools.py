"""``pytomo lab`` (the lab alone) and ``pytomo p1203`` (a run's ITU-T P.1203 inputs): argv -> exit status."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pytomo.cli.status import ExitStatus, Parser, guarded
from pytomo.errors import LabError, StorageError, UsageError
from pytomo.readers.open import open_readonly
from pytomo.readers.pages import p1203_inputs

if TYPE_CHECKING:
    from pytomo.lab.scenario import Scenario


def lab_parser(prog: str = "pytomo lab") -> argparse.ArgumentParser:
    """The options of ``pytomo lab``."""
    p = Parser(prog=prog, description="Run the lab alone, print its addresses and serve until Ctrl-C. "
                                      f"'{prog} play --help': play a lab video in a reference player instead.")
    p.add_argument("--scenario", help="scenario file (TOML); default: the built-in default scenario")
    p.add_argument("--truth", help="write the ground-truth log (JSON lines) to this file")
    return p


def _scenario(path: str | None) -> Scenario:
    """The scenario named on the command line, or the built-in default one."""
    from pytomo.lab.scenario import default_scenario_path, load_scenario

    try:
        return load_scenario(path or default_scenario_path())
    except LabError as exc:  # a file the user named is a usage error; the built-in one failing is not
        if path:
            raise UsageError(str(exc)) from None
        raise


def _lab(argv: list[str], prog: str) -> int:
    from pytomo.lab.runtime import Lab

    if argv[:1] == ["play"]:
        return _lab_play(argv[1:], f"{prog} play")
    args = lab_parser(prog).parse_args(argv)
    lab = Lab(_scenario(args.scenario), truth_path=args.truth).start()
    try:
        print("\n".join(lab.describe()), flush=True)
        print("serving; press Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:  # the way the lab is stopped: not an interruption
        pass
    finally:
        lab.stop()
    return ExitStatus.OK


def lab_play_parser(prog: str = "pytomo lab play") -> argparse.ArgumentParser:
    """The options of ``pytomo lab play``."""
    from pytomo.lab.reference import PLAYERS

    p = Parser(prog=prog, description="Start the lab, play one of its videos in a reference player (dash.js, Shaka "
                                      "Player, hls.js or Chromium's own <video>, in headless Chromium) and print the "
                                      "player's own account: time to start, stalls, renditions, requests.")
    p.add_argument("--player", required=True, choices=PLAYERS, help="the reference player")
    p.add_argument("--video", required=True, help="the lab video's id (its stream at its cache server is played)")
    p.add_argument("--scenario", help="scenario file (TOML); default: the built-in default scenario")
    p.add_argument("--window-s", type=float, default=30.0, help="seconds from the player's first request (default 30)")
    p.add_argument("--rendition", default="auto",
                   help="auto (the player's own choice), lowest, highest, or an index (0: the lowest bitrate)")
    p.add_argument("--chromium", help="the Chromium executable (default: chromium on the PATH)")
    p.add_argument("--out", help="write the player's account (JSON) to this file")
    p.add_argument("--truth", help="write the lab's ground-truth log (JSON lines) to this file")
    return p


def _lab_play(argv: list[str], prog: str) -> int:
    from pytomo.lab.reference import PlayerUnavailable, play, unavailable
    from pytomo.lab.runtime import Lab

    args = lab_play_parser(prog).parse_args(argv)
    if args.window_s <= 0:
        raise UsageError("--window-s must be positive")
    why = unavailable(args.player, args.chromium)
    if why:
        raise UsageError(why)
    scenario = _scenario(args.scenario)
    if scenario.video(args.video) is None:
        raise UsageError(f"scenario {scenario.name} has no video {args.video!r}")
    with Lab(scenario, truth_path=args.truth) as lab:
        if lab.scenario.video(args.video) is None:
            raise LabError(f"video {args.video} was left out of the running lab (see the warning above)")
        try:
            account = play(args.player, lab.stream_url(args.video), window_s=args.window_s,
                           host_map=lab.host_map(), rendition=args.rendition, chromium=args.chromium)
        except PlayerUnavailable as exc:
            raise UsageError(str(exc)) from None
    print("\n".join(account.summary_lines()), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(account.to_dict(), fh, indent=1)
    return ExitStatus.OK


def lab_main(argv: list[str] | None = None, prog: str = "pytomo lab") -> int:
    """``pytomo lab [play ...]`` / ``python -m pytomo.lab``: 0 stopped (played), 1 the lab could not start, 2 bad
    usage or scenario, or (play) the player or Chromium missing."""
    return guarded(prog, lambda: _lab(sys.argv[1:] if argv is None else argv, prog))


def p1203_parser(prog: str = "pytomo p1203") -> argparse.ArgumentParser:
    """The options of ``pytomo p1203``."""
    p = Parser(prog=prog, description="Print one JSON object per video of a run database: its id, its P.1203 input "
                                      "and, with --score, the output of a user-installed itu-p1203.")
    p.add_argument("database", help="a run database")
    p.add_argument("--video", help="only this video id")
    p.add_argument("--score", action="store_true",
                   help="score with the itu-p1203 package, which you install yourself (non-commercial licence)")
    return p


def _p1203(argv: list[str], prog: str) -> int:
    args = p1203_parser(prog).parse_args(argv)
    model = None
    if args.score:
        try:
            from itu_p1203 import P1203Standalone  # noqa: PLC0415 - optional, never shipped
        except ImportError:
            raise UsageError("the itu-p1203 package is not installed; it is not on PyPI and its licence is for "
                             "non-commercial research only: install it yourself to use --score") from None
        model = P1203Standalone
    try:
        rows = p1203_inputs(open_readonly(Path(args.database)), args.video)
    except (sqlite3.Error, StorageError) as exc:  # the database named on the command line
        raise UsageError(f"cannot read {args.database}: {exc}") from None
    for video_id, download_id, text in rows:
        data = json.loads(text)
        out = {"video_id": video_id, "download_id": download_id, "input": data}
        if model is not None:
            out["score"] = model(data).calculate_complete()
        print(json.dumps(out))
    return ExitStatus.OK


def p1203_main(argv: list[str] | None = None, prog: str = "pytomo p1203") -> int:
    """``pytomo p1203 DB``: 0 printed, 2 bad usage, an unreadable database or itu-p1203 missing for --score."""
    return guarded(prog, lambda: _p1203(sys.argv[1:] if argv is None else argv, prog))
