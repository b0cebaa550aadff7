"""Which YouTube clients yt-dlp asked, which answered, which were SABR-only or wanted a PO token, from its own lines.

yt-dlp says most of it only in debug lines (``write_debug``, given to the logger's ``debug`` when ``verbose`` is set;
the resolver sets it and prints nothing): the web client's "YouTube is forcing SABR streaming for this client", and
a default client's "formats require a GVS PO Token which was not provided". ``LINES`` cites each text as it is in the
installed release's source; ``tests/unit/test_ytclients.py`` reads them back, so that a yt-dlp that rewords one
fails a test instead of leaving a fact silently empty.

What cannot be read from the lines is NULL, never guessed: a client not in any line is neither answered nor refused.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

YT = "yt_dlp/extractor/youtube/_video.py"
COMMON = "yt_dlp/extractor/common.py"


class Line(NamedTuple):
    """One kind of yt-dlp line: the pattern read, and the source text it comes from."""

    fact: str
    pattern: re.Pattern[str]
    file: str
    snippet: str


LINES: tuple[Line, ...] = (
    Line("fetched", re.compile(r"\[youtube\] [\w-]+: Downloading (?P<client>[a-z0-9 ]+?) player API JSON"), YT,
         "note='Downloading {} player API JSON'.format(client.replace('_', ' ').strip()),"),
    Line("webpage", re.compile(r"\[youtube\] [\w-]+: Downloading webpage\b"), COMMON,
         "self.to_screen(join_nonempty(video_id, note or 'Downloading webpage', delim=': '))"),
    Line("unplayable", re.compile(r"[\w-]+: (?P<client>\w+) player response playability status: (?P<status>\w+)"),
         YT, "self.write_debug(f'{video_id}: {client} player response playability status: {status}')"),
    Line("sabr_only", re.compile(r"Some (?P<client>\w+) client https formats have been skipped as they are missing a "
                                 r"URL"), YT,
         "'{}Some {} client https formats have been skipped as they are missing a URL. '"),
    Line("po_token", re.compile(r"(?P<client>\w+) client (?P<protocol>\w+) formats require a GVS PO Token which was "
                                r"not provided"), YT,
         "f'{video_id}: {client_name} client {proto} formats require a GVS PO Token which was not provided. '"),
)
DEFAULT_CLIENTS_SNIPPET = "_DEFAULT_CLIENTS = ('tv_samsung', 'visionos', 'web')"
DEFAULT_CLIENTS = ("tv_samsung", "visionos", "web")  # yt-dlp 2026.10.26's, when none is asked (the test reads it)
WEBPAGE_CLIENTS = ("web", "web_safari")  # their player response comes with the watch page, not an API call
_PATTERNS = {line.fact: line.pattern for line in LINES}


def _found(fact: str, lines: list[str]) -> list[re.Match[str]]:
    return [m for line in lines if (m := _PATTERNS[fact].search(line))]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def read_lines(lines: list[str], asked: tuple[str, ...]) -> dict[str, Any]:
    """The facts of yt-dlp's lines about one video: clients fetched, answered (fetched without an unplayable
    status), SABR-only, and (client, protocol) pairs skipped for want of a GVS PO token. Without any line (a
    recording that kept none) every fact is None; without a line that fetched a client, the clients are None."""
    if not lines:
        return dict.fromkeys(("clients_fetched", "clients_answered", "clients_unplayable", "clients_sabr_only",
                              "po_token_skipped"))
    fetched = [m["client"].replace(" ", "_") for m in _found("fetched", lines)]
    if _found("webpage", lines):
        fetched += [c for c in asked if c in WEBPAGE_CLIENTS]
    unplayable = {m["client"]: m["status"] for m in _found("unplayable", lines)}
    known = bool(fetched)
    return {"clients_fetched": _unique(fetched) if known else None,
            "clients_answered": [c for c in _unique(fetched) if c not in unplayable] if known else None,
            "clients_unplayable": unplayable,
            "clients_sabr_only": _unique([m["client"] for m in _found("sabr_only", lines)]),
            "po_token_skipped": _unique([f"{m['client']}:{m['protocol']}" for m in _found("po_token", lines)])}


def url_facts(url: str | None) -> dict[str, Any]:
    """What a googlevideo URL says of itself: the client it was made for (``c``) and whether it carries a PO token
    (``pot``, which yt-dlp adds when it has one)."""
    if not url:
        return {"client": None, "po_token": None}
    query = parse_qs(urlsplit(url).query)
    clients = query.get("c")
    return {"client": clients[0] if clients else None, "po_token": "pot" in query}


def no_format_kind(facts: dict[str, Any]) -> str | None:
    """``po_token_required`` when the clients that answered had their formats skipped and one of them for want of a
    PO token (a token would have given URLs), ``sabr_only`` when every one was SABR-only; else None."""
    gated = {p.split(":", 1)[0] for p in facts.get("po_token_skipped") or ()}
    skipped = gated | set(facts.get("clients_sabr_only") or ())
    clients = set(facts.get("clients_answered") or ()) or skipped
    if not clients or not clients <= skipped:
        return None
    return "po_token_required" if gated else "sabr_only"
