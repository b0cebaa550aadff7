"""``pytomo tokens add NAME | list | revoke NAME --tokens FILE``: the collector's tokens (add prints a token once)."""

from __future__ import annotations

import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded


def tokens_parser(prog: str) -> Parser:
    """The options of ``pytomo tokens``."""
    p = Parser(prog=prog, description="Manage the collector's tokens (stored salted and hashed; see docs/web.md).")
    sub = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    add = sub.add_parser("add", help="add a token for NAME and print it once, as the last line")
    add.add_argument("name", metavar="NAME", help="whom the token is for (1 to 64 letters, digits, . _ @ -; a name "
                     "already in the file, revoked or not, is refused)")
    add.add_argument("--tokens", required=True, metavar="FILE", help="the tokens file of the collector")
    add.add_argument("--role", choices=("volunteer", "researcher"), default="volunteer",
                     help="volunteer: may upload; researcher: may also list and fetch runs (default volunteer)")
    listed = sub.add_parser("list", help="the tokens' names, roles, dates and whether revoked (never the hashes)")
    listed.add_argument("--tokens", required=True, metavar="FILE", help="the tokens file of the collector")
    revoke = sub.add_parser("revoke", help="revoke NAME's token: a running collector refuses it from then on (401)")
    revoke.add_argument("name", metavar="NAME", help="whose token")
    revoke.add_argument("--tokens", required=True, metavar="FILE", help="the tokens file of the collector")
    return p


def _add(name: str, role: str, tokens: Path) -> int:
    from pytomo.collector.tokens import add_token

    token = add_token(tokens, name, role)
    print(f"token for {name} ({role}) added to {tokens}; it is shown only now:", file=sys.stderr)
    print(token, flush=True)
    return ExitStatus.OK


def _list(tokens: Path) -> int:
    from pytomo.collector.tokens import list_tokens

    entries = list_tokens(tokens)
    rows = [("NAME", "ROLE", "ADDED", "REVOKED")] + [(e.name, e.role, e.added_at, e.revoked_at or "-")
                                                    for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    print(f"{len(entries)} token{'s' if len(entries) != 1 else ''}, "
          f"{sum(e.revoked_at is not None for e in entries)} revoked", file=sys.stderr, flush=True)
    return ExitStatus.OK


def _revoke(name: str, tokens: Path) -> int:
    from pytomo.collector.tokens import revoke_token

    entry, now = revoke_token(tokens, name)
    when = "revoked on" if now else "already revoked on"
    print(f"token of {entry.name} ({entry.role}) {when} {entry.revoked_at}: a running collector refuses it",
          flush=True)
    return ExitStatus.OK


def _tokens(argv: list[str], prog: str) -> int:
    ns = tokens_parser(prog).parse_args(argv)
    tokens = Path(ns.tokens)
    if ns.action == "add":
        return _add(ns.name, ns.role, tokens)
    if ns.action == "list":
        return _list(tokens)
    return _revoke(ns.name, tokens)


def tokens_main(argv: list[str] | None = None, prog: str = "pytomo tokens") -> int:
    """``pytomo tokens``: 0 done, 2 bad usage (a name already there, no such name, no such file), 1 the file cannot
    be written."""
    return guarded(prog, lambda: _tokens(sys.argv[1:] if argv is None else argv, prog))
