"""``python -m pytomo`` and the one-file executable: ``crawl`` (start_crawl.py) or ``server`` (start_server.py)."""

from __future__ import annotations

import sys

USAGE = """usage: pytomo crawl [start_crawl.py options]   measure videos (see: pytomo crawl --help)
       pytomo server [start_server.py options]  serve the graphs (see: pytomo server --help)
       pytomo --version"""


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the crawler or the server; ``_delayline`` and ``_mediainfo`` are Pytomo's own child processes."""
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "crawl":
        from pytomo.cli import crawl_main

        return crawl_main(rest)
    if command == "server":
        from pytomo.cli import server_main

        return server_main(rest)
    if command == "_delayline":
        from pytomo.lab.delayline import main as delayline_main

        return delayline_main(rest)
    if command == "_mediainfo":
        from pytomo.media.sandbox import child_main as mediainfo_main

        return mediainfo_main(rest)
    if command in ("-V", "--version"):
        from pytomo.version import __version__

        print(f"pytomo {__version__}")
        return 0
    if command in ("-h", "--help"):
        print(USAGE)
        return 0
    print(USAGE, file=sys.stderr)
    print(f"pytomo: error: {'no command given' if not command else f'unknown command {command!r}'}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
