"""``pytomo tokens add NAME --tokens FILE [--role volunteer|researcher]``: a new collector token, printed once."""

from __future__ import annotations

import sys
from pathlib import Path

from pytomo.cli.status import ExitStatus, Parser, guarded


def tokens_parser(prog: str) -> Parser:
    """The options of ``pytomo tokens``."""
    p = Parser(prog=prog, description="Manage the collector's tokens (stored salted and hashed; see docs/web.md).")
    sub = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    add = sub.add_parser("add", help="add a token for NAME and print it once, as the last line")
    add.add_argument("name", metavar="NAME", help="whom the token is for (1 to 64 letters, digits, . _ @ -)")
    add.add_argument("--tokens", required=True, metavar="FILE", help="the tokens file of the collector")
    add.add_argument("--role", choices=("volunteer", "researcher"), default="volunteer",
                     help="volunteer: may upload; researcher: may also list and fetch runs (default volunteer)")
    return p


def _tokens(argv: list[str], prog: str) -> int:
    from pytomo.collector.tokens import add_token

    ns = tokens_parser(prog).parse_args(argv)
    token = add_token(Path(ns.tokens), ns.name, ns.role)
    print(f"token for {ns.name} ({ns.role}) added to {ns.tokens}; it is shown only now:", file=sys.stderr)
    print(token, flush=True)
    return ExitStatus.OK


def tokens_main(argv: list[str] | None = None, prog: str = "pytomo tokens") -> int:
    """``pytomo tokens``: 0 added, 2 bad usage, 1 the file cannot be written."""
    return guarded(prog, lambda: _tokens(sys.argv[1:] if argv is None else argv, prog))
