"""Before a first crawl: say what will be measured and stored (and, with ``-c``, sent where), and ask for consent
once (remembered in a file; an upload's consent is remembered per collector)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TextIO

from pytomo.paths import config_dir
from pytomo.results import iso, utc_now
from pytomo.settings import Settings

CONSENT_VERSION = 1  # raise when the text below says something new: everyone is asked again


def consent_path() -> Path:
    """The file that remembers the consent."""
    return config_dir() / "consent.json"


def statement(s: Settings) -> str:
    """What a crawl with these settings measures and stores, in plain words."""
    where = {"youtube": "YouTube (pages read through yt-dlp; lists from the YouTube Data API or a search)",
             "dailymotion": "Dailymotion (lists from its public API; pages read through yt-dlp)",
             "lab": "the built-in lab on this machine (nothing leaves it)",
             "generic": "the URLs you give"}.get(s.service, s.service)
    if s.lab:
        where = "the built-in lab's recordings of that platform, on this machine"
    label = s.label or f"this computer's name ({socket.gethostname()})"
    return "\n".join([
        "Pytomo measures how video streaming works from your network. For each video it will:",
        f"  - fetch the video page from {where},",
        "  - look up the names of the video servers with your DNS resolvers"
        + (" and the extra ones configured" if s.dns_extra else "") + ",",
        f"  - measure the round-trip time to those servers ({s.ping_count} pings and TCP connections each),",
        f"  - download the video for {s.window_s:g} s and model its playback (start time, stalls).",
        f"It stores the results on this computer only, in {Path(s.database_dir).resolve()}: server names and",
        "addresses, timings, throughput, the video pages' URLs and titles, the settings of the run, and",
        f"{label} as the label of the run. "
        + ("They are sent to a collector (below)" if s.centralise else "The results are sent nowhere")
        + "; your public address is not recorded.",
        "Loop mode (-l) repeats measurements at random intervals until you stop it (Ctrl-C)."
        if s.loop else "The crawl stops by itself after its limits (-u, -r) or at Ctrl-C.",
    ])


def upload_statement(s: Settings) -> str:
    """What ``-c`` sends, where, and how to withdraw, in plain words."""
    return "\n".join([
        f"With -c, at the end of each run the run database is sent to the collector at {s.collector_url},",
        "compressed, with your collector token. It holds everything listed above (server names and addresses,",
        "DNS answers, round-trip times, throughput, stalls, the video pages' URLs and titles, the settings of the",
        "run without local paths or credentials, the run's UUID, time zone and software version) and the label.",
        "The collector looks up the AS number and country of the address you upload from and keeps only those,",
        "never the address. To withdraw a run, ask the collector's operator to delete it by its run UUID",
        "(`pytomo upload --status` lists them); to stop sending, crawl without -c.",
    ])


def _read(path: Path | None) -> dict:
    try:
        data = json.loads((path or consent_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def has_consent(path: Path | None = None, collector: str = "") -> bool:
    """True when this user already agreed to the current statement (and, with ``collector``, to sending there)."""
    data = _read(path)
    if data.get("version") != CONSENT_VERSION or data.get("consent") is not True:
        return False
    sent_to = data.get("collectors")
    return not collector or (isinstance(sent_to, list) and collector in sent_to)


def remember(path: Path | None = None, collector: str = "") -> None:
    """Write the consent file (its failure only means being asked again)."""
    path = path or consent_path()
    old = _read(path)
    collectors = [c for c in old.get("collectors", []) if isinstance(c, str)] if isinstance(
        old.get("collectors"), list) else []
    if collector and collector not in collectors:
        collectors.append(collector)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"version": CONSENT_VERSION, "consent": True, "at": iso(utc_now()),
                                    "collectors": collectors}) + "\n", encoding="utf-8")
    except OSError:
        pass


def ask(s: Settings, stdin: TextIO, stdout: TextIO, path: Path | None = None) -> bool:
    """Consent for this crawl: given by ``-b``, by a non-terminal stdin, or asked once and remembered.

    With ``-c`` the upload is part of it: in batch mode (or without a terminal) giving ``-c`` and ``--collector``
    is the consent; on a terminal the statement says what is sent where, asked once per collector.
    """
    collector = s.collector_url if s.centralise else ""
    if s.batch or not stdin.isatty() or has_consent(path, collector):
        return True
    text = statement(s) + ("\n" + upload_statement(s) if collector else "")
    stdout.write(text + "\n\nDo you agree? This is asked once. [y/N] ")
    stdout.flush()
    answer = stdin.readline()
    if answer.strip().lower() in ("y", "yes"):
        remember(path, collector)
        return True
    return False
